"""Where a run spends its time: named stages (model loads, generation, SyncDiffusion's gradient step, decoding,
features, bootstrap, metrics, plotting), each timed exclusively.

``with stage("features"): ...`` (or ``@stage("plotting")`` on a function) records the seconds spent inside the block
minus those of the stages nested in it, so the stages of a run add up to at most its wall time. Nothing is recorded
unless the environment names a log file (STAGE_LOG_ENV, set by the book runner for each chapter's kernel): then each
outermost stage appends one JSON line {"stage": name, "seconds": s} per stage it covered.

``with labelled("gf ddim"): ...`` names what the stages inside it work for (a method, a set): their seconds are
also logged under "stage: label" keys (LABEL_SEP), so a profile can split generation by method.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections import defaultdict
from pathlib import Path

STAGE_LOG_ENV = "GVCF_STAGE_LOG"
STAGES = ("model loads", "generation", "sync gradient", "decoding", "features", "bootstrap", "metrics", "plotting")
LABEL_SEP = ": "                       # "generation: gf ddim" = generation's seconds under labelled("gf ddim")

_open: list[list] = []                 # the stages now running, outermost first: [name, start, nested seconds]
_labels: list[str] = []                # the labels now in force, innermost last
_totals: dict[str, float] = defaultdict(float)   # exclusive seconds per stage, flushed when the outermost ends


@contextlib.contextmanager
def stage(name: str):
    """Time a block as stage `name` (one of STAGES), exclusive of the stages nested in it."""
    if name not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {name!r}")
    if not os.environ.get(STAGE_LOG_ENV):
        yield
        return
    _open.append([name, time.perf_counter(), 0.0])
    try:
        yield
    finally:
        name, start, nested = _open.pop()
        elapsed = time.perf_counter() - start
        _totals[name] += elapsed - nested
        if _labels:
            _totals[f"{name}{LABEL_SEP}{_labels[-1]}"] += elapsed - nested
        if _open:
            _open[-1][2] += elapsed
        else:
            _flush()


@contextlib.contextmanager
def labelled(label: str):
    """Log the stages inside the block under `label` too (the innermost label wins); a no-op without a log."""
    if not isinstance(label, str) or not label or LABEL_SEP in label:
        raise ValueError(f"label must be a non-empty string without {LABEL_SEP!r}, got {label!r}")
    _labels.append(label)
    try:
        yield
    finally:
        _labels.pop()


def _flush() -> None:
    path = os.environ.get(STAGE_LOG_ENV)
    if path:
        with open(path, "a") as fh:
            for name, seconds in _totals.items():
                fh.write(json.dumps({"stage": name, "seconds": seconds}) + "\n")
    _totals.clear()


def read_log(path: str | os.PathLike) -> dict[str, float]:
    """Seconds per stage in a log written under STAGE_LOG_ENV (every stage of STAGES present, 0 where absent), and
    per labelled stage ("stage: label") where labels were in force."""
    totals = dict.fromkeys(STAGES, 0.0)
    path = Path(path)
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                totals[entry["stage"]] = totals.get(entry["stage"], 0.0) + float(entry["seconds"])
    return totals


def by_label(totals: dict[str, float], name: str) -> dict[str, float]:
    """{label: seconds} of stage `name` in read_log's totals (its labelled keys), largest first."""
    head = f"{name}{LABEL_SEP}"
    parts = {k[len(head):]: v for k, v in totals.items() if k.startswith(head)}
    return dict(sorted(parts.items(), key=lambda kv: -kv[1]))
