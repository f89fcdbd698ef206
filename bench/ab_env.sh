#!/bin/sh
# An A/B `hello-tui` for the side-by-side harness (../shared/peers), by one
# environment variable: give it as HT_BIN and the calls of a run alternate
# AB_VAR=AB_OFF (calls 1, 3, 5, ...) and AB_VAR=AB_ON (2, 4, 6, ...), one tree,
# so both arms share the machine's noise. AB_STATE/ab.log says which call got which.
#
#   AB_VAR=HELLO_TUI_FAST_RTP AB_STATE=/tmp/ab HT_BIN=$PWD/bench/ab_env.sh HT_DIR=$PWD \
#     bash ../shared/peers/side-by-side.sh 8 10 --arms hello-device --no-latency --no-calibrate
#   .venv/bin/python bench/ab_env_table.py $SBS_WORK/results.json /tmp/ab/ab.log
#
# (AB_OFF / AB_ON default to 0 / 1; AB_VAR=A,B,C sets several to the arm's value.) Each `answer` (one per call) flips the arm.
# AB_PYTHON: the interpreter (default: the venv next to this script's tree).
set -eu
HERE="$(cd "$(dirname "$0")/.." && pwd)"
S="${AB_STATE:?AB_STATE: a folder for the alternation state}"
mkdir -p "$S"
if [ "${1:-}" = answer ]; then
  n=$(cat "$S/ab.count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$S/ab.count"
  if [ $((n % 2)) = 1 ]; then echo "${AB_OFF:-0}" > "$S/ab.value"; else echo "${AB_ON:-1}" > "$S/ab.value"; fi
  echo "$n $(cat "$S/ab.value")" >> "$S/ab.log"
fi
value=$(cat "$S/ab.value" 2>/dev/null || echo "${AB_ON:-1}")
# AB_VAR may name several variables, comma-separated: all take the arm's value
# (e.g. the native capture, send and speaker paths on or off together).
for var in $(echo "${AB_VAR:?AB_VAR: the variable(s) to alternate}" | tr ',' ' '); do
  export "$var=$value"
done
# `python -m` puts the working directory first on sys.path: started from inside another
# checkout (the harness inherits our cwd), the calls would import that checkout (ab_hello.sh).
export PYTHONSAFEPATH=1
export PYTHONPATH="$HERE"
exec "${AB_PYTHON:-$HERE/.venv/bin/python}" -m hello_tui "$@"
