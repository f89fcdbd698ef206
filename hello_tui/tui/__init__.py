"""The Textual front end (``hello-tui`` with no command on a TTY). See docs/tui.md.

A front end only: contacts, calls, quality and config logic live in the core;
this package renders the call's typed events as Textual messages.
"""
