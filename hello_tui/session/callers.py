"""Who a caller is to us: the contact behind an account name, the name shown
for it, and whether the call may ring at all.

One rule for both faces (the phone's ``screen`` and ``name_of`` hooks): a
caller is the contact with that e-mail address, else the contact whose name
folds to the same key (a blocked stranger is stored under the account name).
A blocked contact, do-not-disturb, or a caller outside an allow list
(``hello-tui answer --from``) is turned away ``busy`` before it rings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hello_tui.contacts.model import Contact
from hello_tui.contacts.search import fold_key
from hello_tui.contacts.store import ContactStore
from hello_tui.signaling.protocol import RejectReason

__all__ = ["Callers", "find_caller"]


def find_caller(store: ContactStore, caller: str) -> Contact | None:
    """The contact a caller's account name belongs to: by e-mail, else by an
    exact (folded) name."""
    if not caller:
        return None
    found = store.find_by_email(caller) if "@" in caller else None
    if found is not None:
        return found
    key = fold_key(caller)
    return next((c for c in store.all() if fold_key(c.name) == key), None)


class Callers:
    """Screening and naming of callers, from the address book.

    ``store``: an address book kept open (the TUI's); or ``open_store``: how to
    open one for each lookup (the CLI waits for calls for hours and must see
    edits made meanwhile; an address book that cannot be opened knows nobody).
    """

    def __init__(
        self,
        *,
        store: ContactStore | None = None,
        open_store: Callable[[], ContactStore] | None = None,
        allowed: Iterable[str] = (),
        dnd: Callable[[], bool] | None = None,
    ) -> None:
        if (store is None) == (open_store is None):
            raise ValueError("Callers needs a store or a way to open one, not both")
        self.store = store
        self.open_store = open_store
        self.allowed = frozenset(a.casefold() for a in allowed)  # empty: everyone
        self.dnd = dnd or (lambda: False)

    def contact_for(self, caller: str) -> Contact | None:
        if not caller:
            return None
        if self.store is not None:
            return find_caller(self.store, caller)
        assert self.open_store is not None
        try:
            store = self.open_store()
        except Exception:  # no usable address book: the caller is nobody we know
            return None
        try:
            return find_caller(store, caller)
        finally:
            store.close()

    def screen(self, caller: str) -> RejectReason | None:
        """Refuse before ringing (``busy``): do-not-disturb, a caller outside the
        allow list, a blocked contact. None: let it ring."""
        if self.dnd():
            return "busy"
        if self.allowed and caller.casefold() not in self.allowed:
            return "busy"
        contact = self.contact_for(caller)
        if contact is not None and contact.blocked:
            return "busy"
        return None

    def name_of(self, caller: str) -> str:
        """The contact's name for a caller, else the account name itself."""
        contact = self.contact_for(caller)
        return contact.name if contact is not None else caller

    def block(self, caller: str) -> Contact:
        """Block the contact behind ``caller`` (added as a blocked contact if unknown)."""
        if self.store is None:
            raise RuntimeError("blocking needs an open address book")
        contact = self.contact_for(caller)
        if contact is not None:
            return self.store.set_blocked(contact.id, True)
        emails = [caller] if "@" in caller else []
        notes = "" if emails else f"account name: {caller}"
        return self.store.add(Contact(name=caller, emails=emails, notes=notes, blocked=True))
