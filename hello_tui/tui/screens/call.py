"""The call screen: who, state, timer, check code, live quality panel, and on a
video call the far side's picture (half-block cells, ≤ 10 fps) with a small
self-view; audio-only calls show the contact's photo or initials.

Everything shown comes from the call's events (:func:`follow_call`, the one
adapter) and its quality samples; the screen dismisses itself with the
``Ended`` event. The call's stage is the ``state`` reactive (its watcher draws
it); the 1 s timer only advances the clock.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Digits, Footer, Label, Static

from hello_tui.call.wording import clock
from hello_tui.tui.messages import CallEventMessage, QualityUpdate, follow_call
from hello_tui.tui.screens.audio_devices import AudioDevicePicker, picker_over
from hello_tui.tui.screens.knock import knock_over
from hello_tui.tui.text import plain
from hello_tui.tui.widgets.chat import ChatBadge, ChatPane
from hello_tui.tui.widgets.identity import IdentityLine
from hello_tui.tui.widgets.photo import Photo
from hello_tui.tui.widgets.quality import QualityPanel
from hello_tui.tui.widgets.shared_terminal import BANNER, SharedTerminal, SharePane
from hello_tui.tui.widgets.status import StatusLine
from hello_tui.tui.widgets.video import VideoView

STATE_TEXT = {
    "dialing": "Calling…",
    "ringing": "Ringing…",
    "waiting": "In the room, waiting for someone…",
    "knocking": "Knocking: waiting for the room's owner to let you in…",
    "knocking-away": "Knocking: the room's owner is not here yet (they were told)…",
    "connecting": "Connecting…",
    "connected": "Connected · encrypted (DTLS-SRTP)",
}


NOTICES_KEPT = 4  # the call's notices shown at once (the newest; a repeat is not added twice)

SAS_LABEL = "Check code (read it aloud, both sides see the same):"


class CallScreen(Screen[Any]):
    """One call; dismissed with its ``Ended`` event."""

    DEFAULT_CSS = """
    CallScreen #remote-video { display: none; }
    CallScreen #self-video { display: none; width: 16; height: 3; }
    CallScreen.-chat #quality { display: none; }
    CallScreen.-share #quality { display: none; }
    CallScreen.-video SharePane { height: 12; }
    CallScreen #share-banner { display: none; height: 1; padding: 0 1;
                               background: $error; color: $text; text-style: bold; }
    CallScreen.-video { overflow-y: hidden; }
    CallScreen.-video #call-notice.-empty { display: none; }
    CallScreen.-video #call-photo { display: none; }
    CallScreen.-video #remote-video { display: block; margin-right: 2; }
    CallScreen.-video #call-info { width: 28; }
    CallScreen.-video #self-video { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "mute", "Mute"),
        # One deliberate key (the same on the incoming prompt): escape only closes
        # what is on top (the palette, the help), never the call.
        Binding("h", "hangup", "Hang up"),
        Binding("v", "camera", "Camera"),
        Binding("k", "verify_key", "Key verified"),
        Binding("t", "trust_key", "Accept new key", show=False),
        Binding("c", "chat", "Chat"),
        Binding("a", "audio_devices", "Audio devices", show=False),
        # Terminal sharing (docs/sharing.md; widgets/shared_terminal.py).
        Binding("s", "share", "Share"),
        Binding("g", "grant", "Grant/revoke control", show=False),
        # Priority: run as the app reads the i, so keys read right behind it (a paste, a
        # script, a fast typist) already go to the shared terminal; a screen binding ran
        # later, from this screen's queue, and they were lost. Not while the chat's
        # line or the shared terminal has the keys (check_action).
        Binding("i", "type_in", "Type in the shared terminal", show=False, priority=True),
        Binding("p", "pause_share", "Pause the shared view", show=False),
        Binding("y", "copy_share", "Copy the shared screen", show=False),
        # Before the chat log's own (priority), but only while a terminal is shown and
        # keys are not being typed into it or into the chat (check_action).
        Binding(
            "pageup", "share_back(1)", "Scroll the shared terminal back", show=False, priority=True
        ),
        Binding("pagedown", "share_back(-1)", "Scroll it forward", show=False, priority=True),
        Binding(
            "shift+up", "share_back_line(1)", "Scroll it back a line", show=False, priority=True
        ),
        Binding(
            "shift+down",
            "share_back_line(-1)",
            "Scroll it forward a line",
            show=False,
            priority=True,
        ),
        Binding("end", "share_live", "Back to the live shared screen", show=False, priority=True),
        Binding("Y", "copy_share_lines", "Copy lines of the shared terminal", show=False),
    ]

    # The call's stage as shown ("dialing", "ringing", ..., "connected"), set from its events.
    state: var[str] = var("dialing", init=False)

    def __init__(self, call: Any, *, photo: bytes | None = None, follow: bool = True) -> None:
        super().__init__()
        self.call = call
        self.photo = photo
        self.follow = follow
        self.set_reactive(CallScreen.state, "dialing" if call is None else call.stage)
        self.connected_at: float | None = None
        self.sas = ""  # the check code, once verified
        self.check_status = "waiting"
        self.ended: Any = None
        self.notices: list[str] = []  # the call's notices, oldest first (see add_notice)

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static(BANNER, id="share-banner", markup=False)
        with Horizontal(id="call-top"):
            yield Photo(cols=16, rows=8, id="call-photo")
            yield VideoView(self._remote_sink, self._remote_placeholder, id="remote-video")
            with Vertical(id="call-info"):
                yield Label(plain(self._header()), id="call-peer")
                with Horizontal(id="call-state-row"):
                    yield Label(STATE_TEXT.get(self.state, self.state), id="call-state")
                    yield Label("", id="call-timer")
                yield Label("", id="call-mute")
                yield ChatBadge(id="chat-badge")
                yield Label(SAS_LABEL, id="sas-label", markup=False)
                yield Digits("", id="sas")
                yield IdentityLine(id="call-identity")
                yield VideoView(self._local_sink, self._local_placeholder, id="self-video")
        yield QualityPanel(id="quality")
        yield SharePane(self.call, id="share")
        yield Static("", id="call-notice", classes="-empty")
        yield ChatPane(self.call, follow=self.follow, id="chat")
        yield Footer(compact=True, show_command_palette=False)

    def _peer(self) -> str:
        return getattr(self.call, "peer", "") or "call"

    def _header(self) -> str:
        """Who: a room's other participant by the display name they gave, if any."""
        name = getattr(self.call, "peer_name", "")
        return f"{name} · {self._peer()}" if name else self._peer()

    # ------------------------------------------------------------ video
    @property
    def video(self) -> bool:
        return bool(getattr(self.call, "video", False))

    def _remote_sink(self) -> Any:
        return getattr(self.call, "remote_video", None)

    def _local_sink(self) -> Any:
        return getattr(self.call, "local_video", None)

    def _remote_placeholder(self) -> str:
        sink = self._remote_sink()
        if sink is not None and sink.frames:
            return "video paused"
        return "waiting for video…" if self.state != "connected" or sink else "no video"

    def _local_placeholder(self) -> str:
        if getattr(self.call, "video_track", None) is None:
            return "no camera"
        return "camera off" if not getattr(self.call, "camera_on", False) else "…"

    def _flags(self) -> None:
        parts = []
        if getattr(self.call, "muted", False):
            parts.append("🔇 muted")
        has_camera = getattr(self.call, "video_track", None) is not None
        if self.video and has_camera and not getattr(self.call, "camera_on", False):
            parts.append("camera off")
        self.query_one("#call-mute", Label).update(" · ".join(parts))
        self.query_one(StatusLine).muted = bool(getattr(self.call, "muted", False))

    def _fit_video(self) -> None:
        """The picture takes what the status line, the panel and the footer leave."""
        if not self.video:
            return
        used = sum(
            w.outer_size.height
            for w in (self.query_one("#status"), self.query_one(QualityPanel),
                      self.query_one("#share-banner"), self.query_one(SharePane),
                      self.query_one("#call-notice"), self.query_one(ChatPane),
                      self.query_one(Footer))
            if w.display
        )  # fmt: skip
        self.query_one("#call-top").styles.height = max(8, self.size.height - used)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_video)

    def on_mount(self) -> None:
        self.set_class(self.video, "-video")
        self.call_after_refresh(self._fit_video)
        self.query_one("#call-photo", Photo).show(self._peer(), self.photo)
        self.query_one("#sas-label").display = False
        self.query_one(StatusLine).muted = bool(getattr(self.call, "muted", False))
        self.set_interval(1.0, self._tick)
        # Toasts from before the call (the app shows them on every screen) would lie
        # over the notices; while this screen is up notifications join its list.
        self.app.clear_notifications()
        if self.follow and self.call is not None:
            self.run_worker(follow_call(self.call, self), group="call-events", exit_on_error=False)

    def _tick(self) -> None:
        if self.connected_at is not None and self.ended is None:
            self.query_one("#call-timer", Label).update(clock(time.time() - self.connected_at))

    def watch_state(self, state: str) -> None:
        self.query_one("#call-state", Label).update(plain(STATE_TEXT.get(state, state)))

    def show_check(self, status: str, code: str = "", line: str = "") -> None:
        """The check code (verified), "waiting", or instead of it one loud line."""
        self.check_status = status
        self.sas = code if status == "verified" else ""
        label = self.query_one("#sas-label", Label)
        label.display = True
        label.set_class(status == "mismatch", "-warning")
        digits = self.query_one("#sas", Digits)
        digits.display = bool(self.sas)
        if self.sas:
            label.update(SAS_LABEL)
            digits.update(self.sas)
        else:
            label.update("Check code: waiting…" if status == "waiting" else line)

    @on(CallEventMessage)
    def _event(self, message: CallEventMessage) -> None:
        from hello_tui.call import events as ev

        match message.event:
            case ev.Ringing():
                self.state = "ringing"
            case ev.Waiting():
                self.state = "waiting"
            case ev.Connecting():
                self.state = "connecting"
            case ev.Connected():
                self.connected_at = getattr(self.call, "connected_at", None) or time.time()
                self.state = "connected"
                if self.check_status == "waiting":
                    self.show_check("waiting")
                self._tick()
            case ev.CheckCode() as check:
                self.show_check(check.status, check.code, check.line())
                if check.renewal:  # a renewed transport: changed (a warning) or not
                    self.add_notice(check.line())
            case ev.Identity() as identity:
                self.show_identity(identity)
            case ev.Muted() | ev.Unmuted() | ev.CameraOn() | ev.CameraOff():
                self._flags()
            case ev.Notice(text=text):
                self.add_notice(text)
            case ev.PeerName():
                self.query_one("#call-peer", Label).update(plain(self._header()))
            case ev.Knocking(owner_present=present):
                self.state = "knocking" if present else "knocking-away"
            case ev.Declined(reason=reason):
                self.add_notice(
                    "the room's owner did not let you in"
                    if reason == "declined"
                    else "nobody let you in in time"
                    if reason == "timeout"
                    else "the room was closed"
                )
            case ev.Knock() as knock:
                from hello_tui.tui.screens.knock import ask

                self._knock_prompt = ask(self, self.call, knock)
            case ev.KnockEnded(knock=knock_id):
                knock_over(getattr(self, "_knock_prompt", None), knock_id)
            case ev.ServerLost() | ev.ServerBack() | ev.Reconnecting() | ev.MediaResumed():
                self.add_notice(message.event.line())  # calls that recover (docs/calls.md)
            case ev.AudioDeviceChanged() | ev.MutedSpeech():
                self.add_notice(message.event.line())  # devices that change (docs/media.md)
            case ev.ShareStarted() | ev.ShareStopped() | ev.ShareControl():
                self.add_notice(message.event.line())
                self.query_one(SharePane).on_share(message.event)
                self.call_after_refresh(self._fit_video)
            case ev.Ended() as ended:
                self.ended = ended
                prompt = getattr(self, "_knock_prompt", None)
                if prompt is not None:  # a knock still asked about: the call is over
                    knock_over(prompt, prompt.knock.knock)
                picker_over(getattr(self, "_device_picker", None))
                self.dismiss(ended)

    def add_notice(self, text: str) -> None:
        """Keep ``text`` in the call's notice list (input or output fallback, camera,
        network, and the app's notifications while this screen is shown: a toast
        would cover the check code). Only the newest few are kept."""
        if text in self.notices:
            self.notices.remove(text)
        self.notices = [*self.notices, text][-NOTICES_KEPT:]
        notice = self.query_one("#call-notice", Static)
        # One line each: a joined string would show its newlines escaped (plain()).
        notice.update(Content("\n").join(plain(f"Note: {line}") for line in self.notices))
        notice.remove_class("-empty")
        self.call_after_refresh(self._fit_video)

    @on(QualityUpdate)
    def _quality(self, message: QualityUpdate) -> None:
        self.query_one(QualityPanel).add_sample(message.sample)
        if self.video:  # the panel's height may have changed
            self.call_after_refresh(self._fit_video)

    def show_identity(self, event: Any) -> None:
        """Who the other side is by key; for a changed or unproven key, the raw
        account name (not the contact's) and no photo."""
        self.query_one(IdentityLine).show(event)
        if event.status in ("changed", "unproven"):
            self.query_one("#call-peer", Label).update(Content(self._peer()))
            self.query_one("#call-photo", Photo).show(self._peer(), None)

    def action_verify_key(self) -> None:
        """After comparing the check code aloud: this account's key is verified."""
        try:
            self.call.mark_verified()
        except (AttributeError, RuntimeError, ValueError) as exc:
            self.notify(str(exc), severity="warning", markup=False)

    def action_trust_key(self) -> None:
        """Accept the changed key of this account (it replaces the pinned one)."""
        try:
            self.call.accept_new_key()
        except (AttributeError, RuntimeError, ValueError) as exc:
            self.notify(str(exc), severity="warning", markup=False)

    def action_mute(self) -> None:
        if self.call is not None:
            self.call.mute(not self.call.muted)

    def action_hangup(self) -> None:
        if self.call is not None:
            self.run_worker(self.call.hangup(), group="hangup", exclusive=True)

    def action_camera(self) -> None:
        """Camera on/off (a video call only: video is chosen when the call starts)."""
        if self.call is None:
            return
        try:
            self.call.set_camera(not getattr(self.call, "camera_on", False))
        except RuntimeError as exc:  # NoVideo: an audio-only call, or no camera
            self.notify(f"{exc}. Press C on a contact for a video call.", severity="warning")

    def action_audio_devices(self) -> None:
        """The device picker: move the microphone or speaker mid-call (``audio-in``/``-out``)."""
        if self.call is not None and self.ended is None:
            self._device_picker = AudioDevicePicker(self.call)
            self.app.push_screen(self._device_picker)

    def action_chat(self) -> None:
        """Open or close the chat (it takes the quality panel's place while open)."""
        self.query_one(ChatPane).toggle()
        self.call_after_refresh(self._fit_video)

    # ------------------------------------------------------------ sharing
    def action_share(self) -> None:
        """Stop sharing, or ask what to share: a command, or (empty) the shell."""
        share = getattr(self.call, "share", None)
        if share is None:
            return
        if share.sharing:
            self.run_worker(self._share_do(share.stop()), group="share", exclusive=True)
            return
        from hello_tui.tui.screens.forms import TextPrompt

        prompt = TextPrompt(
            "Share a terminal",
            "A command to run (e.g. htop), empty for your shell, or tmux:PANE for a tmux "
            "pane (e.g. tmux:%3). Read-only for them until you press g.",
            placeholder="your shell",
            allow_empty=True,
            prompt_id="share-prompt",
        )
        self.app.push_screen(prompt, self._share_start)

    def _share_start(self, command: str | None) -> None:
        if command is None:
            return
        from hello_tui.call.commands import CommandError, share_argv

        if command.strip().startswith("tmux:"):
            from hello_tui.share.tmux import start_tmux_share

            pane = command.strip()[5:].strip()
            self.run_worker(
                self._share_do(start_tmux_share(self.call.share, pane)),
                group="share",
                exclusive=True,
            )
            return
        try:
            argv = share_argv(command, not command.strip())
        except CommandError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        start = self.call.share.start(argv, title=command.strip() or "shell")
        self.run_worker(self._share_do(start), group="share", exclusive=True)

    async def _share_do(self, step: Any) -> None:
        from hello_tui.share.wire import ShareError

        try:
            await step
        except ShareError as exc:
            self.notify(str(exc), severity="warning", markup=False)

    def action_grant(self) -> None:
        """Let them type in our shared terminal, or take it back (one key)."""
        share = getattr(self.call, "share", None)
        if share is None or not share.sharing:
            self.notify("You are not sharing a terminal (s shares one)", severity="warning")
            return
        share.revoke() if share.granted else share.grant()
        self.query_one(SharePane).banner()

    def action_type_in(self) -> None:
        why = self.query_one(SharePane).type_in()
        if why:
            self.notify(why.capitalize(), severity="warning", markup=False)

    def action_pause_share(self) -> None:
        pane = self.query_one(SharePane)
        if pane.side:
            pane.toggle_pause()

    def action_copy_share(self) -> None:
        """The shared screen as shown (scrolled back or not), to the clipboard (OSC 52,
        where the terminal allows)."""
        pane = self.query_one(SharePane)
        if not pane.side:
            self.notify("Nothing is shared", severity="warning")
            return
        self.app.copy_to_clipboard(pane.view.text())
        self.notify("Shared screen copied to the clipboard (if the terminal allows it)")

    _SCROLL_ACTIONS = frozenset({"share_back", "share_back_line", "share_live"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in self._SCROLL_ACTIONS and action != "type_in":
            return True
        from textual.widgets import Input

        focused = self.focused
        if isinstance(focused, (Input, SharedTerminal)):
            return False  # those keys are theirs (the chat's line, the shared program)
        return True if action == "type_in" else bool(self.query_one(SharePane).side)

    def action_share_back(self, pages: int) -> None:
        """A page into the shared terminal's history (negative: towards live)."""
        pane = self.query_one(SharePane)
        view = pane.view
        if pane.side and view.terminal is not None:
            self._share_scroll(max(1, view.terminal.rows - 1) * pages)

    def action_share_back_line(self, lines: int) -> None:
        if self.query_one(SharePane).side:
            self._share_scroll(lines)

    def _share_scroll(self, lines: int) -> None:
        pane = self.query_one(SharePane)
        if lines > 0 and not pane.view.history:
            self.notify("No scroll-back: no line has scrolled off the shared screen yet")
            return
        pane.view.scroll_back(lines)
        pane.poll()

    def action_share_live(self) -> None:
        pane = self.query_one(SharePane)
        if pane.side and pane.view.back:
            pane.view.scroll_back(-pane.view.back)
            pane.poll()

    def action_copy_share_lines(self) -> None:
        """Ask which lines of the history and screen to copy: ``A-B`` or the last ``N``."""
        pane = self.query_one(SharePane)
        if not pane.side:
            self.notify("Nothing is shared", severity="warning")
            return
        from hello_tui.tui.screens.forms import TextPrompt

        count = pane.view.line_count()
        prompt = TextPrompt(
            "Copy lines of the shared terminal",
            f"Lines 1-{count} (the scroll-back first, the screen last): A-B, "
            "or N for the last N lines.",
            placeholder=f"1-{count}",
            prompt_id="share-lines-prompt",
        )
        self.app.push_screen(prompt, self._copy_lines)

    def _copy_lines(self, spec: str | None) -> None:
        if not spec:
            return
        view = self.query_one(SharePane).view
        count = view.line_count()
        first_s, dash, last_s = spec.strip().partition("-")
        if not dash:
            last_s = str(count)
            first_s = str(max(1, count - int(first_s) + 1)) if first_s.isdigit() else ""
        if not (first_s.isdigit() and last_s.isdigit() and 1 <= int(first_s) <= int(last_s)):
            self.notify(f"Lines: A-B or N, within 1-{count}", severity="warning")
            return
        first, last = int(first_s), min(int(last_s), count)
        self.app.copy_to_clipboard(view.lines_text(first, last))
        self.notify(f"Lines {first}-{last} copied to the clipboard (if the terminal allows it)")
