"""Guard rails for the code's shape: no import cycles, no private names across modules, small
modules and functions (the exceptions are named here, each with its reason)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "winnow"

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
_TYPER = "a Typer command: its options are declared in the signature, one per few lines"
#: functions over MAX_FUNCTION_LINES allowed for now, each with why
LONG_FUNCTIONS = {
    "winnow/cli.py:fit": _TYPER,
    "winnow/serve/cli.py:serve": _TYPER,
    "winnow/stream/cli.py:stream": _TYPER,
    "winnow/similarity/cli.py:similar": _TYPER,
    "winnow/report/build.py:_charts": "one figure after another; to become one function per figure",
    "winnow/report/build.py:_overview": "one section of the report page; to be split with _charts",
    "winnow/report/profile_page.py:profile_html": "one page built section by section",
    "winnow/quality/cleaning.py:clean": "the cleaning passes in order; to become one function per pass",
    "winnow/quality/profiling.py:profile": "the profile's sections in order; to reuse the fit's stages",
    "winnow/prep/finetune.py:fit": "one training loop with its early stopping and time limit",
    "winnow/engines/ray_engine.py:screen_ray": "the driver of both passes; to share the local engine's",
    "winnow/engines/local.py:screen": "the local engine's passes (budget, threshold, diverse) in one driver",
    "winnow/stream/worker.py:run": "the worker's loop: claim, read ahead, score, sink, acknowledge",
    "winnow/similarity/search.py:find_similar": "the two passes of a similarity search",
    "winnow/retrain.py:retrain": "champion / challenger in one place",
    "winnow/tuning.py:tune": "one Optuna study with its time budget",
    "winnow/online.py:_finish": "selection, reasons, monitoring and the outcome of one batch of records",
}
#: modules over MAX_MODULE_LINES allowed for now, each with why
LONG_MODULES = {
    "winnow/report/build.py": "every section of the report; to be split by section",
    "winnow/stream/worker.py": "the worker with its claim / read-ahead / retry machinery",
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _module_level_imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """winnow modules ``module`` imports when it is imported (not in functions, not for typing)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(node, module, path.name == "__init__.py")
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for h in getattr(node, "handlers", []):
                    visit(h.body)

    visit(ast.parse(path.read_text()).body)
    return {m for m in found if m in known and m != module}


def test_no_import_cycles():
    known = _modules()
    graph = {m: _module_level_imports(p, m, known) for m, p in known.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append([*path[path.index(n) :], n])
            elif n not in state:
                walk(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_private_name_is_imported_from_another_module():
    known = _modules()
    offenders = []
    for module, path in known.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(node, module, path.name == "__init__.py")
                if target in known and target != module:
                    for a in node.names:
                        if a.name.startswith("_") and not a.name.startswith("__"):
                            offenders.append(f"{module} imports {target}.{a.name}")
    assert not offenders, "\n".join(offenders)


def test_modules_and_functions_stay_small():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES and rel not in LONG_MODULES:
            too_long.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and f"{rel}:{node.name}" not in LONG_FUNCTIONS:
                    too_long.append(f"{rel}:{node.name}: {lines} lines")
    assert not too_long, "split these (or name the reason in this test):\n" + "\n".join(too_long)


def test_the_named_exceptions_still_exist():
    """An exception that was fixed is taken off the list, so the list says what is left."""
    stale = []
    for key in LONG_FUNCTIONS:
        rel, name = key.split(":")
        path = SRC / rel
        found = path.exists() and any(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.name == name
            and (n.end_lineno or n.lineno) - n.lineno + 1 > MAX_FUNCTION_LINES
            for n in ast.walk(ast.parse(path.read_text()))
        )
        if not found:
            stale.append(key)
    stale += [rel for rel in LONG_MODULES if (SRC / rel).read_text().count("\n") <= MAX_MODULE_LINES]
    assert not stale, f"no longer too long, take them off the lists: {stale}"
