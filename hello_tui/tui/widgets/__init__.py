"""Widgets of the TUI: photo (half-block cells), quality panel, status line."""
