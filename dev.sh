#!/usr/bin/env bash
# hello-tui's two commands, each working on a fresh clone of a fresh machine:
#
#   ./dev.sh run [ARGS...]    set everything up, then run hello-tui (no ARGS: the
#                             app on the embedded default server, echo test running)
#   ./dev.sh test [ARGS...]   set everything up, then run the whole test suite
#                             (ruff, import-linter contracts, mypy, pytest in 2-4
#                             worker processes; ARGS go to pytest, run in one process;
#                             HT_TEST_WORKERS=N sets the workers, 0 runs in one)
#   ./dev.sh test --stress [ARGS...]
#                             the same with a CPU hog on every core during pytest
#                             (no ARGS: tests/media tests/call tests/tui; docs/testing.md)
#
# Setup is idempotent and quick when nothing changed: it installs missing
# Debian packages (apt-get, when root), creates .venv and installs the
# package with its extras, at the exact versions of constraints.txt, only when
# pyproject.toml or constraints.txt changed.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv

# Debian packages: what the app needs to run, and what the tests need on top.
RUN_PKGS=(libportaudio2 libasound2-plugins libopus0 libpulse0 g++)  # g++: the AEC3 shim (below)
TEST_PKGS=(libportaudio2 libasound2-plugins libopus0 libpulse0 pulseaudio pulseaudio-utils redis-server tmux chromium chromium-driver coturn nftables espeak-ng haproxy swh-plugins htop g++)

say() { printf '%s\n' "dev.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

find_python() {
    local py
    for py in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        [ -n "$py" ] || continue
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

missing_debs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

ensure_debs() { # ensure_debs required|optional PKG...
    local need=$1; shift
    command -v dpkg-query >/dev/null 2>&1 || { say "not a Debian system: make sure these are installed: $*"; return 0; }
    local missing
    missing=$(missing_debs "$@" | tr '\n' ' ')
    [ -n "${missing// /}" ] || return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian packages: $missing"
        export DEBIAN_FRONTEND=noninteractive
        local log
        log=$(mktemp)
        apt-get update -qq >"$log" 2>&1 || say "apt-get update failed; trying the install anyway"
        # shellcheck disable=SC2086
        if ! apt-get install -y -qq --no-install-recommends $missing >>"$log" 2>&1; then
            tail -20 "$log" >&2
            die "apt-get install $missing failed"
        fi
        rm -f "$log"
    elif [ "$need" = required ]; then
        die "missing Debian packages; run: sudo apt-get install $missing"
    else
        say "note: missing Debian packages (sound devices, the tuned echo canceller): sudo apt-get install $missing"
    fi
}

ensure_venv() {
    local extras=$1 py stamp want
    if [ ! -x "$VENV/bin/python" ]; then
        py=$(find_python) || {
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                ensure_debs required python3 python3-venv
                py=$(find_python) || die "Python 3.11 or newer is needed"
            else
                die "Python 3.11 or newer with venv is needed (sudo apt-get install python3 python3-venv)"
            fi
        }
        say "creating .venv with $py"
        "$py" -m venv "$VENV"
    fi
    stamp=$VENV/.hello-tui-setup
    want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1) $extras"
    have=$(cat "$stamp" 2>/dev/null || true)
    # An install with more extras (dev,video,server) also serves `run` (video).
    if [ "$have" != "$want" ] && ! { [ "${have%% *}" = "${want%% *}" ] &&
        [[ ",${have#* }," == *",$extras,"* ]]; }; then
        say "installing hello-tui[$extras] into .venv"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip >/dev/null
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
            -c constraints.txt -e ".[$extras]"
        echo "$want" >"$stamp"
    fi
}

# The optional AEC3 shim (hello_tui/media/aec3_shim.cpp, docs/media.md "Audio
# processing"): AEC3 with our tuning. hello_tui/media/aec3_build.py is the one build
# (the wheel build runs it too): the pinned pywebrtc-audio sdist's headers (sha256
# checked) and one g++ run, ~8 s once, then cached in ~/.cache/hello-tui; without
# g++ (or offline, or on another architecture) one note line and no shim: echo
# cancellation then runs with the binding's default tuning.
build_aec3_shim() {
    "$VENV/bin/python" hello_tui/media/aec3_build.py hello_tui/media/_aec3_shim.so
}

# One busy process per core, so every test competes for the CPU as on a loaded
# machine (CI runners, a laptop building something): stress-ng when installed,
# else a shell loop. Started before pytest, killed by their ids when it ends.
HOGS=()
start_hogs() {
    local n i
    n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
    if command -v stress-ng >/dev/null 2>&1; then
        stress-ng --cpu "$n" --quiet &
        HOGS+=($!)
    else
        for ((i = 0; i < n; i++)); do
            sh -c 'while :; do :; done' &
            HOGS+=($!)
        done
    fi
    say "stress: ${#HOGS[@]} CPU hog(s) on $n core(s)"
}
stop_hogs() {
    [ ${#HOGS[@]} -gt 0 ] || return 0
    kill "${HOGS[@]}" 2>/dev/null || true
    wait "${HOGS[@]}" 2>/dev/null || true
    HOGS=()
}

cmd=${1:-}
[ $# -gt 0 ] && shift
# Workers for the whole suite: the cores, at least 2 (the tests mostly wait)
# and at most 4 (past that, Chromium and the calls crowd memory and the CPU).
test_workers() {
    local cores
    cores=$(nproc 2>/dev/null || echo 2)
    [ "$cores" -lt 2 ] && cores=2
    [ "$cores" -gt 4 ] && cores=4
    echo "$cores"
}

case "$cmd" in
run)
    ensure_debs optional "${RUN_PKGS[@]}"
    ensure_venv video
    build_aec3_shim
    # No arguments: the app on its embedded default, with the echo test running.
    [ $# -gt 0 ] || set -- --echo
    exec "$VENV/bin/hello-tui" "$@"
    ;;
test)
    stress=0
    if [ "${1:-}" = --stress ]; then
        stress=1
        shift
        [ $# -gt 0 ] || set -- tests/media tests/call tests/tui
    fi
    ensure_debs required "${TEST_PKGS[@]}"
    ensure_venv dev,video,server
    build_aec3_shim
    say "ruff"
    "$VENV/bin/ruff" check hello_tui tests bench
    "$VENV/bin/ruff" format --check --quiet hello_tui tests bench ||
        die "code is not formatted: run .venv/bin/ruff format hello_tui tests bench"
    say "import-linter contracts"
    "$VENV/bin/lint-imports" --no-cache
    say "mypy"
    # [tool.mypy] in pyproject.toml; the cache (.mypy_cache) makes a rerun quick.
    "$VENV/bin/mypy"
    say "pytest"
    if [ $# -eq 0 ]; then
        # The whole suite: most of its time is real calls waiting on real time
        # (audio clocks, timers, child processes), so a few workers, one test
        # file each at a time (module fixtures stay whole), cut the wall time
        # without crowding the CPU. HT_TEST_WORKERS=0 runs it in one process.
        workers=${HT_TEST_WORKERS:-$(test_workers)}
        # A worker that crashes (a segfault) ends the run at once, the test named,
        # rather than being replaced: xdist's replacement left the run hanging.
        [ "$workers" -gt 0 ] && set -- -n "$workers" --dist loadfile --max-worker-restart 0
    fi
    [ "$stress" = 1 ] || exec "$VENV/bin/python" -m pytest "$@"
    trap stop_hogs EXIT
    start_hogs
    rc=0
    "$VENV/bin/python" -m pytest "$@" || rc=$?
    stop_hogs
    exit "$rc"
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
