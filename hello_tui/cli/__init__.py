"""The command-line face of hello-tui (scripts, SSH, quick edits)."""
