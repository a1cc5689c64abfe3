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


# ----------------------------------------------------------------------------- chapters a reader can follow (issue 28)

MIN_NAME = 3   # a name the chapter binds says what it holds: no single letters (S, E, R1), no alias of a module


def _bound_names(tree: ast.Module) -> list[str]:
    """Every name a chapter binds: import aliases, assignment and comprehension targets."""
    names = [alias.asname for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             for alias in node.names if alias.asname]
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.comprehension, ast.AugAssign)) else []
        names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return names


def _naming_findings(tree: ast.Module) -> list[str]:
    problems = [f"imports {alias.name} as {alias.asname} (use the module's own name)" for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names if alias.asname]
    problems += [f"binds {name!r} (a name that says what it holds, lower case)" for name in _bound_names(tree)
                 if len(name) < MIN_NAME or name.isupper()]
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "chapter"]
    if len(calls) != 1:
        problems.append(f"calls chapter() {len(calls)} times, not once")
    for call in calls:   # the parameters are declared once, in the parameters cell: chapter reads them from globals()
        if [ast.unparse(a) for a in call.args] != ["globals()"] or any(k.arg != "default_prompts" for k in call.keywords):
            problems.append(f"chapter is called as {ast.unparse(call)} (only chapter(globals(), default_prompts=...))")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_names_say_what_they_hold_and_declares_parameters_once(path):
    assert not _naming_findings(_code(path)), _naming_findings(_code(path))


def test_the_naming_rule_finds_what_it_forbids():
    source = ("from gvcf.paper import tables as T\nS, prompts = chapter(model=model, device=device)\n"
              "R1 = [s for s in S.x]\n")
    found = _naming_findings(ast.parse(source))
    assert "imports tables as T (use the module's own name)" in found
    assert {"binds 'S' (a name that says what it holds, lower case)", "binds 'R1' (a name that says what it holds, "
            "lower case)", "binds 's' (a name that says what it holds, lower case)"} <= set(found)
    assert any(f.startswith("chapter is called as chapter(model=model") for f in found)
    assert not _naming_findings(ast.parse("setup, chapter_prompts = chapter(globals(), default_prompts=5)\n"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_fit_the_page(path):
    """No printed line scrolls sideways on the page: every stored stream line is at most LINE_WIDTH characters."""
    from gvcf.paper.tables import LINE_WIDTH

    cells = json.loads(path.read_text())["cells"]
    lines = [line for c in cells for out in c.get("outputs", []) if out["output_type"] == "stream"
             for line in "".join(out["text"]).splitlines()]
    assert lines and max(map(len, lines)) <= LINE_WIDTH, max(lines, key=len)
