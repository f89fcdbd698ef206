"""Declared dependencies match the imports (docs/install.md).

Every third-party package a module under hello_tui/ imports is declared in
``[project] dependencies``, or in the extra its module belongs to (and then it
is imported lazily, so the core runs without the extra); every declared
package is really imported; constraints.txt pins each one inside its range.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hello_tui"

# Modules allowed to import a package from an extra: {module file: extra}.
EXTRA_MODULES = {
    "hello_tui/media/video.py": "video",  # cv2, imported inside _cv2()
    "hello_tui/server/store/redis.py": "server",  # redis; server/app.py imports it lazily
    "hello_tui/server/eventloop.py": "server",  # uvloop, imported inside loop_factory()
    "hello_tui/server/store/resp.py": "server",  # hiredis, imported inside _load_hiredis()
}


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repo root
    name: str  # the dotted module name imported
    top: bool  # at module level (runs on import), not inside a function


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT).as_posix()
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(rel, a.name, not in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append(Import(rel, child.module, not in_function))
            nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            # `if TYPE_CHECKING:` never runs: its imports are for the type checker only.
            checking = isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            visit(child, in_function or nested or checking)

    visit(tree, False)
    return found


def _all_imports() -> list[Import]:
    return [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in _imports(path)]


def _third_party(imports: list[Import]) -> list[Import]:
    return [
        imp
        for imp in imports
        if (top := imp.name.split(".")[0]) not in sys.stdlib_module_names and top != "hello_tui"
    ]


def _project() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["project"]


def _names(reqs: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in reqs}


@functools.cache
def _providers() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    top = module.split(".")[0]
    dists = _providers().get(top)
    assert dists, f"{module} is imported but no installed distribution provides it"
    return {canonicalize_name(d) for d in dists}


def test_every_import_is_declared() -> None:
    project = _project()
    core = _names(project["dependencies"])
    extras = {k: _names(v) for k, v in project["optional-dependencies"].items()}
    imports = _all_imports()
    problems = []
    for imp in _third_party(imports):
        dists = _distributions(imp.name)
        if dists & core:
            continue
        extra = EXTRA_MODULES.get(imp.file)
        if extra and dists & extras[extra]:
            if imp.top:  # the module itself must then only be imported lazily
                dotted = imp.file.removesuffix(".py").replace("/", ".")
                eager = [i.file for i in imports if i.name == dotted and i.top]
                if eager:
                    problems.append(f"{dotted} needs [{extra}] but {eager} import it eagerly")
            continue
        where = "[project] dependencies" + (f" or the [{extra}] extra" if extra else "")
        problems.append(f"{imp.file} imports {imp.name} ({', '.join(dists)}), not in {where}")
    assert not problems, "\n".join(problems)


def test_every_declared_package_is_imported() -> None:
    project = _project()
    imported = set()
    for imp in _third_party(_all_imports()):
        imported |= _distributions(imp.name)
    declared = _names(project["dependencies"])
    for extra in ("video", "server"):
        declared |= _names(project["optional-dependencies"][extra])
    assert declared - imported == set(), "declared but never imported"


def test_numpy_is_core_and_redis_only_for_the_server() -> None:
    project = _project()
    assert "numpy" in _names(project["dependencies"])
    assert "redis" not in _names(project["dependencies"])
    redis_users = {i.file for i in _third_party(_all_imports()) if i.name.startswith("redis")}
    assert redis_users == {"hello_tui/server/store/redis.py"}


def test_aiortc_is_pinned_to_what_the_adapter_accepts() -> None:
    tree = ast.parse((PACKAGE / "media" / "aiortc_adapter.py").read_text(encoding="utf-8"))
    supported = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "SUPPORTED_AIORTC" for t in node.targets)
    )
    (req,) = [Requirement(r) for r in _project()["dependencies"] if r.startswith("aiortc")]
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"aiortc must be pinned: {req}"
    assert specs[0].version in supported, f"{req} but the adapter accepts {supported}"


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_constraints_pin_every_dependency_inside_its_range() -> None:
    project = _project()
    pins = _constraints()
    assert "hello-tui" not in pins
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside {req}"
        )


def test_the_tests_run_with_the_pinned_versions() -> None:
    """./dev.sh installs with -c constraints.txt: the venv running this matches it."""
    pins = _constraints()
    wrong = []
    for req in _project()["dependencies"]:
        name = canonicalize_name(Requirement(req).name)
        have = importlib.metadata.version(name)
        if have != pins[name]:
            wrong.append(f"{name} {have} (constraints.txt: {pins[name]})")
    assert not wrong, "re-run ./dev.sh to reinstall: " + ", ".join(wrong)


def test_every_source_of_the_aec3_shim_is_package_data() -> None:
    """A C source the shim compiles but the wheel and sdist do not ship: an installed
    hello-tui cannot build its shim (session 12's recv_path.cpp was missed this way)."""
    from hello_tui.media import aec3_build

    with (ROOT / "pyproject.toml").open("rb") as f:
        data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["hello_tui.media"]
    missing = [src.name for src in aec3_build.SOURCES if src.name not in data]
    assert not missing, f"add {missing} to [tool.setuptools.package-data] in pyproject.toml"
