"""``hello-tui serve --loop``: the server runs on uvloop when it is installed and
on the stdlib loop when asked (or when uvloop is missing), and both kinds of
instance serve a call between them through one real Redis."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from hello_tui.server import eventloop
from hello_tui.signaling import protocol as p
from tests.server.conftest import sdp
from tests.server.instances import Fleet

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_asyncio_is_the_stdlib_loop() -> None:
    assert eventloop.loop_factory("asyncio") is None


def test_auto_takes_uvloop_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = eventloop.loop_factory("auto")
    assert (factory is not None) == HAVE_UVLOOP
    monkeypatch.setattr(eventloop.importlib.util, "find_spec", lambda name: None)
    assert eventloop.loop_factory("auto") is None
    with pytest.raises(eventloop.LoopUnavailable, match="not installed"):
        eventloop.loop_factory("uvloop")
    with pytest.raises(ValueError, match="expected one of"):
        eventloop.loop_factory("trio")


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")
def test_the_factory_makes_a_uvloop_loop() -> None:
    factory = eventloop.loop_factory("uvloop")
    assert factory is not None
    loop = factory()
    try:
        assert eventloop.loop_name(loop) == "uvloop"
    finally:
        loop.close()
    with asyncio.Runner() as runner:
        assert eventloop.loop_name(runner.get_loop()) == "asyncio"


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")
async def test_an_asyncio_instance_and_a_uvloop_instance_serve_one_call(fleet: Fleet) -> None:
    a = await fleet.start("--loop", "asyncio", "--log-level", "info")
    b = await fleet.start("--loop", "uvloop", "--log-level", "info")
    alice = await fleet.client(a.url, "alice@example.org")
    bob = await fleet.client(b.url, "bob@example.org")

    await alice.send(p.Call(to="bob@example.org", offer=sdp(), ref=1))
    created = await alice.expect(p.CallCreated, ref=1)
    await bob.expect(p.Incoming, call_id=created.call_id)
    await bob.send(p.Accept(call_id=created.call_id, ref=2))
    await bob.expect(p.Offer, call_id=created.call_id, ref=2)
    await alice.expect(p.Accepted, call_id=created.call_id)
    await bob.send(p.Hangup(call_id=created.call_id, ref=3))
    assert (await bob.expect(p.CallEnded, ref=3)).reason == "hangup"
    assert (await alice.expect(p.CallEnded, call_id=created.call_id)).reason == "hangup"

    assert "event loop: asyncio" in a.log.read_text()
    assert "event loop: uvloop" in b.log.read_text()


async def test_insisting_on_a_missing_uvloop_is_one_clear_line() -> None:
    # A Python without uvloop: sys.modules[name] = None makes find_spec say so.
    root = Path(__file__).resolve().parents[2]
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", "import sys; sys.modules['uvloop'] = None; "
          "from hello_tui.cli.main import main; sys.exit(main())"),
        "serve", "--port", "0", "--ephemeral", "--no-echo", "--loop", "uvloop",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=root,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert b"Traceback" not in err
    assert b"uvloop is not installed" in err
