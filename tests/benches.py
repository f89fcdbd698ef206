"""A benchmark script under bench/ loaded as a module, for the tests that run it
small (the soak, the server-load smoke): the same code the figures come from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def load_bench(script: str) -> ModuleType:
    """``bench/<script>`` as a module named ``<stem>_bench``."""
    spec = importlib.util.spec_from_file_location(f"{Path(script).stem}_bench", BENCH_DIR / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module
