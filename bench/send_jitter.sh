#!/bin/sh
# bench/send_jitter.py, both arms at once (Python send, C send: one process and one
# PulseAudio each), with bench/rtp_sniff.py (root) timing each packet's departure on
# loopback in a process of its own.
#
#   bench/send_jitter.sh [SECONDS [LOOP_LOAD [STALL_MS [STALL_EVERY]]]]
set -eu
HERE="$(cd "$(dirname "$0")/.." && pwd)"
S="${1:-20}"; L="${2:-0.08}"; M="${3:-0}"; E="${4:-0.1}"
PY="${PYTHON:-$HERE/.venv/bin/python}"
T="$(mktemp -d)"
echo "load $(cut -d' ' -f1-3 /proc/loadavg); loop load $L, stalls of $M ms every $E s"
"$PY" "$HERE/bench/rtp_sniff.py" "$((S + 12))" "$T/sniffed" "$T/a.ssrc" "$T/b.ssrc" &
for arm in a b; do
  knob=0; [ "$arm" = b ] && knob=1
  env PYTHONPATH="$HERE" HELLO_TUI_NATIVE_CAPTURE=1 HELLO_TUI_NATIVE_SEND=$knob \
    "$PY" "$HERE/bench/send_jitter.py" --seconds "$S" --loop-load "$L" --stall-ms "$M" \
    --stall-every "$E" --ssrc-file "$T/$arm.ssrc" > "$T/$arm.out" 2>&1 &
done
wait  # the arms, then the sniffer (it stops on its own, after them)
for arm in a b; do
  cat "$T/$arm.out"
  [ -s "$T/sniffed" ] && "$PY" "$HERE/bench/send_jitter.py" --analyze "$T/sniffed" "$T/$arm.ssrc"
done
rm -rf "$T"
