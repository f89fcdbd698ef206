"""Each error page, reached for real: expired, unknown and full rooms, a refused
microphone, a browser without WebRTC, and a call whose media cannot connect."""

from __future__ import annotations

import secrets

from hello_tui.call import events as ev
from hello_tui.call.sas import b64, commitment, sas_code
from tests.browser.conftest import Env, LaunchBrowser, join, wait_phase


async def error_of(page) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    await wait_phase(page, "error")
    kind = await page.evaluate("window.__hello.test.errorKind()")
    title = await page.text_content("#error-title") or ""
    hint = await page.text_content("#error-hint") or ""
    assert await page.is_visible("#s-error")
    return kind, title, hint


async def test_expired_room(env: Env, launch_browser: LaunchBrowser) -> None:
    room = await env.room("Old news", ttl=60)
    browser = await launch_browser()
    page = await browser.page()
    # Opened while live, joined after expiry: the server refuses the join (room-expired).
    await page.goto(room.url)
    await wait_phase(page, "join")
    env.clock.advance(61)
    await page.fill("#display-name", "Late")
    await page.click("#join")
    kind, title, _ = await error_of(page)
    assert (kind, title) == ("expired", "This conversation has expired")
    # Opened after expiry: the server says so before anything is asked (410).
    again = await browser.page()
    response = await again.goto(room.url)
    assert response is not None and response.status == 410
    assert (await error_of(again))[0] == "expired"
    assert not await again.is_visible("#s-join")


async def test_unknown_room_and_no_webrtc(env: Env, launch_browser: LaunchBrowser) -> None:
    browser = await launch_browser()
    page = await browser.page()
    response = await page.goto(env.url("/r/NoSuchRoomToken1234567#k=AAAAAAAAAAAAAAAAAAAAAA"))
    assert response is not None and response.status == 404
    kind, title, _ = await error_of(page)
    assert (kind, title) == ("unknown", "This conversation link does not work")

    room = await env.room()
    old = await browser.page(init_script="delete window.RTCPeerConnection;")
    await old.goto(room.url)
    kind, title, hint = await error_of(old)
    assert (kind, title) == ("no-webrtc", "This browser cannot make calls")
    assert "Firefox" in hint

    # The check code and its commitment are sas.py's, for any fingerprints and nonces.
    fps = [("sha-256 " + ":".join(f"{(i * 7 + j) % 256:02X}" for j in range(32))) for i in range(4)]
    nonces = [secrets.token_bytes(32) for _ in range(4)]
    cases = [(fps[0], fps[1], 0, 1), (fps[2], fps[3], 2, 3), (fps[3], fps[0].lower(), 3, 0)]
    for a, b, i, j in cases:
        args = [a, b, b64(nonces[i]), b64(nonces[j])]
        got = await page.evaluate("(x) => window.__hello.test.sasCode(...x)", args)
        assert got == sas_code(a, b, nonces[i], nonces[j])
        opened = await page.evaluate("(n) => window.__hello.test.commitment(n)", b64(nonces[i]))
        assert opened == b64(commitment(nonces[i]))


async def test_full_room(env: Env, launch_browser: LaunchBrowser) -> None:
    room = await env.room("Two is company")
    first, second = await env.phone(), await env.phone()
    a = first.join(room.url)
    await a.wait_for(ev.Waiting, timeout=10)
    b = second.join(room.url)
    await b.wait_for(ev.Connected, timeout=10)

    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Third")
    kind, title, _ = await error_of(page)
    assert (kind, title) == ("full", "This conversation is full")
    assert await page.is_visible("#retry")
    assert a.ended is None and b.ended is None  # the two inside never noticed


async def test_denied_microphone(env: Env, launch_browser: LaunchBrowser) -> None:
    room = await env.room()
    phone = await env.phone()
    call = phone.join(room.url)
    await call.wait_for(ev.Waiting, timeout=10)
    # No fake permission UI, and the context grants nothing: the request is refused.
    browser = await launch_browser(
        fake_media=False, extra_args=("--use-fake-device-for-media-stream",)
    )
    page = await browser.page(permissions=[])
    await page.goto(room.url)
    await join(page)
    kind, title, hint = await error_of(page)
    assert (kind, title) == ("mic-denied", "Microphone access was refused")
    assert "Allow the microphone" in hint
    assert call.stage == "waiting"  # nothing reached the room


async def test_connection_failed(env: Env, launch_browser: LaunchBrowser) -> None:
    """A browser that may not use UDP (as behind a strict firewall) and no TURN relay."""
    room = await env.room()
    phone = await env.phone()
    call = phone.join(room.url)
    await call.wait_for(ev.Waiting, timeout=10)
    browser = await launch_browser(
        extra_args=("--webrtc-ip-handling-policy=disable_non_proxied_udp",)
    )
    page = await browser.page(init_script="window.__helloTestConfig = {connectTimeoutMs: 3000};")
    await page.goto(room.url)
    await join(page)
    kind, title, hint = await error_of(page)
    assert (kind, title) == ("connection-failed", "The call could not connect")
    assert "firewall" in hint and "no TURN relay" in hint
    ended = await call.wait_ended(timeout=10)  # the page left the room
    assert ended.reason == "hangup" and ended.stage == "connecting"
