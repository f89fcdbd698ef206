"""The call engine, by its old name: every name it ever exported, from the
modules that now hold them.

- :mod:`hello_tui.call.options` — :class:`CallOptions` (frozen);
- :mod:`hello_tui.call.phone` — :class:`Phone` (routing) and :class:`CallListener`;
- :mod:`hello_tui.call.call` — :class:`Call` (one call's state machine) and :class:`NoVideo`;
- :mod:`hello_tui.call.media_policy` — :class:`CallMedia` / :class:`EchoMedia`.

Core: no Textual, no CLI. See docs/calls.md.
"""

from __future__ import annotations

from hello_tui.call.call import Call, NoVideo
from hello_tui.call.media_policy import CallMedia, EchoMedia
from hello_tui.call.options import MEDIA_TIMEOUT, QUALITY_INTERVAL, CallOptions
from hello_tui.call.phone import CallListener, Phone

__all__ = [
    "MEDIA_TIMEOUT",
    "QUALITY_INTERVAL",
    "Call",
    "CallListener",
    "CallMedia",
    "CallOptions",
    "EchoMedia",
    "NoVideo",
    "Phone",
]
