"""A chapter's settings and its model: path and step resolution, the model loaded once per kernel, and Setup
(geometry, image-set configs, generation where missing).

    S = setup(model="embedded", device="auto", results_dir="../results", ddim_steps=10, ddpm_steps=20)
    cfg = S.dataset("GF+SA0.4", prompts, n_per_prompt=2)      # generated once, cached under results_dir
    ref = S.reference(prompts, n_reference=8)                  # the paper's reference set: single DDPM views
    row = S.metric_row(cfg, ref)                               # FID, KID x1e3, GIQA-QS/DS, CLIP (None: no weights)

Methods are named as in the paper (``MD``, ``Sync``, ``GF``, ``VCF``, ``VCF+GF``, ``+SA0.4`` ...) and mapped to the
engine's fusion, sampler and alpha by :func:`gvcf.paper.methods.method`. Image sets are
:class:`gvcf.eval.datasets.DatasetConfig` folders (keyed by their full configuration, resumable): a chapter never
regenerates an image that exists, and chapters with the same settings share images.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.checks import finite_number, positive_int
from ..engine.generate import check_seed
from ..engine.models import resolve_device
from ..engine.samplers import SAMPLER_RECORDS
from ..engine.views import DEFAULT_WIDTH_VIEWS, ViewLayout, canvas, stride_pixels
from ..eval import datasets
from ..eval.cache import config_key
from ..eval.datasets import DatasetConfig
from .constants import PAPER_VIEW, SYNC_WEIGHT
from .methods import NOT_REPRODUCED, Method, method
from .image_sets import images
from .metric_rows import metric_row
from .tables import ROOT, fraction_label, wrap


def resolve_path(path: str | os.PathLike) -> Path:
    """A chapter's path parameter: absolute as given; relative to the notebooks/ folder (where the chapters live,
    so "../results" is the repository's results/ whatever the kernel's working directory), else to the cwd."""
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    base = ROOT / "notebooks" if (ROOT / "notebooks").is_dir() else Path.cwd()
    return (base / p).resolve()


# a sampler -> the chapters' step count it runs (DDIM's few, or DDPM's many): gvcf.engine.samplers' table
STEP_BUDGETS = {name: r.budget for name, r in SAMPLER_RECORDS.items()}


def steps_for(sampler: str, steps: int | None, ddim_steps: int, ddpm_steps: int) -> int:
    """Denoising steps for a sampler: `steps` for every sampler when set, else its budget in STEP_BUDGETS
    (ddim_steps for DDIM, DPM-Solver++, Euler ancestral and churn; ddpm_steps for DDPM)."""
    if steps is not None:
        return positive_int(steps, "steps")
    if sampler not in STEP_BUDGETS:
        raise ValueError(f"unknown sampler {sampler!r}")
    name = STEP_BUDGETS[sampler]
    return positive_int(dict(ddim_steps=ddim_steps, ddpm_steps=ddpm_steps)[name], name)


# The kernel's models, keyed by (name, device, weights' hash): module state on purpose. A chapter calls setup() in
# several cells (and reruns them); the notebooks hold no model object to pass around, and loading the model again
# per call costs seconds (minutes for SD 2). The weights' hash in the key keeps a retrained model from being reused.
_MODELS: dict = {}


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

        # no "Loading pipeline components" bars in the chapters' output: diffusers and transformers offer only these
        # process-wide switches for from_pretrained's bars (no per-call argument), so they are restored right after
        dlogging.disable_progress_bar()
        tlogging.disable_progress_bar()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)   # diffusers' torch_dtype deprecation notice
                _MODELS[key] = load_model(model, device=device)
        finally:
            dlogging.enable_progress_bar()
            tlogging.enable_progress_bar()
    return _MODELS[key], tag


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
        """The geometry as text (deterministic: the chapters check it under nbval), each line wrapped to the page
        (gvcf.paper.tables.LINE_WIDTH)."""
        lines = [f"model {self.model_name}: views of {self.native} px ({self.model.latent_size} latent px, "
                 f"VAE factor {self.factor})",
                 f"canvas {self.height} x {self.width} px = {self.width_views} views wide (the paper: 512 x 3584)"]
        for s in [self.stride] if strides is None else strides:
            lay = self.layout(s)
            lines.append(f"stride {s} px = {fraction_label(s / self.native)} of a view "
                         f"(the paper's {round(s / self.native * PAPER_VIEW)} px): {len(lay)} views, "
                         f"seams at {self.seams(s)}")
        return wrap("\n".join(lines))

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
