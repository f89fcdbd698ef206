"""Media: audio and video endpoints (sources and sinks) for calls."""

from hello_tui.media.aioice_mdns import defer as _defer_mdns

_defer_mdns()  # before any aiortc import here: dnspython only for an mDNS candidate
