"""Where the book's hour goes: the chapters' stage seconds (gvcf.engine.stages) as tables.

``python -m gvcf.book.profile`` reads the run records that ``python -m gvcf.book run`` leaves beside the executed
chapters (book/chapters/<stem>.run.json) and prints two tables: seconds per chapter and stage, and generation's
seconds per method and sampler (the labels gvcf.eval.datasets and gvcf.paper.runtime put on it), summed over the
chapters. "other" is a chapter's wall time outside every stage: kernel start, imports, cache reads, rendering.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from ..engine.stages import STAGE_LOG_ENV, STAGES, by_label
from ..paper.tables import page_table
from .toc import CHAPTERS, CHAPTERS_DIR, RECORD_SUFFIX, STAGES_SUFFIX

RECORDS = f"*{RECORD_SUFFIX}"


def read_records(folder: str | Path) -> list[dict]:
    """The chapters' run records in `folder`, in chapter order; ValueError naming the folder when it has none."""
    records = _records(folder)
    if not records:
        raise ValueError(f"folder {str(folder)!r} holds no chapter run records ({RECORDS}); run "
                         "`python -m gvcf.book run` first")
    return records


def _records(folder: str | Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob(RECORDS))]


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:,.0f}" if isinstance(v, float) else v   # noqa: E731 - whole seconds
    lines = [_row(head), _row(["---"] + ["---:"] * (len(head) - 1))]
    return "\n".join(lines + [_row([fmt(v) for v in r]) for r in rows])


def stage_rows(records: list[dict]) -> tuple[list[str], list[list]]:
    """(header, rows): seconds per chapter in each stage, "other" the rest of its wall time, and a total row."""
    head = ["chapter", "total", *STAGES, "other"]
    rows = []
    for r in records:
        parts = [float(r["stages"].get(k, 0.0)) for k in STAGES]
        rows.append([r["notebook"], float(r["seconds"]), *parts, max(0.0, float(r["seconds"]) - sum(parts))])
    rows.append(["all", *(sum(row[i] for row in rows) for i in range(1, len(head)))])
    return head, rows


def generation_rows(records: list[dict]) -> tuple[list[str], list[list]]:
    """(header, rows): generation's seconds per label summed over the chapters, largest first, with its share."""
    totals: dict[str, float] = {}
    for r in records:
        for label, seconds in by_label(r["stages"], "generation").items():
            totals[label] = totals.get(label, 0.0) + float(seconds)
    whole = sum(float(r["stages"].get("generation", 0.0)) for r in records) or 1.0
    rows = [[label, s, f"{100 * s / whole:.0f}%"] for label, s in sorted(totals.items(), key=lambda kv: -kv[1])]
    return ["method and sampler", "generation, s", "share"], rows


def profile_parts(records: list[dict]) -> list[tuple[list[str], list[list]]]:
    """[(header, rows)] of both tables; the generation table only when some chapter labelled its generation (one
    whose images all came from the cache labels none)."""
    return [(head, rows) for head, rows in (stage_rows(records), generation_rows(records)) if rows]


def profile_markdown(records: list[dict]) -> str:
    """Both tables as Markdown (what the command prints), seconds rounded to whole seconds."""
    return "\n\n".join(_table(head, rows) for head, rows in profile_parts(records)) + "\n"


def recorded_records(folder: str | Path, profile: str) -> list[dict]:
    """The run records in `folder` of the chapters whose last run there was under `profile`."""
    return [r for r in _records(folder) if r.get("profile") == profile]


def this_run_tables(profile: str) -> list:
    """What the runtime chapter shows of the other chapters run in the book runner's folder (its stage log's folder,
    named by gvcf.engine.stages.STAGE_LOG_ENV) under `profile`: the tables as HTML, whole seconds (myst-nb
    renders a Markdown output as CommonMark, which has no tables), or a sentence saying why there are none."""
    from IPython.display import Markdown

    log = os.environ.get(STAGE_LOG_ENV)
    if not log:
        return [Markdown("This chapter runs outside `python -m gvcf.book run`: there are no run records to show.")]
    folder, running = Path(log).parent, Path(log).name.removesuffix(STAGES_SUFFIX)
    records = [r for r in recorded_records(folder, profile) if r["notebook"] != running]   # an earlier run of its own
    if not records:
        return [Markdown(f"No chapter has a run record of profile {profile!r} in {str(folder)!r} yet.")]
    (head, rows), *generation = profile_parts(records)   # the stage table always has rows: its total row
    # stages as rows and chapters as columns, a chapter by its number: 11 stage columns do not fit the page
    numbered = {stem: str(i) for i, stem in enumerate(CHAPTERS, 1)}
    by_stage = pd.DataFrame(rows, columns=head).set_index(head[0]).T.rename(columns=numbered)
    by_stage = by_stage.rename_axis(index="stage", columns=None).reset_index()
    frames = [by_stage, *(pd.DataFrame(r, columns=h) for h, r in generation)]
    return [page_table(frame, digits=",.0f") for frame in frames]


def _ran(records) -> list[dict]:
    """The records of chapters that ran in this invocation (not skipped as up to date) and logged their stages."""
    return [r for r in records if r.get("status") == "ran" and "stages" in r]


def stage_table(records) -> str:
    """Seconds per chapter in each stage (gvcf.engine.stages), "other" being the rest of its wall time (kernel start,
    imports, cache reads, notebook rendering), for the chapters that ran: gvcf.book.profile's first table, as text."""
    ran = _ran(records)
    if not ran:
        return ""
    head, rows = stage_rows(ran)
    width = max(len(str(row[0])) for row in rows + [head])
    cell = max(len(h) for h in head[1:]) + 2
    lines = [f"{head[0]:<{width}}" + "".join(f"{h:>{cell}}" for h in head[1:])]
    lines += [f"{row[0]:<{width}}" + "".join(f"{v:>{cell - 1}.0f}s" for v in row[1:]) for row in rows]
    return "\n".join(lines)


def generation_line(records) -> str:
    """Generation's seconds per method and sampler over the chapters that ran (the labels gvcf.eval.datasets puts on
    the stage; gvcf.book.profile's second table), largest first: where the chapters' generation lines went."""
    ran = _ran(records)
    rows = generation_rows(ran)[1] if ran else []
    return ", ".join(f"{label} {seconds:.0f} s" for label, seconds, _ in rows)


def print_stages(records) -> None:
    """Print where the chapters that ran spent their time (seconds per stage, and generation's per method)."""
    table = stage_table(records)
    if table:
        print("[gvcf.book] seconds per stage:\n" + table, file=sys.stderr)
    line = generation_line(records)
    if line:
        print(f"[gvcf.book] generation per method and sampler: {line}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gvcf.book.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(CHAPTERS_DIR),
                        help=f"the folder of the executed chapters and their run records (default: {CHAPTERS_DIR})")
    args = parser.parse_args(argv)
    try:
        print(profile_markdown(read_records(args.out_dir)), end="")
    except ValueError as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
