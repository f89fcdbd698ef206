"""A terminal shared with the browser page: a hello-tui peer (through the real
server) shares a real program in a real pty; the page's share channel (id 1)
carries it into xterm.js and the page shows its text; keys typed on the page
reach the pty only while the sharer grants control (docs/browser.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.share.wire import ShareError
from tests.browser.conftest import Env, LaunchBrowser, join, wait_phase
from tests.browser.test_call import poll

T = 15.0
SHARE = "window.__hello.test.share()"


def local_screen(call: Call) -> str:
    try:
        return call.share.snapshot("local")[1].text()
    except ShareError:
        return ""


async def until(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(T):
            while not check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def share_state(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(SHARE)
    return result


async def test_page_views_a_shared_terminal_and_types_only_when_granted(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    room = await env.room("Pairing")
    phone = await env.phone(audio_in="sine:440")
    phone.client.display_name = "Sam"
    call = phone.join(room.url)
    await call.wait_for(ev.Waiting, timeout=T)

    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Viewer")
    await call.wait_for(ev.Connected, timeout=T)
    await wait_phase(page, "connected")
    # The page offered: its share channel is the negotiated one, beside chat's.
    state = await share_state(page)
    assert (state["label"], state["id"], state["negotiated"]) == ("share", 1, True)
    assert not state["active"] and not await page.is_visible("#share")

    # cat after the greeting: it echoes whatever reaches the pty.
    script = "printf 'hello from the pty\\n'; exec cat"
    await call.share.start(["sh", "-c", script], cols=60, rows=10)
    state = await poll(
        page, SHARE, lambda s: s["lines"] and s["lines"][0] == "hello from the pty", timeout=T
    )
    assert (state["active"], state["cols"], state["rows"]) == (True, 60, 10)
    assert state["granted"] is False and state["dropped"] == 0
    assert await page.is_visible("#share")
    shown = await page.text_content("#share-screen") or ""
    assert shown.splitlines()[0].rstrip() == "hello from the pty"  # drawn, as text
    term = "window.__hello.test.shareTerminal()"
    assert await page.evaluate(f"[{term}.cols, {term}.rows]") == [60, 10]
    assert "View only" in (await page.text_content("#share-control") or "")

    # Not granted: typing on the view sends nothing.
    await page.click("#share-screen")
    await page.keyboard.type("secret")
    await page.keyboard.press("Enter")
    state = await share_state(page)
    assert state["inputSent"] == 0 and state["keysRefused"] == 7

    # Granted: the keys go, and cat echoes them back to the page.
    call.share.grant()
    await poll(page, SHARE, lambda s: s["granted"], timeout=T)
    assert "You have control" in (await page.text_content("#share-control") or "")
    await page.keyboard.type("ok")
    await page.keyboard.press("Enter")
    await until(lambda: "ok" in local_screen(call).splitlines(), "the granted line")
    # The channel is ordered: had "secret" been sent, it would have arrived first.
    assert "secret" not in local_screen(call)
    assert call.share.input_refused == 0
    state = await poll(page, SHARE, lambda s: s["lines"][1:3] == ["ok", "ok"], timeout=T)
    assert state["inputSent"] == 3

    # Revoked: nothing goes any more.
    call.share.revoke()
    await poll(page, SHARE, lambda s: not s["granted"], timeout=T)
    await page.keyboard.type("late")
    state = await share_state(page)
    assert state["inputSent"] == 3 and state["keysRefused"] == 11

    # share-stop hides the view.
    await call.share.stop()
    await poll(page, SHARE, lambda s: not s["active"], timeout=T)
    assert not await page.is_visible("#share")
    assert "late" not in local_screen(call)
    await call.hangup()
    await wait_phase(page, "ended")
    assert not [m for m in browser.console if "Content Security Policy" in m], browser.console
    assert not [m for m in browser.console if m.startswith("pageerror")], browser.console


async def test_page_answering_views_a_share_to_its_last_screen(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    """The page answers (it waited): the share channel is the phone's offer's id 1;
    a program that ends at once arrives as bytes then the share's last frame, a
    snapshot (loaded after ``term.reset()``), in colour, then share-stop."""
    room = await env.room("Answering")
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Viewer")
    await wait_phase(page, "waiting")
    phone = await env.phone(audio_in="sine:440")
    call = phone.join(room.url)
    await call.wait_for(ev.Connected, timeout=T)
    await wait_phase(page, "connected")
    state = await share_state(page)
    assert (state["label"], state["id"], state["negotiated"]) == ("share", 1, True)

    script = "printf '\\033[31mred\\033[0m <b>&amp;</b>\\nsecond\\n'"
    await call.share.start(["sh", "-c", script], cols=40, rows=6)
    await call.wait_for(ev.ShareStopped, timeout=T)
    state = await poll(
        page,
        SHARE,
        lambda s: not s["active"] and s["snapshots"] >= 1 and s["lines"][1] == "second",
        timeout=T,
    )
    assert state["lines"][0] == "red <b>&amp;</b>"  # markup stays text
    assert state["dropped"] == 0 and state["inputSent"] == 0
    # The colour is a class on a span; no element came from the program's text.
    red = await page.eval_on_selector_all(
        "#share-screen .f1", "l => l.map(e => e.textContent).join('')"
    )
    assert red == "red"
    assert await page.evaluate("document.querySelectorAll('#share-screen b').length") == 0
    assert not await page.is_visible("#share")
    await page.click("#hangup")
    await call.wait_ended(timeout=T)
    assert not [m for m in browser.console if "Content Security Policy" in m], browser.console
    assert not [m for m in browser.console if m.startswith("pageerror")], browser.console


async def test_cli_sharer_and_the_page(env: Env, launch_browser: LaunchBrowser) -> None:
    """``hello-tui join URL --share CMD --json`` as a subprocess: the page sees the
    program; control granted over stdin lets the page's keys in, and only then."""
    from tests.call.test_steering_cli import Lines, _finish, _spawn

    room = await env.room("CLI share")
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Viewer")
    await wait_phase(page, "waiting")

    share = "sh -c \"printf 'cli pty ready\\n'; exec cat\""
    proc = await _spawn(
        "join", room.url, "--audio-in", "sine:440", "--audio-out", "null:", "--json",
        "--share", share, "--share-size", "50x8",
    )  # fmt: skip
    lines = Lines(proc)
    try:
        started = await lines.until(lambda x: x["kind"] == "share-started")
        assert (started["side"], started["cols"], started["rows"]) == ("local", 50, 8)
        await wait_phase(page, "connected")
        await poll(page, SHARE, lambda s: s["lines"][:1] == ["cli pty ready"], timeout=T)
        await page.click("#share-screen")
        await page.keyboard.type("nope")
        assert (await share_state(page))["inputSent"] == 0
        lines.send('{"cmd": "share-grant"}')
        await poll(page, SHARE, lambda s: s["granted"], timeout=T)
        await page.keyboard.type("yes")
        await page.keyboard.press("Enter")
        await poll(page, SHARE, lambda s: s["lines"][1:3] == ["yes", "yes"], timeout=T)
        lines.send('{"cmd": "share-snapshot", "side": "local"}')
        shot = await lines.until(lambda x: x["kind"] == "share-snapshot")
        assert shot["text"].splitlines()[:3] == ["cli pty ready", "yes", "yes"]
        lines.send('{"cmd": "hangup"}')
        await lines.until(lambda x: x["kind"] == "ended")
        await wait_phase(page, "ended")
        await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0


async def test_page_behind_skips_to_a_snapshot(env: Env, launch_browser: LaunchBrowser) -> None:
    """A page that is behind skips byte frames and asks for the screen as it is
    (share-sync); the sharer's snapshot brings it up to date. Made to be behind
    from the start here (at most 0 frames queued), so nothing but the snapshot
    can draw the text."""
    room = await env.room("Behind")
    phone = await env.phone(audio_in="sine:440")
    call = phone.join(room.url)
    await call.wait_for(ev.Waiting, timeout=T)
    browser = await launch_browser()
    page = await browser.page(init_script="window.__helloTestConfig = {shareMaxPending: 0};")
    await page.goto(room.url)
    await join(page, "Slow")
    await call.wait_for(ev.Connected, timeout=T)
    await wait_phase(page, "connected")

    # A share begins with a snapshot; what the program prints later comes as bytes.
    script = "printf 'first\\n'; read x; printf 'only by snapshot\\n'; exec cat"
    await call.share.start(["sh", "-c", script], cols=40, rows=5)
    before = await poll(page, SHARE, lambda s: s["lines"][:1] == ["first"], timeout=T)
    assert before["snapshots"] >= 1
    call.share.send_input("\r")
    state = await poll(page, SHARE, lambda s: "only by snapshot" in s["lines"], timeout=T)
    assert state["active"] and state["skipped"] > before["skipped"]
    assert state["snapshots"] > before["snapshots"]
    await call.hangup()
    await wait_phase(page, "ended")
    assert not [m for m in browser.console if m.startswith("pageerror")], browser.console


async def test_page_pauses_and_scrolls_back(env: Env, launch_browser: LaunchBrowser) -> None:
    """Pause freezes the drawn view (frames go on underneath); Scroll back shows
    xterm's scroll-back and stays on its lines while new ones come; Back to live,
    and the keys (Shift+PageUp; End while view-only) do the same, sending nothing."""
    room = await env.room("Scroll")
    phone = await env.phone(audio_in="sine:440")
    call = phone.join(room.url)
    await call.wait_for(ev.Waiting, timeout=T)
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Viewer")
    await call.wait_for(ev.Connected, timeout=T)
    # 30 rows: seq's 58 lines come as bytes, not cut to a screenful (plain_cut: 2 x rows).
    await call.share.start(["sh", "-c", "printf 'ready\\n'; read x; seq 1 58; exec cat"],
                           cols=30, rows=30)  # fmt: skip
    await poll(page, SHARE, lambda s: s["lines"][:1] == ["ready"], timeout=T)

    def shown(s: dict[str, Any]) -> list[str]:
        return [line.rstrip() for line in s["shown"].split("\n")]

    call.share.send_input("\r")
    state = await poll(page, SHARE, lambda s: "58" in shown(s), timeout=T)
    assert state["back"] == 0 and not state["paused"] and state["scroll"] == ""

    await page.click("#share-back")  # a page (rows - 1) into the scroll-back
    state = await share_state(page)
    assert state["back"] == 29 and state["scroll"] == "Scrolled back 29 lines."
    assert shown(state)[0] == "1" and shown(state)[-1] == "30"
    assert await page.is_visible("#share-live")
    call.share.send_input("x\r")  # two lines more (the echo, cat's copy): the view stays
    state = await poll(page, SHARE, lambda s: s["back"] == 31, timeout=T)
    assert shown(state)[0] == "1" and shown(state)[-1] == "30"
    await page.click("#share-live")
    state = await share_state(page)
    assert state["back"] == 0 and shown(state)[-3:] == ["x", "x", ""]
    assert not await page.is_visible("#share-live")

    # Keys on the view while view-only: they scroll, and none is sent.
    await page.click("#share-screen")
    await page.keyboard.press("Shift+PageUp")
    assert (await share_state(page))["back"] == 29
    await page.keyboard.press("End")
    state = await share_state(page)
    assert state["back"] == 0 and state["inputSent"] == 0 and state["keysRefused"] == 0

    # Paused: what is drawn stays, what arrives is kept; resuming shows it.
    await page.click("#share-pause")
    state = await share_state(page)
    assert state["paused"] and state["scroll"] == "Paused."
    assert await page.get_attribute("#share-pause", "aria-pressed") == "true"
    call.share.send_input("later\r")
    state = await poll(page, SHARE, lambda s: "later" in s["lines"], timeout=T)
    assert "later" not in shown(state)
    await page.click("#share-pause")
    state = await share_state(page)
    assert not state["paused"] and "later" in shown(state)
    await call.hangup()
    assert not [m for m in browser.console if "Content Security Policy" in m], browser.console
    assert not [m for m in browser.console if m.startswith("pageerror")], browser.console
