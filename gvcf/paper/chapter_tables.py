"""The chapters' image sets and tables, one call each (Fig. 1's overview, Fig. 4's strides, Table 1, Table 2, the
region prompts, the costs).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..engine.checks import is_int
from ..engine.stages import stage
from ..eval import datasets, metrics
from ..eval.datasets import DatasetConfig
from ..eval.inception import load_image
from ..eval.results import Results
from .methods import NOT_REPRODUCED, Method, method
from .tables import fraction_label
from .image_sets import images
from .per_panorama import results, sharpness

if TYPE_CHECKING:
    from .chapter_setup import Setup


def method_sets(S: Setup, names, prompts, n_per_prompt: int, **kw) -> dict:
    """name (a paper method name or a Method) -> its image set on these prompts (generated once, cached)."""
    return {getattr(name, "name", name): S.dataset(name, prompts, n_per_prompt, **kw) for name in names}


@stage("metrics")
def overview_table(sets: dict, seams) -> pd.DataFrame:
    """Fig. 1's methods: mean seam score, sharpness and seconds per panorama."""
    from ..eval import metrics

    return pd.DataFrame([dict(method=name, sampler=method(name).sampler_label,
                              seam_score=np.mean([metrics.seam_score(p, seams) for p in images(cfg)]),
                              sharpness=np.mean([sharpness(p) for p in images(cfg)]),
                              seconds=np.mean(datasets.timings(cfg) or [np.nan]))
                         for name, cfg in sets.items()])


@stage("generation")
def region_panoramas(S: Setup, prompt: str, region_prompt: str, fusions=("md", "gf"), k: int = 0) -> dict:
    """Region prompts (gvcf.engine.regions): region_prompt on the canvas's left half, `prompt` on the right, blended
    over one view's width, with DDIM from the seed of panorama k of `prompt` (the same noise as its image sets).
    Returns {"mask": the region's mask as a uint8 image, fusion: uint8 panorama}."""
    from ..engine.generate import derive_seed, generate
    from ..engine.regions import strip_mask

    half, ramp = S.width // 2, S.native // 2
    mask = strip_mask(S.height, S.width, 0, half - ramp, ramp=2 * ramp)
    out = {"mask": np.repeat((mask * 255).round().astype(np.uint8)[..., None], 3, axis=-1)}
    seed = derive_seed(S.seed, f"{prompt}/{k}")
    for fusion in fusions:
        image = generate(S.model, prompt, seed=seed, height=S.height, width=S.width, stride=S.stride, fusion=fusion,
                         sampler="ddim", steps=S.steps_for("ddim"), regions=[(mask, region_prompt)],
                         output_type="np", progress=False).image
        out[fusion] = (image * 255).round().astype(np.uint8)
    return out


def figure_prompt(prompts, preferred: str) -> str:
    """The prompt a figure shows: `preferred` when the chapter runs it, else the chapter's first prompt."""
    return preferred if preferred in prompts else prompts[0]


def stride_sets(S: Setup, prompts, n_per_prompt: int, strides, full_strides, figure: str | None = None) -> dict:
    """stride -> {"MD": set, "GF": set}: every prompt at the strides in full_strides (Table 1's), else one panorama
    of the `figure` prompt (default: the first; Fig. 4's extra strides). ValueError naming strides, before any set is
    made, for a stride that is no multiple of the VAE factor in [factor, view] pixels."""
    for s in [*strides, *full_strides]:
        if not is_int(s) or s % S.factor or not 0 < s <= S.native:
            raise ValueError(f"strides must be multiples of the VAE factor {S.factor} from {S.factor} to one view "
                             f"({S.native} px), got {s!r}")
    extra = [figure or prompts[0]]
    return {s: method_sets(S, ("MD", "GF"), *((prompts, n_per_prompt) if s in full_strides else (extra, 1)),
                           stride=s) for s in strides}


def stride_results(S: Setup, sets: dict, reference: DatasetConfig | None = None) -> Results:
    """stride_sets' sets as per-panorama results labelled (stride_fraction, fusion): seam scores and, with a
    reference set, tile features (the claims of Fig. 4 and Table 1)."""
    return results(S, {(s / S.native, f): cfg for s, pair in sets.items() for f, cfg in pair.items()},
                   ("stride_fraction", "fusion"), reference, values=("seam_score",))


def method_results(S: Setup, names, prompts, n_per_prompt: int, reference: DatasetConfig | None = None,
                   values=()) -> Results:
    """Per-panorama results of the reproduced methods among `names` (paper names or Methods), labelled by method
    (their image sets generated where missing, as method_sets)."""
    found = [n if isinstance(n, Method) else method(n) for n in names]
    sets = method_sets(S, [m for m in found if m.reproduced], prompts, n_per_prompt)
    return results(S, {(name,): cfg for name, cfg in sets.items()}, ("method",), reference, values)


@stage("metrics")
def seam_table(groups: dict, index=("stride", "method")) -> pd.DataFrame:
    """groups: {key: (images, seams)} -> per key the seam score (metrics.seam_score: mean jump across view edges /
    mean jump elsewhere; 1 = invisible), mean and standard deviation over the images."""
    rows = []
    for key, (ims, seams) in groups.items():
        scores = [metrics.seam_score(load_image(im), seams) for im in ims]
        key = key if isinstance(key, tuple) else (key,)
        rows.append(dict(zip(index, key)) | dict(seam_score=float(np.mean(scores)),
                                                 seam_score_std=float(np.std(scores)), n=len(scores)))
    return pd.DataFrame(rows)


@stage("metrics")
def stride_seams(S: Setup, sets: dict) -> pd.DataFrame:
    """Fig. 4's seam score of every panorama at each stride, with the stride as a fraction of a view."""
    seam = seam_table({(s, f): (images(cfg), S.seams(s)) for s, pair in sets.items() for f, cfg in pair.items()})
    seam.insert(1, "stride (view)", [fraction_label(s / S.native) for s in seam["stride"]])
    return seam


def metric_table(S: Setup, sets: dict, reference, keys) -> pd.DataFrame:
    """One metric row per set: sets maps a tuple of key values (named by keys) to an image set."""
    return pd.DataFrame([dict(zip(keys, key), **S.metric_row(cfg, reference)) for key, cfg in sets.items()])


@stage("metrics")
def table2(S: Setup, methods, prompts, n_per_prompt: int, reference) -> pd.DataFrame:
    """Table 2: a metric row per method (names or Methods), or a note where it is not reproduced."""
    rows = []
    for name in methods:
        m = name if isinstance(name, Method) else method(name)
        row = dict(sampler=m.sampler_label, method=m.name)
        if m.reproduced:
            row |= S.metric_row(S.dataset(m, prompts, n_per_prompt), reference)
        else:
            row["note"] = NOT_REPRODUCED
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(sets: dict) -> pd.DataFrame:
    """Seconds per panorama of each set, as recorded when it was made, and relative to the first."""
    cost = pd.DataFrame([dict(method=name, seconds=np.mean(datasets.timings(cfg) or [np.nan]))
                         for name, cfg in sets.items()])
    cost["relative to MD"] = cost["seconds"] / cost["seconds"].iloc[0]
    return cost
