"""aioice's mDNS module deferred (hello_tui/media/aioice_mdns.py): dnspython stays
unloaded until something needs more than ``is_mdns_hostname``, and the stand-in
matches the aioice it stands in for (these break on an aioice upgrade)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aioice

from hello_tui.media import aioice_mdns

AIOICE = Path(aioice.__file__).parent


def _real_mdns() -> Any:
    spec = importlib.machinery.PathFinder.find_spec("aioice.mdns", aioice.__path__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ice_uses_only_what_the_stand_in_knows() -> None:
    ice = (AIOICE / "ice.py").read_text()
    assert re.search(r"^from \. import .*\bmdns\b", ice, re.M)
    assert set(re.findall(r"\bmdns\.(\w+)", ice)) <= aioice_mdns.USED_BY_ICE
    others = [
        p.name for p in AIOICE.glob("*.py")
        if p.name not in ("ice.py", "mdns.py") and re.search(r"\bmdns\b", p.read_text())
        and re.search(r"import .*\bmdns\b|from \.mdns", p.read_text())
    ]  # fmt: skip
    assert others == []  # nothing else in aioice imports it


def test_the_stand_ins_answer_is_aioices() -> None:
    real = _real_mdns()
    assert real.MDNS_HOSTNAME_RE.pattern == aioice_mdns.MDNS_HOSTNAME_RE.pattern
    names = ["0f3c8b6e-2a1d-4e55-9a3b-7c2d1e0f9a8b.local", "abc.local", "a.b.local", "127.0.0.1"]
    names += ["host.example.org", ".local", "x" * 64 + ".local", "ABC.LOCAL"]
    for name in names:
        assert aioice_mdns.is_mdns_hostname(name) == real.is_mdns_hostname(name), name


def test_a_call_stack_loads_dnspython_only_when_mdns_is_used() -> None:
    script = """
import sys
import hello_tui.call.engine
import aioice.ice as ice
from hello_tui.media.aioice_mdns import Deferred
assert isinstance(ice.mdns, Deferred) and not ice.mdns.loaded
assert ice.mdns.is_mdns_hostname("abc.local") and not ice.mdns.is_mdns_hostname("10.0.0.1")
print(sorted(m for m in sys.modules if m == "dns" or m.startswith("dns.")))
create = ice.mdns.create_mdns_protocol  # the resolver: now the real module
assert ice.mdns.loaded and create.__module__ == "aioice.mdns"
assert ice.mdns.MDnsProtocol.__module__ == "aioice.mdns" and "dns.message" in sys.modules
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["[]", "ok"]
