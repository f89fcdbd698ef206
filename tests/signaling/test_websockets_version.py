"""websockets' version module without importlib.metadata (signaling/websockets_version.py):
the stand-in says what the real module says, and steps aside for anything else."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hello_tui.signaling import websockets_version

REAL = (
    "import json, websockets.version as v; "
    "print(json.dumps([v.released, v.tag, v.version, v.commit]))"
)
CLIENT = (
    "import json, sys; from hello_tui.signaling import websockets_version as w; w.install(); "
    "import hello_tui.signaling.client, websockets, websockets.http11 as h; "
    "print(json.dumps([websockets.__version__, h.USER_AGENT, 'importlib.metadata' in sys.modules]))"
)


def _run(code: str) -> list[object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def test_the_standin_says_what_the_installed_module_says() -> None:
    real = _run(REAL)
    module = websockets_version.standin()
    assert module is not None, "the installed websockets/version.py no longer reads as a release"
    assert [module.released, module.tag, module.version, module.commit] == real
    version, agent, metadata = _run(CLIENT)  # the CLI puts it in place
    assert version == real[1]
    assert isinstance(agent, str) and agent.endswith(f"websockets/{real[1]}")
    assert metadata is False


@pytest.mark.parametrize(
    "text",
    [
        'released = False\n\ntag = version = commit = "17.5"\n',  # a development build
        'released = True\n\ntag = "17.5"\nversion = get_version(tag)\n',  # another layout
    ],
)
def test_anything_but_a_release_file_keeps_the_real_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    (tmp_path / "version.py").write_text(text)
    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    assert websockets_version.standin() is None
