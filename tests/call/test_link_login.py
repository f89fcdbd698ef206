"""``hello-tui join LINK``: a link never chooses where the account key signs in.

Real processes: a server (``serve``), the CLI, and a hostile relay in between
(``tests/services/ws_relay.py``). The profile's account lives on the real
server; a link naming the relay is joined anonymously, with a note.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.call.conftest import T
from tests.call.test_call_cli import _run, _spawn
from tests.services.ws_relay import Relay, relay_to


def _config(home: Path, server: str, name: str = "") -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "hello-tui" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else ""
    lines = [line for line in text.splitlines() if not line.startswith("url =")]
    text = "\n".join(lines)
    if "[server]" in text:
        text = text.replace("[server]", f'[server]\nurl = "{server}"')
    else:
        text += f'\n[server]\nurl = "{server}"\n'
    path.write_text(text + "\n")


def _moved(link: str, origin: str) -> str:
    """The same room link, pointing at another server."""
    parts, there = urlsplit(link), urlsplit(origin)
    return urlunsplit((there.scheme, there.netloc, parts.path, parts.query, parts.fragment))


async def _until_in_room(relay: Relay, args: tuple[str, ...]) -> tuple[int, str]:
    """Run ``hello-tui ARGS`` until it has joined (or ended), then stop it."""
    proc = await _spawn(*args)
    async with asyncio.timeout(T * 4):
        while proc.returncode is None and not relay.sent("room-join"):
            await asyncio.sleep(0.05)  # polling the relay's record, not a synchronisation
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(proc.communicate(), T * 4)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_a_link_to_another_server_joins_without_the_account(isolated_home: Path) -> None:
    server = await _spawn("serve", "--port", "0", "--ephemeral", "--no-echo")
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), T)).decode()
        url = line.rsplit(" ", 1)[1].strip()
        _config(isolated_home, url)
        code, _out, err = await _run("account", "register", "alice@example.org")
        assert code == 0, err
        code, out, err = await _run("room", "create", "Friday", "--json")
        assert code == 0, err
        link = json.loads(out)["url"]

        async with relay_to(url + "/ws") as relay:
            evil = _moved(link, relay.url)
            join = ("join", evil, "--audio-in", "sine:440", "--audio-out", "null:")
            # Joined through the relay (the room exists on the real server), anonymously;
            # nobody else comes, so the joiner is stopped once it is in the room.
            code, err = await _until_in_room(relay, join)
            assert relay.sent("room-join"), (code, err)
            assert not relay.sent("login") and not relay.sent("login-proof")
            assert f"this link is on another server ({relay.url})" in err
            assert "joining without your account" in err

            # Control: the same link with the relay configured as *the* server does
            # sign in there, and the real server refuses the relayed proof.
            relay.seen.clear()
            _config(isolated_home, relay.url)
            code, err = await _until_in_room(relay, join)
            assert relay.sent("login-proof"), relay.seen
            assert code == 1 and "(wrong-server)" in err, err
            assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
            assert not relay.sent("room-join")

            # A bare token names no server: the configured one, with the account.
            relay.seen.clear()
            token = urlsplit(link).path.rsplit("/", 1)[-1]
            code, err = await _until_in_room(relay, ("join", token, *join[2:]))
            assert relay.sent("login-proof") and "this link is on another server" not in err
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), T)
