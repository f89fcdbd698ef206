""" "Someone is waiting in your room" through the CLI, as real subprocesses:
``answer --json`` prints the room-waiting event (name decrypted on this device,
the visitor's display name as given), ``--auto`` joins the room, and the room's
context (description, link) comes with the join, on both sides."""

from __future__ import annotations

import asyncio
import json

from hello_tui.call import events as ev
from tests.call.conftest import Env, T
from tests.call.test_call_cli import _run, _spawn


async def test_answer_prints_room_waiting_and_auto_joins(env: Env) -> None:
    code, _, err = await _run("account", "register", "olive", "--server", env.url)
    assert code == 0, err
    code, out, err = await _run(
        "room", "create", "Standup", "--description", "Daily sync <b>", "--link",
        "https://example.org/agenda?x=1", "--server", env.url, "--json",
    )  # fmt: skip
    assert code == 0, err
    room = json.loads(out)
    assert room["description"] == "Daily sync <b>" and room["link"].endswith("?x=1")
    proc = await _spawn(
        "answer", "--auto", "--once", "--server", env.url, "--audio-in", "sine:880",
        "--audio-out", "null:", "--duration", "1", "--json",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), T))
        assert ready == {"kind": "listening", "name": "olive"}
        visitor = await env.phone(audio_in="sine:440")
        visitor.client.display_name = "Vic\x1b[31m <i>"  # cleaned before it is sent
        call = visitor.join(room["url"])
        entered = await call.wait_for(ev.RoomEntered, T)
        assert (entered.name, entered.description) == ("Standup", "Daily sync <b>")
        assert entered.url == "https://example.org/agenda?x=1"
        waiting = json.loads(await asyncio.wait_for(proc.stdout.readline(), T))
        assert waiting == {
            "kind": "room-waiting",
            "token": room["token"],
            "name": "Standup",
            "visitor": "Vic [31m <i>",
            "url": room["url"],
        }
        peer = await call.wait_for(ev.PeerName, T)  # the owner's CLI shows its account name
        assert peer.name == "olive"
        await call.wait_for(ev.MediaFlowing, T)
        ended = await call.wait_ended(T)  # the owner leaves after --duration 1
        assert ended.reason == "hangup"
        out_b, err_b = await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err_b.decode()
    lines = [json.loads(line) for line in out_b.decode().splitlines()]
    by_kind = {line["kind"]: line for line in lines}
    assert by_kind["room"]["name"] == "Standup"
    assert by_kind["room"]["description"] == "Daily sync <b>"
    assert by_kind["peer-name"]["name"] == "Vic [31m <i>"
    assert by_kind["media-flowing"] and lines[-1]["kind"] == "stats"
