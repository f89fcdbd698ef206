"""A video echo call in the TUI: the far side's picture drawn in half-block cells."""

from __future__ import annotations

import asyncio

from hello_tui.call import events as ev
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.widgets.video import VideoView

from .conftest import TEST_AUDIO, T, visible_text, wait_until, write_config


async def test_video_echo_call_draws_the_picture_and_toggles_the_camera() -> None:
    write_config({**TEST_AUDIO, "video": {"source": "pattern:"}})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        app.action_echo_video()  # the palette's "Echo test with video"
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        assert screen.has_class("-video")
        remote = screen.query_one("#remote-video", VideoView)
        selfview = screen.query_one("#self-video", VideoView)
        assert remote.display and selfview.display
        assert not screen.query_one("#call-photo").display  # the photo gives way
        await wait_until(pilot, lambda: remote.frames_drawn >= 3, what="remote picture")
        await wait_until(pilot, lambda: selfview.has_picture, what="self-view")
        cells = remote.cells()
        drawn = [line for line in cells if "▀" in line]
        assert len(drawn) >= 8  # the picture fills most of the area, aspect kept
        assert max(len(line.strip()) for line in drawn) >= 16
        assert remote.size.width >= 30 and remote.size.height >= 8
        # The camera key: off (the echo stops returning frames), then on again.
        await pilot.press("v")
        await wait_until(pilot, lambda: not app.last_call.camera_on)
        await wait_until(pilot, lambda: "camera off" in visible_text(app), what="camera off")
        assert any(e.kind == "camera-off" for e in app.last_call.event_log)
        await pilot.press("v")
        await wait_until(pilot, lambda: app.last_call.camera_on)
        await app.last_call.wait_for(ev.CameraOn, T)
        await pilot.press("h")
        await wait_until(pilot, lambda: app.last_call.ended is not None, what="ended")
