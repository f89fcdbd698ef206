"""The session layer: what both faces (the CLI and the TUI) need to turn the
profile's settings into a connected :class:`~hello_tui.call.engine.Phone`.

- :mod:`.connect`: :class:`Session`, settings (+ a face's overrides) → server
  (configured, or the embedded default), connected client, optional login,
  the ``Phone`` with its pins, caller hooks and history.
- :mod:`.options`: the one place ``CallOptions`` are built from settings, and
  (a phone's options are replaced, never mutated).
- :mod:`.callers`: who a caller is to us: contact, shown name, screening.
- :mod:`.embedded`: the embedded default (server + echo peer on loopback).

Sits between the faces and the core: it imports no Textual and no CLI, and
the core (``call/``, ...) never imports it. Module level is light: the
heavy parts (aiortc, aiohttp, the server) load when a session opens.
See docs/session.md.
"""
