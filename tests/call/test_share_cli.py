"""Sharing from scripts: ``--share`` and the share-* commands on stdin of a real
``hello-tui`` subprocess, the other side a real phone, through the real server."""

from __future__ import annotations

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from tests.call.conftest import Env, T
from tests.call.test_share import _event, _screen, _until
from tests.call.test_steering_cli import Lines, _finish, _spawn


async def _register(env: Env, name: str) -> None:
    proc = await _spawn("account", "register", name, "--server", env.url)
    await _finish(proc)
    assert proc.returncode == 0


async def test_call_share_shows_the_program_to_the_callee(env: Env) -> None:
    await _register(env, "alice")
    bob = await env.phone("bob")
    script = "printf 'from the CLI \\033[1mbold\\033[0m\\n'; cat"  # then waits, echoing input
    proc = await _spawn("call", "bob", "--server", env.url, "--json",
                        "--share", f"sh -c \"{script}\"", "--share-size", "50x8")  # fmt: skip
    lines = Lines(proc)
    try:
        viewer = await bob.next_incoming(T)
        await viewer.accept()
        started = await lines.until(lambda x: x["kind"] == "share-started")
        assert (started["side"], started["cols"], started["rows"]) == ("local", 50, 8)
        await _event(viewer, ev.ShareStarted, side="remote")
        await _until(lambda: "from the CLI bold" in _screen(viewer, "remote"), "the output")
        lines.send('{"cmd": "share-input", "data": "typed by the sharer\\r"}')
        await _until(lambda: "typed by the sharer" in _screen(viewer, "remote"), "the echo")
        lines.send('{"cmd": "share-snapshot"}')
        shot = await lines.until(lambda x: x["kind"] == "share-snapshot")
        assert shot["side"] == "local" and (shot["cols"], shot["rows"]) == (50, 8)
        assert shot["text"] == _screen(viewer, "remote")
        lines.send('{"cmd": "share-grant"}')
        granted = await lines.until(lambda x: x["kind"] == "share-control")
        assert (granted["side"], granted["granted"]) == ("local", True)
        await _event(viewer, ev.ShareControl, side="remote", granted=True)
        lines.send('{"cmd": "share-stop"}')
        revoked = await lines.until(lambda x: x["kind"] == "share-control")
        assert revoked["granted"] is False  # the grant ends with the share
        await lines.until(lambda x: x["kind"] == "share-stopped")
        await _event(viewer, ev.ShareStopped, side="remote")
        lines.send('{"cmd": "share-stop"}')
        error = await lines.until(lambda x: x["kind"] == "error")
        assert error["message"] == "not sharing"
        lines.send('{"cmd": "hangup"}')
        await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0


async def test_a_cli_viewer_types_only_when_granted(env: Env) -> None:
    await _register(env, "carol")
    proc = await _spawn("answer", "--auto", "--once", "--server", env.url, "--json")
    lines = Lines(proc)
    try:
        await lines.until(lambda x: x["kind"] == "listening")
        alice = await env.phone("alice")
        sharer: Call = alice.dial("carol")
        await sharer.wait_for(ev.Connected, T)
        await sharer.share.start(["cat"], cols=40, rows=6)
        started = await lines.until(lambda x: x["kind"] == "share-started")
        assert (started["side"], started["cols"]) == ("remote", 40)
        lines.send('{"cmd": "share-input", "data": "not granted\\r"}')
        error = await lines.until(lambda x: x["kind"] == "error")
        assert "not given you control" in error["message"]
        sharer.share.grant()
        control = await lines.until(lambda x: x["kind"] == "share-control")
        assert (control["side"], control["granted"]) == ("remote", True)
        lines.send('{"cmd": "share-input", "data": "granted keys\\r"}')
        # Twice: the tty's echo, then cat's copy (a snapshot between the two differed).
        await _until(
            lambda: _screen(sharer, "local").count("granted keys") == 2, "the granted keys"
        )
        sharer.share.revoke()
        control = await lines.until(lambda x: x["kind"] == "share-control")
        assert control["granted"] is False
        lines.send('{"cmd": "share-input", "data": "after revoke\\r"}')
        error = await lines.until(lambda x: x["kind"] == "error")
        assert "not given you control" in error["message"]
        lines.send('{"cmd": "share-snapshot"}')
        shot = await lines.until(lambda x: x["kind"] == "share-snapshot")
        assert shot["side"] == "remote" and shot["text"] == _screen(sharer, "local")
        assert "not granted" not in shot["text"] and "after revoke" not in shot["text"]
        await sharer.hangup()
        ended = await lines.until(lambda x: x["kind"] == "ended")
        assert ended["reason"] == "hangup"
        await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert [x["kind"] for x in lines.seen].count("share-stopped") == 1  # with the call's end
