"""What every command needs: resolved paths, settings, and the local stores."""

from __future__ import annotations

import argparse
from functools import cached_property
from pathlib import Path

from hello_tui.config.loader import load_config
from hello_tui.config.paths import Paths, resolve_paths
from hello_tui.config.settings import Settings
from hello_tui.contacts.store import ContactStore, open_store
from hello_tui.history.store import HistoryStore


class Context:
    """Lazily loads config and opens stores for one CLI invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.paths: Paths = resolve_paths(
            getattr(args, "config", None), getattr(args, "profile", None)
        )

    @cached_property
    def settings(self) -> Settings:
        from hello_tui.media.devices import set_backend  # stdlib only: no audio stack loads

        settings = load_config(self.paths.config_file)
        set_backend(settings.audio.backend)
        return settings

    @property
    def contacts_path(self) -> Path:
        contacts = self.settings.contacts
        return self.paths.contacts_location(contacts.backend, contacts.path)

    def contacts(self) -> ContactStore:
        self.paths.private_data_dir()
        return open_store(self.settings.contacts.backend, self.contacts_path)

    def history(self) -> HistoryStore:
        self.paths.private_data_dir()
        return HistoryStore(self.paths.history_file, max_entries=self.settings.history.max_entries)
