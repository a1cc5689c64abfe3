"""The book's published record: after a whole book has run under the profile ``book``, its claim tally
(book/tally.json), the intro's table of every claim (book/claims.md), their forest plot
(book/figures/claims_forest.png) and chapter 1's Fig. 1 (book/figures/overview.png, the README's picture). These four
files are committed; nothing else a run writes leaves the executed chapters' folder and results/.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import render
from .toc import NOTEBOOKS_DIR, RECORD_SUFFIX

TALLY_PROFILE = "book"                       # only the published book's run writes the tally (as chapter 1's figure)
TALLY_PATH = Path("book") / "tally.json"
CLAIMS_TABLE_PATH = Path("book") / "claims.md"   # the whole book's claims, included by the intro page
CLAIMS_FOREST_PATH = Path("book") / "figures" / "claims_forest.png"   # the same claims as a forest plot (intro)
OVERVIEW_CHAPTER = "01_overview"             # saves Fig. 1 under its results_dir (gvcf.book.figures.save_overview)
OVERVIEW_PATH = Path("book") / "figures" / "overview.png"   # ... published here for the README


def write_tally(out: Path, stems, profile: str, root: str | os.PathLike = ".") -> dict | None:
    """Count the claim verdicts of the executed chapters in `out` made under `profile` (their records say so),
    print the tally, and under the profile named `book`, when every chapter of `stems` is there, publish it
    (:func:`publish`). Returns it, or None when no chapter of this profile is there."""

    chapters, other = {}, []
    for stem in stems:
        target, record_path = out / f"{stem}.ipynb", out / f"{stem}{RECORD_SUFFIX}"
        if not (target.exists() and record_path.exists()):
            continue
        try:
            made_under = json.loads(record_path.read_text()).get("profile")
        except (OSError, ValueError):
            made_under = None
        if made_under == profile:
            chapters[stem] = target
        else:
            other.append(stem)
    if not chapters:
        return None
    try:
        tally = render.tally(chapters, profile)
    except Exception as err:  # noqa: BLE001 - an unreadable notebook: no tally rather than no book
        print(f"[gvcf.book] WARNING: no claim tally ({type(err).__name__}: {err})", file=sys.stderr)
        return None
    print(f"[gvcf.book] {render.tally_line(tally)}"
          + (f"; left out, made under another profile: {', '.join(other)}" if other else ""), file=sys.stderr)
    missing = [stem for stem in stems if stem not in chapters]
    if profile == TALLY_PROFILE and missing:   # the published record is the whole book's, never a part of it
        print(f"[gvcf.book] not published (book/ left as it was): {', '.join(missing)} not executed under profile "
              f"{profile} in {out}", file=sys.stderr)
    elif profile == TALLY_PROFILE:
        publish(tally, out, root)
    return tally


def chapter_results_dir(stem: str, params: dict, root: str | os.PathLike = ".") -> Path:
    """Where a chapter run with `params` kept its results: its results_dir parameter (relative: to root, as the
    runner passes it), else its parameters cell's default (relative: to notebooks/, as the chapter reads it)."""
    value, base = params.get("results_dir"), Path(root)
    if value is None:
        import nbformat

        source = Path(root) / NOTEBOOKS_DIR / f"{stem}.ipynb"
        value, base = render.notebook_defaults(nbformat.read(str(source), as_version=4)).get("results_dir"), \
            source.parent
    if value is None:
        raise ValueError(f"{stem}: no results_dir (neither a parameter of the run nor a default of its notebook)")
    path = Path(os.path.expanduser(str(value)))
    return (path if path.is_absolute() else base / path).resolve()


def publish(tally: dict, out: Path, root: str | os.PathLike = ".") -> list[Path]:
    """Write the published record, each file atomically: the tally (book/tally.json), the intro's table of every claim
    (book/claims.md), their forest plot (book/figures/claims_forest.png), and a copy of the README's picture, chapter
    1's Fig. 1 as the chapter saved it under its results_dir (book/figures/overview.png; left as it was, with a
    warning, when chapter 1 or its picture is missing). Returns the paths written."""
    from ..eval.cache import write_atomic
    from .figures import overview_path
    from .forest import forest_png

    root = Path(root)
    files = {root / TALLY_PATH: (json.dumps(tally, indent=1, ensure_ascii=False) + "\n").encode(),
             root / CLAIMS_TABLE_PATH: render.claims_table(tally).encode(),
             root / CLAIMS_FOREST_PATH: forest_png(tally)}
    record_path = out / f"{OVERVIEW_CHAPTER}{RECORD_SUFFIX}"
    try:
        record = json.loads(record_path.read_text())
        if record.get("profile") != TALLY_PROFILE:
            raise ValueError(f"{OVERVIEW_CHAPTER} was last run under profile {record.get('profile')!r}")
        params = record["params"]
        picture = overview_path(chapter_results_dir(OVERVIEW_CHAPTER, params, root), TALLY_PROFILE)
        files[root / OVERVIEW_PATH] = picture.read_bytes()
    except (OSError, ValueError, KeyError) as err:
        print(f"[gvcf.book] WARNING: {OVERVIEW_PATH} not updated ({type(err).__name__}: {err})", file=sys.stderr)
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    print(f"[gvcf.book] published -> {', '.join(str(p) for p in files)}", file=sys.stderr)
    return list(files)
