#!/bin/sh
# bench/device_cpu.py, two arms at once (one process and one PulseAudio each), windows
# paired in time so both arms share the same moment's load (a shared machine's noise).
#
#   bench/device_cpu_pair.sh "ARM A" "ARM B" [WINDOWS [SECONDS]]
#   an arm: environment assignments, e.g. "" (as is) or "HELLO_TUI_PULSE_GIL=release";
#   PYTHONPATH=DIR in an arm measures another checkout's hello_tui (default: this one).
#
# Prints each pair (CPU % of one core: main thread, speaker thread, microphone thread,
# process) and the medians. PYTHON: the interpreter (default /work/main/.venv's).
set -eu
HERE="$(cd "$(dirname "$0")/.." && pwd)"
A="$1"; B="$2"; N="${3:-8}"; S="${4:-4}"; shift 2; shift $(( $# > 2 ? 2 : $# )); MORE="$*"
PY="${PYTHON:-/work/main/.venv/bin/python}"
T="$(mktemp -d)"
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
env PYTHONPATH="$HERE" $A "$PY" "$HERE/bench/device_cpu.py" --windows "$N" --seconds "$S" $MORE > "$T/a" 2>&1 &
env PYTHONPATH="$HERE" $B "$PY" "$HERE/bench/device_cpu.py" --windows "$N" --seconds "$S" $MORE > "$T/b" 2>&1
wait
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "A: ${A:-as is}"; grep median "$T/a"
echo "B: ${B:-as is}"; grep median "$T/b"
grep window "$T/a" | awk '{print $4, $6, $8, $10}' > "$T/a.w"
grep window "$T/b" | awk '{print $4, $6, $8, $10}' > "$T/b.w"
paste -d' ' "$T/a.w" "$T/b.w" | awk '
  { for (i = 1; i <= 4; i++) d[i] += $(i + 4) - $i; n++ }
  END { printf "mean B - A per window (points): main %+.2f speaker %+.2f mic %+.2f process %+.2f (%d pairs)\n", d[1]/n, d[2]/n, d[3]/n, d[4]/n, n }'
rm -rf "$T"
