"""A terminal peer and a browser in one room: audio both ways, the same check
code, hang-up seen on both sides, feedback, and a server that never saw the key."""

from __future__ import annotations

import asyncio
import re
import wave
from pathlib import Path

import numpy as np

from hello_tui.call import events as ev
from hello_tui.call.sas import fingerprint_from_sdp
from tests.browser.conftest import Env, LaunchBrowser, join, wait_phase

RATE = 48_000


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)


def envelope(samples: np.ndarray, window: int = RATE // 100) -> np.ndarray:
    """RMS per 10 ms."""
    n = len(samples) // window
    return np.sqrt((samples[: n * window].reshape(n, window) ** 2).mean(axis=1))


async def poll(page, script: str, check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Evaluate ``script`` until ``check(value)`` holds; returns the last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = None
    while loop.time() < deadline:
        value = await page.evaluate(script)
        if check(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{script} never satisfied the check; last value {value!r}")


async def test_browser_talks_to_terminal(
    env: Env, launch_browser: LaunchBrowser, access_log
) -> None:
    room = await env.room("Friday call ☕ with Zoë")
    recording = env.tmp / "from-browser.wav"
    phone = await env.phone(audio_in="sine:440", audio_out=f"file:{recording}")
    call = phone.join(room.url)
    await call.wait_for(ev.Waiting, timeout=10)

    browser = await launch_browser()
    page = await browser.page()
    response = await page.goto(room.url)
    assert response is not None and response.status == 200
    await wait_phase(page, "join")
    # The name was decrypted in the page, from the fragment's key.
    assert await page.text_content("#room-name") == room.name
    assert await page.evaluate("window.__hello.test.roomName()") == room.name

    await page.fill("#display-name", "Zoë")
    await page.click("#join")
    await call.wait_for(ev.Connected, timeout=15)
    await wait_phase(page, "connected")
    # ICE servers: exactly what the server gave (none), never a public default.
    assert await page.evaluate("window.__hello.test.iceServers()") == []

    # The same check code on both sides, shown on the page. The page offered: the
    # terminal verified its reveal against the commitment in its offer.
    check = await call.wait_for(ev.CheckCode, timeout=10)
    assert check.status == "verified" and re.fullmatch(r"\d{3} \d{3}", check.code)
    await poll(page, "window.__hello.test.sasStatus()", lambda v: v == "verified")
    assert await page.evaluate("window.__hello.test.sas()") == check.code
    assert await page.text_content("#sas") == check.code
    # The page hashed the certificates DTLS used: the fingerprints the terminal read in the SDP.
    assert call.pc is not None
    terminal_fps = [fingerprint_from_sdp(call.pc.localDescription.sdp)]
    terminal_fps.append(fingerprint_from_sdp(call.pc.remoteDescription.sdp))
    assert await page.evaluate("window.__hello.test.fingerprints()") == terminal_fps[::-1]
    assert "Zoë" in (await page.text_content("#people") or "")

    # The browser hears the terminal's 440 Hz tone (its analyser on the remote track)...
    peak = await poll(
        page,
        "window.__hello.test.peakHz()",
        lambda v: v is not None and abs(v["hz"] - 440) < 12 and v["db"] > -70,
    )
    assert abs(peak["hz"] - 440) < 12
    # ...and its own getStats() readout is live.
    quality = await poll(
        page,
        "window.__hello.test.quality()",
        lambda q: q is not None and q["inKbps"] is not None and q["packetsReceived"] > 50,
    )
    assert quality["rttMs"] is not None and quality["rttMs"] < 200
    assert quality["lossPct"] is not None and quality["lossPct"] < 5
    assert quality["inKbps"] > 5 and quality["outKbps"] > 5
    assert "RTT" in (await page.text_content("#quality") or "")

    await call.wait_for(ev.MediaFlowing, timeout=5)
    await asyncio.sleep(2.5)  # let the terminal record a few of the browser's beeps

    # The browser hangs up: both sides see the call end as a hang-up.
    await page.click("#hangup")
    ended = await call.wait_ended(timeout=10)
    assert ended.reason == "hangup" and ended.stage == "connected"
    await wait_phase(page, "ended")
    assert await page.evaluate("window.__hello.test.endReason()") == "hangup"
    assert await page.evaluate("window.__hello.test.endBy()") == "local"
    assert await page.text_content("#ended-text") == "You hung up."

    # The terminal recorded Chromium's fake microphone: periodic beeps, not silence.
    samples = read_wav(recording)
    assert len(samples) > RATE * 2, "less than 2 s of the browser's audio was recorded"
    env10 = envelope(samples)
    loud = env10 > max(200.0, env10.max() / 4)
    assert loud.any(), f"the browser's audio is silent (peak RMS {env10.max():.0f})"
    onsets = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1  # in 10 ms steps
    assert len(onsets) >= 3, f"expected repeated beeps, found {len(onsets)} onsets"
    gaps = np.diff(onsets)
    period = float(np.median(gaps)) * 10  # ms
    assert 300 <= period <= 1200, f"beeps every {period} ms"
    assert np.mean(np.abs(gaps * 10 - period) < 60) >= 0.7, f"irregular beeps: {gaps * 10}"
    assert loud.mean() < 0.6, "expected beeps with silence between, got continuous sound"

    # After the call: the feedback question, sent only because it was answered.
    assert await page.is_visible("#feedback")
    before = sum(env.telemetry.feedback["rating"].values())
    await page.click("#fb-sad")
    await page.check("#fb-reasons input[value='audio-quality']")
    await page.click("#fb-send")
    await poll(page, "window.__hello.test.feedback()", lambda v: v == "sent")
    assert env.telemetry.feedback["rating"]["sad"] == 1
    assert env.telemetry.feedback["reason"]["audio-quality"] == 1
    assert sum(env.telemetry.feedback["rating"].values()) == before + 1

    # Only this server was ever asked for anything, and the page broke no CSP rule.
    origin = env.url("/").rstrip("/")
    assert browser.requests and all(u.startswith(origin) for u in browser.requests), (
        browser.requests
    )
    assert not [m for m in browser.console if "Content Security Policy" in m], browser.console
    assert not [m for m in browser.console if m.startswith("pageerror")], browser.console

    # The fragment never reached the server: its logs saw the page load with the
    # token cut short, and never the key.
    await env.server.close()
    lines = [r.getMessage() for r in access_log.records]
    page_loads = [m for m in lines if "GET /r/" in m]
    assert page_loads, lines
    assert any(f"/r/{room.token[:6]}…" in m for m in page_loads), page_loads
    for line in lines:
        assert "k=" not in line and room.key not in line, line
        assert room.token not in line, line
        assert room.name not in line, line


async def test_terminal_joins_a_waiting_browser(env: Env, launch_browser: LaunchBrowser) -> None:
    """The other order: the browser waits in the room, the terminal offers, the page answers."""
    room = await env.room("Waiting room")
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Early bird")
    await wait_phase(page, "waiting")
    assert "first one here" in (await page.text_content("#status-text") or "")

    phone = await env.phone(audio_in="sine:440")
    call = phone.join(room.url)
    check = await call.wait_for(ev.CheckCode, timeout=15)
    assert check.status == "verified"
    await wait_phase(page, "connected")
    # The page answered: it checked the terminal's reveal before showing the code.
    await poll(page, "window.__hello.test.sasStatus()", lambda v: v == "verified")
    assert await page.evaluate("window.__hello.test.sas()") == check.code
    assert await page.text_content("#sas") == check.code
    await poll(
        page,
        "window.__hello.test.peakHz()",
        lambda v: v is not None and abs(v["hz"] - 440) < 12 and v["db"] > -70,
    )

    # The terminal hangs up: the page says so and offers the feedback question.
    await call.hangup()
    await wait_phase(page, "ended")
    assert await page.evaluate("window.__hello.test.endReason()") == "hangup"
    assert await page.evaluate("window.__hello.test.endBy()") == "remote"
    assert await page.text_content("#ended-text") == "The other person hung up."
    await page.click("#fb-skip")
    assert await page.evaluate("window.__hello.test.feedback()") == "skipped"
    assert sum(env.telemetry.feedback["rating"].values()) == 0  # skipped: nothing sent
