#!/bin/bash
# Peak RSS and CPU per side of an audio-only CLI call, one malloc arena (the CLI's
# default, util/malloc_arenas.py) against glibc's per-thread arenas, alternated
# (docs/media.md, "One malloc arena"): A = MALLOC_ARENA_MAX=64 in the environment
# (the user's value wins over the CLI's: as many arenas as the threads ask for),
# B = the default. The backend of device: follows HELLO_TUI_AUDIO_BACKEND (auto: pulse).
#   HELLO_TUI_AUDIO_BACKEND=auto bash bench/malloc_arena_ab.sh [null|device] [rounds]
# SECONDS_PER_CALL (default 4) for longer calls (CPU).
set -u
mode=${1:-device}; rounds=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-/work/main/.venv/bin/python}
for i in $(seq "$rounds"); do
  for arm in A B; do
    case $arm in A) extra=(MALLOC_ARENA_MAX=64);; B) extra=();; esac
    echo "== $arm round $i ($(uptime | sed 's/.*load/load/'))"
    (cd "$here" && env "${extra[@]}" PYTHONPATH="$here" "$python" bench/call_memory.py \
      --mode "$mode" --runs 1 --seconds "${SECONDS_PER_CALL:-4}" 2>&1 | grep "run 1:")
  done
done
