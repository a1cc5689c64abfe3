"""How an executed chapter reads in the book, and what its claims add up to.

After papermill has run a chapter, :func:`present` edits the executed copy (book/chapters/<stem>.ipynb; the source in
notebooks/ stays plain, as users run it under nbval):

- every code cell is tagged ``hide-input``: myst-nb folds its source into a "Show code cell source" toggle and shows
  its outputs (figures, tables, verdicts); but a cell the source tags ``show-input`` keeps its code shown (chapter 1's
  call of the method itself, ``gvcf.generate``, where the method first appears);
- the source's ``parameters`` cell and papermill's ``injected-parameters`` cell are tagged ``remove-cell`` (kept in
  the notebook, left off the page) and one short markdown table of this build's settings (profile, and every
  parameter with its effective value) is put where they were.

:func:`claim_lines` reads the claim lines a chapter displayed (gvcf.paper.claims.Checked.markdown: ``- <claim>:
**<verdict>** (<detail>)``, a verdict of gvcf.paper.claims.VERDICTS); :func:`count_verdicts` counts them,
:func:`tally` adds them up over chapters and :func:`claims_table` makes the whole book's table for its intro page.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from ..paper.claims import VERDICTS, counts_text, effect_record

HIDE_INPUT = "hide-input"
SHOW_INPUT = "show-input"               # a source cell whose code the page shows (html_check: tag_show-input)
REMOVE_CELL = "remove-cell"
SETTINGS_TAG = "gvcf-settings"          # the inserted markdown cell's tag, and the class of its <div> in the HTML
SETTINGS_CLASS = SETTINGS_TAG
PARAMETER_TAGS = ("parameters", "injected-parameters")
VERDICT_LINE = re.compile(r"^\s*[-*]\s+(?P<claim>.+?):\s+\*\*(?P<verdict>" + "|".join(VERDICTS)
                          + r")\*\*(?:\s+\((?P<detail>.*)\))?\s*$")
MAX_VALUE = 60                          # characters of a value shown in the settings table


# ----------------------------------------------------------------------------- the settings table

def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _add_tag(cell, tag: str) -> None:
    tags = _tags(cell)
    if tag not in tags:
        cell.setdefault("metadata", {})["tags"] = tags + [tag]


def notebook_defaults(nb) -> dict:
    """{name: default} from the `parameters`-tagged cell, in the order assigned; a default that is not a literal is
    kept as its source text (wrapped in a `_Source` so it is shown as written)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in _tags(cell):
            out = {}
            for node in ast.parse(cell.source).body:
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, ast.AnnAssign) else []
                for t in targets:
                    if isinstance(t, ast.Name) and node.value is not None:
                        try:
                            out[t.id] = ast.literal_eval(node.value)
                        except ValueError:
                            out[t.id] = _Source(ast.get_source_segment(cell.source, node.value) or "?")
            return out
    return {}


class _Source(str):
    """A default that is an expression, not a literal: shown as written."""


def _shorten(text: str, limit: int = MAX_VALUE) -> str:
    if len(text) <= limit:
        return text
    if "/" in text and " " not in text:          # a path: its end says more than its start
        return "…" + text[-(limit - 1):]
    return text[:limit - 1] + "…"


def _plain(value) -> str:
    if isinstance(value, _Source):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain(v) if not isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                               for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_value(value) -> str:
    """A parameter's value for a markdown table cell: None is "default" (the chapter decides; its parameters cell
    says how), anything else compact code; a long list is cut to its first items and its length."""
    if value is None:
        return "default"
    if isinstance(value, (list, tuple)) and len(_plain(value)) > MAX_VALUE and len(value) > 1:
        head = value[0]
        first = f'"{_shorten(head, MAX_VALUE - 22)}"' if isinstance(head, str) else _shorten(_plain(head), MAX_VALUE - 20)
        text = f"[{first}, …] ({len(value)} items)"
    else:
        text = _shorten(_plain(value))
    text = text.replace("`", "'").replace("|", "\\|").replace("\n", " ")
    return f"`{text}`"


def settings_markdown(profile: str, params: dict, defaults: dict | None = None) -> str:
    """The settings table of a chapter: profile first, then every parameter (the notebook's, in its order, then any
    other the runner passed) with its effective value: the one passed, else the notebook's default."""
    defaults = defaults or {}
    values = {**defaults, **params}
    names = [k for k in list(defaults) + [k for k in params if k not in defaults] if k != "profile"]
    rows = [f"| profile | `{profile}` |"] + [f"| {name} | {format_value(values[name])} |" for name in names]
    return "\n".join([
        f'<div class="{SETTINGS_CLASS}">', "",
        f"**This build's settings** (profile `{profile}`; *default*: the chapter's own choice, see "
        f"[Reproducing the paper](../reproduce.md))", "",
        "| setting | value |", "|---|---|", *rows, "", "</div>"])


def present(nb, profile: str, params: dict):
    """Edit an executed chapter in place for the book (see the module's docstring); returns nb. Running it twice
    changes nothing more."""
    import nbformat

    old = [c for c in nb.cells if c.cell_type == "markdown" and SETTINGS_TAG in _tags(c)]
    nb.cells = [c for c in nb.cells if not any(c is o for o in old)]
    first = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if any(t in _tags(cell) for t in PARAMETER_TAGS):
            _add_tag(cell, REMOVE_CELL)
            first = i if first is None else first
        elif SHOW_INPUT not in _tags(cell):
            _add_tag(cell, HIDE_INPUT)
    table = nbformat.v4.new_markdown_cell(settings_markdown(profile, params, notebook_defaults(nb)),
                                          metadata={"tags": [SETTINGS_TAG]})
    if nb.get("nbformat_minor", 5) < 5:      # cell ids came with nbformat 4.5
        table.pop("id", None)
    elif old and "id" in old[0]:
        table["id"] = old[0]["id"]
    nb.cells.insert(first if first is not None else min(1, len(nb.cells)), table)
    return nb


def present_file(path: str | Path, profile: str, params: dict) -> None:
    """present() an executed notebook file, rewriting it in place."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    present(nb, profile, params)
    nbformat.write(nb, str(path))


# ----------------------------------------------------------------------------- the claim tally

def _markdown_outputs(nb):
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") in ("display_data", "execute_result"):
                text = out.get("data", {}).get("text/markdown")
                if text:
                    yield "".join(text) if isinstance(text, list) else text


def claim_lines(nb) -> list[dict]:
    """[{"claim", "verdict", "detail"}]: the claim lines a chapter displayed as markdown, in order."""
    out = []
    for text in _markdown_outputs(nb):
        for line in text.splitlines():
            m = VERDICT_LINE.match(line)
            if m:
                out.append({"claim": m["claim"], "verdict": m["verdict"], "detail": m["detail"] or ""})
    return out


def count_verdicts(nb) -> dict[str, int]:
    """{verdict: n} for every verdict of VERDICTS: the claim lines a chapter displayed as markdown."""
    lines = claim_lines(nb)
    return {v: sum(line["verdict"] == v for line in lines) for v in VERDICTS}


def tally(chapters: dict[str, object], profile: str) -> dict:
    """{"profile", <each verdict>: n, "total", "chapters": {stem: counts}, "claims": [{"chapter", "claim",
    "verdict", "detail", "effect": gvcf.paper.claims.effect_record or None}]} over chapters {stem: an executed notebook (a path or a NotebookNode)}."""
    import nbformat

    per, rows = {}, []
    for stem, nb in chapters.items():
        if isinstance(nb, (str, Path)):
            nb = nbformat.read(str(nb), as_version=4)
        lines = claim_lines(nb)
        per[stem] = {v: sum(line["verdict"] == v for line in lines) for v in VERDICTS}
        rows += [{"chapter": stem, **line, "effect": effect_record(line["claim"], line["detail"])} for line in lines]
    out = {"profile": profile, **{v: sum(c[v] for c in per.values()) for v in VERDICTS}}
    out["total"] = sum(out[v] for v in VERDICTS)
    out["chapters"] = per
    out["claims"] = rows
    return out


def tally_line(t: dict) -> str:
    """One line for the log: "claims (profile book): 3 hold, 1 reversed, 12 inconclusive, 2 not checked, of 18 in 5
    chapter(s)"."""
    return f"claims (profile {t['profile']}): {counts_text(t)}, of {t['total']} in {len(t['chapters'])} chapter(s)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_table(t: dict) -> str:
    """The whole book's claims as one markdown table (chapter, claim, verdict, this run's interval and the paper's
    value), headed by the tally: the intro page includes it (book/claims.md)."""
    counts = counts_text(t, bold=True)
    rows = [f"| {{doc}}`chapters/{r['chapter']}` | {_cell(r['claim'])} | **{r['verdict']}** | {_cell(r['detail'])} |"
            for r in t.get("claims", [])]
    return "\n".join([f"Of the paper's {t['total']} claims checked by the `{t['profile']}` profile: {counts}.", "",
                      "| chapter | claim | verdict | this run (95% interval, n) and the paper |", "|---|---|---|---|",
                      *rows, ""])
