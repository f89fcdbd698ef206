"""Process helpers shared by the CPU benchmarks: /proc readings, an isolated
environment, the hello-tui command line, a signed-in call between two CLI
processes, and cleanup of what a run started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (fields 14 and 15 of stat(5))."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``serve`` runs the echo peer in a child)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            out += tree(int(kid))
    return out


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))


def hwm_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """Temporary XDG dirs (never the user's profile), loopback-only ICE, ``extra``."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (home / var).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / var)
    env["HELLO_TUI_ICE_HOSTS"] = "127.0.0.1"
    env.pop("HELLO_TUI_CONFIG", None)
    env.update(extra)
    return env


def hello_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hello_tui", *args]


def signed_in_call(
    url: str,
    envs: tuple[dict[str, str], dict[str, str]],
    ends: tuple[str, str, str],
    seconds: float,
    procs: list[subprocess.Popen[str]],
) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    """alice calls bob on ``url``, each a CLI process signed in with its own
    ``envs`` (alice's, bob's): bob's ``answer --auto --once`` and alice's
    ``call bob`` lasting ``seconds`` + 1, ``ends`` = (alice's input, bob's
    input, both outputs). Returns (alice, bob) once media flows at alice; both
    are appended to ``procs`` for :func:`stop_all`."""
    env_a, env_b = envs
    alice_in, bob_in, out = ends
    # Both signed in: an anonymous caller may ring only echo and rooms.
    for name, env in (("bob", env_b), ("alice", env_a)):
        subprocess.run(hello_cmd("account", "register", name, "--server", url), env=env,
                       check=True, capture_output=True)  # fmt: skip
    bob = subprocess.Popen(
        hello_cmd("answer", "--auto", "--once", "--server", url, "--audio-in", bob_in,
                  "--audio-out", out, "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env_b,
    )  # fmt: skip
    procs.append(bob)
    assert bob.stdout is not None
    assert json.loads(bob.stdout.readline())["kind"] == "listening"
    alice = subprocess.Popen(
        hello_cmd("call", "bob", "--server", url, "--audio-in", alice_in, "--audio-out", out,
                  "--duration", str(seconds + 1), "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env_a,
    )  # fmt: skip
    procs.append(alice)
    assert alice.stdout is not None
    for line in alice.stdout:
        if json.loads(line)["kind"] == "media-flowing":
            return alice, bob
    raise RuntimeError("the call ended before media flowed")


def stop_all(procs: Iterable[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
