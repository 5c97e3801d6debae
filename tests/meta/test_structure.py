"""The shape of the package: module sizes, no import cycle, what each layer may import (directly or through
another module of the kit), the error tree, and the project's ruff configuration."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import almatools.errors as errors

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "almatools"

MAX_LINES = 600
UI = ("almatools.ui", "almatools.app")  # the only layers that may import a widget library


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    package = base if MODULES[module].name == "__init__.py" else base[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, node.module] if node.module else package)


def imports_of(module: str, *, top_level_only: bool = False) -> set[str]:
    """Every module name ``module`` imports (with ``from x import y``, also ``x.y`` when that is a module)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # imports under `if TYPE_CHECKING:` never run
        nodes = [n for n in nodes if isinstance(n, (ast.Import, ast.ImportFrom))]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = resolve(module, node)
            out.add(source)
            out.update(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES)
    return out


def kit_closure(module: str) -> set[str]:
    """The kit's modules that importing ``module`` can reach, also through imports made inside functions."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in imports_of(current):
            parts = name.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES)
    return seen


def third_party(module: str) -> set[str]:
    return {name.split(".")[0] for name in imports_of(module)}


def test_no_module_is_over_600_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES.values()}
    too_big = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert too_big == {}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of a graph {module: modules it imports} (depth-first, each back edge once)."""
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_import_cycle_between_the_kits_modules():
    graph = {m: {n for n in imports_of(m, top_level_only=True) if n in MODULES and n != m} for m in MODULES}
    # A package's __init__ importing its own submodules is how it re-exports them, not a cycle.
    graph = {m: {n for n in deps if not (m == n.rsplit(".", 1)[0] or n == m.rsplit(".", 1)[0])} for m, deps in
             graph.items()}
    assert find_cycles(graph) == []


def test_the_cycle_check_can_fail():
    # app and analytics used to import each other: such a pair, or a longer ring, is found.
    assert find_cycles({"app": {"analytics"}, "analytics": {"app"}}) == [["analytics", "app", "analytics"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith(UI)))
def test_no_widget_library_is_reachable_outside_the_ui(module):
    reached = {m for m in kit_closure(module) if {"ipywidgets", "IPython", "voila"} & third_party(m)}
    assert reached == set(), f"{module} reaches a widget library through {sorted(reached)}"


def test_the_command_line_imports_no_widget_library_when_it_runs():
    code = ("import sys, almatools.cli, almatools.cli.serve, almatools.cli.report, almatools.cli.merge;"
            "import almatools.registration, almatools.quality, almatools.merge, almatools.reports, almatools.sources;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ipywidgets', 'IPython')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_client_sends_http_and_only_config_reads_the_environment(module):
    if module != "almatools.client":
        assert not {"requests", "urllib3", "httpx"} & third_party(module)
    if module != "almatools.config":
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        reads = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                 and n.attr in ("environ", "getenv", "environb") and isinstance(n.value, ast.Name) and n.value.id == "os"]
        reads += [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "os"
                  and {a.name for a in n.names} & {"environ", "getenv"}]
        assert reads == [], f"{module} reads the environment (lines {reads}); go through almatools.config"


def test_every_exception_of_the_kit_is_drawn_in_the_error_tree():
    drawn = errors.__doc__
    defined: dict[str, str] = {}
    for module, path in MODULES.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and (
                    node.name.endswith(("Error", "Exception", "Taken", "File", "Reply"))
                    or any(isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception")) for b in node.bases)):
                defined[node.name] = module
    assert {"MergeError", "ReportError", "RecordError", "JournalError", "AlmaErrorReply"} <= set(defined)
    assert [name for name in defined if not re.search(rf"\b{name}\b", drawn)] == []
    in_errors = {name for name, module in defined.items() if module == "almatools.errors"}
    assert set(errors.__all__) == in_errors | {"error_for"}
    for name in in_errors:
        assert issubclass(getattr(errors, name), errors.AlmaToolsError)


def test_ruff_passes_with_the_projects_configuration():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is in the test extra: pip install -e '.[test]'"
    done = subprocess.run([ruff, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
