"""The chapters' notebooks only call the package and plot: gvcf and IPython.display are their only imports, every
name they import is used, and they hold no function, class or loop of their own (each figure and table is a call)."""
import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
ALLOWED_IMPORTS = ("gvcf", "IPython.display")


def _code(path: Path) -> ast.Module:
    """The notebook's code cells after its parameters cell, as one module."""
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and "parameters" not in c.get("metadata", {}).get("tags", [])]
    return ast.parse("\n\n".join(code))


def _findings(tree: ast.Module) -> list[str]:
    imported, problems = {}, []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if not module.startswith(ALLOWED_IMPORTS):
                problems.append(f"imports {module} (only {ALLOWED_IMPORTS})")
            for alias in node.names:
                imported[alias.asname or alias.name.split(".")[0]] = node.lineno
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.Lambda)):
            problems.append(f"line {node.lineno}: a {type(node).__name__} (it belongs in the package)")
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    problems += [f"imports {name} and never uses it" for name in imported if name not in used]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_only_calls_and_plots(path):
    assert not _findings(_code(path)), _findings(_code(path))


def test_the_rule_finds_what_it_forbids():
    source = "import numpy as np\nfrom gvcf.paper import tables as T\nfor i in range(3):\n    print(i)\n"
    found = _findings(ast.parse(source))
    assert any("numpy" in f for f in found) and any("For" in f for f in found)
    assert any("imports T and never uses it" in f for f in found)
