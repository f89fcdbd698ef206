"""Terminal sharing inside a call: a pty the sharer owns, its screen (pyte) on
both ends, the frames over the call's ``share`` data channel (docs/sharing.md)."""
