"""The page's side of the check code's commitment, against an offerer driven by
hand (as a relay in the middle would): a wrong reveal is a warning and never a
code; an offer with no commitment gets no code; a right one gives the code the
offerer computes."""

from __future__ import annotations

import secrets

from hello_tui.call.sas import NONCE_ATTR, fingerprint_from_sdp, sas_code, sdp_attribute, unb64
from hello_tui.signaling import protocol as p
from tests.browser.conftest import Env, LaunchBrowser, Room, join, wait_phase
from tests.browser.test_call import poll
from tests.call.manual_peer import ManualPeer

T = 15.0


async def _browser_waits(env: Env, launch_browser: LaunchBrowser, room: Room):  # type: ignore[no-untyped-def]
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Answerer")
    await wait_phase(page, "waiting")
    return page


async def _offer(env: Env, room: Room, nonce: bytes | None) -> tuple[ManualPeer, str, p.Answer]:
    mallory = ManualPeer(await env.client())
    joined = await mallory.client.room_join(room.token, offer=await mallory.offer(nonce))
    assert joined.call_id
    answer = await mallory.next_of([p.Answer], T)
    assert isinstance(answer, p.Answer)
    await mallory.take_answer(answer.sdp)
    return mallory, joined.call_id, answer


async def test_the_page_checks_the_reveal(env: Env, launch_browser: LaunchBrowser) -> None:
    room = await env.room("Reveal")
    page = await _browser_waits(env, launch_browser, room)
    n_offer = secrets.token_bytes(32)
    mallory, call_id, answer = await _offer(env, room, n_offer)
    n_answer = unb64(sdp_attribute(answer.sdp, NONCE_ATTR) or "")
    assert n_answer is not None  # Chromium's answer carries the page's nonce
    await wait_phase(page, "connected")
    assert await page.text_content("#sas") == "waiting…"  # no reveal yet: no code
    await mallory.reveal(call_id, n_offer)
    await poll(page, "window.__hello.test.sasStatus()", lambda v: v == "verified")
    fp_offer = fingerprint_from_sdp(mallory.pc.localDescription.sdp)
    fp_answer = fingerprint_from_sdp(mallory.pc.remoteDescription.sdp)
    code = sas_code(fp_offer, fp_answer, n_offer, n_answer)
    assert await page.evaluate("window.__hello.test.sas()") == code
    assert await page.text_content("#sas") == code
    await mallory.close()


async def test_a_wrong_reveal_is_a_warning_on_the_page(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    room = await env.room("Tampered")
    page = await _browser_waits(env, launch_browser, room)
    n_offer = secrets.token_bytes(32)
    mallory, call_id, _answer = await _offer(env, room, n_offer)
    await mallory.reveal(call_id, secrets.token_bytes(32))
    await poll(page, "window.__hello.test.sasStatus()", lambda v: v == "mismatch")
    await mallory.reveal(call_id, n_offer)  # the right one, too late
    await wait_phase(page, "connected")
    # Only after the connection and the second reveal (delivered in order before
    # this hang-up) is the outcome final: still the warning, never a code.
    await mallory.client.room_leave(room.token)
    await wait_phase(page, "ended")
    assert await page.evaluate("window.__hello.test.sasStatus()") == "mismatch"
    assert await page.evaluate("window.__hello.test.sas()") is None
    assert "WARNING" in (await page.text_content("#sas") or "")
    assert "warning" in (await page.get_attribute("#sas-box", "class") or "")
    await mallory.close()


async def test_an_offer_without_commitment_gets_no_code_on_the_page(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    room = await env.room("Old client")
    page = await _browser_waits(env, launch_browser, room)
    mallory, _call_id, _answer = await _offer(env, room, None)
    await wait_phase(page, "connected")
    await poll(page, "window.__hello.test.sasStatus()", lambda v: v == "unsupported")
    assert await page.evaluate("window.__hello.test.sas()") is None
    assert await page.text_content("#sas") == "No check code: the other side does not support it."
    await mallory.close()
