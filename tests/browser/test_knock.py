"""Knock to enter from the page: it waits in the lobby saying whether the owner
is there, is let in and talks, or is turned away with a clear message."""

from __future__ import annotations

from hello_tui.call import events as ev
from hello_tui.signaling.roomcrypt import encode_key, encrypt_name, new_room_key
from tests.browser.conftest import Env, LaunchBrowser, Room, StartEnv, join, wait_phase
from tests.browser.test_call import poll

T = 15.0


async def knock_room(env: Env, name: str):  # type: ignore[no-untyped-def]
    """An anonymous owner (the creating session: a phone) and its knock-to-enter room."""
    owner = await env.phone(audio_in="sine:440")
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, name), knock=True)
    text = encode_key(key)
    return owner, Room(created.room.token, text, name, f"{created.url}#k={text}")


async def test_page_knocks_owner_arrives_and_lets_it_in(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    owner, room = await knock_room(env, "Office hours")
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Vic")

    # Nobody of the owner's is in the room: the page says they were told.
    await wait_phase(page, "knocking")
    assert await page.evaluate("window.__hello.test.knockOwnerPresent()") is False
    status = await page.text_content("#status-text")
    assert status == "Knocking… the owner is not here yet; they were told you are waiting."

    # The owner comes in: asked now, the page says so; the owner sees the name.
    inside = owner.join(room.url)
    knock = await inside.wait_for(ev.Knock, timeout=T)
    assert knock.name == "Vic"
    await poll(page, "window.__hello.test.knockOwnerPresent()", lambda v: v is True)
    assert await page.text_content("#status-text") == (
        "Knocking… waiting for the owner to let you in."
    )
    await inside.admit(knock.knock)

    # Let in: the call proceeds as for any join, chat included.
    await inside.wait_for(ev.Connected, timeout=T)
    await wait_phase(page, "connected")
    assert await page.text_content("#room-name") == "Office hours"
    await poll(page, "window.__hello.test.chat().open", lambda v: v is True)
    inside.send_chat("come in")
    await poll(page, "window.__hello.test.chat().received", lambda n: n == 1)
    await page.click("#hangup")
    ended = await inside.wait_for(ev.Ended, timeout=T)
    assert ended.reason == "hangup"


async def test_page_declined_is_told(env: Env, launch_browser: LaunchBrowser) -> None:
    owner, room = await knock_room(env, "Private")
    inside = owner.join(room.url)
    await inside.wait_for(ev.Waiting, timeout=T)
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Mallory")
    await wait_phase(page, "knocking")
    assert await page.text_content("#status-text") == (
        "Knocking… waiting for the owner to let you in."
    )
    knock = await inside.wait_for(ev.Knock, timeout=T)
    assert knock.name == "Mallory"
    await inside.decline(knock.knock)
    await wait_phase(page, "ended")
    assert await page.evaluate("window.__hello.test.knockEnd()") == "declined"
    assert await page.text_content("#ended-title") == "Not let in"
    assert await page.text_content("#ended-text") == (
        "The conversation's owner did not let you in."
    )
    assert not await page.is_visible("#feedback")  # there was no call to rate
    assert inside.ended is None  # the owner stays, waiting


async def test_page_leaving_the_lobby_ends_the_knock(
    env: Env, launch_browser: LaunchBrowser
) -> None:
    owner, room = await knock_room(env, "Lobby")
    inside = owner.join(room.url)
    await inside.wait_for(ev.Waiting, timeout=T)
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Impatient")
    await wait_phase(page, "knocking")
    knock = await inside.wait_for(ev.Knock, timeout=T)
    await page.click("#cancel")
    ended = await inside.wait_for(ev.KnockEnded, timeout=T)
    assert (ended.knock, ended.reason) == (knock.knock, "left")
    await wait_phase(page, "ended")
    assert await page.text_content("#ended-text") == "You left before the call connected."


async def test_page_nobody_answers_the_knock(
    start_env: StartEnv, launch_browser: LaunchBrowser
) -> None:
    env = await start_env(knock_timeout=1.0)
    _owner, room = await knock_room(env, "Empty office")
    browser = await launch_browser()
    page = await browser.page()
    await page.goto(room.url)
    await join(page, "Early")
    await wait_phase(page, "ended")  # knocking, then the lobby's timer
    assert await page.evaluate("window.__hello.test.knockEnd()") == "timeout"
    assert await page.evaluate("window.__hello.test.knockOwnerPresent()") is False
    assert await page.text_content("#ended-text") == "Nobody let you in: the wait timed out."
