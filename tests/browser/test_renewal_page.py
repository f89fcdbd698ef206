"""The page in a call that recovers (docs/browser.md, docs/calls.md "A new
transport within the call"): a real Chromium and a terminal peer in one room.
The page answers a renewal and makes its own when the audio stops; a path that
does not come back ends the call on both sides, in words."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.server.app import HUB
from tests.browser.conftest import Env, LaunchBrowser, T, join, wait_phase
from tests.browser.test_call import poll as poll_page
from tests.call.test_renewal import renewed_code

HOOK = "window.__hello.test"
# The tests about recovering must not be ended by the page's own media watch
# when a loaded machine is slow: its budget is the subject of the last test only.
PATIENT = {"lostMs": 60_000, "renewLostMs": 60_000}


async def poll(page: Any, script: str, check: Any) -> Any:
    return await poll_page(page, script, check, timeout=T)


async def _page(launch_browser: LaunchBrowser, env: Env, url: str, **config: Any) -> Any:
    browser = await launch_browser()
    script = f"window.__helloTestConfig = {json.dumps(config)};" if config else None
    page = await browser.page(init_script=script)
    await page.goto(url)
    return page


async def _hears(call: Call, frames: int) -> None:
    """The terminal receives ``frames`` more audio frames (from the page)."""
    assert call.media.remote is not None
    start = call.media.remote.frames
    async with asyncio.timeout(T):
        while call.media.remote.frames < start + frames:
            await asyncio.sleep(0.05)


async def _page_hears(page: Any, packets: int) -> None:
    """The page's live connection receives ``packets`` more audio packets (a count
    that goes down is a new connection's, counted from 0)."""
    start = last = None
    async with asyncio.timeout(T):
        while True:
            quality = await page.evaluate(f"{HOOK}.quality()")
            count = quality["packetsReceived"] if quality else 0
            if start is None or last is None or count < last:
                start = 0 if last is not None else count
            if count >= start + packets:
                return
            last = count
            await asyncio.sleep(0.2)


async def _chat_both_ways(page: Any, call: Call) -> None:
    await poll(page, f"{HOOK}.chat().open", bool)
    got = asyncio.ensure_future(call.wait_for(ev.ChatMessage, T))
    await page.evaluate(f"{HOOK}.sendChat('still here')")
    assert (await got).text == "still here"
    async with asyncio.timeout(T):
        while not call.chat.open:
            await asyncio.sleep(0.05)
    call.send_chat("me too")
    await poll(page, f"{HOOK}.chat().lines", lambda ls: any(x["text"] == "me too" for x in ls))


async def test_the_page_answers_a_renewal_and_the_call_goes_on(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    room = await env.room()
    page = await _page(launch_browser, env, room.url, **PATIENT)
    await join(page, "Zoë")
    await wait_phase(page, "waiting")
    phone = await env.phone(audio_in="sine:440", media_lost_after=60.0)  # patient too
    call = phone.join(room.url)  # the terminal offers
    code = (await call.wait_for(ev.CheckCode, T)).code
    await call.wait_for(ev.MediaFlowing, T)
    await poll(page, f"{HOOK}.sas()", lambda v: v == code)
    # The page's server connection drops: the call goes on, the page reconnects
    # and takes its seat back (the terminal is told nothing).
    sessions = env.server.app[HUB].sessions
    (dropped,) = [s for i, s in sessions.items() if i != phone.client.session and s.rooms]
    dropped.close()
    await poll(page, f"{HOOK}.reseats()", lambda n: n == 1)
    assert await page.evaluate(f"{HOOK}.inRoom()") and not await page.evaluate(
        f"{HOOK}.serverGone()"
    )
    assert await page.evaluate(f"{HOOK}.phase()") == "connected"
    assert not [e for e in call.event_log if isinstance(e, ev.Notice) and e.source == "call"]
    old = call.pc
    await call.renewal.offer("test")  # as after a network change on the terminal's side
    renewed = await renewed_code(call)
    # The page kept its certificate: the same code on both sides, no warning.
    assert renewed.status == "verified" and renewed.code == code and not renewed.changed
    await poll(page, f"{HOOK}.renewals()", lambda n: n == 1)
    assert await page.evaluate(f"{HOOK}.sas()") == code
    assert not await page.evaluate(f"{HOOK}.codeChanged()")
    assert await page.is_hidden("#sas-changed")
    # Only the new connections carry the call now; audio both ways on them.
    async with asyncio.timeout(T):
        while old is None or old.connectionState != "closed":
            await asyncio.sleep(0.05)
    await _hears(call, 25)
    await _page_hears(page, 25)
    await poll(page, f"{HOOK}.peakHz()",
               lambda v: v is not None and abs(v["hz"] - 440) < 12 and v["db"] > -70)  # fmt: skip
    # "Reconnecting…" was shown during the renewal, and is gone.
    assert await page.evaluate(f"{HOOK}.reconnects()") >= 1
    await poll(page, f"{HOOK}.reconnecting()", lambda v: v is False)
    assert await page.is_hidden("#reconnecting")
    await _chat_both_ways(page, call)
    # Later the terminal's path goes for good: the page says so, in words.
    await call._connection_lost("no audio for 9 s")  # what its media watch does
    await wait_phase(page, "ended")
    assert await page.evaluate(f"{HOOK}.endReason()") == "media-fail"
    text = await page.text_content("#ended-text")
    assert text == "The other person lost the connection (network)."


async def test_the_page_renews_when_the_audio_stops(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    room = await env.room()
    call = (await env.phone(audio_in="sine:440", media_lost_after=60.0)).join(room.url)
    await call.wait_for(ev.Waiting, T)
    page = await _page(launch_browser, env, room.url, **PATIENT)
    await join(page, "Zoë")  # the page arrives later: it made the call's offer
    await call.wait_for(ev.MediaFlowing, T)
    await wait_phase(page, "connected")
    await _page_hears(page, 10)
    # The terminal stops sending (what a dead path looks like to the page).
    assert call.pc is not None
    for sender in call.pc.getSenders():
        if sender.track is not None and sender.track.kind == "audio":
            sender.replaceTrack(None)
    await poll(page, f"{HOOK}.reconnecting()", lambda v: v is True)
    renewed = await renewed_code(call)  # the page's round, answered by the terminal
    assert renewed.status == "verified" and not renewed.changed
    await poll(page, f"{HOOK}.renewals()", lambda n: n == 1)
    await _page_hears(page, 25)  # the terminal's audio, on the new connection
    await poll(page, f"{HOOK}.reconnecting()", lambda v: v is False)
    await _hears(call, 25)
    await _chat_both_ways(page, call)
    assert await page.evaluate(f"{HOOK}.phase()") == "connected"
    await page.click("#hangup")
    assert (await call.wait_ended(T)).reason == "hangup"


async def test_a_path_that_stays_gone_ends_the_call_on_both_sides_in_words(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    room = await env.room()
    page = await _page(launch_browser, env, room.url, lostMs=3000, renewLostMs=3000)
    await join(page, "Zoë")
    await wait_phase(page, "waiting")
    call = (await env.phone(audio_in="sine:440")).join(room.url)
    await call.wait_for(ev.MediaFlowing, T)
    await wait_phase(page, "connected")
    await _page_hears(page, 10)
    assert call.pc is not None
    for sender in call.pc.getSenders():  # nothing reaches the page any more
        sender.replaceTrack(None)
    await wait_phase(page, "ended")
    assert await page.evaluate(f"{HOOK}.endReason()") == "media-fail"
    text = await page.text_content("#ended-text")
    assert text == "Lost the connection to the other person (network)."
    ended = await call.wait_ended(T)  # told by the server, at once
    assert ended.reason == "media-fail"
    assert ended.message.startswith("lost the connection to")
