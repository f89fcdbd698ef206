"""A call that does not connect ends, like Hello, with "try again, or share a
link instead" (session/recovery.py): the CLI's hint line and ``--json`` field,
and the share command it prints really makes a room and draws its QR code."""

from __future__ import annotations

import json
import shlex
from types import SimpleNamespace

from hello_tui.call import events as ev
from hello_tui.session.recovery import recovery_for, share_room_name
from hello_tui.util.qr import matrix_of_lines, qr_matrix
from tests.call.conftest import Env
from tests.call.test_call_cli import _run
from tests.qr_decode import decode_qr


async def test_an_unreachable_callee_gets_retry_and_share_hints(env: Env) -> None:
    code, _, err = await _run("account", "register", "alice", "--server", env.url)
    assert code == 0, err
    code, out, err = await _run("call", "nobody-here", "--server", env.url, "--audio-in",
                                "sine:440", "--audio-out", "null:")  # fmt: skip
    assert code == 3, err
    hint = out.splitlines()[-1]
    retry = "hello-tui call nobody-here"
    share = f"hello-tui room create --qr --server {env.url} 'Call with nobody-here'"
    assert hint == f"Not reachable: try again ({retry}), or share a link instead ({share})"

    # The JSON face: the same commands in the stats record.
    code, out, _ = await _run("call", "nobody-here", "--server", env.url, "--audio-in",
                              "sine:440", "--audio-out", "null:", "--json")  # fmt: skip
    stats = json.loads(out.splitlines()[-1])
    assert stats["kind"] == "stats" and stats["exit_code"] == 3
    assert stats["recovery"] == {"lead": "not reachable", "retry": retry, "share": share}

    # Running the share command: a room, its URL, and the URL as a QR code.
    code, out, err = await _run(*shlex.split(share)[1:])
    assert code == 0, err
    url, *qr = out.splitlines()
    assert "/r/" in url and "#k=" in url
    assert matrix_of_lines(qr)[: len(qr_matrix(url))] == qr_matrix(url)
    assert decode_qr(matrix_of_lines(qr)) == url
    code, out, _ = await _run("room", "list", "--server", env.url, "--json")
    assert [r["name"] for r in json.loads(out)] == ["Call with nobody-here"]


async def test_a_call_that_connected_or_the_echo_test_gets_no_share_hint() -> None:
    code, out, err = await _run("call", "echo", "--audio-in", "sine:440", "--audio-out",
                                "null:", "--duration", "0.5", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["recovery"] is None


def _ended(reason: str, stage: str = "ringing") -> ev.Ended:
    return ev.Ended(reason=reason, stage=stage, duration=0.0)  # type: ignore[arg-type]


def test_which_endings_get_the_offer_and_in_what_words() -> None:
    direct = SimpleNamespace(outgoing=True, room=False, target="bob")
    reasons = ("busy", "rejected", "timeout", "unavailable", "media-fail", "unreachable")
    words = {r: recovery_for(_ended(r), **vars(direct)) for r in reasons}
    assert {r: o.lead for r, o in words.items() if o} == {
        "busy": "busy", "rejected": "declined", "timeout": "no answer",
        "unavailable": "not reachable", "media-fail": "the call failed",
        "unreachable": "the call failed",
    }  # fmt: skip
    assert recovery_for(_ended("cancel"), **vars(direct)) is None  # we hung up ourselves
    timed_out = recovery_for(_ended("cancel"), **vars(direct), timed_out=True)
    assert timed_out is not None and timed_out.lead == "no answer"  # --timeout ran out
    assert recovery_for(_ended("hangup", "connected"), **vars(direct)) is None
    assert recovery_for(_ended("busy"), outgoing=False, room=False, target="bob") is None
    assert recovery_for(_ended("busy"), outgoing=True, room=True, target="x") is None
    echo = recovery_for(_ended("media-fail"), outgoing=True, room=False, target="echo")
    assert echo is not None and not echo.share
    assert share_room_name("Bob\n  Smith") == "Call with Bob Smith"
    assert len(share_room_name("x" * 1000)) == len("Call with ") + 80
