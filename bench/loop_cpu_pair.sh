#!/bin/sh
# bench/loop_cpu.py, the two arms at once (one process each), windows paired in time:
# both arms share the same moment's load, which a shared machine needs to see 5 %.
#
#   bench/loop_cpu_pair.sh [VAR [WINDOWS [SECONDS [SOURCE]]]]
#   e.g. bench/loop_cpu_pair.sh HELLO_TUI_EAGER_WAKE 10 4 thread
#
# Prints each pair (off, on, change) and the mean change. PYTHON: the interpreter.
set -eu
HERE="$(cd "$(dirname "$0")/.." && pwd)"
VAR="${1:-HELLO_TUI_EAGER_WAKE}"; N="${2:-10}"; S="${3:-4}"; SRC="${4:-thread}"
PY="${PYTHON:-$HERE/.venv/bin/python}"
T="$(mktemp -d)"
export PYTHONPATH="$HERE"
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HERE/bench/loop_cpu.py" --var "$VAR" --off 0 --on 0 --source "$SRC" --windows "$N" --seconds "$S" > "$T/off" 2>&1 &
"$PY" "$HERE/bench/loop_cpu.py" --var "$VAR" --off 1 --on 1 --source "$SRC" --windows "$N" --seconds "$S" > "$T/on" 2>&1
wait
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
grep window "$T/off" | awk '{print $4}' > "$T/a"
grep window "$T/on" | awk '{print $4}' > "$T/b"
paste "$T/a" "$T/b" | awk -v var="$VAR" '
  { d = ($2 - $1) / $1 * 100; s += d; if ($2 < $1) w++; printf "%s=0 %.2f  %s=1 %.2f  %+.1f %%\n", var, $1, var, $2, d }
  END { printf "mean change %+.1f %% (%d of %d pairs lower), %% of a core per side\n", s / NR, w, NR }'
sort -n "$T/a" | awk '{a[NR]=$1} END {printf "median off %.2f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
sort -n "$T/b" | awk '{a[NR]=$1} END {printf ", on %.2f\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
rm -rf "$T"
