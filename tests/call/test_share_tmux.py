"""``--share-tmux PANE``: a real tmux server on a private socket, its pane shared
over a real call (hello_tui/share/tmux.py, docs/sharing.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hello_tui.call import events as ev
from hello_tui.call.commands import CommandError, parse_command, run_command
from hello_tui.share.tmux import check_pane, start_tmux_share
from hello_tui.share.wire import ShareError
from tests.call.conftest import Env, T
from tests.call.test_share import _connected_pair, _event, _screen, _until
from tests.call.test_share_cli import _register
from tests.call.test_steering_cli import Lines, _finish, _spawn
from tests.conftest import Result

TMUX = shutil.which("tmux") or "tmux"
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """A private tmux server: ``$TMUX_TMPDIR`` points at its directory, so plain
    ``tmux`` (ours and the code's) reaches it and nothing else."""

    def __init__(self, tmpdir: str) -> None:
        self.tmpdir = tmpdir

    def __call__(self, *args: str) -> str:
        done = subprocess.run([TMUX, *args], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def pane_text(self, target: str = "work:0") -> str:
        return self("capture-pane", "-p", "-t", target)


@pytest.fixture
def tmux(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tmux]:
    tmpdir = tempfile.mkdtemp(prefix="tmux", dir="/tmp")  # a socket path stays short
    monkeypatch.setenv("TMUX_TMPDIR", tmpdir)
    monkeypatch.delenv("TMUX", raising=False)
    server = Tmux(tmpdir)
    server("-f", "/dev/null", "new-session", "-d", "-s", "work", "-x", "50", "-y", "10", "cat")
    try:
        yield server
    finally:
        socket = f"{tmpdir}/tmux-{os.getuid()}/default"  # not $TMUX_TMPDIR: a test may unset it
        subprocess.run([TMUX, "-S", socket, "kill-server"], capture_output=True, timeout=10)
        shutil.rmtree(tmpdir, ignore_errors=True)


def test_a_missing_pane_or_tmux_is_one_line(tmux: Tmux, monkeypatch: pytest.MonkeyPatch) -> None:
    check_pane("work")  # exists
    with pytest.raises(ShareError, match=r"^no tmux pane 'nosuch': can't find"):
        check_pane("nosuch")
    with pytest.raises(ShareError, match=r"^no tmux pane '%99'"):
        check_pane("%99")
    empty = Path(tmux.tmpdir) / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ShareError, match=r"^cannot share a tmux pane: tmux is not installed$"):
        check_pane("work")


async def test_a_tmux_pane_is_shared_read_only_until_granted(env: Env, tmux: Tmux) -> None:
    sharer, viewer = await _connected_pair(env)
    tmux("send-keys", "-t", "work:0", "before the share", "Enter")  # cat echoes it
    tmux("new-window", "-t", "work:5", "cat")  # the sharer looks at another window
    with pytest.raises(ShareError, match="no tmux pane 'work:7'"):
        await start_tmux_share(sharer.share, "work:7")
    await start_tmux_share(sharer.share, "work:0")
    started = await _event(viewer, ev.ShareStarted, side="remote")
    assert (started.cols, started.rows) == (50, 11)  # type: ignore[attr-defined]  # + status
    assert started.title == "tmux work:0"  # type: ignore[attr-defined]
    await _until(lambda: "before the share" in _screen(viewer, "remote"), "the pane's text")
    clients = tmux("list-clients", "-F", "#{client_readonly} #{session_name}").splitlines()
    assert len(clients) == 1 and clients[0].startswith("1 hello-share-"), clients

    # A viewer without a grant that sends anyway: refused by the share's gate.
    viewer.share.control = True
    viewer.share.send_input("ungranted\r")
    await _until(lambda: sharer.share.input_refused == 1, "the refused input")
    viewer.share.control = False
    # The sharer's own input goes into the pane (send-keys), not through our client.
    sharer.share.send_input("from the sharer\r")
    await _until(lambda: "from the sharer" in tmux.pane_text(), "the sharer's line")

    sharer.share.grant()
    await _event(viewer, ev.ShareControl, side="remote", granted=True)
    viewer.share.send_input("granted line\r")
    await _until(lambda: "granted line" in tmux.pane_text(), "the granted line in the pane")
    await _until(lambda: "granted line" in _screen(viewer, "remote"), "the granted echo")
    # Granted keys are the pane's, never tmux's: prefix + c (a new window) is two bytes for cat.
    viewer.share.send_input("\x02c after prefix\r")
    await _until(lambda: "c after prefix" in tmux.pane_text(), "the prefix typed as text")
    assert tmux("list-windows", "-t", "work", "-F", "#{window_index}").split() == ["0", "5"]
    assert tmux("list-clients", "-F", "#{client_readonly}") == "1"  # all along

    sharer.share.revoke()
    await _event(viewer, ev.ShareControl, side="remote", granted=False)
    viewer.share.control = True
    viewer.share.send_input("after revoke\r")
    await _until(lambda: sharer.share.input_refused == 2, "the input after the revoke")
    viewer.share.control = False
    assert "ungranted" not in tmux.pane_text() and "after revoke" not in tmux.pane_text()
    # The sharer's own client still shows its window, at its size (ours ignores sizes).
    assert tmux("display-message", "-p", "-t", "work", "#{window_index}") == "5"
    assert tmux("display-message", "-p", "-t", "work:0", "#{window_width}x#{window_height}") == (
        "50x10"
    )

    await sharer.share.stop()
    await _event(viewer, ev.ShareStopped, side="remote")
    await _until(
        lambda: tmux("list-sessions", "-F", "#{session_name}") == "work", "our session gone"
    )
    assert os.path.isdir(tmux.tmpdir)

    # The same over stdin / the control socket: {"cmd": "share-tmux", ...}.
    with pytest.raises(CommandError, match='"cols" and "rows" go together'):
        parse_command('{"cmd": "share-tmux", "pane": "work:0", "cols": 40}')
    with pytest.raises(CommandError, match=r"^no tmux pane 'nosuch'"):
        await run_command(sharer, parse_command('{"cmd": "share-tmux", "pane": "nosuch"}'))
    await run_command(
        sharer, parse_command('{"cmd": "share-tmux", "pane": "work:0", "cols": 40, "rows": 8}')
    )
    started = await _event(viewer, ev.ShareStarted, side="remote", cols=40)
    assert started.rows == 8  # type: ignore[attr-defined]
    await sharer.hangup()


def test_the_cli_refuses_a_missing_pane_before_dialling(
    tmux: Tmux, cli: Callable[..., Result]
) -> None:
    result = cli("call", "bob", "--server", "http://127.0.0.1:9", "--share-tmux", "nosuch")
    assert result.code != 0
    assert result.err.strip().splitlines() == [
        "hello-tui: error: no tmux pane 'nosuch': can't find window: nosuch"
    ]


async def test_call_share_tmux_from_the_cli(env: Env, tmux: Tmux) -> None:
    await _register(env, "alice")
    bob = await env.phone("bob")
    tmux("send-keys", "-t", "work:0", "shared from the CLI", "Enter")
    proc = await _spawn("call", "bob", "--server", env.url, "--json", "--share-tmux", "work:0")
    lines = Lines(proc)
    try:
        viewer = await bob.next_incoming(T)
        await viewer.accept()
        started = await lines.until(lambda x: x["kind"] == "share-started")
        assert (started["cols"], started["rows"], started["title"]) == (50, 11, "tmux work:0")
        await _until(lambda: "shared from the CLI" in _screen(viewer, "remote"), "the pane")
        lines.send('{"cmd": "hangup"}')
        await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    await _until(
        lambda: tmux("list-sessions", "-F", "#{session_name}") == "work", "our session gone"
    )
