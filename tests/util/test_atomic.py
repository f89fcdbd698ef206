from __future__ import annotations

import os
from pathlib import Path

import pytest

from hello_tui.util.atomic import atomic_write_text
from hello_tui.util.locking import LockTimeout, file_lock


def test_replaces_content_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(tmp_path) == ["f.toml"]


def test_failed_write_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    atomic_write_text(path, "precious")

    class Boom(Exception):
        pass

    class Exploding(str):
        def encode(self, *a: object, **k: object) -> bytes:  # type: ignore[override]
            raise Boom

    with pytest.raises(Boom):
        atomic_write_text(path, Exploding("x"))
    # A rename over a directory fails after the temp file was written.
    target_dir = tmp_path / "dir"
    target_dir.mkdir()
    (target_dir / "inside").write_text("x")
    with pytest.raises(OSError):
        atomic_write_text(target_dir, "y")
    assert path.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["dir", "f.toml"]


def test_keeps_existing_permissions(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("a")
    path.chmod(0o644)
    atomic_write_text(path, "b")
    assert path.stat().st_mode & 0o777 == 0o644
    fresh = tmp_path / "g"
    atomic_write_text(fresh, "c")
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_lock_excludes_and_times_out(tmp_path: Path) -> None:
    import multiprocessing

    lock = tmp_path / "x.lock"
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(lock), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with (
            pytest.raises(LockTimeout, match="another hello-tui process"),
            file_lock(lock, timeout=0.2),
        ):
            pass
    finally:
        release.set()
        holder.join(30)
    with file_lock(lock, timeout=5):
        pass


def _hold(path: str, ready: object, release: object) -> None:
    with file_lock(path):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]
