"""What the book's chapters compute: the notebooks call this module and plot, nothing heavier.

    S = setup(model="embedded", device="auto", results_dir="../results", ddim_steps=10, ddpm_steps=20)
    cfg = S.dataset("GF+SA0.4", prompts, n_per_prompt=2)      # generated once, cached under results_dir
    ref = S.reference(prompts, n_reference=8)                  # the paper's reference set: single DDPM views
    row = S.metric_row(cfg, ref)                               # FID, KID x1e3, GIQA-QS/DS, CLIP (None: no weights)
    compare_with_paper(table, "table2"); claims_text("table2", table)

Methods are named as in the paper (``MD``, ``Sync``, ``GF``, ``VCF``, ``VCF+GF``, ``+SA0.4`` ...) and mapped to the
engine's fusion, sampler and alpha by :func:`method`. Image sets are :class:`gvcf.eval.datasets.DatasetConfig` folders
(keyed by their full configuration, resumable): a chapter never regenerates an image that exists, and chapters
with the same settings share images. Inception features are cached per set, one file per folder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..eval import datasets

from ..eval import metrics
from ..eval.cache import config_key
from ..eval.datasets import DatasetConfig
from ..engine.fusion import FUSIONS, FusionPlan, fuse
from ..eval.inception import load_image
from ..engine.models import resolve_device
from ..engine.samplers import make_sampler
from ..engine.views import DEFAULT_WIDTH_VIEWS, ViewLayout, canvas, stride_pixels
from ..engine.weights import weight_map
from .constants import (FIG4_FRACTIONS, FIG7_ALPHA, PAPER_PROMPTS, PAPER_VIEW, SA_ALPHA, SYNC_WEIGHT,
                        TABLE1_FRACTIONS, TABLE2_METHODS)
from .methods import NOT_REPRODUCED, RUNTIME_NAMES, Method, method, method_grid

ROOT = Path(__file__).resolve().parents[2]
PAPER_DIR = ROOT / "data" / "paper"
METRICS = ("fid", "kid_e3", "giqa_qs", "giqa_ds", "clip")
METRIC_LABELS = {"fid": "FID↓", "kid_e3": "KID↓ (×10⁻³)", "giqa_qs": "GIQA-QS↑", "giqa_ds": "GIQA-DS↑",
                 "clip": "CLIP↑"}
SHORT_LABELS = {"fid": "FID", "kid_e3": "KID", "giqa_qs": "GIQA-QS", "giqa_ds": "GIQA-DS", "clip": "CLIP"}
LOWER_IS_BETTER = {"fid": True, "kid_e3": True, "giqa_qs": False, "giqa_ds": False, "clip": False}
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


def _decode(value, name: str):
    """papermill -p passes lists as text: decode JSON (or YAML) lists; other strings stay strings."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "("):
        text = value.strip()
        try:
            return json.loads(text)
        except ValueError:
            import yaml

            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ValueError(f"{name}: cannot read {value!r} as a list ({err})") from None
    return value


def resolve_prompts(prompts=None, default=PAPER_PROMPTS, first: int | None = None) -> list[str]:
    """The prompts a chapter runs: None -> the first `first` of `default` (all if first is None); a list; one prompt
    as a string; or a JSON/YAML list as text (what `papermill -p prompts '[...]'` passes). `first` only trims the
    default: prompts given explicitly are all used."""
    if prompts is None:
        out = list(default)
        if first is not None:
            if isinstance(first, bool) or not isinstance(first, int) or first < 1:
                raise ValueError(f"n_prompts must be a positive int or None, got {first!r}")
            out = out[:first]
    else:
        prompts = _decode(prompts, "prompts")
        out = [prompts] if isinstance(prompts, str) else list(prompts)
    if not out or not all(isinstance(p, str) and p.strip() for p in out):
        raise ValueError(f"prompts must be a non-empty list of non-empty strings, got {prompts!r}")
    return [p.strip() for p in out]


def resolve_numbers(values, default, name: str, kind=float) -> list:
    """A list parameter of numbers (alphas, strides): None -> default; a number; a list; or a list as text."""
    values = _decode(values, name)
    if values is None:
        values = default
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    try:
        out = [kind(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}") from None
    if not out or (kind is int and any(float(v) != int(v) for v in values)):
        raise ValueError(f"{name} must be a non-empty list of {kind.__name__}s, got {values!r}")
    return out


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def steps_for(sampler: str, steps: int | None, ddim_steps: int, ddpm_steps: int) -> int:
    """Denoising steps for a sampler: `steps` for every sampler when set, else ddim_steps (DDIM) / ddpm_steps (DDPM
    and the other stochastic samplers)."""
    if steps is not None:
        return _positive_int(steps, "steps")
    if sampler == "ddim":
        return _positive_int(ddim_steps, "ddim_steps")
    if sampler in ("ddpm", "euler_ancestral"):
        return _positive_int(ddpm_steps, "ddpm_steps")
    raise ValueError(f"unknown sampler {sampler!r}")


def fraction_label(fraction: float) -> str:
    """0.75 -> '3/4' (strides as fractions of a view)."""
    from fractions import Fraction

    f = Fraction(fraction).limit_denominator(64)
    return f"{f.numerator}/{f.denominator}" if f.denominator != 1 else str(f.numerator)


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


def _features(images: Sequence, size: int, mode: str, device: str, cache: Path | None = None) -> np.ndarray:
    """Inception features of every native tile of `images` (files or arrays). With `cache` (an .npz path) and file
    images, features are stored per file name and only new files are computed."""
    named = cache is not None and all(isinstance(im, (str, os.PathLike)) for im in images)
    store = datasets.load_named_features(cache) if named else {}
    names = [Path(im).name for im in images] if named else []
    todo = [im for im, n in zip(images, names) if n not in store] if named else list(images)
    if todo:
        tiles = Tiles(todo, size)
        feats = inception(device)(tiles, mode=mode) if len(tiles) else np.zeros((0, 2048), np.float32)
        if not named:
            return feats
        starts = np.concatenate([[0], np.cumsum(tiles.counts())])
        for i, im in enumerate(todo):
            store[Path(im).name] = feats[starts[i]:starts[i + 1]]
        try:
            datasets.save_named_features(cache, store)
        except OSError:
            pass   # a read-only dataset folder: features are recomputed next time
    return np.concatenate([store[n] for n in names])


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
            stride=self.stride if stride is None else int(stride), alpha=m.alpha if alpha is None else float(alpha),
            prompts=tuple(prompts), n_per_prompt=_positive_int(n_per_prompt, "n_per_prompt"), seed=int(self.seed),
            width_views=self.width_views, device=self.device,
            sync_weight=float(self.sync_weight if sync_weight is None else sync_weight))
        return self._place(cfg)

    def reference_config(self, prompts, n_reference: int) -> DatasetConfig:
        """The paper's reference set: n_reference single native views per prompt, DDPM (its higher-quality sampler)."""
        cfg = DatasetConfig(method="reference", model=self.model_tag, sampler="ddpm",
                            steps=self.steps_for("ddpm"), prompts=tuple(prompts),
                            n_per_prompt=_positive_int(n_reference, "n_reference"), seed=int(self.seed),
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
        _positive_int(steps, "steps")
    _positive_int(ddim_steps, "ddim_steps")
    _positive_int(ddpm_steps, "ddpm_steps")
    _positive_int(width_views, "width_views")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    model_obj, tag = load(model, device)
    f, native = model_obj.vae_scale_factor, model_obj.native_size
    stride = stride_pixels(native, f) if stride is None else _positive_int(stride, "stride")
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


def metric_row(generated, reference, native: int, prompts=None, device: str = "cpu") -> dict:
    """The paper's metric row: panoramas cut into native tiles (metrics.crops), FID and KID (x1e3) on clean-fid
    features, GIQA-QS/DS on pytorch-fid features (K = min(3500, set sizes)), CLIP (None without local weights,
    clip_note says why).

    generated / reference: DatasetConfigs (features cached in the set's folder) or sequences of uint8 arrays.
    prompts: one per generated image, for CLIP (taken from the set when it is a DatasetConfig)."""
    sets = {}
    for name, value in (("generated", generated), ("reference", reference)):
        if isinstance(value, DatasetConfig):
            paths, folder = image_paths(value), Path(value.output)
            sets[name] = (paths, {m: folder / FEATURES_FILE.format(size=native, mode=m) for m in ("clean", "pytorch_fid")})
            if name == "generated" and prompts is None:
                prompts = prompt_of(value)
        else:
            sets[name] = (list(value), {"clean": None, "pytorch_fid": None})
    feats = {(name, mode): _features(sets[name][0], native, mode, device, sets[name][1][mode])
             for name in sets for mode in ("clean", "pytorch_fid")}
    n_gen, n_ref = len(feats["generated", "clean"]), len(feats["reference", "clean"])
    if min(n_gen, n_ref) < 2:
        raise ValueError(f"need at least 2 generated tiles and 2 reference tiles, got {n_gen} and {n_ref}")
    k = min(metrics.GIQA_K, n_gen, n_ref)
    gen_c, ref_c = feats["generated", "clean"], feats["reference", "clean"]
    gen_g, ref_g = feats["generated", "pytorch_fid"], feats["reference", "pytorch_fid"]
    row = dict(fid=metrics.fid(ref_c, gen_c), kid_e3=metrics.kid(ref_c, gen_c) * 1e3,
               giqa_qs=metrics.giqa_qs(gen_g, ref_g, k, device), giqa_ds=metrics.giqa_ds(gen_g, ref_g, k, device))
    clip, note = None, metrics.CLIP_UNAVAILABLE
    if prompts is not None and metrics.clip_available():
        tiles = Tiles(sets["generated"][0], native)
        per_image = tiles.counts()
        tile_prompts = [p for p, c in zip(prompts, per_image) for _ in range(c)]
        clip = metrics.clip_score(tiles, tile_prompts, device=device)
        note = ""
    return dict(fid=row["fid"], kid_e3=row["kid_e3"], giqa_qs=row["giqa_qs"], giqa_ds=row["giqa_ds"], clip=clip,
                clip_note=note, n_tiles=n_gen, n_reference=n_ref, giqa_k=k)


# ============================================================================ cheap measurements

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


def ssim_table(sets: dict[str, DatasetConfig | Sequence]) -> pd.DataFrame:
    """Mean SSIM between image k of set A and image k of set B (paper Table 4), streamed image by image (same result
    as metrics.ssim_matrix, without holding the sets in memory). Symmetric, diagonal 1."""
    names = list(sets)
    items = {n: image_paths(v) if isinstance(v, DatasetConfig) else list(v) for n, v in sets.items()}
    sizes = {len(v) for v in items.values()}
    if len(names) < 2 or len(sizes) != 1 or 0 in sizes:
        raise ValueError("sets must hold at least 2 non-empty sets of equal length")
    totals = {(a, b): 0.0 for i, a in enumerate(names) for b in names[i + 1:]}
    for k in range(sizes.pop()):
        loaded = {n: load_image(items[n][k]) for n in names}
        for a, b in totals:
            totals[a, b] += metrics.ssim(loaded[a], loaded[b])
    n = len(items[names[0]])
    table = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for (a, b), total in totals.items():
        table.loc[a, b] = table.loc[b, a] = total / n
    return table


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


# ============================================================================ runtime (Table 3)



def runtime(S: Setup, prompt: str, repeats: int = 1, methods=("md", "sync", "gf", "vcf", "gvcf")) -> pd.DataFrame:
    """Seconds per panorama (mean and std over `repeats`, after a warm-up) per method with the paper's sampler, by
    gvcf.eval.bench.runtime_table on this chapter's canvas; also scaled linearly to the paper's step counts (DDIM 50,
    DDPM 1000). Hardware in df.attrs (device name, torch version, dtype, threads)."""
    from ..eval.bench import runtime_table

    repeats = _positive_int(repeats, "repeats")
    df = runtime_table(S.model, methods=list(methods), repeats=repeats, steps=S.steps_for("ddim"),
                       ddpm_steps=S.steps_for("ddpm"), height=S.height, width=S.width, stride=S.stride, prompt=prompt)
    out = pd.DataFrame(dict(
        sampler=df["sampler"].str.upper(), method=df["method"].map(RUNTIME_NAMES), steps=df["steps"],
        repeats=df["repeats"],
        runtime_mean_s=df["mean_s"], runtime_std_s=df["std_s"], paper_steps=df["reported_steps"],
        scaled_mean_s=df["reported_mean_s"], scaled_std_s=df["reported_std_s"]))
    out.attrs.update(df.attrs)
    return out


def runtime_comparison(ours: pd.DataFrame) -> pd.DataFrame:
    """Table 3 for display: the paper's rows (plus ours not in it), our seconds per panorama as run and scaled to the
    paper's step counts, the paper's, and both relative to MD (the comparable part across machines)."""
    paper = paper_table("table3")
    keys = list(zip(paper["sampler"], paper["method"]))
    keys += [k for k in zip(ours["sampler"], ours["method"]) if k not in keys]
    md_o = _value(ours, "scaled_mean_s", method="MD")
    md_p = _value(paper, "runtime_mean_s", method="MD")
    def fmt(m, s, runs=2):
        if math.isnan(m):
            return "n/a"
        return f"{m:.2f} ± {s:.2f}" if runs > 1 else f"{m:.2f} (1 run)"

    rows = []
    for sampler, name in keys:
        o = _lookup(ours, sampler=sampler, method=name)
        p = _lookup(paper, sampler=sampler, method=name)
        om = _num(o["runtime_mean_s"].iloc[0]) if len(o) else math.nan
        osd = _num(o["runtime_std_s"].iloc[0]) if len(o) else math.nan
        sm = _num(o["scaled_mean_s"].iloc[0]) if len(o) else math.nan
        ssd = _num(o["scaled_std_s"].iloc[0]) if len(o) else math.nan
        runs = int(o["repeats"].iloc[0]) if len(o) and "repeats" in o else 2
        pm = _num(p["runtime_mean_s"].iloc[0]) if len(p) else math.nan
        psd = _num(p["runtime_std_s"].iloc[0]) if len(p) else math.nan
        rows.append({"sampler": sampler, "method": name,
                     "steps (ours)": int(o["steps"].iloc[0]) if len(o) else "n/a",
                     "ours, s": fmt(om, osd, runs) if len(o) else NOT_REPRODUCED,
                     "ours at the paper's steps, s": fmt(sm, ssd, runs) if len(o) else "n/a",
                     "paper, s": fmt(pm, psd),
                     "ours ÷ MD": "n/a" if math.isnan(sm / md_o) else f"{sm / md_o:.1f}",
                     "paper ÷ MD": "n/a" if math.isnan(pm / md_p) else f"{pm / md_p:.1f}"})
    return pd.DataFrame(rows)


def hardware_text(attrs: dict) -> str:
    a = attrs
    return (f"{a.get('device_name', '?')} ({a.get('device', '?')}, {a.get('cpu_threads', '?')} CPU threads), "
            f"torch {a.get('torch', '?')}, diffusers {a.get('diffusers', '?')}, {a.get('dtype', '?')}")


# ============================================================================ the paper's tables

_KEYS = {"table1": ["stride", "fusion"], "table2": ["sampler", "method"], "table3": ["sampler", "method"],
         "table4": ["row", "col"]}


@lru_cache(maxsize=None)
def _paper_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / f"{name}.csv", dtype={"stride": int})


def paper_table(name: str) -> pd.DataFrame:
    """The paper's Table 1-4 as transcribed in data/paper/<name>.csv (numbers as floats)."""
    if name not in _KEYS:
        raise ValueError(f"table must be one of {sorted(_KEYS)}, got {name!r}")
    return _paper_csv(name).copy()


def _value_columns(name: str) -> list[str]:
    return {"table1": list(METRICS), "table2": list(METRICS), "table3": ["runtime_mean_s", "runtime_std_s"],
            "table4": ["ssim"]}[name]


def compare_with_paper(ours: pd.DataFrame, table: str, native: int | None = None) -> pd.DataFrame:
    """This run's numbers beside the paper's, one row per paper row (ours n/a where not reproduced) plus our extra
    rows; columns (quantity, 'ours' | 'paper'). Table 1 rows are matched by stride as a fraction of the view
    (ours needs `stride` and `native`, or `stride_fraction`); Tables 2-3 by (sampler, method); Table 4 by (row, col).
    """
    paper = paper_table(table)
    keys = _KEYS[table]
    ours = ours.copy()
    if table == "table1":
        if "stride_fraction" not in ours:
            if native is None:
                raise ValueError("table1: give native (the view size) or a stride_fraction column")
            ours["stride_fraction"] = ours["stride"] / native
        paper["stride_fraction"] = paper["stride"] / PAPER_VIEW
        paper = paper.rename(columns={"stride": "paper_stride"})
        ours = ours.rename(columns={"stride": "our_stride"})
        keys = ["stride_fraction", "fusion"]
    missing = [k for k in keys if k not in ours]
    if missing:
        raise ValueError(f"{table}: our table lacks the key column(s) {missing}")
    values = [c for c in _value_columns(table) if c in ours or c in paper]
    for c in values:
        ours[c] = pd.to_numeric(ours[c], errors="coerce") if c in ours else np.nan
    ours_k = ours.set_index(keys)
    paper_k = paper.set_index(keys)
    index = list(paper_k.index) + [k for k in ours_k.index if k not in paper_k.index]
    rows = []
    for key in index:
        o = ours_k.loc[key] if key in ours_k.index else None
        p = paper_k.loc[key] if key in paper_k.index else None
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        if table == "table1":
            frac = row.pop("stride_fraction")
            row = {"stride (view)": fraction_label(frac),
                   "stride (paper, px)": int(p["paper_stride"]) if p is not None else round(frac * PAPER_VIEW),
                   "stride (ours, px)": int(o["our_stride"]) if o is not None and "our_stride" in o else
                   (round(frac * native) if native else np.nan)} | row
        for c in values:
            row[(c, "ours")] = float(o[c]) if o is not None and c in o and pd.notna(o[c]) else np.nan
            row[(c, "paper")] = float(p[c]) if p is not None and c in p else np.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    label_cols = [c for c in df.columns if not isinstance(c, tuple)]
    value_cols = [c for c in df.columns if isinstance(c, tuple)]
    df.columns = pd.MultiIndex.from_tuples([(c, "") for c in label_cols] + value_cols)
    return df


GIQA_FORMAT = {"giqa_qs": ".4g", "giqa_ds": ".4g"}   # GIQA's scale depends on K: significant digits, not decimals


def format_table(df: pd.DataFrame, digits: int | str | dict = 2) -> pd.DataFrame:
    """Numbers as text with `digits` decimals, or a format spec such as '.4g' (one for all, or per column name),
    NaN/None as 'n/a' (e.g. CLIP)."""
    out = df.copy().astype(object)
    for col in df.columns:
        name = col[0] if isinstance(col, tuple) else col
        d = digits.get(name, 2) if isinstance(digits, dict) else digits
        if pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            spec = d if isinstance(d, str) else f".{d}f"
            out[col] = [("n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else
                         (format(v, spec) if isinstance(v, (float, np.floating)) else str(v))) for v in df[col]]
        else:
            out[col] = ["n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in df[col]]
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = pd.MultiIndex.from_tuples(
            [(METRIC_LABELS.get(a, a), b) for a, b in out.columns])
    else:
        out.columns = [METRIC_LABELS.get(c, c) for c in out.columns]
    return out


# ============================================================================ the paper's claims

@dataclass(frozen=True)
class Claim:
    """A statement of the paper, checked on this run: holds True / False, or None when it cannot be checked."""

    text: str
    holds: bool | None
    ours: str = ""
    paper: str = ""

    def markdown(self) -> str:
        verdict = {True: "**holds**", False: "**does not hold**", None: "**not checked**"}[self.holds]
        detail = "; ".join(s for s in (f"this run: {self.ours}" if self.ours else "",
                                      f"paper: {self.paper}" if self.paper else "") if s)
        return f"- {self.text}: {verdict}" + (f" ({detail})" if detail else "")


def _num(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def _better(a, b, lower: bool) -> bool | None:
    a, b = _num(a), _num(b)
    if math.isnan(a) or math.isnan(b):
        return None
    return bool(a < b) if lower else bool(a > b)


def _pair_claim(text, a, b, lower, pa=None, pb=None, digits: int | str = 2) -> Claim:
    spec = digits if isinstance(digits, str) else f".{digits}f"
    fmt = lambda v: "n/a" if math.isnan(_num(v)) else format(_num(v), spec)  # noqa: E731
    return Claim(text, _better(a, b, lower), f"{fmt(a)} vs {fmt(b)}",
                 f"{fmt(pa)} vs {fmt(pb)}" if pa is not None else "")


def _lookup(df: pd.DataFrame, **where):
    mask = np.ones(len(df), dtype=bool)
    for k, v in where.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def _value(df, col, **where) -> float:
    rows = _lookup(df, **where) if len(df) else df
    return _num(rows[col].iloc[0]) if len(rows) and col in rows else math.nan


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~np.isnan(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return math.nan
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def claims(kind: str, ours: pd.DataFrame, native: int | None = None) -> list[Claim]:
    """The paper's statements about a table or figure, checked on this run's numbers.

    kind: 'table1' (ours: stride, fusion, metrics; native for the strides), 'table2' (method, metrics), 'table3'
    (method, runtime_mean_s, scaled_mean_s), 'table4' (an SSIM matrix or row/col/ssim rows), 'fig5' (alpha,
    method, fid, giqa_ds), 'seams' (stride, method, seam_score), 'variance' (method, ratio), 'fig3' (method,
    sharpness)."""
    out: list[Claim] = []
    if kind == "table1":
        paper = paper_table("table1")
        ours = ours.copy()
        ours["frac"] = ours["stride_fraction"] if "stride_fraction" in ours else ours["stride"] / native
        for frac in sorted(ours["frac"].unique()):
            px = int(_value(ours, "stride", frac=frac)) if "stride" in ours else round(frac * native)
            pstride = round(frac * PAPER_VIEW)
            for col in ("fid", "kid_e3", "giqa_qs", "giqa_ds"):
                lower = LOWER_IS_BETTER[col]
                op = "<" if lower else ">"
                out.append(_pair_claim(
                    f"GF {op} MD in {SHORT_LABELS[col]} at stride {fraction_label(frac)} "
                    f"(paper {pstride} px, here {px} px)",
                    _value(ours, col, frac=frac, fusion="GF"), _value(ours, col, frac=frac, fusion="MD"), lower,
                    _value(paper, col, stride=pstride, fusion="GF"), _value(paper, col, stride=pstride, fusion="MD"),
                    digits=".4g" if col.startswith("giqa") else 2))
        fracs = sorted(ours["frac"].unique())
        if len(fracs) >= 2:
            for fusion in ("MD", "GF"):
                vals = [_value(ours, "fid", frac=f, fusion=fusion) for f in fracs]
                pvals = [_value(paper, "fid", stride=round(f * PAPER_VIEW), fusion=fusion) for f in fracs]
                holds = None if any(math.isnan(v) for v in vals) else all(a > b for a, b in zip(vals, vals[1:]))
                out.append(Claim(f"{fusion}'s FID falls as the stride grows ({' → '.join(map(fraction_label, fracs))} "
                                 f"of a view)", holds, " → ".join(f"{v:.2f}" for v in vals),
                                 " → ".join("n/a" if math.isnan(v) else f"{v:.2f}" for v in pvals)))
        clip_md = [_value(ours, "clip", frac=f, fusion="MD") for f in fracs]
        clip_gf = [_value(ours, "clip", frac=f, fusion="GF") for f in fracs]
        pairs = [(a, b) for a, b in zip(clip_md, clip_gf) if not (math.isnan(a) or math.isnan(b))]
        out.append(Claim("MD has the better CLIP score (the paper: at 2 of its 3 strides)",
                         None if not pairs else sum(a > b for a, b in pairs) * 2 > len(pairs),
                         "CLIP n/a (no CLIP weights)" if not pairs else
                         f"MD ahead at {sum(a > b for a, b in pairs)} of {len(pairs)} strides", "MD ahead at 2 of 3"))
    elif kind == "table2":
        paper = paper_table("table2")
        g = lambda name, col="fid", df=ours: _value(df, col, method=name)  # noqa: E731
        ddim = [m for m in ("MD", "Sync", "GF", "MD+SA0.4", "GF+SA0.4")]
        best_ddim = np.nanmin([g(m) for m in ddim]) if any(not math.isnan(g(m)) for m in ddim) else math.nan
        pbest_ddim = min(g(m, df=paper) for m in ddim)
        out.append(_pair_claim("VCF (DDPM) has a lower FID than every DDIM method", g("VCF"), best_ddim, True,
                               g("VCF", df=paper), pbest_ddim))
        for a, b in (("VCF+GF", "VCF"), ("GF", "MD")):
            for col in ("fid", "kid_e3"):
                out.append(_pair_claim(f"{a} < {b} in {SHORT_LABELS[col]}", g(a, col), g(b, col), True,
                                       g(a, col, paper), g(b, col, paper)))
        for base in ("MD", "GF", "VCF", "VCF+GF"):
            out.append(_pair_claim(f"Style Alignment (alpha 0.4) lowers the FID of {base}", g(f"{base}+SA0.4"),
                                   g(base), True, g(f"{base}+SA0.4", df=paper), g(base, df=paper)))
        out.append(_pair_claim("Sync < MD in FID (nearly equal in the paper)", g("Sync"), g("MD"), True,
                               g("Sync", df=paper), g("MD", df=paper)))
        reproduced = [m for m in ours["method"] if m in set(paper["method"]) and not math.isnan(g(m))]
        if reproduced:
            best = min(reproduced, key=g)
            out.append(Claim("VCF+GF+SA0.4 has the best FID of all methods", best == "VCF+GF+SA0.4",
                             f"best: {best} ({g(best):.2f})", "best: VCF+GF+SA0.4 (4.02)"))
        if "DDPM+MD" in set(ours["method"]):
            out.append(_pair_claim("DDPM with plain averaging (not in the paper's table: blurred) is worse in FID "
                                   "than DDPM with VCF", g("VCF"), g("DDPM+MD"), True))
    elif kind == "table3":
        paper = paper_table("table3")
        col = "scaled_mean_s" if "scaled_mean_s" in ours else "runtime_mean_s"
        t = lambda m, df=ours, c=col: _value(df, c, method=m)  # noqa: E731
        p = lambda m: _value(paper, "runtime_mean_s", method=m)  # noqa: E731

        def ratio_claim(text, a, b, test):
            r, pr = t(a) / t(b), p(a) / p(b)
            return Claim(text, None if math.isnan(r) else bool(test(r)), f"{r:.1f}x", f"{pr:.1f}x")

        out.append(ratio_claim("SyncDiffusion is about 10x slower than MD (DDIM)", "Sync", "MD", lambda r: r > 3))
        out.append(ratio_claim("GF costs the same as MD (within 15 %)", "GF", "MD", lambda r: abs(r - 1) <= 0.15))
        out.append(ratio_claim("VCF with DDPM (1000 steps) is about 20x slower than MD with DDIM (50 steps)", "VCF",
                               "MD", lambda r: r > 5))
        if "VCF+GF" in set(ours["method"]):
            out.append(Claim("GVCF costs the same as VCF (within 15 %)",
                             None if math.isnan(t("VCF+GF") / t("VCF")) else abs(t("VCF+GF") / t("VCF") - 1) <= 0.15,
                             f"{t('VCF+GF') / t('VCF'):.2f}x", "not in the paper's table"))
    elif kind == "table4":
        pairs = ssim_pairs(ours) if "row" not in ours else ours
        paper = paper_table("table4")
        def s(a, b, df=pairs):
            rows = pd.concat([_lookup(df, row=a, col=b), _lookup(df, row=b, col=a)])
            return _num(rows["ssim"].iloc[0]) if len(rows) else math.nan

        sa = next((n for n in set(pairs["row"]) | set(pairs["col"]) if n.startswith("MD+SA")), "MD+SA0.1")
        out.append(_pair_claim(f"SA and SyncDiffusion are more alike than SyncDiffusion and MD: SSIM(Sync, {sa}) > "
                               "SSIM(Sync, MD)", s("Sync", sa), s("Sync", "MD"), False,
                               s("Sync", "MD+SA0.1", paper), s("Sync", "MD", paper)))
        out.append(_pair_claim(f"SSIM(Sync, {sa}) > SSIM({sa}, MD)", s("Sync", sa), s(sa, "MD"), False,
                               s("Sync", "MD+SA0.1", paper), s("MD+SA0.1", "MD", paper)))
    elif kind == "fig5":
        for name in dict.fromkeys(ours["method"]):
            d = ours[ours["method"] == name].sort_values("alpha")
            for col, word in (("fid", "quality improves: FID falls"), ("giqa_ds", "diversity drops: GIQA-DS falls")):
                slope = _slope(d["alpha"], d[col])
                out.append(Claim(f"{name}: as alpha grows, {word}", None if math.isnan(slope) else slope < 0,
                                 f"slope {slope:+.3g} per unit alpha; {d[col].iloc[0]:.3g} at alpha "
                                 f"{d['alpha'].iloc[0]:g} → {d[col].iloc[-1]:.3g} at {d['alpha'].iloc[-1]:g}",
                                 "trend shown in Fig. 5"))
        if {"MD", "GF"} <= set(ours["method"]):
            for col, lower in (("fid", True), ("giqa_ds", False)):
                alphas = sorted(set(ours["alpha"]))
                wins = [_better(_value(ours, col, method="GF", alpha=a), _value(ours, col, method="MD", alpha=a), lower)
                        for a in alphas]
                known = [w for w in wins if w is not None]
                out.append(Claim(f"GF beats MD in {SHORT_LABELS[col]} at every alpha",
                                 None if not known else all(known), f"GF better at {sum(known)} of {len(known)} alphas",
                                 "at every alpha"))
    elif kind == "seams":
        for stride in sorted(set(ours["stride"])):
            out.append(_pair_claim(f"GF shows weaker seams than MD at stride {stride} px"
                                   + (f" ({fraction_label(stride / native)} of a view)" if native else ""),
                                   _value(ours, "seam_score", stride=stride, method="GF"),
                                   _value(ours, "seam_score", stride=stride, method="MD"), True, digits=".4g"))
        md = ours[ours["method"] == "MD"].sort_values("stride")
        if len(md) >= 3 and native:
            lo = md.loc[md["seam_score"].idxmin(), "stride"]
            hi = md.loc[md["seam_score"].idxmax(), "stride"]
            out.append(Claim("MD's seams are least visible at the smallest stride (the paper's 64 px) and most at 1/2 "
                             "of a view (256 px)", bool(lo == md["stride"].min() and hi == round(native / 2)),
                             f"least at {lo} px, most at {hi} px", "least at 64, most at 256"))
    elif kind == "variance":
        r = ours.groupby("method")["ratio"].mean()
        for m in ("vcf", "gvcf"):
            if m in r:
                out.append(Claim(f"{m.upper()} keeps the sampler's variance in the overlaps (Eq. 13-14)",
                                 bool(abs(r[m] - 1) < 0.1), f"variance / sigma_t^2 = {r[m]:.2f}", "1 by construction"))
        if "md" in r:
            out.append(Claim("Averaging (MD) shrinks the variance where two views overlap to about sigma_t^2 / 2 "
                             "(Eq. 11)", bool(r["md"] < 0.8), f"{r['md']:.2f}", "1/2"))
    elif kind == "fig3":
        g = lambda name: _value(ours, "sharpness", method=name)  # noqa: E731
        out.append(_pair_claim("DDPM with plain averaging is blurred: less sharp than DDPM with VCF", g("DDPM+MD"),
                               g("VCF"), True))
        out.append(_pair_claim("DDPM with plain averaging is less sharp than DDIM with averaging", g("DDPM+MD"),
                               g("MD"), True))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return out


def claims_text(kind: str, ours: pd.DataFrame, native: int | None = None, title: str | None = None) -> str:
    """The checked claims as a markdown list (for IPython.display.Markdown), with a count of those that hold."""
    found = claims(kind, ours, native)
    checked = [c for c in found if c.holds is not None]
    head = (f"**{title}** " if title else "") + (f"{sum(c.holds for c in checked)} of {len(checked)} checked "
                                                 f"claims hold in this run.")
    return head + "\n\n" + "\n".join(c.markdown() for c in found)


# ============================================================================ figures

def show_panoramas(rows, labels, seams=None, title: str | None = None, width_in: float = 12.0, ax_height: float = 0.0):
    """A column of panoramas (uint8 arrays), one labelled row each; seams (one list per row, or one list for all)
    are drawn as thin vertical lines. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    rows = [load_image(r) for r in rows]
    if seams is not None and (len(seams) == 0 or not isinstance(seams[0], (list, tuple, np.ndarray))):
        seams = [seams] * len(rows)
    h, w = rows[0].shape[:2]
    row_h = ax_height or max(0.6, width_in * h / w + 0.35)
    fig, axes = plt.subplots(len(rows), 1, figsize=(width_in, row_h * len(rows) + (0.4 if title else 0)),
                             squeeze=False)
    for i, (ax, im, label) in enumerate(zip(axes[:, 0], rows, labels)):
        ax.imshow(im, interpolation="nearest", aspect="equal")
        ax.set_title(label, fontsize=9, loc="left", pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
        if seams is not None and seams[i] is not None:
            for s in seams[i]:
                ax.axvline(s - 0.5, color="red", linewidth=0.5, alpha=0.7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()) if title else None)
    return fig
