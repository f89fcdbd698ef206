"""Mutation testing of the pure core modules: do their fast tests notice a wrong line?

Usage (from the worktree root, one module at a time; ~1-5 min each on 2 cores):

    PYTHONPATH=$PWD .venv/bin/python bench/mutation.py quality.mos
    PYTHONPATH=$PWD .venv/bin/python bench/mutation.py --all
    PYTHONPATH=$PWD .venv/bin/python bench/mutation.py media.endpoint --show 12,40

Each mutant is one small change to the module's syntax tree: a comparison
flipped or moved across its boundary (``<`` → ``<=``, ``==`` → ``!=``, ``in`` →
``not in``), an integer or float constant ±1, a boolean flipped, ``+``/``-`` and
``*``/``/`` swapped, ``and``/``or`` swapped, a condition negated, a ``not``
dropped, ``min``/``max`` swapped, a ``return`` returning ``None``. Never
mutated: docstrings, imports, ``__all__``, function annotations (strings at
run time) and ``slots=`` (memory only). The
module's own fast test files then run against it (``pytest -x``) in a forked
child, with a timeout; a mutant is *killed* when they fail. Survivors are
printed with their line. A survivor that is equivalent (no test could ever
tell it apart: e.g. ``<`` vs ``<=`` where both sides can never be equal) is
listed in :data:`EQUIVALENT` with its reason and left out of the score.

Why not mutmut or cosmic-ray: both work (and are installable), but the
project's tests import from the worktree by PYTHONPATH, which mutmut 3's
copied ``mutants/`` tree and cosmic-ray's session files do not fit without
configuration per module; this runner is ~250 lines, needs nothing beyond
the standard library and pytest, and forks after the heavy third-party
imports, so a mutant costs the test run only (~0.1-0.5 s instead of ~2 s).
The mutated module is loaded by an import hook from memory: the working
tree is never written, so an interrupted run leaves nothing behind.

Not in CI (too slow); run before an issue touching one of these modules is
called resolved (docs/testing.md has the scores and the equivalent mutants).
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import importlib.abc
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# module (under hello_tui) -> its own fast test files (pure: no server, no devices).
MODULES: dict[str, tuple[str, ...]] = {
    "quality.mos": ("tests/quality/test_mos.py",),
    "quality.summary": ("tests/quality/test_summary_render_sample.py",),
    "quality.sample": ("tests/quality/test_summary_render_sample.py",),
    "media.endpoint": ("tests/media/test_endpoint.py",),
    "signaling.protocol": ("tests/signaling/test_protocol.py",),
    "signaling.roomcrypt": ("tests/signaling/test_roomcrypt.py",),
    "contacts.vcard": (
        "tests/contacts/test_vcard.py",
        "tests/contacts/test_vcard_edges.py",
        "tests/contacts/test_vcard_recovery.py",
    ),
    "contacts.csv_google": ("tests/contacts/test_csv.py",),
    "contacts.search": ("tests/contacts/test_search.py",),
    "server.ids": ("tests/server/test_ids.py",),
}

# Equivalent mutants: (module, line, mutation description) -> why no test can tell.
# Keep each reason short and checkable; docs/testing.md lists them too.
EQUIVALENT: dict[tuple[str, int, str], str] = {
    ("quality.mos", 32, "< -> <="): "the delay knee is continuous: both branches give 4 at Le 160",
    ("quality.mos", 39, "<= -> <"): "the polynomial is exactly 1.0 at R = 0",
    ("quality.mos", 41, ">= -> >"): "the polynomial is exactly 4.5 at R = 100",
    ("quality.mos", 61, ">= -> >"): "differs only at exactly threshold - 1e-9 (a float tolerance)",
    ("signaling.roomcrypt", 78, "-x -> x"): "b64decode ignores excess padding: len % 4 pads enough",
    ("contacts.csv_google", 104, "return None"): "the one caller reads name() or ...: both falsy",
    ("contacts.csv_google", 221, "default=0 -> 1"): "0 or 1 and 1 or 1 are both 1",
    ("contacts.csv_google", 222, "default=0 -> 1"): "0 or 1 and 1 or 1 are both 1",
    ("contacts.csv_google", 138, "1000 -> 1001"): "reorders only past a 'Phone 999 - Value' column",
    ("contacts.csv_google", 138, "1000 -> 999"): "reorders only past a 'Phone 999 - Value' column",
    # _fold's fast path only skips work: folding a line that fits gives one piece, and
    # the UTF-8 loop gives the ASCII slicing's pieces on ASCII text.
    ("contacts.vcard", 569, "<= -> <"): "_fold's fast path: folding a fitting line is a no-op",
    ("contacts.vcard", 569, "75 -> 74"): "_fold's fast path: folding a fitting line is a no-op",
    ("contacts.vcard", 569, "or -> and"): "_fold's fast path: folding a fitting line is a no-op",
    ("contacts.vcard", 571, "negate condition"): "the UTF-8 loop cuts ASCII the same way",
    ("contacts.vcard", 143, "0 -> 1"): "stray_to is always set with stray_from, before a read",
    ("contacts.vcard", 143, "0 -> -1"): "stray_to is always set with stray_from, before a read",
    (
        "contacts.vcard",
        146,
        "1 -> 2",
    ): "BEGIN/END fullmatch never match a line opening with a blank",
    (
        "contacts.vcard",
        146,
        "1 -> 0",
    ): "BEGIN/END fullmatch never match a line opening with a blank",
    ("contacts.vcard", 197, "0 -> 1"): "total is read only when progress is given",
    ("contacts.vcard", 197, "0 -> -1"): "total is read only when progress is given",
    ("contacts.vcard", 263, "1 -> 2"): "split(':', 2)[0] is the same first piece",
    ("contacts.vcard", 274, "0 -> 1"): "no line number: the index is negative and rejected anyway",
    ("contacts.vcard", 274, "0 -> -1"): "no line number: the index is negative and rejected anyway",
    (
        "contacts.vcard",
        275,
        "0 -> -1",
    ): "vobject never blames line 1 (our own BEGIN), so index != -1",
    ("contacts.vcard", 272, "transform=False -> True"): "no behaviour under HELLO-RAW-VCARD",
    ("contacts.vcard", 514, "1024 -> 1023"): "10 MiB // (1023 * 1024) still floors to 10",
    ("contacts.vcard", 288, "0 -> -1"): "exactly one component here: [0] is [-1]",
    ("contacts.vcard", 298, "return None"): "the one caller reads name or None: both falsy",
    ("contacts.vcard", 393, "- -> +"): "padding longer than needed: only parts[:5] is read",
    ("contacts.vcard", 393, "5 -> 6"): "padding longer than needed: only parts[:5] is read",
    ("contacts.vcard", 489, "5 -> 4"): "a leading ':' cannot change header.endswith(';base64')",
    ("contacts.vcard", 524, "-x -> x"): "b64decode ignores excess padding: len % 4 pads enough",
    ("signaling.protocol", 40, "max_length=43 -> 44"): "the pattern allows 43 characters or none",
    ("signaling.protocol", 511, "kw_only=True -> False"): "_Body has no fields; each body sets it",
}


@dataclass(frozen=True, slots=True)
class Mutant:
    index: int  # position in the module's mutant list (stable while the source is)
    line: int
    what: str  # e.g. "< -> <="


_CMP_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_BIN_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
_OP_TEXT = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**",
}  # fmt: skip


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, ``__all__``, function annotations
    (strings at run time under ``from __future__ import annotations``)."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        if docstring and isinstance(first.value.value, str):  # type: ignore[union-attr]
            mark(first)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            mark(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                mark(arg.annotation)
            for arg in (node.args.vararg, node.args.kwarg):
                if arg is not None:
                    mark(arg.annotation)
        if isinstance(node, ast.ImportFrom | ast.Import):
            mark(node)
        # ``slots=True`` only saves memory: no behaviour a caller may rely on (equivalent).
        if isinstance(node, ast.keyword) and node.arg == "slots":
            mark(node)
    return skip


def _variants(node: ast.AST, label: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Every (description, replacement node) for one node; ``label`` names a
    keyword argument's constant ("kw_only=True -> False")."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in _CMP_SWAPS.get(type(op), ()):
                mutated = copy.deepcopy(node)
                mutated.ops[i] = new()
                yield f"{_OP_TEXT[type(op)]} -> {_OP_TEXT[new]}", mutated
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BIN_SWAPS:
        new_op = _BIN_SWAPS[type(node.op)]
        mutated = copy.deepcopy(node)
        mutated.op = new_op()
        yield f"{_OP_TEXT[type(node.op)]} -> {_OP_TEXT[new_op]}", mutated
    elif isinstance(node, ast.BoolOp):
        mutated = copy.deepcopy(node)
        mutated.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield ("and -> or" if isinstance(node.op, ast.And) else "or -> and"), mutated
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield f"{label}{value} -> {not value}", ast.Constant(not value)
        elif isinstance(value, int | float):
            yield f"{label}{value!r} -> {value + 1!r}", ast.Constant(value + 1)
            yield f"{label}{value!r} -> {value - 1!r}", ast.Constant(value - 1)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "not x -> x", copy.deepcopy(node.operand)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "-x -> x", copy.deepcopy(node.operand)
    elif isinstance(node, ast.If | ast.While | ast.IfExp):
        mutated = copy.deepcopy(node)
        mutated.test = ast.UnaryOp(ast.Not(), mutated.test)
        yield "negate condition", mutated
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        swap = {"min": "max", "max": "min"}.get(node.func.id)
        if swap:
            mutated = copy.deepcopy(node)
            mutated.func = ast.Name(swap, ast.Load())
            yield f"{node.func.id} -> {swap}", mutated
    elif isinstance(node, ast.Return) and node.value is not None and not _is_none(node.value):
        yield "return None", ast.Return(ast.Constant(None))


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target, self.replacement = target, replacement

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return self.replacement
        return super().visit(node)


def mutants(source: str) -> list[tuple[Mutant, str]]:
    """Every mutant of ``source`` with its mutated source text."""
    tree = ast.parse(source)
    skip = _skipped_nodes(tree)
    labels = {id(k.value): f"{k.arg}=" for k in ast.walk(tree) if isinstance(k, ast.keyword)}
    found: list[tuple[Mutant, str]] = []
    for node in list(ast.walk(tree)):
        if id(node) in skip:
            continue
        for what, replacement in _variants(node, labels.get(id(node), "")):
            tree_copy = ast.parse(source)  # the same walk order: find the twin node
            twin = next(
                n for n, o in zip(ast.walk(tree_copy), ast.walk(tree), strict=True) if o is node
            )
            mutated = ast.fix_missing_locations(_Replace(twin, replacement).visit(tree_copy))
            mutant = Mutant(len(found), getattr(node, "lineno", 0), what)
            found.append((mutant, ast.unparse(mutated)))
    return found


class _MutantLoader(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module's mutated source from memory (the file is never written)."""

    def __init__(self, name: str, path: Path, source: str) -> None:
        self.name, self.path = name, path
        self.code = compile(source, str(path), "exec")

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname != self.name:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.path))

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return None

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        module.__file__ = str(self.path)
        exec(self.code, module.__dict__)


def _run_tests(name: str, path: Path, source: str | None, tests: tuple[str, ...], timeout: float):
    """Run ``tests`` in a forked child against ``source`` (None: the real module).
    Returns (passed, seconds); a timeout counts as failed (the mutant hangs: killed)."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            for mod in [m for m in sys.modules if m.split(".")[0] in ("hello_tui", "tests")]:
                del sys.modules[mod]
            if source is not None:
                sys.meta_path.insert(0, _MutantLoader(name, path, source))
            import pytest

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
            code = int(pytest.main(args))
        finally:
            os._exit(code)
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) == 0, time.monotonic() - started
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False, time.monotonic() - started
        time.sleep(0.01)


def _preload(tests: tuple[str, ...]) -> bool:
    """Run the tests once in this process (the baseline): pytest's plugins and the
    tests' third-party imports are then warm, and each forked child pays only for
    hello_tui and the tests themselves (~0.4 s instead of ~2 s)."""
    import pytest

    sys.path.insert(0, str(ROOT))
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        passed = pytest.main(["-q", "-p", "no:cacheprovider", *tests]) == 0
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    for mod in [m for m in sys.modules if m.split(".")[0] in ("hello_tui", "tests")]:
        del sys.modules[mod]
    return passed


def run_module(module: str, show: set[int]) -> tuple[int, int, int, list[str]]:
    """(killed, survived, equivalent, survivor lines) for one module."""
    tests = MODULES[module]
    name = f"hello_tui.{module}"
    path = ROOT / "hello_tui" / (module.replace(".", "/") + ".py")
    source = path.read_text()
    os.chdir(ROOT)
    if not _preload(tests):
        sys.exit(f"{module}: its tests fail on the unmutated code: fix that first")
    ok, base = _run_tests(name, path, source, tests, 300)  # the hook itself is harmless
    if not ok:
        sys.exit(f"{module}: the tests fail with the unmutated source loaded by the hook")
    timeout = max(10.0, base * 4)
    killed = survived = equivalent = 0
    survivors: list[str] = []
    found = mutants(source)
    lines = source.splitlines()
    for mutant, mutated in found:
        if mutant.index in show:
            print(f"--- mutant {mutant.index}:\n{mutated}")
        key = (module, mutant.line, mutant.what)
        passed, _ = _run_tests(name, path, mutated, tests, timeout)
        if not passed:
            killed += 1
        elif key in EQUIVALENT:
            equivalent += 1
        else:
            survived += 1
            text = lines[mutant.line - 1].strip() if mutant.line else ""
            survivors.append(f"  #{mutant.index} line {mutant.line}: {mutant.what}   | {text}")
    return killed, survived, equivalent, survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"any of: {', '.join(MODULES)}")
    parser.add_argument("--all", action="store_true", help="every module, one at a time")
    parser.add_argument("--list", action="store_true", help="only count the mutants")
    parser.add_argument("--show", default="", help="print these mutants' source (comma list)")
    args = parser.parse_args()
    chosen = list(MODULES) if args.all else args.modules
    unknown = [m for m in chosen if m not in MODULES]
    if unknown or not chosen:
        parser.error(f"choose modules from: {', '.join(MODULES)}")
    show = {int(i) for i in args.show.split(",") if i}
    failed = False
    for module in chosen:
        if args.list:
            path = ROOT / "hello_tui" / (module.replace(".", "/") + ".py")
            print(f"{module}: {len(mutants(path.read_text()))} mutants")
            continue
        t0 = time.monotonic()
        if os.fork() == 0:  # each module in its own process: preloads do not pile up
            killed, survived, equivalent, survivors = run_module(module, show)
            scored = killed + survived
            score = 100.0 * killed / scored if scored else 100.0
            print(
                f"{module}: {score:.1f}% killed ({killed}/{scored}; "
                f"{equivalent} equivalent excluded) in {time.monotonic() - t0:.0f} s",
                flush=True,
            )
            print("\n".join(survivors), flush=True)
            os._exit(0 if score >= 95.0 else 1)
        _, status = os.wait()
        failed |= os.waitstatus_to_exitcode(status) != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
