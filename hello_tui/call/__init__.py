"""The call engine: signaling joined to aiortc peer connections (core: no Textual).

``phone.Phone`` (routing, listeners) and ``call.Call`` (one call's state
machine), ``options.CallOptions`` (frozen), the media policy
(``media_policy``: devices, or the echo's loopback), the event stream
(``events``), ICE and track wrappers (``peer``), the check code (``sas``),
the embedded default server (``embedded``).
``engine`` re-exports the old names. See docs/calls.md.
"""

from hello_tui.media.aioice_mdns import defer as _defer_mdns

_defer_mdns()  # before any aiortc import here: dnspython only for an mDNS candidate
