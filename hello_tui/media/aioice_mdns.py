"""aioice's mDNS module, loaded by the first mDNS candidate instead of at import.

``aioice.ice`` imports ``aioice.mdns`` at module level, and that imports
dnspython (~45 modules, ~4.5 MiB resident for the whole call: docs/media.md,
"Memory"). Its resolver is only needed when a remote candidate's address is
an mDNS name (``<uuid>.local``: a browser hiding its host address); every
other call only asks :func:`is_mdns_hostname`. :func:`defer` puts a stand-in
in ``sys.modules`` before aioice is imported: it answers
``is_mdns_hostname`` itself and loads the real module (and dnspython) on the
first other attribute asked for, then takes on all of its names.

This is aioice internals, like the adapter's: pinned by the adapter's import
guard (``SUPPORTED_AIOICE``, 0.13) and checked by
``tests/media/test_aioice_mdns.py``, which fails when ``aioice.ice`` uses
anything of ``mdns`` beyond :data:`USED_BY_ICE` or the pattern changes.
Stdlib only: it must run before anything imports aioice. The package
``__init__`` of ``call``, ``media`` and ``quality`` (the ones whose modules
import aiortc) call :func:`defer`; ``HELLO_TUI_AIOICE_MDNS=eager`` skips it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import sys
import threading
import types
from typing import Any

__all__ = ["MDNS_HOSTNAME_RE", "USED_BY_ICE", "Deferred", "defer", "is_mdns_hostname"]

NAME = "aioice.mdns"
MDNS_HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9-]{1,63}\.local$")  # aioice 0.13's, verbatim
# What aioice.ice reads of the module; MDnsProtocol only in an annotation at import.
USED_BY_ICE = frozenset({"MDnsProtocol", "create_mdns_protocol", "is_mdns_hostname"})


def is_mdns_hostname(name: str) -> bool:
    return MDNS_HOSTNAME_RE.match(name) is not None


class MDnsProtocol:
    """Stands in for ``aioice.mdns.MDnsProtocol`` in ``aioice.ice``'s annotations
    (evaluated at its import) until the real module is loaded."""


class Deferred(types.ModuleType):
    """``aioice.mdns`` until something needs more than :func:`is_mdns_hostname`."""

    _lock = threading.Lock()
    loaded = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self.load()
        return self.__dict__[name]

    def load(self) -> None:
        with self._lock:
            if self.loaded:
                return
            import aioice

            spec = importlib.machinery.PathFinder.find_spec(NAME, aioice.__path__)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot find {NAME}")
            real = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(real)
            # Every holder of this object (aioice.ice's ``mdns``) now sees the real names.
            self.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})
            self.__file__ = real.__file__
            self.loaded = True


def defer() -> None:
    """Install the stand-in, unless aioice (or its mDNS module) is already imported."""
    if NAME in sys.modules or "aioice" in sys.modules:
        return
    if os.environ.get("HELLO_TUI_AIOICE_MDNS") == "eager":
        return
    module = Deferred(NAME, __doc__)
    module.__spec__ = importlib.machinery.ModuleSpec(NAME, None)
    module.__dict__.update(
        MDNS_HOSTNAME_RE=MDNS_HOSTNAME_RE, is_mdns_hostname=is_mdns_hostname,
        MDnsProtocol=MDnsProtocol,
    )  # fmt: skip
    sys.modules[NAME] = module
