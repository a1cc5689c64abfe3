"""Where a run spends its time: named stages (generation, features, metrics, plotting), each timed exclusively.

``with stage("features"): ...`` (or ``@stage("plotting")`` on a function) records the seconds spent inside the block
minus those of the stages nested in it, so the stages of a run add up to at most its wall time. Nothing is recorded
unless the environment names a log file (STAGE_LOG_ENV, set by the book runner for each chapter's kernel): then each
outermost stage appends one JSON line {"stage": name, "seconds": s} per stage it covered.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections import defaultdict
from pathlib import Path

STAGE_LOG_ENV = "GVCF_STAGE_LOG"
STAGES = ("generation", "features", "metrics", "plotting")

_open: list[list] = []                 # the stages now running, outermost first: [name, start, nested seconds]
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
        if _open:
            _open[-1][2] += elapsed
        else:
            _flush()


def _flush() -> None:
    path = os.environ.get(STAGE_LOG_ENV)
    if path:
        with open(path, "a") as fh:
            for name, seconds in _totals.items():
                fh.write(json.dumps({"stage": name, "seconds": seconds}) + "\n")
    _totals.clear()


def read_log(path: str | os.PathLike) -> dict[str, float]:
    """Seconds per stage in a log written under STAGE_LOG_ENV (every stage of STAGES present, 0 where absent)."""
    totals = dict.fromkeys(STAGES, 0.0)
    path = Path(path)
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                totals[entry["stage"]] = totals.get(entry["stage"], 0.0) + float(entry["seconds"])
    return totals
