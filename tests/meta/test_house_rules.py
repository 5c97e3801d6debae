"""The house rules of design.md, checked on the code itself."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest

from almatools.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "almatools"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_the_client_imports_requests():
    offenders = [p.relative_to(ROOT) for p in package_files()
                 if "requests" in imported_modules(p) and p != PACKAGE / "client.py"]
    assert offenders == []


def test_logic_modules_never_import_widgets():
    logic = [p for p in package_files()
             if p.stem in ("registration", "models", "client", "config", "errors", "catalog", "bulk", "files")
             or {"quality", "merge", "reports", "sources", "cli", "registration", "models"} & set(p.parts)]
    logic = [p for p in logic if "ui" not in p.relative_to(PACKAGE).parts]
    assert logic, "no logic modules found"
    offenders = [p.relative_to(ROOT) for p in logic if "ipywidgets" in imported_modules(p)]
    assert offenders == []


def test_library_code_never_prints_or_exits():
    allowed = {PACKAGE / "cli" / "__init__.py", PACKAGE / "cli" / "common.py", PACKAGE / "__main__.py"}
    offenders = []
    for path in package_files():
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "exit"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "exit"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "sys"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_a_parameters_cell(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "outputs committed"
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), "first code cell must be tagged parameters"
    # papermill must read every parameter (it cannot parse a line with a second "=", e.g. in a comment)
    import papermill

    assigned = [line.split(":")[0].split("=")[0].strip() for line in "".join(code[0]["source"]).splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert [p["name"] for p in papermill.inspect_notebook(str(path)).values()] == assigned


def test_every_dependency_has_a_lower_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        deps += extra
    assert [d for d in deps if ">=" not in d] == []


@pytest.mark.parametrize("command", [None, *build_parser()._subparsers._group_actions[0].choices])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    assert "usage: almatools" in capsys.readouterr().out


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(\./kit \w+)\s*$", quick, flags=re.M)
    assert commands == ["./kit lab", "./kit app", "./kit test"]
    assert "./kit test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
