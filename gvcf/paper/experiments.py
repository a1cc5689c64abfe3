"""The experiments that reproduce the paper: a chapter's model, image sets, metrics and tables, one call each.

    S = setup(model="embedded", device="auto", results_dir="../results", ddim_steps=10, ddpm_steps=20)
    cfg = S.dataset("GF+SA0.4", prompts, n_per_prompt=2)      # generated once, cached under results_dir
    ref = S.reference(prompts, n_reference=8)                  # the paper's reference set: single DDPM views
    row = S.metric_row(cfg, ref)                               # FID, KID x1e3, GIQA-QS/DS, CLIP (None: no weights)

Methods are named as in the paper (``MD``, ``Sync``, ``GF``, ``VCF``, ``VCF+GF``, ``+SA0.4`` ...) and mapped to the
engine's fusion, sampler and alpha by :func:`gvcf.paper.methods.method`. Image sets are
:class:`gvcf.eval.datasets.DatasetConfig` folders (keyed by their full configuration, resumable): a chapter never
regenerates an image that exists, and chapters with the same settings share images. Inception features are cached
per set, one file per folder. The paper's tables and claims are gvcf.paper.tables and gvcf.paper.claims.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..engine.checks import finite_number, is_int, positive_int
from ..engine.generate import check_seed
from ..engine.fusion import FUSIONS, FusionPlan, fuse
from ..engine.models import resolve_device
from ..engine.samplers import make_sampler
from ..engine.stages import stage
from ..engine.views import DEFAULT_WIDTH_VIEWS, ViewLayout, canvas, stride_pixels
from ..engine.weights import weight_map
from ..eval import coherence, datasets, metrics
from ..eval.cache import config_key
from ..eval.datasets import DatasetConfig
from ..eval.inception import load_image
from ..eval.results import PanoramaSet, Reference, Results
from .constants import PAPER_VIEW, SYNC_WEIGHT
from .methods import NOT_REPRODUCED, Method, method
from .tables import ROOT, fraction_label, paper_table

FEATURES_FILE = "features-tiles{size}-{mode}.npz"

# ============================================================================ parameters

def resolve_path(path: str | os.PathLike) -> Path:
    """A chapter's path parameter: absolute as given; relative to the notebooks/ folder (where the chapters live,
    so "../results" is the repository's results/ whatever the kernel's working directory), else to the cwd."""
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    base = ROOT / "notebooks" if (ROOT / "notebooks").is_dir() else Path.cwd()
    return (base / p).resolve()


STEP_BUDGETS = {   # a sampler -> the chapters' step count it runs (DDIM's few, or DDPM's many)
    "ddim": "ddim_steps", "dpmpp_2m": "ddim_steps", "dpmpp_2m_sde": "ddim_steps",   # DPM-Solver++: second order
    "euler_churn": "ddim_steps",   # EDM's stochastic sampler: tens of steps
    "ddpm": "ddpm_steps", "euler_ancestral": "ddpm_steps",
}


def steps_for(sampler: str, steps: int | None, ddim_steps: int, ddpm_steps: int) -> int:
    """Denoising steps for a sampler: `steps` for every sampler when set, else its budget in STEP_BUDGETS
    (ddim_steps for DDIM and DPM-Solver++, ddpm_steps for DDPM and Euler ancestral)."""
    if steps is not None:
        return positive_int(steps, "steps")
    if sampler not in STEP_BUDGETS:
        raise ValueError(f"unknown sampler {sampler!r}")
    name = STEP_BUDGETS[sampler]
    return positive_int(dict(ddim_steps=ddim_steps, ddpm_steps=ddpm_steps)[name], name)


# ============================================================================ the model and the image sets

_MODELS: dict = {}
_INCEPTION: dict = {}


def model_tag(name: str) -> str:
    """The model's name in image-set keys. The bundled model carries a hash of what defines it (model_index.json
    and every file of its components: weights, configs, scheduler, tokenizer), so images made by an earlier (or a
    stand-in) bundled model, or under another scheduler config, are never taken for the current one's."""
    from ..engine.models import EMBEDDED, EMBEDDED_FOLDER, models_root

    if name != EMBEDDED:
        return name
    folder = models_root() / EMBEDDED_FOLDER
    h = hashlib.sha256()
    for p in [folder / "model_index.json"] + sorted(p for p in folder.glob("*/*") if p.is_file()):
        h.update(p.relative_to(folder).as_posix().encode())
        h.update(p.read_bytes())
    return f"{EMBEDDED}@{h.hexdigest()[:12]}"


def load(model: str = "embedded", device: str = "auto"):
    """The model, loaded once per kernel (keyed by name, device and weights)."""
    from ..engine.models import load_model

    device = resolve_device(device)
    tag = model_tag(str(model))
    key = (str(model), device, tag)
    if key not in _MODELS:
        import warnings

        from diffusers.utils import logging as dlogging
        from transformers.utils import logging as tlogging

        dlogging.disable_progress_bar()   # no "Loading pipeline components" bars in the chapters' output
        tlogging.disable_progress_bar()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)   # diffusers' torch_dtype deprecation notice
                _MODELS[key] = load_model(model, device=device)
        finally:
            dlogging.enable_progress_bar()
            tlogging.enable_progress_bar()
    return _MODELS[key], tag


def inception(device: str = "cpu"):
    """One InceptionFeatures per device, shared by every metric row of the kernel."""
    from ..eval.inception import InceptionFeatures

    device = str(device)
    if device not in _INCEPTION:
        _INCEPTION[device] = InceptionFeatures(device=device)
    return _INCEPTION[device]


class Tiles(Sequence):
    """The native-size tiles of a list of panorama files (or arrays), loaded lazily and in order: tile j of image i
    is metrics.crops(image i, size)[j]. Slicing loads only the images it needs (paper-size sets never sit in memory)."""

    def __init__(self, images: Sequence, size: int):
        self.images, self.size = list(images), int(size)
        self.index = []
        for i, im in enumerate(self.images):
            h, w = _image_size(im)
            self.index += [(i, j) for j in range((h // self.size) * (w // self.size))]
        self._cached = (None, None)

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, i: int) -> list[np.ndarray]:
        if self._cached[0] != i:
            self._cached = (i, metrics.crops(load_image(self.images[i]), self.size))
        return self._cached[1]

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        i, j = self.index[k]
        return self._load(i)[j]

    def counts(self) -> list[int]:
        out = [0] * len(self.images)
        for i, _ in self.index:
            out[i] += 1
        return out


def _image_size(image) -> tuple[int, int]:
    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        with Image.open(image) as im:
            return im.size[1], im.size[0]
    a = np.asarray(image)
    return a.shape[0], a.shape[1]


def _features(images: Sequence, size: int, caches: dict, device: str) -> dict[str, np.ndarray]:
    """{mode: Inception features of every native tile of `images` (files or arrays)} for the modes of `caches`
    ({mode: .npz path or None}), each image decoded once for all modes. With cache paths and file images, features
    are stored per file name and only files missing from a cache are computed."""
    modes = tuple(caches)
    named = all(c is not None for c in caches.values()) and all(isinstance(im, (str, os.PathLike)) for im in images)
    stores = {m: datasets.load_named_features(caches[m]) if named else {} for m in modes}
    names = [Path(im).name for im in images] if named else []
    todo = [im for im, n in zip(images, names) if any(n not in stores[m] for m in modes)] if named else list(images)
    if todo:
        tiles = Tiles(todo, size)
        feats = inception(device).extract(tiles, modes) if len(tiles) else \
            {m: np.zeros((0, 2048), np.float32) for m in modes}
        if not named:
            return feats
        starts = np.concatenate([[0], np.cumsum(tiles.counts())])
        for m in modes:
            for i, im in enumerate(todo):
                stores[m][Path(im).name] = feats[m][starts[i]:starts[i + 1]]
            try:
                datasets.save_named_features(caches[m], stores[m])
            except OSError:
                pass   # a read-only dataset folder: features are recomputed next time
    return {m: np.concatenate([stores[m][n] for n in names]) for m in modes}


@dataclass
class Setup:
    """A chapter's resolved settings and its model: everything its image sets and metrics depend on."""

    model: object
    model_name: str
    model_tag: str
    device: str
    results_dir: Path
    dataset_dir: Path | None
    seed: int
    steps: int | None
    ddim_steps: int
    ddpm_steps: int
    width_views: int
    stride: int
    sync_weight: float = SYNC_WEIGHT
    verbose: bool = True

    # ---- geometry
    @property
    def native(self) -> int:
        """A view's side in image pixels (64 for the bundled model, 512 for Stable Diffusion 2)."""
        return self.model.native_size

    @property
    def factor(self) -> int:
        return self.model.vae_scale_factor

    @property
    def height(self) -> int:
        return self.native

    @property
    def width(self) -> int:
        return self.width_views * self.native

    @property
    def is_small(self) -> bool:
        """The bundled model (or any model with views smaller than Stable Diffusion's 512 px)."""
        return self.model_name == "embedded" or self.native < PAPER_VIEW

    def stride_px(self, fraction: float) -> int:
        """A stride given as a fraction of a view, in pixels of this model (0.75 -> 48 px here, 384 on SD 2)."""
        return stride_pixels(self.native, self.factor, fraction)

    def layout(self, stride: int | None = None) -> ViewLayout:
        return canvas(self.model, self.height, self.width, self.stride if stride is None else int(stride)).layout

    def seams(self, stride: int | None = None) -> list[int]:
        """Image columns where a view's edge lies, for a canvas with this stride."""
        return self.layout(stride).seams(scale=self.factor)

    def describe(self, strides=None) -> str:
        """The geometry as text (deterministic: the chapters check it under nbval)."""
        lines = [f"model {self.model_name}: views of {self.native} px ({self.model.latent_size} latent px, "
                 f"VAE factor {self.factor}); canvas {self.height} x {self.width} px = {self.width_views} views wide "
                 f"(the paper: 512 x 3584)"]
        for s in [self.stride] if strides is None else strides:
            lay = self.layout(s)
            lines.append(f"stride {s} px = {fraction_label(s / self.native)} of a view "
                         f"(the paper's {round(s / self.native * PAPER_VIEW)} px): {len(lay)} views, "
                         f"seams at {self.seams(s)}")
        return "\n".join(lines)

    def steps_for(self, sampler: str) -> int:
        return steps_for(sampler, self.steps, self.ddim_steps, self.ddpm_steps)

    # ---- image sets
    def config(self, name: str | Method, prompts, n_per_prompt: int, stride: int | None = None,
               alpha: float | None = None, sampler: str | None = None, sync_weight: float | None = None) -> DatasetConfig:
        """The DatasetConfig of a method's panoramas (not generated yet; see dataset())."""
        m = name if isinstance(name, Method) else method(name, sampler)
        if sampler is not None:
            m = dataclasses.replace(m, sampler=sampler)
        if not m.reproduced:
            raise ValueError(f"{m.name} is {NOT_REPRODUCED}")
        cfg = DatasetConfig(
            method=m.dataset_method, model=self.model_tag, sampler=m.sampler, steps=self.steps_for(m.sampler),
            stride=None if m.dataset_method == "elastic" else self.stride if stride is None else int(stride),
            alpha=m.alpha if alpha is None else float(alpha),
            prompts=tuple(prompts), n_per_prompt=positive_int(n_per_prompt, "n_per_prompt"), seed=int(self.seed),
            width_views=self.width_views, device=self.device,
            sync_weight=float(self.sync_weight if sync_weight is None else sync_weight))
        return self._place(cfg)

    def reference_config(self, prompts, n_reference: int) -> DatasetConfig:
        """The paper's reference set: n_reference single native views per prompt, DDPM (its higher-quality sampler)."""
        cfg = DatasetConfig(method="reference", model=self.model_tag, sampler="ddpm",
                            steps=self.steps_for("ddpm"), prompts=tuple(prompts),
                            n_per_prompt=positive_int(n_reference, "n_reference"), seed=int(self.seed),
                            device=self.device)
        return self._place(cfg)

    def _place(self, cfg: DatasetConfig) -> DatasetConfig:
        """A complete set under dataset_dir (any folder holding every image of cfg), else results_dir/<method>-<key>."""
        if self.dataset_dir is not None and self.dataset_dir.is_dir():
            keys = [config_key(item) for item in cfg.items()]
            for folder in sorted(p for p in self.dataset_dir.iterdir() if p.is_dir()):
                if all((folder / f"{k}.png").is_file() and (folder / f"{k}.json").is_file() for k in keys):
                    return dataclasses.replace(cfg, output=str(folder))
        return datasets.in_results(cfg, self.results_dir)

    def _generate(self, cfg: DatasetConfig, label: str) -> DatasetConfig:
        cache = datasets.ResultCache(cfg.output)
        missing = sum(1 for _ in cache.iter_missing(cfg.items()))
        if missing:
            t0 = time.perf_counter()
            datasets.generate_dataset(cfg, model=self.model, rank=0, world_size=1, progress=False)
            if self.verbose:
                n = len(cfg.items())
                print(f"{label}: made {missing} image(s) in {time.perf_counter() - t0:.1f} s"
                      + (f", {n - missing} from the cache" if n > missing else ""), flush=True)
        return cfg

    def dataset(self, name: str | Method, prompts, n_per_prompt: int, **kw) -> DatasetConfig:
        """The method's panoramas, generated where missing (resumable); returns their (complete) DatasetConfig."""
        cfg = self.config(name, prompts, n_per_prompt, **kw)
        label = name.name if isinstance(name, Method) else str(name)
        return self._generate(cfg, f"{label} ({cfg.sampler}, stride {cfg.stride}, alpha {cfg.alpha})")

    def reference(self, prompts, n_reference: int) -> DatasetConfig:
        return self._generate(self.reference_config(prompts, n_reference), f"reference ({len(prompts)} prompts)")

    def panoramas(self, name: str | Method, prompts, n_per_prompt: int, **kw) -> list[np.ndarray]:
        """The method's panoramas as uint8 arrays, in (prompt, k) order (generated where missing)."""
        return images(self.dataset(name, prompts, n_per_prompt, **kw))

    # ---- metrics
    def metric_row(self, generated, reference, prompts=None) -> dict:
        """metric_row() with this model's view size and device."""
        return metric_row(generated, reference, self.native, prompts=prompts, device=self.device)

    def caveat(self) -> str:
        """What the numbers can be compared with (markdown)."""
        if self.is_small:
            return (f"These numbers come from a small model (`{self.model_name}`, {self.native} px views; the bundled "
                    "one is trained on a procedural world), "
                    "with fewer samples and denoising steps than the paper. Absolute values are **not comparable** "
                    "with the paper's Stable Diffusion 2 numbers; only the **directions** of the comparisons are "
                    "(which method is better, which way a trend goes).")
        from ..engine.models import SD2_BASE

        if self.model_name != SD2_BASE:   # SD 2's view size, but maybe another model (or a stand-in)
            return (f"Model `{self.model_name}` ({self.native} px views, as Stable Diffusion 2's): the numbers are "
                    f"comparable with the paper's only if it is Stable Diffusion 2 base (`{SD2_BASE}` or a local copy "
                    "of it) run with the paper's protocol (profile `paper`); with fewer samples than the paper they "
                    "are noisier.")
        return (f"Model `{self.model_name}`: with the paper's model and protocol (profile `paper`) the numbers are "
                "directly comparable; with fewer samples than the paper they are noisier.")


def setup(model: str = "embedded", device: str = "auto", results_dir: str = "../results", seed: int = 0,
          steps: int | None = None, ddim_steps: int = 10, ddpm_steps: int = 20, width_views: int = DEFAULT_WIDTH_VIEWS,
          stride: int | None = None, dataset_dir: str | None = None, sync_weight: float = SYNC_WEIGHT,
          verbose: bool = True) -> Setup:
    """Resolve a chapter's parameters and load its model (once per kernel)."""
    if steps is not None:
        positive_int(steps, "steps")
    positive_int(ddim_steps, "ddim_steps")
    positive_int(ddpm_steps, "ddpm_steps")
    positive_int(width_views, "width_views")
    sync_weight = finite_number(sync_weight, "sync_weight", minimum=0.0)   # before the model is loaded
    check_seed(seed)
    model_obj, tag = load(model, device)
    f, native = model_obj.vae_scale_factor, model_obj.native_size
    stride = stride_pixels(native, f) if stride is None else positive_int(stride, "stride")
    if stride % f or stride > native:
        raise ValueError(f"stride must be a multiple of the VAE factor {f} and at most the view ({native} px), "
                         f"got {stride}")
    return Setup(model=model_obj, model_name=str(model), model_tag=tag, device=resolve_device(device),
                 results_dir=resolve_path(results_dir),
                 dataset_dir=resolve_path(dataset_dir) if dataset_dir else None, seed=int(seed), steps=steps,
                 ddim_steps=int(ddim_steps), ddpm_steps=int(ddpm_steps), width_views=int(width_views), stride=stride,
                 sync_weight=float(sync_weight), verbose=verbose)


def image_paths(cfg: DatasetConfig) -> list[Path]:
    cache = datasets.ResultCache(cfg.output)
    return [cache.path_for(item) for item in cfg.items()]


def images(cfg: DatasetConfig, limit: int | None = None) -> list[np.ndarray]:
    """The set's images as uint8 arrays, in (prompt, k) order (the first `limit`)."""
    return [load_image(p) for p in image_paths(cfg)[:limit]]


def prompt_of(cfg: DatasetConfig) -> list[str]:
    return [item["prompt"] for item in cfg.items()]


@stage("metrics")
def feature_caches(cfg: DatasetConfig, native: int) -> dict[str, Path]:
    """{mode: file}: where a set's tile features (clean-fid's and pytorch-fid's) are cached, in its folder."""
    return {m: Path(cfg.output) / FEATURES_FILE.format(size=native, mode=m) for m in ("clean", "pytorch_fid")}


def metric_row(generated, reference, native: int, prompts=None, device: str = "cpu") -> dict:
    """The paper's metric row: panoramas cut into native tiles (metrics.crops), FID and KID (x1e3) on clean-fid
    features, GIQA-QS/DS on pytorch-fid features (K = min(3500, set sizes)), CLIP (None without local weights,
    clip_note says why).

    generated / reference: DatasetConfigs (features cached in the set's folder) or sequences of uint8 arrays.
    prompts: one per generated image, for CLIP (taken from the set when it is a DatasetConfig)."""
    sets = {}
    for name, value in (("generated", generated), ("reference", reference)):
        if isinstance(value, DatasetConfig):
            sets[name] = (image_paths(value), feature_caches(value, native))
            if name == "generated" and prompts is None:
                prompts = prompt_of(value)
        else:
            sets[name] = (list(value), {"clean": None, "pytorch_fid": None})
    feats = {(name, mode): f for name, (images, caches) in sets.items()
             for mode, f in _features(images, native, caches, device).items()}
    n_gen, n_ref = len(feats["generated", "clean"]), len(feats["reference", "clean"])
    if min(n_gen, n_ref) < 2:
        raise ValueError(f"need at least 2 generated tiles and 2 reference tiles, got {n_gen} and {n_ref}")
    row = metrics.scores(feats["generated", "clean"], feats["reference", "clean"], feats["generated", "pytorch_fid"],
                         feats["reference", "pytorch_fid"], device=device)
    clip, note = None, metrics.CLIP_UNAVAILABLE
    if prompts is not None and metrics.clip_available():
        tiles = Tiles(sets["generated"][0], native)
        per_image = tiles.counts()
        tile_prompts = [p for p, c in zip(prompts, per_image) for _ in range(c)]
        clip = metrics.clip_score(tiles, tile_prompts, device=device)
        note = ""
    return {k: (row | dict(clip=clip, clip_note=note))[k] for k in metrics.METRIC_ROW}


# ============================================================================ per-panorama results (the claims' data)

@lru_cache(maxsize=4096)
def _coherence(path: str, size: int, device: str) -> dict[str, float]:
    """Intra-LPIPS and Intra-Style-L of one image file (one VGG pass for both), with one LPIPS net per device."""
    return coherence.coherence(load_image(path), size, _lpips_vgg(device), device)


@lru_cache(maxsize=None)
def _lpips_vgg(device: str):
    from ..engine.perceptual import load_lpips

    return load_lpips(coherence.NET, device=device)


PER_PANORAMA = {   # a per-panorama metric -> f(S, the image set, one image file)
    "seam_score": lambda S, cfg, path: metrics.seam_score(load_image(path), S.seams(cfg.stride)),
    "sharpness": lambda S, cfg, path: sharpness(path),
    **{name: lambda S, cfg, path, name=name: _coherence(str(path), S.native, str(S.device))[name]
       for name in coherence.COHERENCE_METRICS},
}


def _set_features(S: Setup, cfg: DatasetConfig) -> dict[str, np.ndarray]:
    """{mode: (tiles, dim)}: the set's tile features in image order, from the cache metric_row fills."""
    return _features(image_paths(cfg), S.native, feature_caches(cfg, S.native), S.device)


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


# ============================================================================ cheap measurements

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


def sharpness(image) -> float:
    """Mean absolute Laplacian of the grey image (0-255): low for blurred images (Fig. 3's DDPM + averaging)."""
    x = load_image(image).astype(np.float64).mean(-1)
    lap = -4 * x[1:-1, 1:-1] + x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:]
    return float(np.abs(lap).mean())


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


# ---- what does not carry over between models: a knob's strength, calibrated by SSIM to MD (Table 4)

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


def ssim_pairs(matrix: pd.DataFrame) -> pd.DataFrame:
    """The lower triangle of an SSIM matrix as (row, col, ssim) rows, as data/paper/table4.csv."""
    names = list(matrix.index)
    return pd.DataFrame([dict(row=a, col=b, ssim=float(matrix.loc[a, b]))
                         for i, a in enumerate(names) for b in names[:i]])


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



# ============================================================================ the chapters' tables, one call each

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


def image_of(cfg: DatasetConfig, prompt: str, k: int = 0) -> Path:
    """The file of a set's k-th panorama of `prompt`."""
    found = [p for p, item in zip(image_paths(cfg), cfg.items()) if item["prompt"] == prompt]
    if not 0 <= k < len(found):
        raise ValueError(f"prompt {prompt!r} has {len(found)} panorama(s) in this set, not a k = {k}")
    return found[k]


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
