"""What "dial anything" means: one line of text → what to do with it.

No Textual here. ``echo`` is the echo test; a URL is a room (``…/r/TOKEN#k=KEY``);
an e-mail or name of a contact is that contact (its first e-mail is dialled,
blocked contacts are refused by the app as with ``c``); anything else is an
account name, dialled as typed (the server says if nobody has it). The
history's call-back uses the same resolution on the name a record shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hello_tui.contacts.model import Contact
from hello_tui.contacts.store import ContactStore

MAX_DIAL = 512  # a pasted line longer than any account name or room URL is refused
MAX_SUGGESTIONS = 2000  # completion candidates (names and e-mails) taken from the store

Kind = Literal["echo", "room", "contact", "account"]


@dataclass(frozen=True, slots=True)
class Target:
    kind: Kind
    value: str  # the room URL, the account name, or the contact's name
    contact: Contact | None = None


def room_url(text: str) -> str | None:
    """``text`` if it is a room URL (a scheme, a host and a room token), else None."""
    from hello_tui.signaling.roomcrypt import parse_room_url

    text = text.strip()
    if "://" not in text or len(text) > MAX_DIAL or any(c.isspace() for c in text):
        return None
    try:
        parse_room_url(text)
    except Exception:
        return None
    return text


def resolve(text: str, store: ContactStore) -> Target:
    """What ``text`` names; raises ValueError (one line) when it names nothing."""
    text = text.strip()
    if not text:
        raise ValueError("type an account name, a contact, a room URL or echo")
    if len(text) > MAX_DIAL:
        raise ValueError(f"too long to be an address ({len(text)} characters)")
    if text.casefold() == "echo":
        return Target("echo", "echo")
    if "://" in text:
        url = room_url(text)
        if url is None:
            raise ValueError("not a room URL (expected …/r/TOKEN#k=KEY)")
        return Target("room", url)
    contact = store.find_by_email(text) if "@" in text else None
    if contact is None:
        named = [c for c in store.search(text, limit=20) if c.name.casefold() == text.casefold()]
        contact = named[0] if len(named) == 1 else None
    if contact is not None:
        return Target("contact", contact.name, contact)
    return Target("account", text)


def suggestions(store: ContactStore) -> list[str]:
    """Completion candidates: every contact's name and e-mails (and ``echo``)."""
    found: list[str] = ["echo"]
    for contact in store.all(include_blocked=False):
        found.append(contact.name)
        found.extend(contact.emails)
        if len(found) >= MAX_SUGGESTIONS:
            break
    return found
