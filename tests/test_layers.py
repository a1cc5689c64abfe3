"""The package's layers: each folder of gvcf imports only the folders below it (README, "Layout")."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gvcf"
# layer -> the layers its modules may import (itself included); gvcf/__init__.py and gvcf/cli.py sit on top of all
ALLOWED = {
    "engine": {"engine"},
    "eval": {"engine", "eval"},
    "paper": {"engine", "eval", "paper"},
    "world": {"engine", "eval", "paper", "world"},
    "book": {"engine", "eval", "paper", "book"},
}


def _layer_of(module: str) -> str | None:
    """'gvcf.eval.cache' -> 'eval'; the top-level package and CLI -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in ALLOWED else None


def _imports(path: Path, root: Path = PACKAGE) -> list[str]:
    """Absolute names of the gvcf modules a file imports (relative imports resolved, lazy ones included)."""
    here = ".".join(("gvcf", *path.relative_to(root).with_suffix("").parts))
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("gvcf")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.startswith("gvcf"):
                names += [base] + [f"{base}.{a.name}" for a in node.names]
    return names


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if _layer_of(".".join(("gvcf", *p.relative_to(PACKAGE).parts))))


def test_every_module_is_in_a_layer():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "cli.py"], top
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_imports_point_down(path):
    layer = path.relative_to(PACKAGE).parts[0]
    upward = {name for name in _imports(path) if (_layer_of(name) or layer) not in ALLOWED[layer]}
    assert not upward, f"gvcf/{layer} may import only {sorted(ALLOWED[layer])}; {path.name} imports {sorted(upward)}"


def test_the_checker_sees_relative_and_lazy_imports(tmp_path):
    """The rule above cannot pass vacuously: an upward import written either way is found."""
    path = tmp_path / "gvcf" / "engine" / "views.py"
    path.parent.mkdir(parents=True)
    path.write_text("def f():\n    from ..book import runner\nfrom ..paper.experiments import x\nimport gvcf.eval.cache\n")
    found = _imports(path, tmp_path / "gvcf")
    assert {"gvcf.book.runner", "gvcf.paper.experiments", "gvcf.eval.cache"} <= set(found)
    assert {_layer_of(n) for n in found} == {"book", "paper", "eval"}
