#!/usr/bin/env bash
# The pulse backend against PortAudio, each side by side with baresip, on this
# checkout's code: ROUNDS alternations of one side-by-side run per backend
# (one baresip call and one hello-tui device: call each), then a table.
#
#   bash bench/pulse_backend.sh [ROUNDS [CALL_SECONDS]]     (defaults 3 20)
#
# Needs the side-by-side harness (PEERS, default /work/shared/peers) and a
# venv with hello-tui's dependencies (HT_VENV, default /work/main/.venv).
# The backend is chosen per run with HELLO_TUI_AUDIO_BACKEND; the hello-tui
# processes run this checkout (PYTHONPATH), whatever the venv has installed.
# PULSE_ARMS (default "pulse portaudio"): the arms, each BACKEND or pulse@MS
# (the pulse backend with HELLO_TUI_PULSE_LOW_MS=MS, its "low" playback tlength), then
# optionally +NAME=VALUE environment settings (pulse+HELLO_TUI_PULSE_FRAGSIZE_MS=5, a knob
# A/B'd, alternated; pulse+HT_CODE=DIR: the hello-tui code of another checkout or export)
# and :SET (HELLO_TUI_M2E_SET, bench/m2e_trace/: e.g. pulse:playout.margin_ms=2).
# PULSE_TRACE=1: trace every call (bench/m2e_trace/) and print its per-stage budget.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-3}"
CALL_S="${2:-20}"
PEERS="${PEERS:-/work/shared/peers}"
VENV="${HT_VENV:-/work/main/.venv}"
OUT="${PULSE_BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pulse-bench.XXXXXX")}"
mkdir -p "$OUT"
cat > "$OUT/hello-tui" <<WRAP
#!/bin/sh
PYTHONPATH="\${HT_TRACE_PATH:-}\${HT_CODE:-$ROOT}" exec "$VENV/bin/hello-tui" "\$@"
WRAP
chmod +x "$OUT/hello-tui"
for i in $(seq 1 "$ROUNDS"); do
  for arm in ${PULSE_ARMS:-pulse portaudio}; do
    name="$(printf %s "$arm" | tr / _)"  # (a run's directory: HT_CODE's path has slashes)
    spec="${arm%%:*}"; set_=""; [ "$arm" != "$spec" ] && set_="${arm#*:}"
    envs="${spec#*+}"; [ "$envs" = "$spec" ] && envs=""; spec="${spec%%+*}"
    backend="${spec%@*}"; low=""; [ "$spec" != "$backend" ] && low="${spec#*@}"
    trace=""; tpath=""
    if [ -n "$set_" ] || [ -n "${PULSE_TRACE:-}" ]; then tpath="$ROOT/bench/m2e_trace:"; fi
    [ -n "${PULSE_TRACE:-}" ] && trace="$OUT/$name-$i/trace" && mkdir -p "$trace"
    echo "[pulse-bench] round $i: $arm (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    HELLO_TUI_PULSE_LOW_MS="$low" HELLO_TUI_M2E_SET="$set_" HELLO_TUI_M2E_TRACE="$trace" \
    HT_TRACE_PATH="$tpath" \
    HELLO_TUI_AUDIO_BACKEND="$backend" HT_DIR="$ROOT" HT_BIN="$OUT/hello-tui" \
    env ${envs//+/ } \
      BS_PYTHON="$VENV/bin/python" SBS_WORK="$OUT/$name-$i" \
      bash "$PEERS/side-by-side.sh" 1 "$CALL_S" --arms baresip,hello-device \
      > "$OUT/$name-$i.log" 2>&1 || echo "[pulse-bench] run failed: $OUT/$name-$i.log" >&2
    if [ -n "$trace" ]; then
      "$VENV/bin/python" "$ROOT/bench/mouth_to_ear_budget.py" "$trace" "$OUT/$name-$i/results.json" \
        > "$OUT/$name-$i.budget" 2>&1 || true
    fi
  done
done
"$VENV/bin/python" "$ROOT/bench/pulse_backend_table.py" "$OUT"
