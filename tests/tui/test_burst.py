"""Keys in a burst (a paste, tmux send-keys, a fast typist over SSH) arrive
faster than one turn of the event loop: each must land where it would have
landed typed slowly. ``burst`` hands the keys to the app the way its terminal
driver does, back to back, without the waits ``Pilot.press`` makes between
keys (which hide the bug)."""

from __future__ import annotations

from textual import events
from textual.keys import key_to_character
from textual.widgets import Input

from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.forms import ContactForm
from hello_tui.tui.screens.main import MainScreen

from .conftest import wait_until

NAMED_CHARACTERS = {"slash": "/", "space": " "}  # key_to_character leaves these out


def burst(app: HelloApp, *keys: str) -> None:
    """Queue ``keys`` for the app at once, as the driver's reader thread does."""
    driver = app._driver  # the headless driver of run_test: the terminal's place
    assert driver is not None
    for key in keys:
        event = events.Key(key, NAMED_CHARACTERS.get(key, key_to_character(key)))
        event.set_sender(app)
        driver.send_message(event)


async def test_keys_right_after_slash_reach_the_search_box() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        search = screen.query_one("#search", Input)
        await wait_until(pilot, lambda: app.focused is not None and app.focused is not search)
        burst(app, "slash", "a", "l")  # "a" on the list would open the contact form
        await wait_until(pilot, lambda: search.value == "al", what=f"'al', got {search.value!r}")
        assert app.screen is screen and app.focused is search
        # "/" typed in the search box is a character, not the binding again.
        burst(app, "slash", "x")
        await wait_until(pilot, lambda: search.value == "al/x", what=f"got {search.value!r}")


async def test_keys_right_after_enter_in_a_form_reach_the_next_field() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ContactForm))
        form = app.screen
        name, emails = form.query_one("#name", Input), form.query_one("#emails", Input)
        await wait_until(pilot, lambda: app.focused is name)
        burst(app, *"Bob", "enter", *"bob@example.org", "enter", *"+33")
        phones = form.query_one("#phones", Input)
        await wait_until(pilot, lambda: phones.value == "+33", what=f"got {phones.value!r}")
        assert (name.value, emails.value) == ("Bob", "bob@example.org")
        assert app.focused is phones
        # Enter on a button still presses it (the binding steps aside off the fields).
        form.set_focus(form.query_one("#save"))
        burst(app, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="saved")
        assert [c.name for c in app.backend.contacts.search("")] == ["Bob"]


async def test_keys_right_after_a_dialog_key_reach_its_field() -> None:
    """``a`` / ``o`` push a dialog: the keys behind them, sent before the dialog
    exists, are typed into its first field, enter included."""
    from hello_tui.tui.screens.dial import DialPrompt

    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await wait_until(pilot, lambda: app.focused is not None)
        burst(app, "a", *"Ana", "enter", *"ana@example.org", "ctrl+s")
        await wait_until(pilot, lambda: app.backend.contacts.count() == 1, what="saved")
        saved = app.backend.contacts.search("")[0]
        assert (saved.name, saved.emails) == ("Ana", ["ana@example.org"])
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        burst(app, "o", *"nobody@", "backspace")  # a line that names nobody: stays open
        await wait_until(pilot, lambda: isinstance(app.screen, DialPrompt))
        field = app.screen.query_one("#dial-input", Input)
        await wait_until(pilot, lambda: field.value == "nobody", what=f"got {field.value!r}")
        # Typed in the search box, the dialog keys are characters.
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        burst(app, "slash", *"oai")
        search = app.screen.query_one("#search", Input)
        await wait_until(pilot, lambda: search.value == "oai", what=f"got {search.value!r}")
        assert isinstance(app.screen, MainScreen)


async def test_keys_right_after_n_and_e_on_rooms_reach_the_name_prompt(server: str) -> None:
    """``n`` (new room) and ``e`` (rename) with the name typed right behind them:
    the keys reached the list (``x`` deletes, ``j`` joins), not the prompt."""
    from hello_tui.tui.screens.rooms import RoomsScreen

    from .conftest import TEST_AUDIO, write_config

    write_config({"server": {"url": server}, **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.backend.online, what="online")
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RoomsScreen))
        rooms = app.screen
        assert isinstance(rooms, RoomsScreen)
        await wait_until(pilot, lambda: rooms.loaded and app.focused is not None, what="listed")
        burst(app, "n", *"Jinx", "enter")  # j, x: join and delete on the list
        await wait_until(pilot, lambda: [r.name for r in rooms.rooms] == ["Jinx"],
                         what=f"room Jinx, got {[r.name for r in rooms.rooms]}")  # fmt: skip
        await wait_until(pilot, lambda: app.screen is rooms and app.focused is not None)
        burst(app, "e", *"jx")  # the old name is selected in the field: typing replaces it
        await wait_until(pilot, lambda: app.screen is not rooms, what="the rename prompt")
        field = app.screen.query_one("#prompt-input", Input)
        await wait_until(pilot, lambda: field.value == "jx", what="jx in the rename prompt")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is rooms)
        assert [r.name for r in rooms.rooms] == ["Jinx"]


async def test_keys_right_after_ctrl_r_in_settings_reach_the_account_prompt() -> None:
    from hello_tui.tui.screens.settings import SettingsScreen

    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen
        await wait_until(pilot, lambda: app.focused is not None)
        burst(app, "ctrl+r", *"alice")
        await wait_until(pilot, lambda: app.screen is not settings, what="the account prompt")
        field = app.screen.query_one("#prompt-input", Input)
        await wait_until(pilot, lambda: field.value == "alice", what=f"got {field.value!r}")
