"""Measurements of the fusion itself, without a UNet: the fused noise's variance against the sampler's (Eq. 10-14)
and how each fusion shares a column between the views (Fig. 2).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..engine.fusion import FUSIONS, FusionPlan, fuse
from ..engine.samplers import make_sampler
from ..engine.stages import stage
from ..engine.views import ViewLayout
from ..engine.weights import weight_map


@stage("metrics")
def fused_noise_variance(sampler: str, scheduler_config, steps: int, layout: ViewLayout,
                         methods=("md", "gf", "vcf", "gvcf"), channels: int = 4, draws: int = 4,
                         seed: int = 0) -> pd.DataFrame:
    """Empirical variance of the fused noise in the overlaps, per step, against the sampler's sigma_t^2 (Eq. 10-14).

    At each step every view draws its own noise sigma_t z^(i) (the sampler's std at that step), the views are fused
    with gvcf.engine.fusion.fuse on `layout` exactly as in generation (means set to 0), and the variance of the canvas is
    measured where two or more views overlap. ratio = variance / sigma_t^2: 1 keeps the sampler's variance (VCF,
    GVCF), ~1/2 is MultiDiffusion's shrinkage where two views overlap (Eq. 11). No UNet is involved."""
    s = make_sampler(sampler, scheduler_config, steps)
    bad = [m for m in methods if m not in FUSIONS]
    if bad:
        raise ValueError(f"methods must be fusions {sorted(FUSIONS)}, got {bad}")
    wh, ww = layout.window
    overlap = layout.coverage() >= 2
    single = layout.coverage() == 1
    if not overlap.any():
        raise ValueError("the layout has no overlapping views (stride = view size): nothing is fused")
    plans = {m: FusionPlan.create(layout, weight_map(FUSIONS[m].weights, wh, ww)) for m in methods}
    gen = torch.Generator("cpu").manual_seed(seed)
    zeros = torch.zeros(len(layout), channels, wh, ww)
    rows = []
    for i, t in enumerate(s.timesteps):
        step = s.step(zeros, i, zeros)
        if step.std is None:
            continue
        std = float(step.std)
        if std == 0.0:
            continue
        z = torch.randn((draws, len(layout), channels, wh, ww), generator=gen) * std
        for m, plan in plans.items():
            x = torch.stack([fuse(zeros, z[d], plan, FUSIONS[m].correct_variance)[0] for d in range(draws)])
            var = float(x[..., overlap].double().var())
            var1 = float(x[..., single].double().var()) if single.any() else math.nan
            rows.append(dict(step=i, t=int(t), sigma2=std**2, method=m, variance=var, ratio=var / std**2,
                             ratio_single=var1 / std**2))
    if not rows:
        raise ValueError(f"sampler {sampler!r} draws no noise (a deterministic sampler): nothing to correct")
    return pd.DataFrame(rows)


def variance_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ratio (fused variance / sigma_t^2) per method, in the overlaps and where one view covers the canvas."""
    out = table.groupby("method", sort=False)[["ratio", "ratio_single"]].mean()
    out.columns = ["overlap: variance / sigma_t^2", "one view: variance / sigma_t^2"]
    return out


def expected_md_ratio(layout: ViewLayout) -> float:
    """MultiDiffusion's analytic ratio in the overlaps: the mean of 1/(number of views) there (Eq. 11: 1/2 for two)."""
    cover = layout.coverage()
    return float((1.0 / cover[cover >= 2]).mean())


def guided_profile(layout: ViewLayout, fusion: str = "gf") -> np.ndarray:
    """(views, canvas width) share w_i / W of each view along the canvas's middle row (how the fusion splits each
    column between the views; MD: 1/2 in two-view overlaps)."""
    wh, ww = layout.window
    plan = FusionPlan.create(layout, weight_map(FUSIONS[fusion].weights, wh, ww))
    out = np.zeros((len(layout), layout.width))
    row = wh // 2
    for v, (top, left) in enumerate(layout.boxes):
        w = plan.weights[v, 0, row].numpy()
        out[v, left:left + ww] = w / plan.weight_sum[0, 0, top + row, left:left + ww].numpy()
    return out
