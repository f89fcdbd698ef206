"""Where server state lives: an abstract :class:`Store`, in memory by default."""

from hello_tui.server.store.base import DeliveryHandler, Store
from hello_tui.server.store.memory import MemoryStore

__all__ = ["DeliveryHandler", "MemoryStore", "Store"]
