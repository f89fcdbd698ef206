"""Logs hold no raw IP, no account name and no SDP (P1, P2, P6)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from hello_tui.server.privacy import RedactingFilter, redact, truncate_ip
from hello_tui.signaling import protocol as p
from tests.server.conftest import StartServer, sdp
from tests.server.test_calls import answer, place


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("127.0.0.1", "127.0.0.0/24"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::/48"),
        ("::1", "::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("fe80::1%eth0", "fe80::/48"),
        ("", "-"),
        (None, "-"),
        ("not-an-ip", "?"),
    ],
)
def test_truncate_ip(address: str | None, truncated: str) -> None:
    assert truncate_ip(address) == truncated


def test_redact_free_text() -> None:
    text = "peer 192.0.2.33 and [2001:db8:1:2::9]:443 at 12:30:45 v1.2.3"
    assert redact(text) == "peer 192.0.2.0/24 and [2001:db8:1::/48]:443 at 12:30:45 v1.2.3"


def test_filter_rewrites_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "from %s", ("10.1.2.3",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "from 10.1.2.0/24"


async def test_no_ip_name_or_sdp_in_any_log(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await start_server(admin_token=b"privacy-test-admin-token")
    caplog.set_level(logging.DEBUG)
    secret_name = "Zyxwvut Secretname"
    alice = await srv.client(secret_name)
    bob = await srv.client("Bobby Hiddenname")
    call_id, offer = await place(bob, secret_name, alice)
    reply = await answer(bob, alice, call_id, offer)
    await alice.send(p.Hangup(call_id=call_id))
    await bob.expect(p.CallEnded)
    await alice.expect(p.CallEnded)
    await alice.send(p.RoomCreate(name="c2VjcmV0", ref=1))
    token = (await alice.expect(p.RoomCreated)).room.token
    await alice.send(p.RoomJoin(token=token))
    await alice.expect(p.RoomJoined)
    room_offer = sdp()
    await bob.send(p.RoomJoin(token=token, offer=room_offer))
    await bob.expect(p.RoomJoined)
    await bob.send_raw('{"type": "login", "name": 5}')  # errors are logged safely too
    await bob.expect(p.Error)
    await bob.close()
    await alice.expect(p.PeerJoined)
    await alice.expect(p.Offer)
    await alice.expect(p.PeerLeft)
    admin = {"Authorization": "Bearer privacy-test-admin-token"}
    async with srv.http.get(srv.url("/metrics"), headers=admin) as resp:  # an access-log line
        assert resp.status == 200
    await srv.server.close()  # shutdown and cleanup log lines too

    messages = [r.getMessage() for r in caplog.records]
    assert any("127.0.0.0/24" in m for m in messages), messages
    assert any("GET /metrics" in m for m in messages)  # aiohttp's access log, redacted
    for message in messages:
        lowered = message.lower()
        assert "127.0.0.1" not in message
        assert "zyxwvut" not in lowered and "secretname" not in lowered
        assert "hiddenname" not in lowered
        assert "privacy-test-admin-token" not in message
        assert "SDPMARKER" not in message and "v=0" not in message
        for value in (offer, reply, room_offer, token, call_id):
            assert value not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.0/24 [26/Nov]", "127.0.0.0/24 [26/Nov]"),  # already truncated: untouched
        ("ws://127.0.0.1:34099/ws", "ws://127.0.0.0/24:34099/ws"),  # inside a URL: truncated
        ("HeadlessChrome/156.0.8078.73 Safari", "HeadlessChrome/156.0.8078.73 Safari"),
        ("peer 10.1.2.3/32", "peer 10.1.2.0/24"),  # a narrower prefix is still truncated
        ("2001:db8:1::/48 ok", "2001:db8:1::/48 ok"),
        ("fe80::1/128", "fe80::/48"),
    ],
)
def test_redact_is_idempotent_and_leaves_versions_alone(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(redact(text)) == expected


def test_redacting_long_text_takes_linear_time() -> None:
    """A long run of name characters with no "@" (a flood of chat, a hostile
    display name in a log line) once cost quadratic time in the e-mail rule:
    15 ms for 1,000 characters, minutes for 200,000. Run in a child so a
    regression fails on the 60 s limit instead of hanging the suite."""
    code = (
        "from hello_tui.signaling.redact import redact\n"
        "text = 'x' * 200_000 + ' bob@example.org ' + 'y.' * 100_000\n"
        "out = redact(text)\n"
        "assert '…@example.org' in out and 'bob' not in out, out[-80:]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
