"""Load the audio stack once per process, before the first call needs it.

A ``device:`` call's first open costs ~100 ms that have nothing to do with the
call: importing sounddevice initialises PortAudio (which probes ALSA, JACK and
the sound server), and the processing stage's binding loads its library. A
session that will use devices starts :func:`warm_audio_stack` in a worker
thread when it connects, so this runs alongside connecting and signing in
instead of between "dial" and the offer (or between "answer" and the answer).

It only imports and initialises; it opens no stream and never raises (what
fails here fails again, and is told, where the call opens its devices).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["uses_devices", "warm_audio_stack", "warm_call_stack"]

log = logging.getLogger(__name__)


def uses_devices(endpoints: Iterable[str | None]) -> bool:
    """Whether any of the endpoint strings is a sound device (``device:[NAME]``)."""
    return any((spec or "").strip().startswith("device:") for spec in endpoints)


def warm_audio_stack(*, processing: bool) -> None:
    """Import and initialise the audio backend (PortAudio, or a PulseAudio context),
    the device endpoints' modules and, with
    ``processing``, the processing stage's binding (blocking; any thread)."""
    try:
        from hello_tui.media import sinks, sources  # noqa: F401  (numpy, av, aiortc)
        from hello_tui.media.devices import backend, portaudio

        if backend() == "portaudio":
            portaudio()
        else:  # pulse: libpulse loaded, the listing context connected ("auto" just did)
            from hello_tui.media import pulse_lib, pulse_streams

            pulse_streams.available()
            pulse_lib.held()
        # libopus for the received audio: loaded here, not when the first packet
        # arrives (0.5-5 ms on the event loop, on the path to first audio).
        from hello_tui.media.opus_decoder import libopus_version

        libopus_version()
        if processing:
            from hello_tui.media.audio_processing import (
                ProcessingConfig,
                _load_binding,
                open_processor,
            )

            _load_binding()
            # The process's first processor loads the AEC3 tuning shim and sets up
            # the library (~10 ms, later ones ~0.5): here, not in the call's opening
            # thread, which shares the 2 cores with the call's signalling and ICE.
            open_processor(ProcessingConfig(), echo_cancellation=True)
    except Exception as exc:  # met again, and told, when a call opens its devices
        log.info("audio warm-up: %s", exc)


def warm_call_stack() -> None:
    """Import the call's media stack and pay its first-use costs (OpenSSL's first
    DTLS certificate, libopus's first encode: ``aiortc_adapter.warm_up``), blocking,
    in any thread, never raising. A session submits it when it starts, alongside
    its imports and sign-in: the phone's own warm-up starts only once the phone
    does, right before a CLI call dials, so it ran alongside the dial (the first
    connection's certificate then cost 5-8 ms on the offer's path, not 0.4)."""
    try:
        from hello_tui.media.aiortc_adapter import warm_up

        warm_up()
    except Exception as exc:  # met again, and told, where a call needs it
        log.info("call warm-up: %s", exc)
