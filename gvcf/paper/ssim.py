"""SSIM between the same panorama made by two methods (the paper's Table 4), per panorama and as a matrix.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..engine.stages import stage
from ..eval import metrics
from ..eval.datasets import DatasetConfig
from ..eval.inception import load_image
from ..eval.results import PanoramaSet, Results
from .image_sets import image_paths


@stage("metrics")
def ssim_results(sets: dict[str, DatasetConfig | Sequence]) -> Results:
    """SSIM between image k of set A and image k of set B (paper Table 4), per panorama, for every pair of sets
    (labels row, col, in both orders), streamed image by image."""
    names = list(sets)
    items = {n: image_paths(v) if isinstance(v, DatasetConfig) else list(v) for n, v in sets.items()}
    sizes = {len(v) for v in items.values()}
    if len(names) < 2 or len(sizes) != 1 or 0 in sizes:
        raise ValueError("sets must hold at least 2 non-empty sets of equal length")
    values = {(a, b): [] for i, a in enumerate(names) for b in names[i + 1:]}
    for k in range(sizes.pop()):
        loaded = {n: load_image(items[n][k]) for n in names}
        for a, b in values:
            values[a, b].append(metrics.ssim(loaded[a], loaded[b]))
    return Results([PanoramaSet({"row": r, "col": c}, {"ssim": np.array(v)})
                    for (a, b), v in values.items() for r, c in ((a, b), (b, a))])


def ssim_table(sets: dict[str, DatasetConfig | Sequence] | Results) -> pd.DataFrame:
    """Mean SSIM between image k of set A and image k of set B (paper Table 4): the mean of ssim_results (given, or
    computed from the sets), as a symmetric matrix with diagonal 1 (metrics.ssim_matrix's result, without holding
    the sets in memory)."""
    per = sets if isinstance(sets, Results) else ssim_results(sets)
    names = list(dict.fromkeys(s.labels["row"] for s in per.sets))
    table = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for s in per.sets:
        table.loc[s.labels["row"], s.labels["col"]] = float(np.mean(s.values["ssim"]))
    return table


def ssim_pairs(matrix: pd.DataFrame) -> pd.DataFrame:
    """The lower triangle of an SSIM matrix as (row, col, ssim) rows, as data/paper/table4.csv."""
    names = list(matrix.index)
    return pd.DataFrame([dict(row=a, col=b, ssim=float(matrix.loc[a, b]))
                         for i, a in enumerate(names) for b in names[:i]])
