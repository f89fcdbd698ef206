"""Build the AEC3 tuning shim (``aec3_shim.cpp`` -> ``_aec3_shim.so``): one implementation
for ``./dev.sh`` and the wheel build (``setup.py``), docs/media.md "Audio processing".

Standard library only, run as a file (``python hello_tui/media/aec3_build.py OUT``) or
loaded by path from ``setup.py``: importing ``hello_tui`` would need its dependencies,
which a build environment does not have.

The shim is compiled against the headers of the pinned pywebrtc-audio sdist (URL and
sha256 below; only its ``.h`` files are kept, in the user's cache) with the sdist's own
defines, and linked **without** the extension: its WebRTC symbols stay undefined in the
shared object and resolve at load time against the installed ``pywebrtc_audio``
extension, which ``aec3_tuned.load_shim`` makes global first. So a build environment
needs no pywebrtc-audio, and the result does not depend on the venv's path.

Any failure (no compiler, no network, another architecture, a compile error) is one
``note:`` line on stderr and ``build`` returns ``None``: the caller goes on without the
shim (echo cancellation then runs with the binding's default tuning).
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

PINNED = "0.2.0"  # aec3_tuned loads the shim only with this pywebrtc-audio installed
SDIST_URL = (
    "https://files.pythonhosted.org/packages/d8/b0/"
    "8d9e93083ac412cc758003d5e216d44f69b50619cdd0cfc7897e576eb90c/pywebrtc_audio-0.2.0.tar.gz"
)
SDIST_SHA256 = "cdc47c063439b033bdd6110d2e1119fd6e36c6e007ed824bc369c9a5e3cb307a"
SOURCE = Path(__file__).with_name("aec3_shim.cpp")
# The microphone's per-block path in C (media/capture_native.py), in the same object: it
# calls the shim's processor directly, and needs no header beyond the C++ library's.
CAPTURE_SOURCE = Path(__file__).with_name("capture_path.cpp")
# The send path in C (media/native_send.py): libopus, RTP, SRTP and sendto through
# function pointers Python hands it, so it links nothing either.
SEND_SOURCE = Path(__file__).with_name("send_path.cpp")
# The speaker's per-block path in C (media/playout_native.py): it feeds capture_path.cpp's
# pairing directly. No FMA contraction: its playout is pinned bit for bit to numpy's.
SPEAKER_SOURCE = Path(__file__).with_name("speaker_path.cpp")
# The receive path in C (media/native_recv.py): SRTP, the jitter buffer, libopus, into the
# speaker's playout (speaker_path.cpp's po_push), on a thread of its own.
RECV_SOURCE = Path(__file__).with_name("recv_path.cpp")
# Everything compiled into the one object (pyproject's package-data must ship each: a
# wheel or sdist without one cannot build the shim; tests/packaging/test_dependencies.py).
SOURCES = (SOURCE, CAPTURE_SOURCE, SEND_SOURCE, SPEAKER_SOURCE, RECV_SOURCE)
# Set (to anything but "" or "0") to build without the shim, e.g. a distributor's pure wheel.
SKIP_ENV = "HELLO_TUI_NO_AEC3_SHIM"

# The sdist's CMakeLists.txt defines (struct layouts depend on them).
DEFINES = ["-DWEBRTC_POSIX", "-DWEBRTC_LINUX", "-DWEBRTC_THREAD_RR", "-DWEBRTC_APM_DEBUG_DUMP=0"]
ARCH_DEFINES = {
    "x86_64": ["-DWEBRTC_ARCH_X86_FAMILY"],
    "aarch64": ["-DWEBRTC_ARCH_ARM64", "-DWEBRTC_ARCH_ARM_FAMILY", "-DWEBRTC_HAS_NEON"],
}


class Skip(Exception):
    """Why the shim is not built (one line)."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hello-tui"


def headers(cache: Path | None = None) -> Path:
    """The sdist's vendored headers, fetched once (sha256 checked) into the cache."""
    root = (cache or cache_dir()) / f"pywebrtc_audio-{PINNED}"
    hdr = root / "vendor" / "webrtc_audio"
    if (hdr / "compat_includes.h").is_file():
        return hdr
    try:
        with urllib.request.urlopen(SDIST_URL, timeout=60) as resp:
            data = resp.read()
    except OSError as exc:
        raise Skip(
            f"cannot fetch pywebrtc-audio {PINNED}'s sdist for its headers ({exc})"
        ) from None
    if hashlib.sha256(data).hexdigest() != SDIST_SHA256:
        raise Skip(f"pywebrtc-audio {PINNED}'s sdist does not match its sha256")
    top = f"pywebrtc_audio-{PINNED}/"
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.isfile()
            and m.name.startswith(top + "vendor/webrtc_audio/")
            and m.name.endswith(".h")
        ]
        for m in members:
            m.name = m.name[len(top) :]
        tar.extractall(tmp, members=members, filter="data")
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(root)  # atomic: a half-extracted tree is never taken for the headers
    except OSError:  # another build got there first
        shutil.rmtree(tmp, ignore_errors=True)
    if not (hdr / "compat_includes.h").is_file():
        raise Skip(f"pywebrtc-audio {PINNED}'s sdist has no vendor/webrtc_audio headers")
    return hdr


def compiler() -> str:
    cxx = os.environ.get("CXX") or "g++"
    path = shutil.which(cxx)
    if not path:
        raise Skip(f"no {cxx} (apt-get install g++)")
    return path


def command(cxx: str, hdr: Path, out: Path) -> list[str]:
    arch = ARCH_DEFINES.get(platform.machine())
    if arch is None:
        raise Skip(f"not built on {platform.machine()} (x86_64 and aarch64 only)")
    includes = [hdr, hdr / "audio_processing", hdr / "audio_processing" / "logging"]
    # Undefined symbols are allowed in a shared object (no -Wl,--no-undefined): they are
    # the extension's, resolved when aec3_tuned loads the shim after making it global.
    return [
        cxx, "-std=c++17", "-O2", "-fPIC", "-shared", *DEFINES, *arch,
        "-include", str(hdr / "compat_includes.h"),
        *(f"-I{d}" for d in [*includes, hdr / "abseil"]),
        "-Wno-deprecated-declarations", "-Wno-invalid-offsetof", "-ffp-contract=off",
        *(str(src) for src in SOURCES),
        "-o", str(out),
    ]  # fmt: skip


def _key(cxx: str) -> str:
    """What the object depends on: the source, the flags' inputs, the compiler."""
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    h = hashlib.sha256(b"".join(src.read_bytes() for src in SOURCES))
    for part in (Path(__file__).read_bytes(), platform.machine().encode(), version.stdout.encode()):
        h.update(part)
    return h.hexdigest()[:32]


def build(out: Path, *, log: Callable[[str], None] | None = None) -> Path | None:
    """Compile the shim to ``out``; ``None`` (after one note line) when it cannot be.

    A copy is kept in the cache under a key of the source, this script and the
    compiler, so a second build (dev.sh, the wheel from the sdist) takes no time."""
    say = log or (lambda line: print(line, file=sys.stderr))
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        say(f"note: AEC3 shim not built ({SKIP_ENV} is set): echo cancellation keeps "
            "pywebrtc-audio's default tuning")  # fmt: skip
        return None
    try:
        cxx = compiler()
        cached = cache_dir() / "aec3-shim" / f"{_key(cxx)}.so"
        if not cached.is_file():
            hdr = headers()
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.tmp{os.getpid()}")
            say("building the AEC3 shim (g++, ~8 s once)")
            proc = subprocess.run(
                command(cxx, hdr, tmp), capture_output=True, text=True, timeout=600
            )
            if proc.returncode:
                tmp.unlink(missing_ok=True)
                last = (proc.stderr.strip().splitlines() or ["?"])[-1]
                raise Skip(f"{Path(cxx).name} failed: {last[:300]}")
            tmp.replace(cached)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(f"{out.name}.tmp{os.getpid()}")
        shutil.copyfile(cached, tmp_out)
        tmp_out.chmod(0o755)
        tmp_out.replace(out)
        return out
    except Exception as exc:  # any failure at all: the build goes on without the shim
        say(f"note: AEC3 shim not built ({exc}): echo cancellation keeps pywebrtc-audio's "
            "default tuning")  # fmt: skip
        return None


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else SOURCE.with_name("_aec3_shim.so")
    build(out)
    return 0  # never fails: the shim is optional


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
