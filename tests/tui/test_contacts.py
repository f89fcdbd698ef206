"""Contacts on the main screen: add, find, edit, favourite, block, delete, import."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, OptionList, Static

from hello_tui.contacts.store import open_store
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.forms import Confirm, ContactForm, ImportFile
from hello_tui.tui.screens.main import MainScreen

from .conftest import T, visible_text, wait_until


def store_file() -> Path:
    from hello_tui.config.paths import resolve_paths

    return resolve_paths().contacts_file("toml")


def names(app: HelloApp) -> list[str]:
    olist = app.screen.query_one("#contacts", OptionList)
    return [str(olist.get_option_at_index(i).prompt).strip() for i in range(olist.option_count)]


async def test_add_then_find_a_contact() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert "no contacts" in visible_text(app)
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ContactForm))
        await pilot.press(*"Alice Martin")
        await pilot.press("tab", *"alice@example.org")
        await pilot.press("enter", *"+33 6 12 34 56 78")  # enter: the next field
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert "Alice Martin" in visible_text(app)
        assert "alice@example.org" in visible_text(app)
        # The store file changed, and another process would see the contact.
        assert "alice@example.org" in store_file().read_text()
        # A second contact, then search as you type (accent-insensitive).
        app.backend.contacts.add(
            __import__("hello_tui.contacts.model", fromlist=["Contact"]).Contact(
                name="Élodie Zed", emails=["elodie@example.org"]
            )
        )
        app.screen.refresh_contacts()  # type: ignore[attr-defined]
        assert names(app) == ["Alice Martin", "Élodie Zed"]
        await pilot.press("slash", *"elod")
        assert app.screen.query_one("#search", Input).value == "elod"
        await wait_until(pilot, lambda: names(app) == ["Élodie Zed"])
        assert "elodie@example.org" in visible_text(app)
        await pilot.press("escape")  # clears the search, back to the list
        await wait_until(pilot, lambda: len(names(app)) == 2)


async def test_search_as_you_type_runs_off_the_ui_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    from hello_tui.contacts.model import Contact

    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        store = app.backend.contacts
        store.add(Contact(name="Élodie Zed", emails=["elodie@example.org"]))
        store.add(Contact(name="Bob Dupont", emails=["bob@example.org"]))
        app.screen.refresh_contacts()  # type: ignore[attr-defined]
        searched_on: list[threading.Thread] = []
        search = store.search

        def recorded(*args: Any, **kwargs: Any) -> Any:
            searched_on.append(threading.current_thread())
            return search(*args, **kwargs)

        monkeypatch.setattr(store, "search", recorded)
        await pilot.press("slash", *"elod")
        await wait_until(pilot, lambda: names(app) == ["Élodie Zed"])
        assert searched_on and threading.main_thread() not in searched_on


async def test_a_search_that_read_the_store_before_an_edit_does_not_hide_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A search worker still running when the list is refreshed (a contact was
    added meanwhile) must not paint its older result over the newer list."""
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        store = app.backend.contacts
        release, started = threading.Event(), threading.Event()
        search = store.search

        def held(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is threading.main_thread():
                return search(*args, **kwargs)
            found = search(*args, **kwargs)  # read before the add below
            started.set()
            release.wait(10)
            return found

        monkeypatch.setattr(store, "search", held)
        screen.search_contacts("", screen._listing)
        await wait_until(pilot, started.is_set)
        from hello_tui.contacts.model import Contact

        store.add(Contact(name="Added Meanwhile", emails=["m@example.org"]))
        screen.refresh_contacts()
        assert names(app) == ["Added Meanwhile"]
        release.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert names(app) == ["Added Meanwhile"]


async def test_invalid_contact_is_refused_with_the_reason() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ContactForm))
        await pilot.press(*"Bob", "tab", *"not-an-address", "enter")
        assert isinstance(app.screen, ContactForm)  # enter moved on; it saved nothing
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "invalid e-mail address" in visible_text(app))
        assert isinstance(app.screen, ContactForm)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.backend.contacts.count() == 0


async def test_favourite_block_edit_delete() -> None:
    path = store_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_store("toml", path) as store:
        from hello_tui.contacts.model import Contact

        for name in ("Alice", "Bob", "Chloé"):
            store.add(Contact(name=name, emails=[f"{name[:3].lower()}@example.org"]))
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: names(app) == ["Alice", "Bob", "Chloé"])
        await pilot.press("down", "down", "f")  # Chloé becomes a favourite: listed first
        await wait_until(pilot, lambda: names(app)[0] == "★ Chloé")
        await pilot.press("b")  # block Chloé: dimmed and moved to the end
        await wait_until(pilot, lambda: names(app)[-1] == "⊘ Chloé")
        assert app.backend.contacts.find_by_email("chl@example.org").blocked
        await pilot.press("home", "E")  # edit Alice
        await wait_until(pilot, lambda: isinstance(app.screen, ContactForm))
        name = app.screen.query_one("#name", Input)
        name.value = "Alice Martin"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "Alice Martin" in names(app))
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        assert "Delete Alice Martin?" in visible_text(app)
        await pilot.press("y")
        await wait_until(pilot, lambda: "Alice Martin" not in names(app))
        assert app.backend.contacts.find_by_email("ali@example.org") is None
        assert "ali@example.org" not in path.read_text()


async def test_import_a_vcard(tmp_path: Path) -> None:
    vcf = tmp_path / "friends.vcf"
    vcf.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoé Imported\r\nEMAIL:zoe@example.org\r\n"
        "TEL:+1 555 0100\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Yann Imported\r\nEMAIL:yann@example.org\r\nEND:VCARD\r\n",
        encoding="utf-8",
    )
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportFile))
        await pilot.press(*str(tmp_path / "missing.vcf"), "enter")
        await wait_until(pilot, lambda: "cannot read" in visible_text(app))
        app.screen.query_one("#path", Input).value = str(vcf)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await wait_until(pilot, lambda: names(app) == ["Yann Imported", "Zoé Imported"])
        assert "zoe@example.org" in store_file().read_text()


async def test_a_large_import_runs_in_a_worker_and_the_app_keeps_taking_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 cards. The import is held at its start until the app has handled keys
    meanwhile: an import on the UI thread would never let them through (the test
    would time out, not pass). It finishes while the command palette covers the
    dialog; the palette stays, and the summary comes once the dialog is back."""
    n = 3000
    vcf = tmp_path / "many.vcf"
    vcf.write_text(
        "".join(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i:04d}\r\n"
            f"EMAIL:p{i}@example.org\r\nEND:VCARD\r\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    from hello_tui.contacts import importer

    real, gate, ran_on = importer.import_file, threading.Event(), []

    def held(*args: Any, **kwargs: Any) -> Any:
        ran_on.append(threading.current_thread())
        if not gate.wait(T):
            raise TimeoutError("the test never let the import go on")
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "import_file", held)
    app = HelloApp(connect=False)
    shown: list[str] = []
    notify = app.notify
    monkeypatch.setattr(app, "notify", lambda m, **kw: (shown.append(m), notify(m, **kw))[1])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("i")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportFile))
        dialog = app.screen
        assert isinstance(dialog, ImportFile)
        dialog.query_one("#path", Input).value = str(vcf)
        await pilot.press("enter")
        await wait_until(pilot, lambda: ran_on, what="the import started")
        assert ran_on[0] is not threading.main_thread()
        # The import is under way: keys still work (escape is refused, with a notice).
        await pilot.press("escape")
        await wait_until(pilot, lambda: any("Still importing" in m for m in shown))
        assert app.screen is dialog
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        gate.set()
        await wait_until(pilot, lambda: not dialog.importing, what="the import done")
        assert isinstance(app.screen, CommandPalette)  # not popped by the dialog's dismiss
        progress = str(dialog.query_one("#import-progress", Static).render())
        assert f"{n:,} of {n:,} cards" in progress
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await wait_until(pilot, lambda: any(f"{n} added" in m for m in shown))
        assert app.backend.contacts.count() == n
        assert f"of {n} contacts" in visible_text(app)  # the list was refreshed


async def test_contacts_changed_by_the_cli_appear_and_a_vanished_one_is_said() -> None:
    import asyncio
    import os
    import sys

    async def cli(*args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hello_tui", "contacts", *args, env=dict(os.environ),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()

    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await cli("add", "Zoé From The CLI", "--email", "zoe@example.org")  # another process
        await wait_until(pilot, lambda: "Zoé From The CLI" in names(app), what="the new contact")
        zoe = app.backend.contacts.find_by_email("zoe@example.org")
        assert zoe is not None
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen._stamp = app.backend.contacts_stamp()  # the watch has not looked yet
        app.backend.contacts.delete(zoe.id)  # as another process would, between looks
        screen._stamp = app.backend.contacts_stamp()
        assert screen.selected_id() == zoe.id
        await pilot.press("E")
        await wait_until(
            pilot,
            lambda: any("no longer exists" in str(n.message) for n in app._notifications),
            what="the vanished notice",
        )
        assert not isinstance(app.screen, ContactForm) and "Zoé From The CLI" not in names(app)
