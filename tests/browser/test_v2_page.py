"""The page speaks protocol version 2 with a real terminal peer: display names
both ways (asked once, remembered), the room's context shown as text, and chat
over the pre-negotiated data channel in both roles, bounded, hostile text kept text."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hello_tui.call import events as ev
from hello_tui.call.chat import ChatLimits
from hello_tui.signaling.roomcrypt import (
    RoomContext,
    encode_key,
    encrypt_context,
    encrypt_name,
    new_room_key,
)
from tests.browser.conftest import Env, LaunchBrowser, Room, join, wait_phase
from tests.browser.test_call import poll

T = 15.0
HOSTILE = '<img src=x onerror="window.__pwned=1">\nsecond line \u202etxt.exe & <b>bold</b>'


async def context_room(env: Env, name: str, context: RoomContext, **create: Any) -> Room:
    """A room with a description and a link, as ``hello-tui room create`` makes one."""
    client = await env.client()
    key = new_room_key()
    created = await client.room_create(
        encrypt_name(key, name), context=encrypt_context(key, context), **create
    )
    text = encode_key(key)
    return Room(created.room.token, text, name, f"{created.url}#k={text}")


async def remote_chats(call, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    """The texts of the first ``n`` chat messages the call received (its events replay)."""
    got: list[str] = []
    async with asyncio.timeout(T):
        async for event in call.events():
            if isinstance(event, ev.ChatMessage) and event.sender == "remote":
                got.append(event.text)
                if len(got) == n:
                    return got
    raise AssertionError(f"the call ended after {len(got)} of {n} chat messages")


async def chat(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("window.__hello.test.chat()")
    return result


async def send_from_page(page: Any, text: str) -> None:
    await page.fill("#chat-input", text)
    await page.click("#chat-send")


async def test_names_context_and_chat_with_the_page_offering(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    description = '<img src=x onerror="window.__pwned=1"> Friday & co'
    link = "https://example.org/plan?x=1&y=%3Cb%3E#top"
    room = await context_room(env, "Planning", RoomContext(description, link))
    phone = await env.phone(audio_in="sine:440")
    phone.client.display_name = "Ann <script>"
    call = phone.join(room.url)
    await call.wait_for(ev.Waiting, timeout=T)

    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await wait_phase(page, "join")
    # The context, decrypted in the page, shown as text: no markup, no link.
    assert await page.text_content("#room-description") == description
    assert await page.text_content("#room-link") == link
    assert "Link (not opened)" in (await page.text_content("#room-link-line") or "")
    assert await page.evaluate("document.querySelectorAll('a, img, script:not([src])').length") == 0
    assert await page.evaluate("window.__hello.test.context()") == {
        "description": description,
        "url": link,
    }
    # First visit: the name is asked for.
    assert await page.is_visible("#display-name")
    assert not await page.is_visible("#name-known")
    await page.fill("#display-name", "  Zoë\u202e\u200b  the\tfirst ")
    await page.click("#join")

    # The name rode on room-join, cleaned as the protocol takes it.
    named = await call.wait_for(ev.PeerName, timeout=T)
    assert named.name == "Zoë the first"
    await call.wait_for(ev.Connected, timeout=T)
    await wait_phase(page, "connected")
    # The name the phone gave reached the page (peer-name) and is shown as text.
    await poll(page, "window.__hello.test.peerName()", lambda v: v == "Ann <script>")
    assert "Ann <script> · connected" in (await page.text_content("#people") or "")

    # Chat from the page: the negotiated channel (id 0, label hello) was in the offer.
    state = await poll(page, "window.__hello.test.chat()", lambda c: c["open"])
    assert (state["label"], state["id"], state["negotiated"]) == ("hello", 0, True)
    await send_from_page(page, "hi from the page <b>x</b>")
    assert await remote_chats(call, 1) == ["hi from the page <b>x</b>"]
    # ...and to it: hostile text stays text.
    call.send_chat(HOSTILE)
    await poll(page, "window.__hello.test.chat().received", lambda n: n == 1)
    texts = await page.eval_on_selector_all(
        "#chat-log li.remote .text", "l => l.map(e => e.textContent)"
    )
    assert texts == [HOSTILE]
    assert (
        await page.evaluate("document.querySelectorAll('#chat-log *:not(li):not(span)').length")
        == 0
    )
    assert await page.evaluate("window.__pwned") is None
    lines = (await chat(page))["lines"]
    assert {"kind": "event", "name": "", "text": "Ann <script> is here"} in lines
    assert {"kind": "local", "name": "Zoë the first", "text": "hi from the page <b>x</b>"} in lines
    assert {"kind": "remote", "name": "Ann <script>", "text": HOSTILE} in lines

    # Over-long is refused in the page with a notice, and nothing is sent.
    sent = (await chat(page))["sent"]
    await send_from_page(page, "x" * 2001)
    notice = await page.text_content("#chat-notice")
    assert notice is not None and "too long (2001 characters, at most 2000)" in notice
    assert (await chat(page))["sent"] == sent
    assert await page.input_value("#chat-input") == "x" * 2001  # kept, to shorten
    await send_from_page(page, "é" * 2000)  # at the bound: goes
    assert (await remote_chats(call, 2))[1] == "é" * 2000

    # The phone leaves: a "left" line, and the ending names them (as text).
    await call.hangup()
    await wait_phase(page, "ended")
    assert await page.text_content("#ended-text") == "Ann <script> hung up."
    lines = (await chat(page))["lines"]
    assert lines[-1] == {"kind": "event", "name": "", "text": "Ann <script> left"}
    assert await page.is_visible("#chat-log")  # the conversation stays readable
    assert await page.is_disabled("#chat-input")

    # The name is remembered by this browser: asked once, editable.
    again = await page.context.new_page()
    await again.goto(room.url)
    await wait_phase(again, "join")
    assert await again.is_visible("#name-known")
    assert await again.text_content("#known-name") == "Zoë the first"
    assert not await again.is_visible("#display-name")
    await again.click("#change-name")
    assert await again.is_visible("#display-name")
    assert await again.input_value("#display-name") == "Zoë the first"
    assert not [m for m in browser.console if "Content Security Policy" in m], browser.console
    assert not [m for m in browser.console if m.startswith("pageerror")], browser.console


async def test_page_answering_chats_and_drops_a_flood(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    room = await env.room("Flood")
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Page")
    await wait_phase(page, "waiting")

    # The phone lifts its own limits: only the page's bound stands against the flood.
    phone = await env.phone(audio_in="sine:440", chat_limits=ChatLimits.unlimited())
    phone.client.display_name = "Ben"
    call = phone.join(room.url)
    await call.wait_for(ev.Connected, timeout=T)
    await wait_phase(page, "connected")
    named = await call.wait_for(ev.PeerName, timeout=T)
    assert named.name == "Page"
    state = await poll(page, "window.__hello.test.chat()", lambda c: c["open"])
    assert (state["label"], state["id"], state["negotiated"]) == ("hello", 0, True)
    assert {"kind": "event", "name": "", "text": "Ben joined"} in state["lines"]

    # The page answered: its channel is the one the phone's offer negotiated.
    await send_from_page(page, "answering side <i>speaks</i>")
    assert await remote_chats(call, 1) == ["answering side <i>speaks</i>"]
    call.send_chat("one before the flood")
    await poll(page, "window.__hello.test.chat().received", lambda n: n == 1)

    # 200 at once: the page keeps a burst and drops the rest, with few notices.
    flood_start = time.monotonic()
    for i in range(200):
        call.send_chat(f"flood {i}")
    final = await poll(
        page,
        "window.__hello.test.chat()",
        lambda c: c["received"] + c["dropped"] == 201,
        timeout=T,
    )
    elapsed = time.monotonic() - flood_start
    assert final["dropped"] > 0 and final["received"] >= 20
    # The page's bucket (5/s, bursts of 20): the one before, a burst, then the refill.
    assert final["received"] <= 1 + 20 + 5 * elapsed + 1
    drops = [n for n in final["notices"] if "too fast" in n]
    # Drops are told at once, then at most once every 10 s (a flood is not a flood
    # of notices): within the first 10 s exactly one, with the count so far.
    assert drops, final["notices"]
    assert len(drops) <= 1 + int(elapsed // 10), (elapsed, final["notices"])
    # ... and the person sees it, as text.
    shown = await page.text_content("#chat-notice") or ""
    assert "sending messages too fast" in shown and await page.is_visible("#chat-notice")
    # What got through is in order.
    got = [line["text"] for line in final["lines"] if line["kind"] == "remote"]
    numbers = [int(t.split()[1]) for t in got[1:]]
    assert numbers == sorted(numbers)
    await page.click("#hangup")
    await call.wait_ended(timeout=T)


async def test_cli_join_json_chats_with_the_page(env: Env, launch_browser: LaunchBrowser) -> None:
    """``hello-tui join URL --json``: a chat command on stdin reaches the page, and
    the page's message comes out as a chat event (hostile text as data)."""
    from tests.call.test_steering_cli import Lines, _finish, _spawn

    room = await env.room("CLI and page")
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Web <i>Wendy</i>")
    await wait_phase(page, "waiting")

    proc = await _spawn(
        "join", room.url, "--audio-in", "sine:440", "--audio-out", "null:", "--json"
    )
    lines = Lines(proc)
    try:
        named = await lines.until(lambda x: x["kind"] == "peer-name")
        assert named["name"] == "Web <i>Wendy</i>"
        lines.send('{"cmd": "chat", "text": "from the terminal <script>x</script>"}')
        local = await lines.until(lambda x: x["kind"] == "chat" and x["from"] == "local")
        assert local["text"] == "from the terminal <script>x</script>"
        await wait_phase(page, "connected")
        await poll(page, "window.__hello.test.chat().received", lambda n: n == 1)
        texts = await page.eval_on_selector_all(
            "#chat-log li.remote .text", "l => l.map(e => e.textContent)"
        )
        assert texts == ["from the terminal <script>x</script>"]
        one_line = HOSTILE.replace("\n", " ")  # what a single-line input holds
        await send_from_page(page, one_line)
        remote = await lines.until(lambda x: x["kind"] == "chat" and x["from"] == "remote")
        assert remote["text"] == one_line
        lines.send('{"cmd": "hangup"}')
        await lines.until(lambda x: x["kind"] == "ended")
        await wait_phase(page, "ended")
        # The CLI visitor has no account, so no name: the page says who it can.
        assert await page.text_content("#ended-text") == "The other person hung up."
        await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
