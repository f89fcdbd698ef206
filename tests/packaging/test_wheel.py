"""Installed like any Python tool (docs/install.md): build the sdist and the
wheel from a clean copy of the source tree, install the wheel (not editable)
into a fresh venv with the pins of constraints.txt, and run it from outside the
tree with PYTHONPATH unset: ``--version``, an echo call, the TUI in a real
80x24 terminal, then the ``video`` extra on top.

The first run downloads the dependencies (PyPI, or the configured index); pip's
cache makes later runs fast.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hello_tui import __version__
from tests.packaging.terminal import Terminal

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache"}
# Read at import, before any fixture moves HOME or XDG_* (pip's config and cache live there).
PIP_ENV = {
    k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
}
NO_INDEX = (
    "installing the wheel's dependencies failed. This step needs the package index "
    "(PyPI or the one pip is configured with), or a pip cache that already holds "
    "the versions in constraints.txt. pip said:\n"
)


def _run(argv: list[str], *, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


def _ok(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _source_files() -> list[Path]:
    """The files of the tree as a clone would have them (tracked + new, not ignored)."""
    if shutil.which("git") and (ROOT / ".git").exists():
        proc = _run(["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"])
        if proc.returncode == 0:
            return [Path(p) for p in proc.stdout.split("\0") if p and (ROOT / p).is_file()]
    return [
        path.relative_to(ROOT)
        for path in ROOT.rglob("*")
        if path.is_file() and not _generated(path.relative_to(ROOT).parts)
    ]


def _generated(parts: tuple[str, ...]) -> bool:
    return bool(NOT_SOURCE & set(parts)) or any(p.endswith((".egg-info", ".pyc")) for p in parts)


@dataclass
class Built:
    src: Path  # the clean copy the artifacts were built from
    sdist: Path
    wheel: Path  # built from the tree (what `pipx install .` does)
    wheel_from_sdist: Path  # built from the unpacked sdist (what PyPI users build)
    runtime_files: list[str]  # every non-Python file under hello_tui/
    build_python: Path  # the build venv's (the backend pyproject.toml asks for)


BUILD = """\
import sys
from setuptools import build_meta
kind, out = sys.argv[1], sys.argv[2]
print(getattr(build_meta, "build_" + kind)(out))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("build")
    src = tmp / "src"
    for rel in _source_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    # A build venv of its own: the backend pyproject.toml asks for, nothing else.
    venv = tmp / "build-venv"
    _ok(_run([sys.executable, "-m", "venv", str(venv)]), "python -m venv")
    py = str(venv / "bin" / "python")
    requires = _build_requires(src)
    proc = _run([py, "-m", "pip", "install", "-q", *requires], env=PIP_ENV)
    if proc.returncode:
        pytest.fail(NO_INDEX + proc.stderr[-2000:])
    out = tmp / "dist"

    def build(kind: str, project: Path, where: Path) -> Path:
        proc = _ok(_run([py, "-c", BUILD, kind, str(where)], cwd=project), f"build {kind}")
        return where / proc.stdout.strip().splitlines()[-1]

    sdist = build("sdist", src, out)
    wheel = build("wheel", src, out / "tree")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel_from_sdist = build("wheel", unpacked, out / "sdist")
    runtime = sorted(
        p.relative_to(src).as_posix()
        for p in (src / "hello_tui").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )
    return Built(src, sdist, wheel, wheel_from_sdist, runtime, Path(py))


def _build_requires(src: Path) -> list[str]:
    import tomllib

    with (src / "pyproject.toml").open("rb") as f:
        return list(tomllib.load(f)["build-system"]["requires"])


def test_the_runtime_files_are_in_the_wheel_and_the_sdist(built: Built) -> None:
    assert "hello_tui/tui/styles.tcss" in built.runtime_files
    assert "hello_tui/server/web/index.html" in built.runtime_files
    wheel = set(zipfile.ZipFile(built.wheel).namelist())
    with tarfile.open(built.sdist) as tar:
        top = f"hello_tui-{__version__}/"
        sdist = {m.name.removeprefix(top) for m in tar.getmembers() if m.isfile()}
    for rel in built.runtime_files:
        assert rel in wheel, f"{rel} is not in the wheel: add it to [tool.setuptools.package-data]"
        assert rel in sdist, f"{rel} is not in the sdist"
    for rel in ("LICENSE", "README.md", "constraints.txt", "pyproject.toml"):
        assert rel in sdist, f"{rel} is not in the sdist"
    from_sdist = set(zipfile.ZipFile(built.wheel_from_sdist).namelist())
    assert from_sdist == wheel, "a wheel built from the sdist differs from one built from the tree"


# ---------------------------------------------------------------- the AEC3 shim
SHIM = "hello_tui/media/_aec3_shim.so"


def _shim_expected() -> bool:
    """With g++ the wheel build compiles the shim (media/aec3_build.py); CI has g++
    (dev.sh's packages), so there a missing shim fails instead of skipping."""
    return bool(shutil.which("g++") or os.environ.get("CI"))


def _wheel_meta(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as whl:
        text = whl.read(f"hello_tui-{__version__}.dist-info/WHEEL").decode()
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_the_wheel_holds_the_aec3_shim_tagged_for_this_platform(built: Built) -> None:
    if not _shim_expected():
        pytest.skip("no g++ here: the wheel build skips the AEC3 shim")
    import platform

    for wheel in (built.wheel, built.wheel_from_sdist):
        assert SHIM in zipfile.ZipFile(wheel).namelist(), (
            f"{wheel.name} has no AEC3 shim although g++ is installed "
            "(setup.py runs hello_tui/media/aec3_build.py: its note line says why)"
        )
        meta = _wheel_meta(wheel)
        # A linux .so: pip must never install this wheel on another platform.
        assert meta["Tag"] == f"py3-none-linux_{platform.machine()}", meta
        assert meta["Root-Is-Purelib"] == "false", meta
    assert built.sdist.name.endswith(".tar.gz")
    with tarfile.open(built.sdist) as tar:  # the source builds it; the binary is not shipped
        assert not any(m.name.endswith("_aec3_shim.so") for m in tar.getmembers())


@pytest.fixture(scope="module")
def pure_wheel(built: Built, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel built where there is no compiler: a PATH without g++ (the tree's
    build/ still holds the shim of the first build: it must not get in)."""
    out = tmp_path_factory.mktemp("pure")
    bare = out / "bin"
    bare.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CXX"} | {"PATH": str(bare)}
    proc = _ok(
        _run([str(built.build_python), "-c", BUILD, "wheel", str(out)], cwd=built.src, env=env),
        "build wheel without g++",
    )
    return out / proc.stdout.strip().splitlines()[-1], proc.stderr


def test_without_gxx_the_build_makes_a_pure_wheel(
    built: Built, pure_wheel: tuple[Path, str]
) -> None:
    wheel, log = pure_wheel
    notes = [line for line in log.splitlines() if "AEC3 shim not built" in line]
    assert notes == [
        "note: AEC3 shim not built (no g++ (apt-get install g++)): echo cancellation keeps "
        "pywebrtc-audio's default tuning"
    ], log[-2000:]
    meta = _wheel_meta(wheel)
    assert (meta["Tag"], meta["Root-Is-Purelib"]) == ("py3-none-any", "true"), meta
    names = set(zipfile.ZipFile(wheel).namelist())
    assert SHIM not in names
    full = set(zipfile.ZipFile(built.wheel).namelist()) - {SHIM}
    assert {n for n in names if ".dist-info/" not in n} == {
        n for n in full if ".dist-info/" not in n
    }


def test_the_license_is_in_the_metadata(built: Built) -> None:
    dist_info = f"hello_tui-{__version__}.dist-info"
    with zipfile.ZipFile(built.wheel) as whl:
        metadata = whl.read(f"{dist_info}/METADATA").decode()
        license_text = whl.read(f"{dist_info}/licenses/LICENSE").decode()
    assert "License-Expression: MPL-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("Mozilla Public License Version 2.0\n")


# ---------------------------------------------------------------- installed
@dataclass
class Installed:
    venv: Path
    cwd: Path  # outside the source tree
    env: dict[str, str]  # PYTHONPATH unset, a throwaway HOME and XDG directories

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        argv = [str(self.venv / "bin" / args[0]), *args[1:]]
        return _run(argv, cwd=self.cwd, env=self.env, timeout=timeout, stdin=subprocess.DEVNULL)

    def pip_install(self, requirement: str) -> None:
        """pip with the caller's own settings (index, cache): only hello-tui is isolated."""
        argv = [str(self.venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
        argv += ["-c", str(ROOT / "constraints.txt"), requirement]
        proc = _run(argv, cwd=self.cwd, env=PIP_ENV, timeout=1800)
        if proc.returncode:
            pytest.fail(NO_INDEX + proc.stderr[-3000:])


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    # A fresh venv: no --system-site-packages, nothing from the shared .venv.
    _ok(_run([sys.executable, "-m", "venv", str(venv)]), "python -m venv")
    home = tmp / "home"
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LANG": "C.UTF-8",
    }
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    inst = Installed(venv, cwd, env)
    # The core first (no extra): everything but the camera must work with it.
    inst.pip_install(str(built.wheel))
    yield inst


def test_it_runs_from_the_installed_wheel(installed: Installed) -> None:
    proc = _ok(
        installed.run("python", "-c", "import hello_tui; print(hello_tui.__file__)"), "import"
    )
    where = Path(proc.stdout.strip())
    assert where.is_relative_to(installed.venv), f"imported from {where}, not the venv"
    proc = _ok(installed.run("hello-tui", "--version"), "hello-tui --version")
    assert proc.stdout.strip() == f"hello-tui {__version__}"
    check = (
        "import importlib.resources as r; "
        "print(r.files('hello_tui.tui').joinpath('styles.tcss').is_file())"
    )
    assert _ok(installed.run("python", "-c", check), "stylesheet").stdout.strip() == "True"
    _ok(installed.run("python", "-m", "pip", "check"), "pip check")


def test_an_echo_call_from_the_installed_wheel(installed: Installed) -> None:
    proc = installed.run(
        "hello-tui", "call", "echo", "--audio-in", "sine:440", "--audio-out", "null:",
        "--duration", "2", "--json",
    )  # fmt: skip
    _ok(proc, "hello-tui call echo")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    kinds = [e["kind"] for e in events]
    assert "connected" in kinds and "media-flowing" in kinds, kinds
    (ended,) = [e for e in events if e["kind"] == "ended"]
    assert (ended["reason"], ended["stage"], ended["outcome"]) == (
        "hangup",
        "connected",
        "completed",
    )
    (stats,) = [e for e in events if e["kind"] == "stats"]
    assert stats["exit_code"] == 0 and stats["frames_received"] > 0


def test_doctor_from_the_installed_wheel(installed: Installed) -> None:
    """A new user's first diagnosis: every check answers, nothing fails on a
    fresh profile with no server configured (embedded loopback)."""
    proc = installed.run("hello-tui", "doctor", "--no-level", "--json")
    checks = {c["check"]: c for c in json.loads(proc.stdout)}
    assert {"config", "portaudio", "server", "account", "ice", "log"} <= set(checks), checks
    failed = {k: c for k, c in checks.items() if c["status"] == "FAIL"}
    assert proc.returncode == 0 and not failed, (proc.stderr, failed)
    # The wheel's AEC3 shim loads against the installed pywebrtc-audio: our tuning runs.
    if _shim_expected():
        assert checks["echo-cancel"]["detail"].startswith("AEC3 with our tuning"), checks


def test_the_pure_wheel_runs_with_the_default_tuning(
    pure_wheel: tuple[Path, str], installed: Installed, tmp_path: Path
) -> None:
    """Installed in a venv of its own (the dependencies borrowed from the installed
    venv through a .pth, after its own site-packages), it runs and says which tuning."""
    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)]), "python -m venv")
    (site,) = venv.glob("lib/python*/site-packages")
    (deps,) = installed.venv.glob("lib/python*/site-packages")
    argv = [
        str(installed.venv / "bin" / "python"),
        "-m",
        "pip",
        "--python",
        str(venv / "bin" / "python"),
    ]
    argv += ["install", "-q", "--no-deps", "--no-compile", str(pure_wheel[0])]
    _ok(_run(argv, env=PIP_ENV), "pip install pure wheel")
    (site / "zz_deps.pth").write_text(f"{deps}\n")  # after: pip would see hello-tui there
    env = installed.env | {"PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    proc = _run(
        [str(venv / "bin" / "hello-tui"), "doctor", "--no-level", "--json"],
        cwd=installed.cwd, env=env, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    checks = {c["check"]: c for c in json.loads(proc.stdout)}
    assert proc.returncode == 0, proc.stderr
    where = checks["echo-cancel"]["detail"]
    assert where.startswith("AEC3 with pywebrtc-audio's default tuning"), checks
    assert "_aec3_shim.so" in where  # why: not built


def test_a_video_call_needs_no_extra(installed: Installed) -> None:
    """The test picture and the terminal video work from the core (the extra is the camera)."""
    proc = installed.run(
        "hello-tui", "call", "--video=pattern:", "--audio-in", "sine:440", "--audio-out",
        "null:", "--duration", "2", "--json", "echo",
    )  # fmt: skip
    _ok(proc, "hello-tui call --video=pattern: echo")
    (stats,) = [e for e in map(json.loads, proc.stdout.splitlines()) if e["kind"] == "stats"]
    assert stats["exit_code"] == 0 and stats["video_frames_received"] > 0


def test_the_tui_reaches_its_main_screen_and_quits_cleanly(
    installed: Installed, tmp_path: Path
) -> None:
    term = Terminal(tmp_path)
    try:
        term.start([str(installed.venv / "bin" / "hello-tui")], installed.env, installed.cwd)
        term.wait_screen(
            lambda s: "Search contacts" in s and "● online" in s,
            "main screen with the embedded server reachable",
        )
        term.keys("C-q")
        code = term.wait_exit()
        screen = term.screen()
    finally:
        term.close()
    assert code == 0, screen
    assert not screen.strip(), f"the TUI left output behind:\n{screen}"


def test_serve_redis_without_the_server_extra_says_what_to_install(
    installed: Installed,
) -> None:
    proc = installed.run(
        "hello-tui", "serve", "--redis", "redis://127.0.0.1:9/0",
        "--secret-file", str(installed.cwd / "secret"),
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "hello-tui: error: --redis needs the Redis client: pip install 'hello-tui[server]'"
    ]


def test_the_video_extra_installs_on_top(built: Built, installed: Installed) -> None:
    installed.pip_install(f"{built.wheel}[video]")
    _ok(installed.run("python", "-c", "import cv2"), "import cv2")
    _ok(installed.run("python", "-m", "pip", "check"), "pip check")
    _ok(installed.run("hello-tui", "--version"), "hello-tui --version")
