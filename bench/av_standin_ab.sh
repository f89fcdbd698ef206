#!/bin/bash
# Peak RSS and CPU per side of an audio-only CLI call, three arms alternated
# (docs/media.md, "PyAV out of an audio-only call"): A = another tree (HT_BASE,
# default /work/main: before the change), B = this tree with HELLO_TUI_AV=real
# (the ctypes encoder, the real av), C = this tree (the av stand-in).
#   bash bench/av_standin_ab.sh [null|device] [rounds]
# device: the backend follows HELLO_TUI_AUDIO_BACKEND (auto: pulse).
# ARMS="A C" to run only some arms; SECONDS_PER_CALL (default 4) for longer calls (CPU).
set -u
mode=${1:-null}; rounds=${2:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
base=${HT_BASE:-/work/main}
python=${PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=/work/main/.venv/bin/python
for i in $(seq "$rounds"); do
  for arm in ${ARMS:-A B C}; do
    case $arm in
      A) code=$base; extra=();;
      B) code=$here; extra=(HELLO_TUI_AV=real);;
      C) code=$here; extra=();;
    esac
    echo "== $arm round $i ($(uptime | sed 's/.*load/load/'))"
    # cd: python -m puts the working directory first on sys.path, before PYTHONPATH
    (cd "$code" && env "${extra[@]}" PYTHONPATH="$code" "$python" "$here/bench/call_memory.py" \
      --mode "$mode" --runs 1 --seconds "${SECONDS_PER_CALL:-4}" 2>&1 | grep "run 1:")
  done
done
