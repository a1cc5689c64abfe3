"""What does not carry over between models: a knob's strength (Style Alignment's alpha, SyncDiffusion's weight),
calibrated so that SSIM to MD reaches the paper's Table 4 value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .tables import paper_table
from .ssim import ssim_results

if TYPE_CHECKING:
    from .chapter_setup import Setup


KNOBS = {   # a knob -> (its set at value v: f(S, prompts, n_per_prompt, v), the paper's Table 4 pair it sets SSIM of)
    "alpha": (lambda S, prompts, n, v: S.dataset("MD", prompts, n, alpha=v), ("MD+SA0.1", "MD")),
    "sync_weight": (lambda S, prompts, n, v: S.dataset("Sync", prompts, n, sync_weight=v), ("Sync", "MD")),
}


CALIBRATION_DIGITS = 2      # a calibrated value is rounded to 2 decimals (one image set per value: a cache key)


@dataclass(frozen=True)
class Calibration:
    """Mean SSIM to MD against a knob's values, and the value where it reaches the paper's SSIM (target)."""

    knob: str
    values: tuple
    ssim: tuple
    target: float
    value: float          # where SSIM reaches target (linear interpolation); not reached: the value nearest to it
    reached: bool
    n: int                # panoramas per value

    def text(self) -> str:
        at = ", ".join(f"{v:g}: {s:.2f}" for v, s in zip(self.values, self.ssim))
        where = (f"reaches the paper's {self.target:.2f} at {self.knob} = {self.value:g}" if self.reached else
                 f"never reaches the paper's {self.target:.2f} on this grid; closest at {self.knob} = {self.value:g}")
        return f"SSIM to MD against {self.knob} ({at}; n = {self.n} panoramas each) {where}"


def calibration_value(values, ssims, target: float) -> tuple[float, bool]:
    """(value, reached): the first crossing of target by the curve (values, ssims), linearly interpolated, else the
    grid value whose SSIM is nearest to target."""
    points = sorted(zip(map(float, values), map(float, ssims)))
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if y0 != y1 and (y0 - target) * (y1 - target) <= 0:
            return x0 + (target - y0) * (x1 - x0) / (y1 - y0), True
    return min(points, key=lambda p: abs(p[1] - target))[0], False


def calibrate(S: Setup, knob: str, values, prompts, n_per_prompt: int) -> Calibration:
    """The knob's value at which SSIM between its panoramas and MD's (same noise) falls to the paper's Table 4
    value (data/paper/table4.csv), measured on a grid of values (each an image set, generated where missing)."""
    if knob not in KNOBS:
        raise ValueError(f"knob must be one of {sorted(KNOBS)}, got {knob!r}")
    values = [float(v) for v in values]
    if len(values) < 2 or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"values must be 2 or more finite numbers >= 0, got {values}")
    make, (row, col) = KNOBS[knob]
    table4 = paper_table("table4")
    target = float(table4[(table4["row"] == row) & (table4["col"] == col)]["ssim"].iloc[0])
    md = S.dataset("MD", prompts, n_per_prompt)
    curve = [float(np.mean(ssim_results({"MD": md, knob: make(S, prompts, n_per_prompt, v)})
                           .select(row="MD", col=knob)[0].values["ssim"])) for v in values]
    value, reached = calibration_value(values, curve, target)
    return Calibration(knob, tuple(values), tuple(curve), target, round(value, CALIBRATION_DIGITS), reached,
                       len(prompts) * n_per_prompt)


def calibrated_sets(S: Setup, calibration: dict, prompts, n_per_prompt: int) -> dict:
    """Table 4's sets at the calibrated knobs, under the paper's names (MD, MD+SA0.1, Sync) so its claims apply."""
    sets = {"MD": S.dataset("MD", prompts, n_per_prompt)}
    for knob, c in calibration.items():
        make, (row, _) = KNOBS[knob]
        sets[row] = make(S, prompts, n_per_prompt, c.value)
    return sets
