"""Knock to enter through real clients: the CLI owner (``answer --auto``) lets a
visitor in and they talk; the CLI visitor (``join --json``) turned away by an
owner's phone hears why and exits with the "refused" code."""

from __future__ import annotations

import asyncio
import json

from hello_tui.call import events as ev
from hello_tui.cli.call_cmd import REFUSED
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from hello_tui.signaling.rooms_local import absolute_url
from tests.call.conftest import Env, T
from tests.call.test_call_cli import _run, _spawn


async def test_answer_auto_lets_the_knocking_visitor_in(env: Env) -> None:
    code, _, err = await _run("account", "register", "olive", "--server", env.url)
    assert code == 0, err
    code, out, err = await _run(
        "room", "create", "Standup", "--knock", "--server", env.url, "--json"
    )
    assert code == 0, err
    room = json.loads(out)
    assert room["knock"] is True
    proc = await _spawn(
        "answer", "--auto", "--once", "--server", env.url, "--audio-in", "sine:880",
        "--audio-out", "null:", "--duration", "1", "--json",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), T))
        assert ready["kind"] == "listening"
        visitor = await env.phone(audio_in="sine:440")
        visitor.client.display_name = "Vic"
        call = visitor.join(room["url"])
        knocking = await call.wait_for(ev.Knocking, T)
        assert not knocking.owner_present  # the owner was told (room-waiting) and comes
        await call.wait_for(ev.Admitted, T)
        entered = await call.wait_for(ev.RoomEntered, T)
        assert entered.name == "Standup"
        await call.wait_for(ev.MediaFlowing, T)
        ended = await call.wait_ended(T)  # the owner leaves after --duration 1
        assert ended.reason == "hangup"
        kinds = [e.kind for e in call.event_log]
        assert kinds.index("knocking") < kinds.index("admitted") < kinds.index("connecting")
        out_b, err_b = await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err_b.decode()
    lines = [json.loads(line) for line in out_b.decode().splitlines()]
    knock = next(line for line in lines if line["kind"] == "knock")
    assert knock["name"] == "Vic" and knock["token"] == room["token"]
    assert {"kind": "knock-ended", "reason": "admitted"}.items() <= next(
        line for line in lines if line["kind"] == "knock-ended"
    ).items()
    assert any(line["kind"] == "media-flowing" for line in lines)


async def test_join_shows_knocking_then_declined(env: Env) -> None:
    owner = await env.phone()  # an anonymous owner: the creating session
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, "Private"), knock=True)
    url = room_url(absolute_url(created.url, env.url), key)
    inside = owner.join(url)
    await inside.wait_for(ev.Waiting, T)
    proc = await _spawn("join", url, "--audio-in", "sine:440", "--audio-out", "null:", "--json")
    try:
        knock = await inside.wait_for(ev.Knock, T)
        assert knock.name == ""  # the CLI visitor has no account: no display name
        await inside.decline(knock.knock)
        ended = await inside.wait_for(ev.KnockEnded, T)
        assert ended.reason == "declined"
        out, err = await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds[:3] == ["dialing", "knocking", "declined"], kinds
    assert lines[1]["owner_present"] is True
    assert lines[2]["reason"] == "declined"
    ending = next(line for line in lines if line["kind"] == "ended")
    assert ending["reason"] == "rejected"
    assert ending["message"] == "the room's owner did not let you in"
    assert "room" not in kinds  # never inside: no room name or context shown
    assert proc.returncode == REFUSED, err.decode()
    assert inside.ended is None  # the owner is still in the room, alone
