"""Per-panorama results of image sets, and the set metrics (FID, KID, GIQA) as statistics of a list of panoramas.

    r = Results([PanoramaSet({"method": "GF"}, values={"seam_score": s}, features={"clean": f, ...}), ...],
                reference=Reference({"clean": ref_clean, "pytorch_fid": ref_giqa}, giqa_k=21))
    r.value(r.select(method="GF"), "fid", ks=[0, 2, 2])     # the FID of panoramas 0, 2, 2 of GF's set

Item k of every set is the panorama of seed k (a chapter uses the same seeds for every method), so a bootstrap over
k (gvcf.evidence.interval) resamples whole panoramas, paired across methods. A per-panorama metric (a seam score,
a sharpness, an SSIM to another method's panorama) is the mean over the chosen panoramas; a set metric is computed
on the concatenated tile features of the chosen panoramas against the fixed reference set:

- FID: metrics.fid (clean-fid's formula, exact);
- KID x 10^3: the unbiased MMD^2 over all pairs (clean-fid's KID without its random subsets, which it equals in
  expectation: the subsets only add noise);
- GIQA-QS / GIQA-DS: metrics.giqa_qs / giqa_ds with the metric row's K (Reference.giqa_k) for every resample; only
  a jackknife draw of GIQA-DS, whose bank of generated tiles is one panorama short, may need fewer neighbours, and
  then takes all of them (every jackknife draw alike, so the BCa acceleration, which sees only their spread, is
  unaffected).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Sequence

import numpy as np
import torch

from . import metrics


@dataclass(frozen=True)
class Reference:
    """The reference set's tile features {mode: (tiles, dim)}, and the K every GIQA resample uses."""

    features: dict
    giqa_k: int

    @cached_property
    def kid_within(self) -> float:
        """The reference half of the unbiased MMD^2: mean cubic-kernel value over distinct reference pairs."""
        return _within(np.asarray(self.features["clean"], np.float64))


def _kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1) ** 3


def _within(x: np.ndarray) -> float:
    k = _kernel(x, x)
    return float((k.sum() - np.trace(k)) / (len(x) * (len(x) - 1)))


def mmd2(generated: np.ndarray, reference: Reference) -> float:
    """Unbiased MMD^2 (cubic polynomial kernel, clean-fid's) between generated tiles and the reference, all pairs."""
    g = np.asarray(generated, np.float64)
    r = np.asarray(reference.features["clean"], np.float64)
    return _within(g) + reference.kid_within - 2 * float(_kernel(g, r).mean())


# A bootstrap evaluates a set metric on thousands of draws of the same panoramas. Each metric below measures every
# tile of the set against the reference once, then a draw (panoramas ks, repeats allowed) costs O(tiles drawn^2):
# the same formula as SET_METRICS' direct one, summed in another order (tests: equal to 1e-9 relative; GIQA exactly).

def _fid_draws(tiles: np.ndarray, ref: Reference):
    """metrics.fid(reference, draw): the cross term's singular values are those of (A - mean A) B^T with B the
    centred reference, so every tile's products with B are taken once."""
    r = metrics._features(ref.features["clean"], "reference features")
    centred = r - r.mean(0)
    ref_trace = (centred * centred).sum() / (len(r) - 1)
    products = tiles @ centred.T                      # (tiles, reference)

    def value(idx: np.ndarray) -> float:
        g, p = tiles[idx], products[idx]
        mu = g.mean(0)
        trace = ((g - mu) ** 2).sum() / (len(idx) - 1) + ref_trace
        cross = np.linalg.svd(p - p.mean(0), compute_uv=False).sum() / np.sqrt((len(idx) - 1) * (len(r) - 1))
        return metrics._finite_result(((r.mean(0) - mu) ** 2).sum() + trace - 2 * cross, "fid")

    return value


def _kid_draws(tiles: np.ndarray, ref: Reference):
    """KID x 10^3 = mmd2(draw): the tiles' kernel with each other and their mean kernel to the reference, once."""
    within = _kernel(tiles, tiles)
    to_ref = _kernel(tiles, np.asarray(ref.features["clean"], np.float64)).mean(1)

    def value(idx: np.ndarray) -> float:
        k = within[np.ix_(idx, idx)]
        mmd = (k.sum() - np.trace(k)) / (len(idx) * (len(idx) - 1)) + ref.kid_within - 2 * to_ref[idx].mean()
        return metrics._finite_result(metrics.KID_SCALE * mmd, "kid_e3")

    return value


def _giqa_qs_draws(tiles: np.ndarray, ref: Reference):
    """GIQA-QS: a tile's score against the reference does not depend on the other tiles drawn."""
    scores = metrics.giqa_scores(tiles, ref.features["pytorch_fid"], ref.giqa_k)
    return lambda idx: float(scores[idx].mean())


def _giqa_ds_draws(tiles: np.ndarray, ref: Reference):
    """GIQA-DS: the reference's distances to every tile once; a draw's bank is a choice of columns."""
    bank = torch.as_tensor(metrics._features(tiles, "tiles"), dtype=torch.float32)
    query = torch.as_tensor(metrics._features(ref.features["pytorch_fid"], "reference features"), dtype=torch.float32)
    distances = metrics.l1_distances(query, bank)

    def value(idx: np.ndarray) -> float:
        out = metrics.knn_scores(distances[:, torch.as_tensor(idx)], min(ref.giqa_k, len(idx)))
        metrics._finite_result(out.sum(), "giqa score")
        return float(out.mean())

    return value


SET_METRICS = {   # metric -> (feature mode, f(generated tiles, reference), draws(all tiles, reference) -> f(tile idx))
    "fid": ("clean", lambda g, ref: metrics.fid(ref.features["clean"], g), _fid_draws),
    "kid_e3": ("clean", lambda g, ref: metrics.KID_SCALE * mmd2(g, ref), _kid_draws),
    "giqa_qs": ("pytorch_fid", lambda g, ref: metrics.giqa_qs(g, ref.features["pytorch_fid"], ref.giqa_k),
                _giqa_qs_draws),
    "giqa_ds": ("pytorch_fid", lambda g, ref: metrics.giqa_ds(g, ref.features["pytorch_fid"],
                                                              min(ref.giqa_k, len(g))), _giqa_ds_draws),
}


@dataclass(frozen=True)
class PanoramaSet:
    """One image set's results per panorama (item k: seed k): labels say what it is ({"method": "GF", ...}), values
    hold per-panorama numbers {metric: (n,)}, features the tile features {mode: (n, tiles, dim)}."""

    labels: dict
    values: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        sizes = {len(v) for v in self.values.values()} | {len(f) for f in self.features.values()}
        if len(sizes) != 1:
            raise ValueError(f"set {self.labels}: its values and features hold different numbers of panoramas "
                             f"{sorted(sizes)}")
        return sizes.pop()

    def metrics(self) -> set[str]:
        return set(self.values) | {m for m, (mode, *_) in SET_METRICS.items() if mode in self.features}

    def matches(self, where: dict) -> bool:
        return all(k in self.labels and _same(self.labels[k], v) for k, v in where.items())


def _same(a, b) -> bool:
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)):
        return bool(np.isclose(float(a), float(b)))
    return a == b


@dataclass
class Results:
    """A chapter's per-panorama results: its image sets and, for the set metrics, the reference features."""

    sets: list
    reference: Reference | None = None
    unit: str = "panoramas"     # what item k is (the independent unit a bootstrap resamples)
    _prepared: dict = field(default_factory=dict, init=False, repr=False, compare=False)   # Results._draws'

    def select(self, **where) -> list[PanoramaSet]:
        """Every set whose labels match `where` (numbers compared with a tolerance: 0.25 == 1/4)."""
        return [s for s in self.sets if s.matches(where)]

    def value(self, panoramas: PanoramaSet, metric: str, ks: Sequence[int]) -> float:
        """The metric over panoramas ks of a set (repeats allowed: a bootstrap draw)."""
        ks = np.asarray(ks, dtype=int)
        if metric in panoramas.values:
            return float(np.mean(np.asarray(panoramas.values[metric], np.float64)[ks]))
        if metric in SET_METRICS:
            per_pano, draw = self._draws(panoramas, metric)
            if len(ks) * per_pano < 2:
                raise ValueError(f"{metric} needs at least 2 tiles in a draw, got {len(ks) * per_pano}")
            return draw((ks[:, None] * per_pano + np.arange(per_pano)).ravel())
        raise ValueError(f"set {panoramas.labels} has no metric {metric!r}: it has {sorted(panoramas.metrics())}")

    def _draws(self, panoramas: PanoramaSet, metric: str):
        """(tiles per panorama, f(tile indices)) of a set metric, prepared once per set and metric (SET_METRICS)."""
        mode, _, prepare = SET_METRICS[metric]
        if mode not in panoramas.features or self.reference is None:
            raise ValueError(f"set {panoramas.labels} has no {mode} features or no reference for {metric}")
        key = (id(panoramas), metric)
        if key not in self._prepared or self._prepared[key][0] is not panoramas:
            features = np.asarray(panoramas.features[mode], np.float64)
            tiles = metrics._features(features.reshape(-1, features.shape[-1]), f"set {panoramas.labels} {mode}")
            self._prepared[key] = (panoramas, features.shape[1], prepare(tiles, self.reference))
        return self._prepared[key][1:]
