"""One malloc arena for the whole process (glibc), set before any thread starts.

glibc gives each thread that allocates while another holds an arena's lock an
arena of its own (a 64 MiB reservation, up to 8 per core), and what a thread's
arena once held stays resident: in a ``device:`` call on the pulse backend the
threads that open the devices, warm the call's first-use costs and build the
echo canceller, and libpulse's mainloop threads, left ~7 MiB there. With one
arena that memory is reused from the main heap instead (docs/media.md "Memory",
session 10: −2.5 to −3 MiB peak RSS per side, CPU unchanged). Allocation is
serialised on the one arena's lock, which costs nothing here: small blocks come
from each thread's own cache (tcache) without the lock, and nearly every
allocation of the call's threads happens under the GIL anyway.
"""

from __future__ import annotations

import os

M_ARENA_MAX = -8  # glibc's malloc.h


def user_arena_setting() -> bool:
    """Whether the user set the arena count themselves (their value wins)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in tunables


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """``mallopt(M_ARENA_MAX, arenas)`` on glibc unless the user set it; True if set.

    Only arenas created after this call are limited: call it before any thread."""
    if user_arena_setting():
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc only (not musl, macOS, Windows)
    except (AttributeError, OSError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
