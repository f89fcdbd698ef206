#!/bin/sh
# An A/B `hello-tui` for the side-by-side harness (../shared/peers): give it as
# HT_BIN and each call of a run alternates between two source trees, so both
# share the machine's noise (docs/benchmarks.md, "Setup time").
#
#   AB_BASE=/path/to/base/tree AB_NEW=/path/to/this/tree AB_STATE=/tmp/ab AB_PERIOD=2 \
#   HT_BIN=$PWD/bench/ab_hello.sh HT_DIR=$PWD \
#     bash ../shared/peers/side-by-side.sh 8 3 --arms hello-device,hello-null --no-latency --no-calibrate
#   .venv/bin/python bench/setup_ab.py $SBS_WORK/results.json /tmp/ab/ab.log
#
# Each `answer` (one per call) picks the tree: base for the first AB_PERIOD calls
# (the number of hello arms), then new, and so on; AB_STATE/ab.log records it.
# AB_PYTHON: the interpreter (default: the venv next to this script's tree).
# HT_TRACE=DIR also traces each process (bench/setup_trace). The wrapper unsets
# PYTHONDONTWRITEBYTECODE: a user's install has its bytecode.
set -eu
HERE="$(cd "$(dirname "$0")/.." && pwd)"
S="${AB_STATE:?AB_STATE: a folder for the alternation state}"
mkdir -p "$S"
if [ "${1:-}" = answer ]; then
  n=$(cat "$S/ab.count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$S/ab.count"
  if [ $(( ((n - 1) / ${AB_PERIOD:-1}) % 2 )) = 0 ]; then echo base > "$S/ab.tree"; else echo new > "$S/ab.tree"; fi
  echo "$n $(cat "$S/ab.tree")" >> "$S/ab.log"
fi
if [ "$(cat "$S/ab.tree" 2>/dev/null || echo new)" = base ]; then P="${AB_BASE:?}"; else P="${AB_NEW:-$HERE}"; fi
[ -n "${HT_TRACE:-}" ] && P="$HERE/bench/setup_trace:$P" && export HELLO_TUI_SETUP_TRACE="$HT_TRACE"
unset PYTHONDONTWRITEBYTECODE
# `python -m` puts the working directory first on sys.path: run from inside a checkout
# (the harness inherits our cwd), both arms would import that checkout's hello_tui.
export PYTHONSAFEPATH=1
export PYTHONPATH="$P"
exec "${AB_PYTHON:-$HERE/.venv/bin/python}" -m hello_tui "$@"
