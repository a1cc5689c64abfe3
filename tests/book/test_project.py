"""The project's scaffolding: environment files in sync, table of contents, notebooks, profiles, the paper's
numbers, and gvcf.book's runner and HTML checker (on fake data; no notebook is executed here)."""
from __future__ import annotations

import ast
import csv
import json
import stat
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from gvcf.book import runner as book

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROFILES = ("smoke", "book", "paper")


# ----------------------------------------------------------------------------- environment files

def _requirements(lines) -> dict[str, tuple]:
    """{canonical name: (sorted specifiers, sorted extras, marker)}; duplicates must agree."""
    out = {}
    for line in lines:
        req = Requirement(line)
        key = canonicalize_name(req.name)
        value = (tuple(sorted(str(s) for s in req.specifier)), tuple(sorted(req.extras)), str(req.marker or ""))
        assert out.setdefault(key, value) == value, f"{req.name} is listed twice with different pins"
        out[key] = value
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    wanted = _requirements(project["dependencies"] + extras.get("book", []) + extras.get("test", []))

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.replace(" ", "") in ("python=3.11", "python==3.11") for d in conda), conda
    assert "pip" in conda
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    listed = _requirements(p for p in pip_sections[0] if not p.strip().startswith("-"))
    missing = sorted(set(wanted) - set(listed))
    extra = sorted(set(listed) - set(wanted))
    assert not missing and not extra, f"environment.yml lacks {missing}, has extra {extra}"
    differ = {k: (wanted[k], listed[k]) for k in wanted if wanted[k] != listed[k]}
    assert not differ, f"pins differ (pyproject, environment.yml): {differ}"


def test_makefile_and_ci():
    make = (ROOT / "Makefile").read_text()
    assert ".venv/bin/pip install torch==2.14.1 torchvision==0.29.1" in make
    assert '.venv/bin/pip install -e ".[book,test]"' in make
    assert "--nbval-lax" in make and "HF_HUB_OFFLINE" in make
    for target in ("venv:", "test:", "test-all:", "book:", "smoke-book:", "clean:", "clean-results:"):
        assert f"\n{target}" in make, target
    ci = ROOT / ".ci" / "run"
    assert ci.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ci.read_text() and "\nmake test-all\n" in ci.read_text()   # nothing leaves CI
    recipe = {t: make.split(f"\n{t}: venv\n")[1].split("\n\n")[0] for t in ("test", "test-all")}
    assert '-m "not slow"' in recipe["test"] and "-m" not in recipe["test-all"]   # the fast tier; everything
    assert ci.stat().st_mode & stat.S_IXUSR, ".ci/run must be executable"


# ----------------------------------------------------------------------------- book layout

def _toc_files(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root") and isinstance(value, str):
                found.append(value)
            else:
                found += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            found += _toc_files(item)
    return found


def test_toc_lists_every_chapter_and_existing_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["format"] == "jb-book" and toc["root"] == "book/intro"
    files = [f.removesuffix(".md").removesuffix(".ipynb") for f in _toc_files(toc)]
    assert len(files) == len(set(files)), "a page is listed twice"
    chapters = [f for f in files if f.startswith("book/chapters/")]
    assert chapters == [f"book/chapters/{s}" for s in book.CHAPTERS]
    for nb in NOTEBOOKS:
        assert f"book/chapters/{nb.stem}" in chapters, f"{nb.name} is not in _toc.yml"
    for page in files:
        if not page.startswith("book/chapters/"):
            assert (ROOT / f"{page}.md").exists() or (ROOT / f"{page}.ipynb").exists(), f"{page} is missing"
    for page in ("book/intro", "book/method", "book/reproduce", "book/bibliography"):
        assert page in files


def test_config():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert str(cfg["execute"]["execute_notebooks"]) == "off"
    assert cfg["only_build_toc_files"] is True
    for pattern in (".venv", "notebooks", "results", "data"):
        assert pattern in cfg["exclude_patterns"]
    for bib in cfg["bibtex_bibfiles"]:
        assert (ROOT / bib).exists()
    # jupyter-book adds _static/*.css itself; the chapters' settings table and folded code are styled there
    css = (ROOT / "_static" / "gvcf.css").read_text()
    assert "div.gvcf-settings" in css and "div.cell_input" in css
    assert "_static" not in cfg["exclude_patterns"]
    # the chapters fold their code (hide-input), they must not drop it: the code stays a click away
    assert not (cfg.get("sphinx", {}).get("config", {}) or {}).get("nb_remove_code_source")


def _parameters(nb) -> dict[str, ast.AST]:
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one code cell must be tagged `parameters`"
    tree = ast.parse(cells[0].source)
    out = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name):
                out[t.id] = node.value
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_source(path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    assert path.stem in book.CHAPTERS, f"{path.name} is not one of the chapters {book.CHAPTERS}"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            images = [m for m in out.get("data", {}) if m.startswith("image/")]
            assert not images, f"cell {i} stores an image output ({images}): clear outputs before committing"
    params = _parameters(nb)
    missing = [p for p in book.COMMON_PARAMETERS if p not in params]
    assert not missing, f"the parameters cell lacks {missing}"

    def value(name):
        return ast.literal_eval(params[name]) if params.get(name) is not None else None

    assert value("model") == "embedded" and value("device") == "auto" and value("profile") == "smoke"
    # every parameter a profile sets for this chapter in particular must exist in the notebook (papermill
    # would only warn and the setting would be ignored); `common` may hold parameters some chapters lack
    for profile in PROFILES:
        own = book.load_profile(profile, ROOT).get(path.stem) or {}
        unknown = sorted(set(own) - set(params))
        assert not unknown, f"profile {profile} sets {unknown} for {path.stem}, which its parameters cell lacks"


# ----------------------------------------------------------------------------- profiles and the runner

def test_profiles_load():
    for name in PROFILES:
        data = book.load_profile(name, ROOT)
        book.check_profile(data, book.CHAPTERS, name)
        for stem in book.CHAPTERS:
            params = book.merge_params(data, stem, name)
            assert params["profile"] == name
    assert not (book.load_profile("smoke", ROOT).get("common") or {}), "smoke = the notebooks' own defaults"
    paper = book.merge_params(book.load_profile("paper", ROOT), "03_variance_corrected_fusion", "paper")
    assert paper["model"] == "stabilityai/stable-diffusion-2-base" and paper["device"] == "cuda"
    assert (paper["n_per_prompt"], paper["ddpm_steps"], paper["ddim_steps"], paper["n_reference"]) == (500, 1000, 50, 3500)
    assert paper["stride"] == 384 and paper["width_views"] == 7
    bk = book.merge_params(book.load_profile("book", ROOT), "02_guided_fusion", "book")
    assert bk["model"] == "embedded"


def test_merge_params():
    data = {"common": {"n_per_prompt": 4, "steps": None, "seed": 0},
            "02_guided_fusion": {"n_per_prompt": 2, "strides": [16, 32]},
            "06_runtime": None}
    assert book.merge_params(data, "02_guided_fusion", "book") == {
        "n_per_prompt": 2, "steps": None, "seed": 0, "strides": [16, 32], "profile": "book"}
    assert book.merge_params(data, "06_runtime", "book") == {"n_per_prompt": 4, "steps": None, "seed": 0,
                                                             "profile": "book"}
    assert book.merge_params({}, "01_overview", "smoke") == {"profile": "smoke"}
    # a common entry the notebook does not declare is left out; the notebook's own section is passed whole
    assert book.merge_params(data, "02_guided_fusion", "book", declared={"seed"}) == {
        "seed": 0, "n_per_prompt": 2, "strides": [16, 32], "profile": "book"}
    # the profile's name always wins, and the input is not modified
    assert book.merge_params({"common": {"profile": "x"}}, "01_overview", "paper")["profile"] == "paper"
    assert data["common"] == {"n_per_prompt": 4, "steps": None, "seed": 0}
    with pytest.raises(ValueError, match="02_guided_fusoin"):
        book.check_profile({"common": {}, "02_guided_fusoin": {}}, book.CHAPTERS)


def test_resolve_dirs(tmp_path):
    out = book.resolve_dirs({"dataset_dir": "results/datasets", "results_dir": "/abs", "stride": 3,
                             "other_dir": None}, tmp_path)
    assert out["dataset_dir"] == str(tmp_path.resolve() / "results" / "datasets")
    assert out["results_dir"] == "/abs" and out["stride"] == 3 and out["other_dir"] is None


def _fake_repo(tmp_path: Path) -> Path:
    """Two notebooks; `strides` is declared by 02_guided_fusion only, so 01_overview is run without it."""
    import nbformat

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book" / "profiles").mkdir(parents=True)
    for stem, extra in (("01_overview", ""), ("02_guided_fusion", "\nstrides = None")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("n_per_prompt = 1\ndataset_dir: str = None" + extra, metadata={"tags": ["parameters"]})])
        nbformat.write(nb, tmp_path / "notebooks" / f"{stem}.ipynb")
    (tmp_path / "book" / "profiles" / "book.yml").write_text(
        "common: {n_per_prompt: 2, dataset_dir: results/d, strides: [8]}\n02_guided_fusion: {n_per_prompt: 3}\n")
    return tmp_path


def test_run_is_resumable(tmp_path, monkeypatch):
    root = _fake_repo(tmp_path)
    calls = []

    def fake_execute(source, target, params, kernel, cwd, log_output):
        calls.append((source.stem, params))
        assert target.name.endswith(".partial.ipynb") and cwd == source.parent.resolve()
        target.write_text(source.read_text())

    monkeypatch.setattr(book, "_execute", fake_execute)
    records = book.run("book", root=root, log_output=False)
    assert [r["status"] for r in records] == ["ran", "ran"]
    assert calls[0] == ("01_overview", {"n_per_prompt": 2, "dataset_dir": str(root.resolve() / "results/d"),
                                        "profile": "book"})
    assert calls[1] == ("02_guided_fusion", {"n_per_prompt": 3, "dataset_dir": str(root.resolve() / "results/d"),
                                             "strides": [8], "profile": "book"})
    out = root / "book" / "chapters"
    assert sorted(p.name for p in out.iterdir()) == ["01_overview.ipynb", "01_overview.run.json",
                                                     "02_guided_fusion.ipynb", "02_guided_fusion.run.json"]
    assert json.loads((out / "02_guided_fusion.run.json").read_text())["params"]["dataset_dir"] == "results/d"

    calls.clear()
    assert [r["status"] for r in book.run("book", root=root)] == ["skipped", "skipped"]
    assert not calls
    # a changed profile reruns only the chapter whose parameters changed; force reruns anyway
    (root / "book" / "profiles" / "book.yml").write_text(
        "common: {n_per_prompt: 2, dataset_dir: results/d, strides: [8]}\n02_guided_fusion: {n_per_prompt: 5}\n")
    assert [r["status"] for r in book.run("book", root=root)] == ["skipped", "ran"]
    assert [r["status"] for r in book.run("book", ["01_overview"], root=root, force=True)] == ["ran"]
    # a retrained bundled model (another weights hash) reruns every chapter
    import gvcf.paper.chapter_setup
    monkeypatch.setattr(gvcf.paper.chapter_setup, "model_tag", lambda name: f"{name}@retrained")
    assert [r["status"] for r in book.run("book", root=root)] == ["ran", "ran"]
    assert [r["status"] for r in book.run("book", root=root)] == ["skipped", "skipped"]
    # a failing chapter is reported at the end; the last good output and its record stay
    before = (out / "02_guided_fusion.run.json").read_text()
    monkeypatch.setattr(book, "_execute", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="1 chapter"):
        book.run("book", ["02_guided_fusion"], root=root, force=True)
    assert (out / "02_guided_fusion.run.json").read_text() == before and (out / "02_guided_fusion.ipynb").exists()
    with pytest.raises(ValueError, match="no such notebook"):
        book.run("book", ["03_variance_corrected_fusion"], root=root)
    with pytest.raises(ValueError, match="no profile"):
        book.run("nonexistent", root=root)


def _run_refused(root, text, match, monkeypatch):
    """book.run under a profile holding `text` raises ValueError(match) before any chapter runs."""
    (root / "book" / "profiles" / "typo.yml").write_text(text)
    monkeypatch.setattr(book, "_execute", lambda *a: pytest.fail("a chapter ran"))
    with pytest.raises(ValueError, match=match):
        book.run("typo", root=root)
    assert not (root / "book" / "chapters").exists()


def test_run_refuses_parameters_no_notebook_declares(tmp_path, monkeypatch):
    root = _fake_repo(tmp_path)
    _run_refused(root, "common: {n_per_promt: 2, strides: [8], seed: 1}\n",
                 r"typo.yml: common parameter\(s\) \['n_per_promt', 'seed'\] are declared by no notebook", monkeypatch)
    # a key another chapter declares is still refused in a chapter's own section
    _run_refused(root, "common: {strides: [8]}\n01_overview: {strides: [4]}\n",
                 r"section '01_overview' sets \['strides'\].*01_overview.ipynb does not declare", monkeypatch)
    _run_refused(root, "02_guided_fusion: {stride: abc}\n", r"'02_guided_fusion' sets \['stride'\]", monkeypatch)


def test_shipped_profiles_declare_only_known_parameters():
    declared = {s: book.declared_parameters(ROOT / "notebooks" / f"{s}.ipynb") for s in book.discover(ROOT)}
    assert all(declared.values())
    for name in PROFILES:
        book.check_parameters(book.load_profile(name, ROOT), declared, name)
    with pytest.raises(ValueError, match=r"common parameter\(s\) \['dataset_dri'\]"):
        book.check_parameters({"common": {"dataset_dri": "x"}}, declared)


def test_run_reports_the_notebooks_exception(tmp_path, monkeypatch, capsys):
    from papermill.exceptions import PapermillExecutionError

    root = _fake_repo(tmp_path)

    def fail(source, target, *a):
        target.write_text(source.read_text())
        raise PapermillExecutionError(3, 4, "S = E.Setup(stride=stride)", "ValueError",
                                      "stride must be a positive int, got 'abc'", ["...traceback..."])

    monkeypatch.setattr(book, "_execute", fail)
    with pytest.raises(RuntimeError, match=r"02_guided_fusion \(ValueError: stride must be a positive int, got 'abc'"):
        book.run("book", ["02_guided_fusion"], root=root, keep_going=False)
    line = next(l for l in capsys.readouterr().err.splitlines() if "FAILED" in l)
    assert "FAILED (ValueError: stride must be a positive int, got 'abc' (at In [4]))" in line, line
    assert not (root / "book" / "chapters" / "02_guided_fusion.run.json").exists()
    monkeypatch.chdir(root)   # the command line says the same, and exits 1
    assert book.main(["run", "--profile", "book/profiles/book.yml", "--notebooks", "01_overview"]) == 1
    assert "1 chapter(s) failed: 01_overview (ValueError: stride must be" in capsys.readouterr().err
    assert book.describe_error(KeyError("x")) == "KeyError: 'x'"


def test_profile_as_a_path_and_a_yaml_error(tmp_path, monkeypatch):
    root = _fake_repo(tmp_path)
    calls = []
    monkeypatch.setattr(book, "_execute", lambda source, target, params, *a: (calls.append(params),
                                                                             target.write_text("{}")))
    mine = tmp_path / "elsewhere" / "mine.yml"
    mine.parent.mkdir()
    mine.write_text("common: {n_per_prompt: 7}\n")
    assert [r["status"] for r in book.run(str(mine), ["01_overview"], root=root)] == ["ran"]
    assert calls == [{"n_per_prompt": 7, "profile": "mine"}]   # the file's stem is the profile's name
    assert book.profile_path("book", root) == root / "book" / "profiles" / "book.yml"
    with pytest.raises(ValueError, match=r"no profile .*missing\); available: \['book'\]"):
        book.run(str(tmp_path / "nowhere.yaml"), root=root)
    mine.write_text("common:\n  n_per_prompt: 7\n  seed: [0, 1\n")
    with pytest.raises(ValueError, match=rf"profile {mine}: line 4, column 1: not valid YAML .*opened on line 3"):
        book.load_profile(mine)


# ----------------------------------------------------------------------------- the HTML checker

PAGE = """<!DOCTYPE html><html><head><link rel="stylesheet" href="../../_static/s.css">
<script src="../../_static/mathjax/tex-chtml.js"></script><script>var inline = 1;</script></head><body>
<nav><img src="../../_static/logo.png" alt="logo"></nav>
<main id="main-content" class="bd-main"><article class="bd-article" role="main">
<h1>Chapter</h1><p>Text<br>more</p>{settings}{body}
</article></main></body></html>"""
# what myst-nb makes of the runner's settings table (a raw <div> around a markdown table) and of a code cell
# tagged hide-input (its source inside a <details>) or not (the source shown)
SETTINGS = """<div class="gvcf-settings">
<p><strong>This build's settings</strong> (profile <code>book</code>)</p>
<div class="pst-scrollable-table-container"><table class="table"><thead><tr><th>setting</th><th>value</th></tr></thead>
<tbody><tr><td>profile</td><td><code>book</code></td></tr></tbody></table></div>
</div>"""
FOLDED_CELL = """<div class="cell tag_hide-input docutils container">
<details class="hide above-input"><summary aria-label="Toggle hidden content">
<span class="collapsed">Show code cell source</span></summary>
<div class="cell_input docutils container"><div class="highlight-ipython3 notranslate"><div class="highlight">
<pre><span></span>print(1)</pre></div></div></div></details>
<div class="cell_output docutils container"><div class="output stream highlight-myst-ansi notranslate">
<div class="highlight"><pre><span></span>1</pre></div></div></div></div>"""
SHOWN_CELL = FOLDED_CELL.replace(' tag_hide-input', '').replace(
    '<details class="hide above-input"><summary aria-label="Toggle hidden content">\n'
    '<span class="collapsed">Show code cell source</span></summary>\n', '').replace('</details>', '')


def _page(body: str, settings: str = SETTINGS) -> str:
    return PAGE.format(body=body, settings=settings)


def _fake_build(tmp_path: Path) -> Path:
    build = tmp_path / "_build" / "html"
    (build / "book" / "chapters").mkdir(parents=True)
    (build / "_images").mkdir()
    (build / "_static").mkdir()
    (build / "_static" / "logo.png").write_bytes(b"png")
    (build / "_static" / "mathjax").mkdir()
    (build / "_static" / "mathjax" / "tex-chtml.js").write_text("// mathjax")
    (build / "index.html").write_text("<html></html>")
    for stem in book.CHAPTERS:
        (build / "_images" / f"{stem}.png").write_bytes(b"png")
        body = f'<img alt="fig" src="../../_images/{stem}.png" />' + FOLDED_CELL
        if stem in book.TABLE_CHAPTERS:
            body += "<div class='output'><table class='dataframe'><tr><td>1</td></tr></table></div>"
        (build / "book" / "chapters" / f"{stem}.html").write_text(_page(body=body))
    return build


def test_check_html_accepts_a_complete_build(tmp_path):
    assert book.check_html(_fake_build(tmp_path)) == []


def test_check_html_flags_missing_image_and_chapter(tmp_path):
    build = _fake_build(tmp_path)
    (build / "book" / "chapters" / "04_style_alignment.html").unlink()
    (build / "_images" / "02_guided_fusion.png").unlink()
    problems = book.check_html(build)
    assert any("04_style_alignment" in p and "missing" in p for p in problems), problems
    assert any("02_guided_fusion.png" in p and "does not exist" in p for p in problems), problems
    assert len(problems) == 2, problems


def test_check_html_requires_figures_and_tables(tmp_path):
    build = _fake_build(tmp_path)
    # a figure inlined as a data: URI counts; the theme's logo outside the article does not
    (build / "book" / "chapters" / "01_overview.html").write_text(
        _page(body='<img src="data:image/png;base64,iVBORw0KGgo=">'))
    (build / "book" / "chapters" / "03_variance_corrected_fusion.html").write_text(_page(body="<p>no figure</p>"))
    (build / "book" / "chapters" / "06_runtime.html").write_text(
        _page(body='<img src="../../_images/06_runtime.png">'))
    (build / "book" / "chapters" / "05_syncdiffusion.html").write_text(
        _page(body='<img src="https://example.com/x.png"><table></table>'))
    problems = book.check_html(build)
    assert not any("01_overview" in p for p in problems), problems
    assert any("03_variance_corrected_fusion" in p and "no figure" in p for p in problems), problems
    assert any("03_variance_corrected_fusion" in p and "no <table>" in p for p in problems), problems
    assert any("06_runtime" in p and "no <table>" in p for p in problems), problems
    assert any("05_syncdiffusion" in p and "remote" in p for p in problems), problems
    assert book.check_html(tmp_path / "nowhere")  # no build at all is a problem too


def test_check_html_flags_remote_or_missing_scripts(tmp_path):
    build = _fake_build(tmp_path)
    page = build / "book" / "chapters" / "02_guided_fusion.html"
    page.write_text(page.read_text().replace("../../_static/mathjax/tex-chtml.js",
                                             "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"))
    (build / "_static" / "mathjax" / "tex-chtml.js").unlink()
    problems = book.check_html(build)
    assert any("02_guided_fusion" in p and "script" in p and "remote" in p for p in problems), problems
    assert sum("tex-chtml.js" in p and "does not exist" in p for p in problems) == len(book.CHAPTERS) - 1, problems


def test_check_html_requires_folded_code_and_the_settings_table(tmp_path):
    build = _fake_build(tmp_path)
    chapters = build / "book" / "chapters"
    figure = '<img src="../../_images/{}.png">'
    (chapters / "02_guided_fusion.html").write_text(
        _page(figure.format("02_guided_fusion") + FOLDED_CELL + SHOWN_CELL + SHOWN_CELL + "<table></table>"))
    (chapters / "04_style_alignment.html").write_text(_page(figure.format("04_style_alignment"), settings=""))
    # the settings table does not stand in for a chapter's own table
    (chapters / "06_runtime.html").write_text(_page(figure.format("06_runtime") + FOLDED_CELL))
    # a settings <div> without a table, or a table outside the article, is not the settings table
    (chapters / "05_syncdiffusion.html").write_text(
        _page(figure.format("05_syncdiffusion") + "<table></table>", settings='<div class="gvcf-settings"></div>')
        .replace("</body>", SETTINGS + "</body>"))
    problems = book.check_html(build)
    assert [p for p in problems if "02_guided_fusion" in p] == [
        "chapter 02_guided_fusion: 2 of 3 code cell(s) shown unfolded on book/chapters/02_guided_fusion.html (the "
        "runner tags them hide-input: rerun `python -m gvcf.book run`)"], problems
    assert any("04_style_alignment" in p and "settings" in p for p in problems), problems
    assert any("06_runtime" in p and "no <table>" in p for p in problems), problems
    assert any("05_syncdiffusion" in p and "settings" in p for p in problems), problems
    assert len(problems) == 4, problems
    # a cell that sphinx-togglebutton folds by its tag (no <details>) counts as folded
    (chapters / "02_guided_fusion.html").write_text(_page(
        figure.format("02_guided_fusion") + "<table></table>"
        + SHOWN_CELL.replace('class="cell docutils', 'class="cell tag_hide-input docutils')))
    assert not [p for p in book.check_html(build) if "02_guided_fusion" in p]
    # a cell the chapter shows on purpose (tagged show-input in its source: chapter 1's gvcf.generate) is no problem
    (chapters / "02_guided_fusion.html").write_text(_page(
        figure.format("02_guided_fusion") + "<table></table>" + FOLDED_CELL
        + SHOWN_CELL.replace('class="cell docutils', 'class="cell tag_show-input docutils')))
    assert not [p for p in book.check_html(build) if "02_guided_fusion" in p]



def test_check_html_flags_printed_lines_wider_than_the_page(tmp_path):
    """A printed output line over LINE_WIDTH scrolls sideways: a problem; code inputs and lines at the width are not."""
    from gvcf.paper.tables import LINE_WIDTH

    build = _fake_build(tmp_path)
    page = build / "book" / "chapters" / "03_variance_corrected_fusion.html"
    fits = FOLDED_CELL.replace("print(1)", "x" * (LINE_WIDTH + 20)).replace("<span></span>1</pre>",
                                                                           "<span></span>" + "y" * LINE_WIDTH + "</pre>")
    page.write_text(page.read_text().replace(FOLDED_CELL, fits))
    assert book.check_html(build) == []
    wide = FOLDED_CELL.replace("<span></span>1</pre>", "<span></span>short\n" + "z " * LINE_WIDTH + "</pre>")
    page.write_text(page.read_text().replace(fits, wide))
    problems = book.check_html(build)
    assert len(problems) == 1 and "03_variance_corrected_fusion" in problems[0], problems
    assert f"1 printed line(s) wider than {LINE_WIDTH}" in problems[0] and "'z z z" in problems[0]


def test_check_html_flags_a_markdown_table_shown_as_text(tmp_path):
    """myst-nb renders a Markdown output as CommonMark: a pipe table becomes a paragraph of text (chapter 6's profile
    did). The check flags it; a claim line or a paragraph with a '|' inside is no table."""
    build = _fake_build(tmp_path)
    page = build / "book" / "chapters" / "06_runtime.html"
    markdown = ('<div class="cell_output docutils container"><p>| chapter | total |\n| \u2014 | \u2014: |\n'
                '| 01_overview | 16 |</p>{}</div>')
    page.write_text(page.read_text().replace(FOLDED_CELL, FOLDED_CELL + markdown.format("")))
    problems = book.check_html(build)
    assert len(problems) == 1 and "06_runtime: 1 Markdown table(s) shown as text" in problems[0], problems
    assert "'| chapter | total |'" in problems[0]
    prose = '<div class="cell_output docutils container"><p>SSIM | MD: <strong>holds</strong> (n = 12)</p></div>'
    page.write_text(page.read_text().replace(markdown.format(""), prose))
    assert book.check_html(build) == []


def test_check_cli(tmp_path, capsys):
    build = _fake_build(tmp_path)
    assert book.main(["check", "--build-dir", str(build)]) == 0
    (build / "book" / "chapters" / "01_overview.html").unlink()
    assert book.main(["check", "--build-dir", str(build)]) == 1
    assert "01_overview" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the paper's numbers

def _csv(name) -> list[dict]:
    with open(ROOT / "data" / "paper" / name, newline="") as f:
        return list(csv.DictReader(f))


def test_paper_tables():
    shapes = {
        "table1.csv": (["stride", "fusion", "fid", "kid_e3", "giqa_qs", "giqa_ds", "clip"], 6),
        "table2.csv": (["sampler", "method", "fid", "kid_e3", "giqa_qs", "giqa_ds", "clip"], 10),
        "table3.csv": (["sampler", "method", "runtime_mean_s", "runtime_std_s"], 5),
        "table4.csv": (["row", "col", "ssim"], 3),
    }
    for name, (columns, n) in shapes.items():
        rows = _csv(name)
        assert list(rows[0]) == columns and len(rows) == n, name
        for row in rows:
            for col in columns:
                if col not in ("fusion", "sampler", "method", "row", "col"):
                    float(row[col])
    t1 = _csv("table1.csv")
    assert [(r["stride"], r["fusion"]) for r in t1] == [(s, f) for s in ("128", "256", "384") for f in ("MD", "GF")]
    assert t1[-1]["fid"] == "14.88" and t1[0]["kid_e3"] == "9.14"
    t2 = {(r["sampler"], r["method"]): r for r in _csv("table2.csv")}
    assert t2[("DDIM", "Elastic")]["fid"] == "122.52"
    assert t2[("DDPM", "VCF+GF+SA0.4")]["fid"] == "4.02" and t2[("DDIM", "GF+SA0.4")]["fid"] == "10.40"
    assert sum(r["sampler"] == "DDPM" for r in t2.values()) == 4
    t3 = {r["method"]: r for r in _csv("table3.csv")}
    assert t3["VCF"]["runtime_mean_s"] == "181.16" and t3["Sync"]["runtime_std_s"] == "0.52"
    assert {(r["row"], r["col"]): r["ssim"] for r in _csv("table4.csv")}[("Sync", "MD+SA0.1")] == "0.74"


def test_prompts():
    from gvcf.paper.constants import PAPER_PROMPTS as prompts

    assert len(prompts) == 10 and prompts[0] == "A photo of a city skyline at night"
    assert prompts[-1] == "A film photo of a beachside street under the sunset"
    from gvcf.world import scenes as world

    assert tuple(prompts) == tuple(world.PAPER_PROMPTS)


def test_run_records_and_prints_seconds_per_stage(tmp_path, monkeypatch, capsys):
    """The kernel's stages (here: the fake executor's, run in this process under the runner's log) reach the record."""
    from gvcf.engine import stages

    root = _fake_repo(tmp_path)
    ticks = iter(range(1000))
    monkeypatch.setattr(stages.time, "perf_counter", lambda: float(next(ticks)))

    def fake_execute(source, target, *a):
        with stages.stage("generation"):      # 1 s
            pass
        with stages.stage("metrics"):         # 3 s, 1 of them in features
            with stages.stage("features"):
                pass
        target.write_text(source.read_text())

    monkeypatch.setattr(book, "_execute", fake_execute)
    records = book.run("book", root=root, log_output=False)
    assert records[0]["stages"] == dict.fromkeys(stages.STAGES, 0.0) | {"generation": 1.0, "features": 1.0,
                                                                        "metrics": 2.0}
    out = root / "book" / "chapters"
    assert not list(out.glob("*" + book.STAGES_SUFFIX))      # the logs are read into the records, then removed
    err = capsys.readouterr().err
    assert "seconds per stage" in err and "generation" in err and err.count("01_overview") >= 2
    assert stages.STAGE_LOG_ENV not in __import__("os").environ
