"""``bench/server_pair_ab.py``: the variant takes each pair's place in turn
(the pairs are not alike), and each pair's figures are read from its own
lines of ``server_load.py``'s output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from tests.benches import load_bench

ab = load_bench("server_pair_ab.py")

_OUT = """\
this pair, open loop @500/s (of 1000)   4000           500     2.4    69.4   100.9    69.1  0 lost    info
other pair, open loop @500/s (of 1000)  4000           499     2.2    49.6    65.9    68.7  0 lost    info

- this pair, open loop @500/s (of 1000): 4000 exchanges, 32000 messages verified, 0 lost, 0 misrouted, 0 failed exchanges
- this pair, open loop @500/s (of 1000): CPU A 21%, B 18%; waiting for a CPU A 34%, B 26%; CPU ms per exchange A 0.440, B 0.375 (of which in the kernel A 0.135, B 0.095)
- other pair, open loop @500/s (of 1000): 4000 exchanges, 32000 messages verified, 1 lost, 2 misrouted, 0 failed exchanges
- other pair, open loop @500/s (of 1000): CPU A 23%, B 19%; waiting for a CPU A 33%, B 30%; CPU ms per exchange A 0.480, B 0.385 (of which in the kernel A 0.145, B 0.095)
"""  # noqa: E501


def test_each_pair_is_read_from_its_own_lines() -> None:
    pairs = ab.parse(_OUT)
    assert (pairs["this"].a, pairs["this"].b, pairs["this"].p99, pairs["this"].bad) == (
        0.440, 0.375, 100.9, 0,
    )  # fmt: skip
    assert (pairs["other"].a, pairs["other"].b, pairs["other"].rate, pairs["other"].bad) == (
        0.480, 0.385, 499, 3,
    )  # fmt: skip
    with pytest.raises(ValueError, match="other pair"):
        ab.parse(_OUT.replace("other pair", "another"))


def _args(**kw: object) -> argparse.Namespace:
    base = {"python": None, "other_python": None, "other_env": [], "other_code": None,
            "calls": 8000, "rate": 1000, "concurrency": 128}  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


def _opt(cmd: list[str], name: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == name]


def test_the_variant_takes_each_place_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELLO_GC", raising=False)
    args = _args(other_python="/opt/py313/bin/python", other_env=["HELLO_GC=default"])
    second, env2 = ab.command(args, variant_first=False)
    assert _opt(second, "--python-ab") == ["/opt/py313/bin/python"]
    assert _opt(second, "--server-python") == []  # this pair: the baseline, this interpreter
    assert _opt(second, "--env-ab") == ["HELLO_GC=default"] and "HELLO_GC" not in env2
    first, env1 = ab.command(args, variant_first=True)
    assert _opt(first, "--server-python") == ["/opt/py313/bin/python"]
    assert _opt(first, "--python-ab") == [sys.executable]
    # The first pair's environment is the bench's own; the second gets the baseline's.
    assert env1["HELLO_GC"] == "default" and _opt(first, "--env-ab") == ["HELLO_GC="]


def test_another_checkout_runs_its_own_bench_when_first(tmp_path: Path) -> None:
    args = _args(other_code=tmp_path)
    second, env2 = ab.command(args, variant_first=False)
    assert _opt(second, "--code-ab") == [str(tmp_path)] and env2["PYTHONPATH"] == str(ab.ROOT)
    first, env1 = ab.command(args, variant_first=True)
    assert first[1] == str(tmp_path / "bench" / "server_load.py")
    assert _opt(first, "--code-ab") == [str(ab.ROOT)] and env1["PYTHONPATH"] == str(tmp_path)
