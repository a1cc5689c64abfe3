"""Per-panorama results, the claims' data (gvcf.paper.claims): seam score, sharpness, coherence and tile features
of every panorama of a chapter's sets, and their bootstrap standard errors.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..engine.stages import stage
from ..eval import coherence, metrics
from ..eval.datasets import DatasetConfig
from ..eval.inception import load_image
from ..eval.results import PanoramaSet, Reference, Results
from .image_sets import image_paths
from .metric_rows import cached_features, feature_caches

if TYPE_CHECKING:
    from .chapter_setup import Setup


def _coherence(path: str, size: int, device: str) -> dict[str, float]:
    """Intra-LPIPS and Intra-Style-L of one image file (one VGG pass for both), with one LPIPS net per device;
    cached by the file's path, size and modification time, so an image regenerated in the same kernel is measured
    again (a cache keyed by the path alone returned the old image's numbers)."""
    stat = os.stat(path)
    return _file_coherence(str(path), stat.st_mtime_ns, stat.st_size, size, device)


@lru_cache(maxsize=4096)
def _file_coherence(path: str, mtime_ns: int, n_bytes: int, size: int, device: str) -> dict[str, float]:
    return coherence.coherence(load_image(path), size, _lpips_vgg(device), device)


@lru_cache(maxsize=None)
def _lpips_vgg(device: str):
    from ..engine.perceptual import load_lpips

    return load_lpips(coherence.NET, device=device)


def sharpness(image) -> float:
    """Mean absolute Laplacian of the grey image (0-255): low for blurred images (Fig. 3's DDPM + averaging)."""
    x = load_image(image).astype(np.float64).mean(-1)
    lap = -4 * x[1:-1, 1:-1] + x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:]
    return float(np.abs(lap).mean())


PER_PANORAMA = {   # a per-panorama metric -> f(S, the image set, one image file)
    "seam_score": lambda S, cfg, path: metrics.seam_score(load_image(path), S.seams(cfg.stride)),
    "sharpness": lambda S, cfg, path: sharpness(path),
    **{name: lambda S, cfg, path, name=name: _coherence(str(path), S.native, str(S.device))[name]
       for name in coherence.COHERENCE_METRICS},
}


def _set_features(S: Setup, cfg: DatasetConfig) -> dict[str, np.ndarray]:
    """{mode: (tiles, dim)}: the set's tile features in image order, from the cache metric_row fills."""
    return cached_features(image_paths(cfg), S.native, feature_caches(cfg, S.native), S.device)


def _tile_features(S: Setup, cfg: DatasetConfig) -> dict[str, np.ndarray]:
    """{mode: (panoramas, tiles, dim)}: _set_features per panorama."""
    n = len(cfg.items())
    return {m: f.reshape(n, -1, f.shape[-1]) for m, f in _set_features(S, cfg).items()}


@stage("metrics")
def results(S: Setup, sets: dict, keys, reference: DatasetConfig | None = None, values=()) -> Results:
    """A chapter's per-panorama results, for gvcf.paper.claims: sets maps a tuple of labels (named by keys) to an
    image set; each set gets its per-panorama `values` (names of PER_PANORAMA) and, with a reference set, its tile
    features (the metric rows' cache) for FID, KID and GIQA. Item k of every set is its k-th image, made from the same
    seed in every set of the chapter."""
    keys = tuple(keys)
    bad = [v for v in values if v not in PER_PANORAMA]
    if bad:
        raise ValueError(f"values must be among {sorted(PER_PANORAMA)}, got {bad}")
    out = []
    for key, cfg in sets.items():
        key = key if isinstance(key, tuple) else (key,)
        if len(key) != len(keys):
            raise ValueError(f"set key {key} does not match keys {keys}")
        paths = image_paths(cfg)
        per = {v: np.array([PER_PANORAMA[v](S, cfg, p) for p in paths]) for v in values}
        out.append(PanoramaSet(dict(zip(keys, key)), per, _tile_features(S, cfg) if reference is not None else {}))
    ref = None
    if reference is not None:
        feats = _set_features(S, reference)
        smallest = min(s.features["clean"].shape[0] * s.features["clean"].shape[1] for s in out)
        ref = Reference(feats, giqa_k=min(metrics.GIQA_K, len(feats["clean"]), smallest))
    return Results(out, ref)


def standard_errors(R: Results, metrics="kid_e3", n_boot: int = 1000, limits: bool = False) -> pd.DataFrame:
    """Per set of R, for each metric (a name or several): its value on all the set's panoramas and its bootstrap
    standard error over panoramas (KID's noise at this n, which its point value hides); limits: also the 95%
    interval ("<metric> low", "<metric> high"). One panorama: NaN where a spread is needed."""
    from ..eval import evidence

    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    rows = []
    for s in R.sets:
        row = dict(s.labels)
        for m in metrics:
            value = lambda ks, s=s, m=m: R.value(s, m, ks)  # noqa: E731
            c = evidence.interval(list(range(s.n)), value, n_boot=n_boot) if s.n >= evidence.MIN_ITEMS else None
            row[m] = value(range(s.n)) if c is None else c.estimate
            row[f"{m} SE"] = math.nan if c is None else c.se
            if limits:
                row[f"{m} low"], row[f"{m} high"] = (math.nan, math.nan) if c is None else (c.low, c.high)
        rows.append(row | {"n": s.n})
    return pd.DataFrame(rows)


def variance_results(table: pd.DataFrame) -> Results:
    """fused_noise_variance's ratios as per-step results (each step draws its own noise: the independent unit)."""
    return Results([PanoramaSet({"method": m}, {"ratio": g["ratio"].to_numpy()})
                    for m, g in table.groupby("method", sort=False)], unit="steps")
