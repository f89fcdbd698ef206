"""The wheel build compiles the AEC3 tuning shim when it can (docs/media.md "Audio
processing"); everything else is in pyproject.toml.

``build_py`` runs ``hello_tui/media/aec3_build.py`` (the one build script, which
``./dev.sh`` runs too) into the build tree. Any failure there is one ``note:`` line and
a pure wheel: installing hello-tui never fails because of the shim. A wheel that holds
the shim is tagged for this platform (``py3-none-linux_x86_64``: the shim is plain C
for ctypes, not tied to a Python version), so pip never installs it elsewhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIM = ("hello_tui", "media", "_aec3_shim.so")


def _aec3_build() -> ModuleType:
    # By path: importing the hello_tui package needs its run-time dependencies.
    spec = importlib.util.spec_from_file_location(
        "_hello_tui_aec3_build", HERE / "hello_tui" / "media" / "aec3_build.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithShim(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install: ./dev.sh builds it in the tree
            return
        out = Path(self.build_lib, *SHIM)
        if _aec3_build().build(out) is None:
            out.unlink(missing_ok=True)  # a stale one from an earlier build

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        shim = Path(self.build_lib, *SHIM)
        if not self.editable_mode and shim.is_file():
            outputs.append(str(shim))
        return outputs


class BdistWheelWithShim(bdist_wheel):
    def run(self) -> None:
        self.run_command("build")  # first, to know whether the shim is in (not run twice)
        build_py_cmd = self.get_finalized_command("build_py")
        if Path(build_py_cmd.build_lib, *SHIM).is_file():
            self.root_is_pure = False
            self.distribution.has_ext_modules = lambda: True
        super().run()

    def get_tag(self) -> tuple[str, str, str]:
        impl, abi, plat = super().get_tag()
        return (impl, abi, plat) if self.root_is_pure else ("py3", "none", plat)


setup(cmdclass={"build_py": BuildPyWithShim, "bdist_wheel": BdistWheelWithShim})
