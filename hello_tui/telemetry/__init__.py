"""Telemetry (P5, P6): per-call reports, feedback and crash reports — all optional.

Core: no Textual, no CLI. The CLI (and later the TUI) decide when to ask.

- :mod:`.report` builds the bodies (``protocol.CallReport``, ``FeedbackReport``,
  ``CrashReport``) from a call's ``Ended`` event and its quality summary — the
  very summary computed from the samples the live line / panel showed.
- :mod:`.store` keeps, in the profile's data directory: the consent state and
  a random install secret, the queue of bodies not sent yet (capped), the
  exact bodies that were sent (the last 100, for ``hello-tui privacy``) and
  local crash reports.
- :mod:`.sender` posts queued bodies to the server (bounded time, bounded
  retries; a server that is down only delays them to the next run).
- :mod:`.consent` is the first-run question, its text and where the answer goes.

See docs/telemetry.md.
"""
