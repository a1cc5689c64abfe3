"""gvcf.book.render: how an executed chapter reads in the book (code folded, a settings table in place of the
parameters cells) and the claim tally; and the runner applying both (on fake executed notebooks: nothing is
executed here)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt

from gvcf.book import render
from gvcf.book import publish
from gvcf.book import runner as book
from gvcf.book.figures import overview_path
from gvcf.paper import claims as C

ROOT = Path(__file__).resolve().parents[2]
v4 = nbformat.v4


def _markdown_output(text: str):
    return v4.new_output("display_data", data={"text/markdown": text,
                                                "text/plain": "<IPython.core.display.Markdown object>"})


def _line(text, verdict, detail=""):
    claim = C.Claim("Table 1", text, "difference", "fid", {}, "lower")
    return C.Checked(claim, verdict, reason=detail).markdown()


CLAIMS = "\n".join([
    "**Table 1:** 2 hold, 1 reversed, 0 inconclusive, 1 not checked, of 4 claims.", "",
    _line("GF beats MD in FID at stride 1/4 of a view", "holds", "this run: difference -2 [-3, -1]"),
    _line("GF beats MD in GIQA-QS at stride 1/2: of a view", "holds"),
    _line("MD's FID falls as the stride grows (1/4, 1/2, 3/4 of a view)", "reversed", "slope 1 [0.5, 2] | x"),
    _line("MD beats GF in CLIP at stride 1/4 of a view", "not checked", "CLIP score unavailable"),
])


def executed(claims: str = CLAIMS, extra_params: str = "") -> nbformat.NotebookNode:
    """A chapter as papermill leaves it: intro, `parameters`, `injected-parameters`, code with outputs."""
    nb = v4.new_notebook(cells=[
        v4.new_markdown_cell("# Guided Fusion\n\nIntro text."),
        v4.new_code_cell("model = \"embedded\"   # the model\nprompts = None\nn_prompts = 1\nsteps: int = None\n"
                         "alphas = [0.0, 0.5]\nresults_dir = \"../results\"\nfirst = n_prompts + 1\nprofile = \"smoke\""
                         + extra_params, metadata={"tags": ["parameters"]}),
        v4.new_code_cell('# Parameters\nn_prompts = 3\nprofile = "book"\n', metadata={"tags": ["injected-parameters"]}),
        v4.new_code_cell("import gvcf\nprint('setup')", outputs=[v4.new_output("stream", name="stdout", text="setup\n")]),
        v4.new_markdown_cell("## Table 1"),
        v4.new_code_cell("display(Markdown(C.claims_text(...)))", outputs=[_markdown_output(claims)],
                         metadata={"tags": ["nbval-ignore-output"]}),
        v4.new_code_cell("def helper():\n    pass"),
    ])
    return nb


# ----------------------------------------------------------------------------- the settings table

def test_format_value():
    f = render.format_value
    assert f(None) == "default"
    assert (f("embedded"), f(3), f(0.25), f(True)) == ("`embedded`", "`3`", "`0.25`", "`True`")
    assert f([0.0, 0.2, 0.4]) == "`[0.0, 0.2, 0.4]`"
    assert f(["A photo of a city skyline at night"]) == '`["A photo of a city skyline at night"]`'
    ten = [f"A long prompt number {i} about a mountain range at dawn" for i in range(10)]
    assert f(ten) == '`["A long prompt number 0 about a mounta…", …] (10 items)`'
    assert len(f("/" + "x" * 200 + "/results")) <= render.MAX_VALUE + 2
    assert f("/" + "x" * 200 + "/results").endswith("/results`")
    assert f("a|b`c") == "`a\\|b'c`"   # a table cell: pipes escaped, no backtick inside the code span


def _table_rows(markdown: str) -> dict[str, str]:
    rows = [line.strip("|").split(" | ") for line in markdown.splitlines() if line.startswith("| ")]
    return {k.strip(): v.strip() for k, v in rows[1:]}   # without the header


def test_settings_markdown_renders_one_short_table():
    text = render.settings_markdown("book", {"n_prompts": 3, "ddim_steps": 25, "profile": "book", "extra": None},
                                    {"model": "embedded", "n_prompts": 1, "steps": None, "profile": "smoke"})
    assert _table_rows(text) == {"profile": "`book`", "model": "`embedded`", "n_prompts": "`3`",
                                 "steps": "default", "ddim_steps": "`25`", "extra": "default"}
    assert list(_table_rows(text)) == ["profile", "model", "n_prompts", "steps", "ddim_steps", "extra"]
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert html.startswith(f'<div class="{render.SETTINGS_CLASS}">') and html.rstrip().endswith("</div>")
    assert html.count("<table>") == 1 and html.count("<tr>") == 7
    assert "<th>setting</th>" in html and "<th>value</th>" in html
    from gvcf.book import html_check

    assert render.SETTINGS_CLASS == html_check.SETTINGS_CLASS   # what `gvcf.book check` looks for


def test_present_folds_code_and_replaces_the_parameters_cells():
    nb = executed()
    before = copy.deepcopy(nb)
    render.present(nb, "book", {"n_prompts": 3, "profile": "book"})
    assert len(nb.cells) == len(before.cells) + 1
    table = nb.cells[1]
    assert table.cell_type == "markdown" and render.SETTINGS_TAG in table.metadata["tags"]
    rows = _table_rows(table.source)
    assert rows == {"profile": "`book`", "model": "`embedded`", "prompts": "default", "n_prompts": "`3`",
                    "steps": "default", "alphas": "`[0.0, 0.5]`", "results_dir": "`../results`",
                    "first": "`n_prompts + 1`"}
    assert nb.cells[0] == before.cells[0]   # the title and intro come first, unchanged
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[2] == ["parameters", "remove-cell"] and tags[3] == ["injected-parameters", "remove-cell"]
    assert tags[4] == ["hide-input"] and tags[6] == ["nbval-ignore-output", "hide-input"] and tags[7] == ["hide-input"]
    assert [c.source for c in nb.cells if c.cell_type == "code"] == [c.source for c in before.cells
                                                                     if c.cell_type == "code"]
    assert [c.get("outputs") for c in nb.cells if c.cell_type == "code"] == \
        [c.get("outputs") for c in before.cells if c.cell_type == "code"]
    # again: still one table, no tag twice
    again = copy.deepcopy(nb)
    render.present(again, "book", {"n_prompts": 3, "profile": "book"})
    assert again == nb
    nbformat.validate(nb)


def test_present_file_and_a_notebook_without_parameters(tmp_path):
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("# T"), v4.new_code_cell("x = 1")])
    path = tmp_path / "c.ipynb"
    nbformat.write(nb, path)
    render.present_file(path, "smoke", {"profile": "smoke"})
    out = nbformat.read(path, as_version=4)
    assert [c.cell_type for c in out.cells] == ["markdown", "markdown", "code"]
    assert _table_rows(out.cells[1].source) == {"profile": "`smoke`"}
    assert out.cells[2].metadata["tags"] == ["hide-input"]


@pytest.mark.parametrize("stem", book.CHAPTERS)
def test_present_on_the_real_chapters(stem):
    """The settings table of every real chapter under the book profile: in place of its parameters cell, listing
    every parameter it declares with the book profile's value where the profile sets one."""
    source = ROOT / "notebooks" / f"{stem}.ipynb"
    if not source.exists():
        pytest.skip(f"{source} is missing")
    nb = nbformat.read(source, as_version=4)
    declared = book.declared_parameters(source)
    params = book.merge_params(book.load_profile("book", ROOT), stem, "book", declared)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    render.present(nb, "book", params)
    assert render.SETTINGS_TAG in nb.cells[at].metadata["tags"]
    assert sum(render.SETTINGS_TAG in c.metadata.get("tags", []) for c in nb.cells) == 1
    rows = _table_rows(nb.cells[at].source)
    assert set(rows) == declared | {"profile"} and rows["profile"] == "`book`"
    for key, value in params.items():
        assert rows[key] == render.format_value(value), key
    assert all(max(map(len, (k, v))) < 80 for k, v in rows.items()), rows
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = [c for c in code if render.SHOW_INPUT in c.metadata["tags"]]
    assert all(("remove-cell" if "parameters" in c.metadata["tags"] else "hide-input") in c.metadata["tags"]
               for c in code if c not in shown)
    assert not any("hide-input" in c.metadata["tags"] for c in shown)
    # the method's own call, shown where it first appears (chapter 1's Fig. 1); every other chapter folds its code
    assert [c.source.count("gvcf.generate(") for c in shown] == ([1] if stem == "01_overview" else [])


# ----------------------------------------------------------------------------- the claim tally

def test_count_verdicts():
    assert render.count_verdicts(executed()) == {"holds": 2, "reversed": 1, "inconclusive": 0, "not checked": 1}
    nb = executed()
    nb.cells[5].outputs[0].data["text/markdown"] = CLAIMS.splitlines(keepends=True)   # stored as a list of lines
    nb.cells[3].outputs.append(v4.new_output("stream", name="stdout", text="- printed, not displayed: **holds**\n"))
    nb.cells[3].outputs.append(_markdown_output("Some **holds** in a sentence, and\n- a list item: holds\n"
                                                "- a claim: **inconclusive** (this run: 1 [-1, 2]; paper: 3)\n"
                                                "- an old verdict: **does not hold**"))
    assert render.count_verdicts(nb) == {"holds": 2, "reversed": 1, "inconclusive": 1, "not checked": 1}
    assert render.count_verdicts(v4.new_notebook()) == dict.fromkeys(C.VERDICTS, 0)
    lines = render.claim_lines(executed())
    assert lines[0] == {"claim": "GF beats MD in FID at stride 1/4 of a view", "verdict": "holds",
                        "detail": "this run: difference -2 [-3, -1]"}
    assert lines[1]["claim"] == "GF beats MD in GIQA-QS at stride 1/2: of a view" and lines[1]["detail"] == ""


def test_tally(tmp_path):
    path = tmp_path / "02.ipynb"
    nbformat.write(executed(), path)
    none = executed(claims="No claims here.")
    t = render.tally({"02_guided_fusion": path, "06_runtime": none}, "book")
    counts = {"holds": 2, "reversed": 1, "inconclusive": 0, "not checked": 1}
    assert {k: v for k, v in t.items() if k != "claims"} == {
        "profile": "book", **counts, "total": 4,
        "chapters": {"02_guided_fusion": counts, "06_runtime": dict.fromkeys(C.VERDICTS, 0)}}
    assert [r["chapter"] for r in t["claims"]] == ["02_guided_fusion"] * 4
    assert render.tally_line(t) == ("claims (profile book): 2 hold, 1 reversed, 0 inconclusive, 1 not checked, of 4 "
                                    "in 2 chapter(s)")
    table = render.claims_table(t)
    rows = [line for line in table.splitlines() if line.startswith("| {doc}")]
    assert table.startswith("Of the paper's 4 claims checked by the `book` profile: **2** hold, **1** reversed")
    assert len(rows) == 4 and "| **reversed** | slope 1 [0.5, 2] \\| x |" in rows[2]
    cells = MarkdownIt().enable("table").parse(table)
    assert sum(tok.type == "tr_open" for tok in cells) == 5      # the header and 4 claims: the pipe stays escaped


# ----------------------------------------------------------------------------- the runner applies both

def _fake_repo(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book" / "profiles").mkdir(parents=True)
    for stem in ("01_overview", "02_guided_fusion"):
        nb = executed()
        nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
        for c in nb.cells:
            if c.cell_type == "code":
                c.update(outputs=[], execution_count=None)
        nbformat.write(nb, tmp_path / "notebooks" / f"{stem}.ipynb")
    for name in ("book", "smoke"):
        (tmp_path / "book" / "profiles" / f"{name}.yml").write_text(
            "common: {n_prompts: 2, results_dir: results}\n02_guided_fusion: {alphas: [0.1, 0.2, 0.3]}\n")
    return tmp_path


def _fake_execute(verdicts: dict):
    """papermill's stand-in: the source with an injected-parameters cell and the chapter's claims displayed."""
    def execute(source, target, params, kernel, cwd, log_output):
        nb = nbformat.read(source, as_version=4)
        nb.cells.insert(2, v4.new_code_cell("# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items()),
                                            metadata={"tags": ["injected-parameters"]}))
        nb.cells[5].outputs = [_markdown_output(verdicts[source.stem])]
        nbformat.write(nb, target)
        if source.stem == publish.OVERVIEW_CHAPTER:   # chapter 1 saves Fig. 1 under its results_dir, by profile
            picture = overview_path(params["results_dir"], params["profile"])
            picture.parent.mkdir(parents=True, exist_ok=True)
            picture.write_bytes(_picture(params["profile"]))
    return execute


def _picture(profile: str) -> bytes:
    return b"\x89PNG Fig. 1 under " + profile.encode()


def test_run_prepares_the_pages_and_writes_the_tally_under_book_only(tmp_path, monkeypatch, capsys):
    root = _fake_repo(tmp_path)
    two = "\n".join(_line(f"claim {i}", v) for i, v in enumerate(("holds", "not checked")))
    monkeypatch.setattr(book, "_execute", _fake_execute({"01_overview": two, "02_guided_fusion": CLAIMS}))
    book.run("smoke", root=root, log_output=False)
    assert not (root / "book" / "tally.json").exists()   # only the published book's run writes it
    assert "claims (profile smoke): 3 hold, 1 reversed, 0 inconclusive, 2 not checked, of 6 in 2 chapter(s)" in \
        capsys.readouterr().err

    book.run("book", root=root, log_output=False)
    tally = json.loads((root / "book" / "tally.json").read_text())
    one = {"holds": 1, "reversed": 0, "inconclusive": 0, "not checked": 1}
    assert {k: v for k, v in tally.items() if k != "claims"} == {
        "profile": "book", "holds": 3, "reversed": 1, "inconclusive": 0, "not checked": 2, "total": 6,
        "chapters": {"01_overview": one,
                     "02_guided_fusion": {"holds": 2, "reversed": 1, "inconclusive": 0, "not checked": 1}}}
    err = capsys.readouterr().err
    assert "claims (profile book): 3 hold, 1 reversed, 0 inconclusive, 2 not checked, of 6 in 2 chapter(s)" in err
    forest, overview = root / "book" / "figures" / "claims_forest.png", root / "book" / "figures" / "overview.png"
    assert (f"published -> {root / 'book' / 'tally.json'}, {root / 'book' / 'claims.md'}, {forest}, {overview}"
            in err)
    assert (root / "book" / "claims.md").read_text() == render.claims_table(tally)
    assert sorted(p.name for p in (root / "book").iterdir()) == ["chapters", "claims.md", "figures", "profiles",
                                                                  "tally.json"]
    assert forest.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in forest.parent.iterdir()) == ["claims_forest.png", "overview.png"]
    # the README's picture is the copy of the one chapter 1 saved under the book profile (not smoke's)
    assert overview.read_bytes() == _picture("book") == overview_path(root / "results", "book").read_bytes()
    assert (root / "results" / "figures" / "smoke" / "overview.png").read_bytes() == _picture("smoke")

    out = root / "book" / "chapters"
    nb = nbformat.read(out / "02_guided_fusion.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[1] == [render.SETTINGS_TAG]
    assert "remove-cell" in tags[2] and "remove-cell" in tags[3]
    assert all("hide-input" in t for c, t in zip(nb.cells, tags) if c.cell_type == "code" and "remove-cell" not in t)
    rows = _table_rows(nb.cells[1].source)
    # the parameters as the profile gave them (results_dir relative, not the absolute path papermill got)
    assert (rows["profile"], rows["n_prompts"], rows["alphas"], rows["results_dir"]) == \
        ("`book`", "`2`", "`[0.1, 0.2, 0.3]`", "`results`")
    source = nbformat.read(root / "notebooks" / "02_guided_fusion.ipynb", as_version=4)
    assert not any("hide-input" in c.metadata.get("tags", []) for c in source.cells)   # the source stays plain

    # a chapter rerun under another profile is left out of the book's tally (which stays as it was)
    book.run("smoke", ["02_guided_fusion"], root=root, log_output=False)
    assert "left out, made under another profile: 01_overview" in capsys.readouterr().err
    assert json.loads((root / "book" / "tally.json").read_text()) == tally
    # a part of the book is not published: chapter 2 is now smoke's, so a book run of chapter 1 leaves book/ as it was
    book.run("book", ["01_overview"], root=root, log_output=False)
    err = capsys.readouterr().err
    assert "claims (profile book): 1 hold" in err and "not published (book/ left as it was): 02_guided_fusion" in err
    assert json.loads((root / "book" / "tally.json").read_text()) == tally
    # skipped chapters are counted too: chapter 2 rerun under book, chapter 1 up to date
    book.run("book", root=root, log_output=False)
    assert json.loads((root / "book" / "tally.json").read_text()) == tally
    assert overview.read_bytes() == _picture("book")

    # a picture gone from results/ leaves the published one as it was, with a warning
    (root / "results" / "figures" / "book" / "overview.png").unlink()
    capsys.readouterr()
    book.run("book", ["01_overview"], root=root, log_output=False)
    assert f"WARNING: {publish.OVERVIEW_PATH} not updated" in capsys.readouterr().err
    assert overview.read_bytes() == _picture("book")


def test_run_survives_an_unreadable_executed_notebook(tmp_path, monkeypatch, capsys):
    root = _fake_repo(tmp_path)
    monkeypatch.setattr(book, "_execute", lambda source, target, *a: target.write_text("{}"))
    assert [r["status"] for r in book.run("book", ["01_overview"], root=root)] == ["ran"]
    err = capsys.readouterr().err
    assert "01_overview: WARNING: could not prepare the page" in err and "no claim tally" in err
    assert not (root / "book" / "tally.json").exists()
