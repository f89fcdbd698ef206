"""Local contacts (promise P3): stored on this device only, never sent anywhere.

Nothing in this package opens a network connection; a test asserts it.
"""

from hello_tui.contacts.model import Contact, ContactError, ContactNotFound, new_contact_id
from hello_tui.contacts.store import ContactStore, open_store

__all__ = [
    "Contact",
    "ContactError",
    "ContactNotFound",
    "ContactStore",
    "new_contact_id",
    "open_store",
]
