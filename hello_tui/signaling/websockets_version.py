"""websockets' ``version`` module without ``importlib.metadata``.

websockets' ``version.py`` imports ``importlib.metadata`` at module level (with
zipfile, email, csv, calendar, bz2, lzma: ~1.6 MiB of a call's heap, docs/media.md
"Memory") though a released build only uses it in a branch that never runs: its
values are a literal. This reads that literal from the installed file and puts an
equivalent module in ``sys.modules`` before websockets is imported (``cli/main.py``,
for every client command); anything else (a development build, a changed file)
leaves the real module to load.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

NAME = "websockets.version"
RELEASED = re.compile(r"^released = True$", re.M)
VALUES = re.compile(r'^tag = version = commit = "([0-9][0-9a-z.]*)"$', re.M)


def standin() -> types.ModuleType | None:
    """The stand-in built from the installed ``version.py``, or None if it does not
    read as a release's."""
    spec = importlib.util.find_spec("websockets")  # a top-level spec: imports nothing
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    found = VALUES.search(text)
    if RELEASED.search(text) is None or found is None:
        return None
    module = types.ModuleType(NAME, __doc__)
    module.__file__ = str(path)
    module.__all__ = ["tag", "version", "commit"]  # type: ignore[attr-defined]
    module.released = True  # type: ignore[attr-defined]
    module.tag = module.version = module.commit = found.group(1)  # type: ignore[attr-defined]
    return module


def install() -> bool:
    """Put the stand-in in place unless websockets is already imported; True if it is
    the module in use now."""
    if "websockets" not in sys.modules and NAME not in sys.modules:
        module = standin()
        if module is not None:
            sys.modules[NAME] = module
    return getattr(sys.modules.get(NAME), "__doc__", None) == __doc__
