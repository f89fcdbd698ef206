"""The call engine: signaling joined to aiortc peer connections (core: no Textual).

``engine.Phone`` / ``engine.Call``, the event stream (``events``), ICE and
track wrappers (``peer``), the check code (``sas``), the embedded default
server (``embedded``). See docs/calls.md.
"""
