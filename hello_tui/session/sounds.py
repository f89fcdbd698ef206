"""Call sounds for both faces: a listener on the phone's calls that plays a cue
(``hello_tui/media/cues.py``) when something happens, as ``[sounds]`` says.

Which event sounds (:func:`cue_for`, pure):

- ``connecting``: we dial out or join a room (``Dialing``).
- ``connected``: a direct call is up; in a room, ``joined`` instead (someone
  is there with us, whether they came first or we did).
- ``message``: a chat message arrived (at most one cue a second: a burst of
  twenty messages is one blip).
- ``left``: a conversation that was connected ended normally, whoever hung up.
- ``failed``: it dropped; or an outgoing call or room join never connected for
  any reason but our own cancelling (busy, declined, no answer, unreachable,
  media failure). An incoming call that stopped ringing makes no sound: the
  ring tone stopping says it.

Nothing plays while do-not-disturb is on (``quiet()``), when ``[sounds]
enabled`` is off, or for a cue switched off. Where: ``[sounds] output``, or
when empty the call's own audio output if it is a device (``device:…``),
else the terminal bell (``bell``, the face's) for the cues that ask for
attention (``cues.BELL_CUES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from hello_tui.call import events as ev
from hello_tui.call.phone import CallListener
from hello_tui.media.cues import Cue, CuePlayer

if TYPE_CHECKING:
    from hello_tui.call.call import Call
    from hello_tui.config.settings import SoundsSettings

MESSAGE_EVERY = 1.0  # seconds: at most one message cue in this time
CLOSE_WAIT = 1.0  # seconds a closing session lets the last cue play

__all__ = ["CallSounds", "cue_for", "sound_output"]


def cue_for(call: Call, event: ev.CallEvent) -> Cue | None:
    """The cue an event of ``call`` plays (None: silence)."""
    match event:
        case ev.Dialing():
            return "connecting"
        case ev.Connected():
            return "joined" if call.is_room else "connected"
        case ev.ChatMessage(sender="remote"):
            return "message"
        case ev.Ended(stage="connected", outcome="completed"):
            return "left"
        case ev.Ended(stage="connected"):
            return "failed"
        case ev.Ended(reason="cancel"):
            return None  # we gave up ourselves
        case ev.Ended() if call.direction == "outgoing":
            return "failed"
    return None


def sound_output(configured: str, call_output: str) -> str | None:
    """Where cues play: ``[sounds] output`` if set, else the call's output when
    it is a device; None: no sound output (the bell)."""
    if configured:
        return configured
    return call_output if call_output.startswith("device:") else None


class CallSounds(CallListener):
    """Attach with ``phone.listeners.append``; :meth:`close` when done."""

    def __init__(
        self,
        settings: SoundsSettings,
        *,
        quiet: Callable[[], bool] = lambda: False,
        bell: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.quiet = quiet
        self.player = CuePlayer(None, bell)
        self._last_message = float("-inf")

    def wanted(self, cue: Cue) -> bool:
        """Whether ``cue`` may sound now (settings, do-not-disturb)."""
        s = self.settings
        return s.enabled and bool(getattr(s, cue)) and not self.quiet()

    def call_event(self, call: Call, event: ev.CallEvent) -> None:
        cue = cue_for(call, event)
        if cue is None or not self.wanted(cue):
            return
        if cue == "message":
            now = time.monotonic()
            if now - self._last_message < MESSAGE_EVERY:
                return
            self._last_message = now
        self.player.output = sound_output(self.settings.output, call.options.audio_out)
        self.player.play(cue)

    async def close(self) -> None:
        """Let the last cue finish (the ``left`` of the call that just ended, when
        a CLI run exits), a second at most, then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.player.idle(), CLOSE_WAIT)
        await self.player.close()
