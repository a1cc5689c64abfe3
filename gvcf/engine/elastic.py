"""ElasticDiffusion (Haji-Ali, Balakrishnan and Ordonez, CVPR 2024): the paper's third baseline.

The score of a large canvas is split in two (their Eq. 6-7): the *local* content, the unconditional score, is
estimated on patches of the canvas with context rows and columns around them (each patch plus its context fills one
view of the model); the *global* content, the direction cond - uncond of classifier-free guidance, is estimated once
on a copy of the whole canvas reduced to fit in one view, padded with a noised plain background, and upsampled back.
Three refinements of their Sec. 4 follow the authors' code (MoayedHajiAli/ElasticDiffusion-official,
``elastic_diffusion.py``, ``generate_image``): the reduced copy is resampled ``resampling_steps`` times from different
pixels of each 2 x 2 block (``new_p`` of them new each time), which fills the upsampled direction at a higher
resolution; after each step the latent is renoised back to t and the step is redone with a third of the guidance
(their "repaint" sampling); and reduced-resolution guidance (RRG) pulls the predicted x_0 towards the reduced copy's,
with a weight that falls on a cosine schedule to 0 at ``1 - rrg_stop_t`` of the steps.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checks import finite_number, is_int, positive_int
from .generate import (DEFAULT_GUIDANCE, OUTPUT_TYPES, GenerationResult, _as_image, _resolve_model, check_seed,
                       derive_seed, require_finite)
from .models import PromptEmbeds, auto_view_batch
from .reduced_copy import ReducedCopy, reduced_samples, reduced_size
from .samplers import DEFAULT_STEPS, make_sampler
from .stages import stage
from .views import ViewLayout, canvas

SAMPLER = "ddim"   # the authors' code samples with DDIM (eta 0) only
# The authors' settings for a wide (2:1) canvas: their demo's 2048 x 1024 example (app_gradio.py); the rest are
# generate_image's and the demo's shared values. Their command line's defaults (square 2048 x 2048) differ:
# resampling_steps 10, rrg_scale 4000, rrg_stop_t 0.2.
ELASTIC_DEFAULTS = dict(resampling_steps=7, new_p=0.3, rrg_scale=1000.0, cosine_scale=10.0, rrg_stop_t=0.4,
                        repaint=True, patch_size=None)
RRG_MIN_WEIGHT = 10.0       # RRG runs only while its weight exceeds this (the authors' `rrg_scheduler(i) > 10`)
REPAINT_GUIDANCE_DIVISOR = 3  # the repainted step uses a third of the guidance scale (the authors' `rrg_cfg`)


@dataclass(frozen=True)
class Patch:
    """A local patch: its core [top, bottom) x [left, right) and the crop with context [crop_top, crop_bottom) x
    [crop_left, crop_right) around it that the UNet sees (the authors' `crop_with_context`)."""

    top: int
    bottom: int
    left: int
    right: int
    crop_top: int
    crop_bottom: int
    crop_left: int
    crop_right: int


def _context(start: int, end: int, n: int, size: int) -> tuple[int, int]:
    """Context before and after [start, end): n each side, what one side lacks at the canvas edge taken from the
    other, both clipped to the canvas."""
    if start - n < 0:
        before = start
        after = max(0, min(size, end + 2 * n - before) - end)
    else:
        after = max(0, min(size, end + n) - end)
        before = start - max(0, start - (2 * n - after))
    return before, after


def _starts(size: int, window: int, stride: int) -> list[int]:
    """Patch starts along an axis, the last snapped to the edge (the authors' `get_views`)."""
    count = math.ceil((size - window) / stride) + 1
    return [max(0, min(k * stride, size - window)) for k in range(count)]


def local_patches(height: int, width: int, window: int, context: int) -> list[Patch]:
    """Patches of `window` latent pixels (the whole side where a window and its context span it), stride `window`,
    each with context // 2 pixels of context a side, row-major; later patches overlap earlier ones only at the far
    edges, where the earlier patch's prediction is kept."""
    h_ws = height if window + context >= height else window
    w_ws = width if window + context >= width else window
    patches = []
    for top in _starts(height, h_ws, window):
        for left in _starts(width, w_ws, window):
            bottom, right = top + h_ws, left + w_ws
            n_t, n_b = _context(top, bottom, context // 2, height)
            n_l, n_r = _context(left, right, context // 2, width)
            patches.append(Patch(top, bottom, left, right, top - n_t, bottom + n_b, left - n_l, right + n_r))
    return patches


def patch_owners(patches: list[Patch], height: int, width: int) -> list[torch.Tensor]:
    """Per patch, the (core h, core w) mask of its core pixels no earlier patch covered: together they cover the
    canvas exactly once."""
    covered = torch.zeros(height, width, dtype=torch.bool)
    owners = []
    for p in patches:
        core = covered[p.top:p.bottom, p.left:p.right]
        owners.append(~core)
        core[:] = True
    return owners


def rrg_weight(i: int, steps: int, rrg_scale: float, cosine_scale: float, rrg_stop_t: float) -> float:
    """The reduced-resolution guidance weight at step i: rrg_scale * ((1 + cos(pi i / n)) / 2) ** cosine_scale
    for i < n = steps - int(steps * rrg_stop_t), else 0 (the authors' CosineScheduler)."""
    n = steps - int(steps * rrg_stop_t)
    if i >= n:
        return 0.0
    return rrg_scale * (0.5 * (1 + np.cos(np.pi * i / n))) ** cosine_scale


def check_elastic_settings(resampling_steps=ELASTIC_DEFAULTS["resampling_steps"], new_p=ELASTIC_DEFAULTS["new_p"],
                           rrg_scale=ELASTIC_DEFAULTS["rrg_scale"], cosine_scale=ELASTIC_DEFAULTS["cosine_scale"],
                           rrg_stop_t=ELASTIC_DEFAULTS["rrg_stop_t"], repaint=ELASTIC_DEFAULTS["repaint"],
                           patch_size=ELASTIC_DEFAULTS["patch_size"]) -> dict:
    """ElasticDiffusion's own settings, checked (ValueError naming the first bad one)."""
    if not is_int(resampling_steps) or resampling_steps < 0:
        raise ValueError(f"resampling_steps must be an int >= 0, got {resampling_steps!r}")
    new_p = finite_number(new_p, "new_p", minimum=0.0)
    if new_p > 1:
        raise ValueError(f"new_p must be in [0, 1] (the share of newly sampled pixels), got {new_p!r}")
    rrg_stop_t = finite_number(rrg_stop_t, "rrg_stop_t", minimum=0.0)
    if rrg_stop_t > 1:
        raise ValueError(f"rrg_stop_t must be in [0, 1] (the share of steps without RRG at the end), "
                         f"got {rrg_stop_t!r}")
    if not isinstance(repaint, bool):
        raise ValueError(f"repaint must be True or False, got {repaint!r}")
    return dict(resampling_steps=int(resampling_steps), new_p=new_p,
                rrg_scale=finite_number(rrg_scale, "rrg_scale", minimum=0.0),
                cosine_scale=finite_number(cosine_scale, "cosine_scale", minimum=0.0), rrg_stop_t=rrg_stop_t,
                repaint=repaint, patch_size=positive_int(patch_size, "patch_size", optional=True))


class _Backgrounds:
    """The plain noised backgrounds that pad a latent smaller than a view: per side and size, a random colour,
    VAE-encoded, noised to the step's t; the same within a step (every pass pads alike), drawn from a generator of
    its own per (canvas seed, side, size, t), so they are the same whatever else is drawn."""

    def __init__(self, model, seed: int, alphas_cumprod: torch.Tensor):
        self.model, self.seed, self.alphas_cumprod = model, seed, alphas_cumprod
        self.t, self.cache = None, {}

    def get(self, side: str, h: int, w: int, t: int) -> torch.Tensor:
        if h == 0 or w == 0:
            return torch.zeros(1, self.model.latent_channels, h, w, device=self.model.device, dtype=self.model.dtype)
        if t != self.t:   # a new step: the last step's backgrounds are done with
            self.t, self.cache = t, {}
        if (side, h, w) not in self.cache:
            self.cache[side, h, w] = self.make(side, h, w, t)
        return self.cache[side, h, w]

    @torch.no_grad()
    def make(self, side: str, h: int, w: int, t: int) -> torch.Tensor:
        """(1, C, h, w): a random colour image (values in [0, 1], as the authors encode it), its VAE latent sampled,
        then noised to t (q(x_t | x_0))."""
        m, f = self.model, self.model.vae_scale_factor
        gen = torch.Generator("cpu").manual_seed(derive_seed(self.seed, f"elastic-background/{side}/{h}x{w}/{t}"))
        colour = torch.rand(1, 3, generator=gen)
        image = colour[:, :, None, None].expand(1, 3, h * f, w * f).to(m.device, m.vae.dtype)
        dist = m.vae.encode(image).latent_dist
        eps = torch.randn(dist.mean.shape, generator=gen).to(m.device, dist.mean.dtype)
        latent = (dist.mean + dist.std * eps) * m.vae.config.scaling_factor
        noise = torch.randn(latent.shape, generator=gen).to(m.device, latent.dtype)
        a = self.alphas_cumprod[t].to(m.device, latent.dtype)
        return (a**0.5 * latent + (1 - a) ** 0.5 * noise).to(m.dtype)


def _pad_to_view(x: torch.Tensor, view: int, t: int, backgrounds: _Backgrounds) -> tuple[torch.Tensor, tuple]:
    """x (B, C, h, w) padded to (view, view) with backgrounds, width first then height, the odd pixel after (the
    authors' `unet_step`); returns the padded x and (top, left) of x in it."""
    h, w = x.shape[-2:]
    wp, hp = max(view - w, 0), max(view - h, 0)
    left, top = wp // 2, hp // 2
    if wp:
        parts = [backgrounds.get("left", h, left, t), None, backgrounds.get("right", h, wp - left, t)]
        x = torch.cat([p.expand(x.shape[0], -1, -1, -1) if p is not None else x for p in parts], dim=3)
    if hp:
        width = x.shape[-1]
        parts = [backgrounds.get("top", top, width, t), None, backgrounds.get("bottom", hp - top, width, t)]
        x = torch.cat([p.expand(x.shape[0], -1, -1, -1) if p is not None else x for p in parts], dim=2)
    return x, (top, left)


class _Rows:
    """UNet inputs of one step gathered from several sources, run in shared calls, and split back."""

    def __init__(self):
        self.inputs, self.texts, self.count = [], [], 0

    def add(self, x: torch.Tensor, text: torch.Tensor) -> slice:
        """Queue x's rows with the text embeddings `text`; returns where their outputs will be."""
        self.inputs.append(x)
        self.texts.append(text.expand(len(x), -1, -1))
        self.count += len(x)
        return slice(self.count - len(x), self.count)

    def run(self, model, t, batch_size: int) -> torch.Tensor:
        views = torch.cat(self.inputs)
        return model.predict_noise(views, t, PromptEmbeds(torch.cat(self.texts), None), 1.0, batch_size)


def _nearest(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="nearest")


def _undo(x: torch.Tensor, t_next: int, span: int, betas: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Renoise x_{t_next} back to t = t_next + span, one forward step q(x_k | x_{k-1}) at a time."""
    for k in range(span):
        beta = betas[t_next + k].to(x.device, x.dtype)
        noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
        x = (1 - beta) ** 0.5 * x + beta**0.5 * noise
    return x


def _estimate(model, x, i, t, copy, passes, gen, new_p, patches, owners, text, view, backgrounds, batch_size):
    """One pass's scores at x: the global direction (cond - uncond, from `passes` reduced copies, filled in at the
    pixels each sampled, the rest from the last), the local unconditional score (patches with context), and the last
    reduced copy with its unconditional score (for RRG). One set of shared UNet calls."""
    samples = reduced_samples(x, copy, passes, gen, new_p)
    rows = _Rows()
    reduced = torch.cat([s for s, _ in samples])
    padded, (top, left) = _pad_to_view(reduced, view, int(t), backgrounds)
    crop_reduced = (slice(top, top + copy.size[0]), slice(left, left + copy.size[1]))
    uncond_rows = rows.add(padded, text.uncond)
    cond_rows = rows.add(padded, text.cond)
    patch_rows = []
    for p in patches:
        crop = x[:, :, p.crop_top:p.crop_bottom, p.crop_left:p.crop_right]
        padded, (top, left) = _pad_to_view(crop, view, int(t), backgrounds)
        core = (slice(top + p.top - p.crop_top, top + p.bottom - p.crop_top),
                slice(left + p.left - p.crop_left, left + p.right - p.crop_left))
        patch_rows.append((rows.add(padded, text.uncond), core))
    eps = rows.run(model, t, batch_size)
    h_, w_ = crop_reduced
    uncond, cond = eps[uncond_rows][:, :, h_, w_], eps[cond_rows][:, :, h_, w_]
    direction = torch.full_like(x, float("nan"))
    for k, (_, mask) in enumerate(samples):
        up = _nearest((cond[k:k + 1] - uncond[k:k + 1]), x.shape[-2:])
        direction = torch.where(mask, up, direction)
    direction = torch.where(torch.isnan(direction), up, direction)   # the last pass fills what no pass sampled
    local = torch.zeros_like(x)
    for p, (r, (h_, w_)), own in zip(patches, patch_rows, owners):
        core = local[:, :, p.top:p.bottom, p.left:p.right]
        core[:] = torch.where(own.to(x.device), eps[r][:, :, h_, w_], core)
    return direction, local, samples[-1][0], uncond[-1:]


@dataclass(frozen=True)
class ElasticPlan:
    """A canvas's geometry for ElasticDiffusion: the reduced copy, the local patches (window `window` latent pixels)
    and which core pixels each patch owns."""

    geometry: object
    window: int
    copy: ReducedCopy
    patches: list
    owners: list

    @classmethod
    def create(cls, model, height: int | None, width: int | None, patch_size: int | None = None) -> "ElasticPlan":
        """ValueError naming height, width or patch_size (pixels) for a canvas the method cannot make."""
        geometry = canvas(model, height, width)
        f, view = model.vae_scale_factor, model.latent_size
        H, W = geometry.layout.height, geometry.layout.width
        window = view // 2
        if patch_size is not None:
            if patch_size % f or not 0 < patch_size // f <= view:
                raise ValueError(f"patch_size must be a multiple of {f} px up to one view ({model.native_size} px), "
                                 f"got {patch_size!r}")
            window = patch_size // f
        size = reduced_size(model, geometry.height, geometry.width)
        if min(size) < 1:
            raise ValueError(f"height / width: the canvas {geometry.height}x{geometry.width} reduced to one view has "
                             f"no latent row or column left ({size}); ElasticDiffusion needs an aspect ratio under "
                             f"{view}:1")
        copy = ReducedCopy.create(H, W, size)
        copy.fill_mask(torch.zeros(size[0] * size[1], dtype=torch.long))   # a canvas with no fill pattern fails here
        patches = local_patches(H, W, window, view - window)
        return cls(geometry, window, copy, patches, patch_owners(patches, H, W))

    def unet_rows(self, passes: int) -> int:
        """View-sized UNet rows of one pass: the reduced copies unconditional and conditional, then the patches."""
        return 2 * passes + len(self.patches)

    def step_rows(self, steps: int, resampling_steps: int, repaint: bool) -> list[list[int]]:
        """Per step, the UNet rows of each of its passes (the repaint pass has one reduced copy)."""
        first, again = self.unet_rows(resampling_steps + 1), self.unet_rows(1)
        return [[first, again] if repaint and resampling_steps > 0 and i < steps - 1 else [first]
                for i in range(steps)]


@stage("generation")
def generate_elastic(model, prompt: str, height: int | None = None, width: int | None = None, seed: int = 0,
                     steps: int | None = None, guidance_scale: float = DEFAULT_GUIDANCE, negative_prompt: str = "",
                     output_type: str = "pil", progress: bool = True, view_batch_size: int | None = None,
                     callback=None, **settings) -> GenerationResult:
    """One canvas by ElasticDiffusion (Haji-Ali et al. 2024, Eq. 6-7, Sec. 4), as the authors' code makes it.

    Sizes in image pixels (height: one view, width: 7 views by default); DDIM (eta 0) with `steps` (50). settings:
    resampling_steps (7), new_p (0.3), rrg_scale (1000), cosine_scale (10), rrg_stop_t (0.4), repaint (True) and
    patch_size (pixels; None: half a view, the rest of the view its context), the authors' settings for a wide
    canvas (ELASTIC_DEFAULTS). callback(i, t, latents) runs after each step. view_batch_size: views per UNet call
    (None: as many as the device allows).

    What differs from the authors' code, and why:
    - their view of 64 latent pixels (128 for SDXL), patch 32 and context 32, and reference size 512 px are the
      model's view, half of it, and its native size here, so the bundled model (16-latent views) runs as SD 1 / 2;
    - every random draw comes from one torch.Generator seeded with `seed` (x_T, the resampling choices, the repaint
      noise, in their order), never the global RNG; they reseed the global RNG for every padding background with an
      MD5 of its side, size and t, and afterwards with a draw of numpy's global RNG, so their later draws depend on
      both global states. The backgrounds keep what the method needs, one random noised colour per side, size and t
      (the same in every pass of a step), from a generator of their own seeded from `seed` and those keys
      (derive_seed): unlike theirs they differ between seeds, and they do not disturb the other draws;
    - the local branch's UNet calls and the R + 1 resampling passes of the global branch are independent given x_t:
      they run in shared batched calls (theirs: one pass per call, `view_batch_size` patches per call); the repaint
      pass depends on the first and stays after it;
    - RRG's gradient of rrg_scale * MSE is taken in closed form, 2 * rrg_scale * (ref - x_0) / numel, not by autograd;
    - where a later patch overlaps an earlier one, the earlier one's prediction is kept by position (theirs: where the
      sum so far is not exactly 0);
    - SDXL is not supported (their XL path conditions on 4x the canvas size; not reproduced here).
    """
    seed, opts, steps, guidance_scale, negative_prompt, view_batch_size = _check_elastic_inputs(
        prompt, seed, steps, guidance_scale, negative_prompt, output_type, view_batch_size, callback, settings)
    model = _resolve_model(model)
    if model.is_xl:
        raise ValueError("model: ElasticDiffusion runs Stable Diffusion 1 / 2 models here; SDXL is not supported")
    plan = ElasticPlan.create(model, height, width, opts["patch_size"])
    H, W = plan.geometry.layout.height, plan.geometry.layout.width
    view_batch_size = view_batch_size or auto_view_batch(model, (model.latent_size, model.latent_size), False)

    t0 = time.perf_counter()
    sampler = make_sampler(SAMPLER, model.scheduler_config, steps, device=model.device)
    text = model.encode_prompt(prompt, negative_prompt, guidance=True)
    gen = torch.Generator("cpu").manual_seed(seed)
    x = torch.randn((1, model.latent_channels, H, W), generator=gen).to(model.device, model.dtype) \
        * sampler.init_noise_sigma
    with torch.no_grad():
        x = _elastic_denoise(model, x, sampler, steps, plan, text, gen, seed, opts, guidance_scale, view_batch_size,
                             progress, callback)
        image = None if output_type == "latent" else require_finite(model.decode(x), "the decoded image")
    seconds = time.perf_counter() - t0
    patch = plan.patches[0]
    layout = ViewLayout.create(H, W, (patch.bottom - patch.top, patch.right - patch.left),
                               (min(plan.window, H), min(plan.window, W)))
    config = dict(model=model.name, prompt=prompt, negative_prompt=negative_prompt, height=plan.geometry.height,
                  width=plan.geometry.width, method="elastic", sampler=SAMPLER, steps=steps,
                  guidance_scale=guidance_scale, seed=seed, **opts)
    return GenerationResult(None if image is None else _as_image(image, output_type), x, layout,
                            model.vae_scale_factor, seconds, config)


def _check_elastic_inputs(prompt, seed, steps, guidance_scale, negative_prompt, output_type, view_batch_size,
                          callback, settings: dict) -> tuple:
    """Check generate_elastic's arguments, everything that needs no model, in a fixed order (a ValueError names the
    first bad one): seed, settings (with their defaults), steps, guidance_scale, negative_prompt, view_batch_size."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
    seed = check_seed(seed)
    unknown = sorted(set(settings) - set(ELASTIC_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown ElasticDiffusion setting(s) {unknown}; known: {sorted(ELASTIC_DEFAULTS)}")
    opts = check_elastic_settings(**settings)
    steps = positive_int(DEFAULT_STEPS[SAMPLER] if steps is None else steps, "steps")
    guidance_scale = finite_number(guidance_scale, "guidance_scale", minimum=0.0)
    negative_prompt = "" if negative_prompt is None else negative_prompt
    if not isinstance(negative_prompt, str):
        raise ValueError(f"negative_prompt must be a string or None, got {type(negative_prompt).__name__}")
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    view_batch_size = positive_int(view_batch_size, "view_batch_size", optional=True)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {type(callback).__name__}")
    return seed, opts, steps, guidance_scale, negative_prompt, view_batch_size


def _elastic_denoise(model, x: torch.Tensor, sampler, steps: int, plan: ElasticPlan, text: PromptEmbeds,
                     gen: torch.Generator, seed: int, opts: dict, guidance_scale: float, view_batch_size: int,
                     progress: bool, callback) -> torch.Tensor:
    """ElasticDiffusion's denoising loop from x_T: each step the local and global estimates (Eq. 6-7), the repaint
    pass with less guidance, and reduced-resolution guidance towards the reduced copy's x_0; every draw from gen."""
    scheduler = sampler.scheduler
    span = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    backgrounds = _Backgrounds(model, seed, scheduler.alphas_cumprod)
    copy = plan.copy
    passes = opts["resampling_steps"] + 1
    last = len(sampler.timesteps) - 1
    for i, t in enumerate(tqdm(sampler.timesteps, desc="elastic", disable=not progress)):
        args = (copy, passes, gen, opts["new_p"], plan.patches, plan.owners, text, model.latent_size, backgrounds,
                view_batch_size)
        direction, local, reduced, uncond = _estimate(model, x, i, t, *args)
        step = sampler.step(local + guidance_scale * direction, i, x)
        scale = guidance_scale
        if opts["repaint"] and passes > 1 and i < last:   # renoise to t and redo the step with less guidance
            x = _undo(step.mean, int(sampler.timesteps[i + 1]), span, scheduler.betas, gen)
            scale = guidance_scale / REPAINT_GUIDANCE_DIVISOR
            direction, local, reduced, uncond = _estimate(model, x, i, t, copy, 1, *args[2:])
            step = sampler.step(local + scale * direction, i, x)
        x_next = step.mean
        weight = rrg_weight(i, steps, opts["rrg_scale"], opts["cosine_scale"], opts["rrg_stop_t"])
        if weight > RRG_MIN_WEIGHT:   # reduced-resolution guidance: pull x_0 towards the reduced copy's x_0
            ref = sampler.step(uncond + scale * _nearest(direction, copy.size), i, reduced).pred_original
            ref = _nearest(ref, x.shape[-2:])
            x_next = x_next + 2 * weight * (ref - step.pred_original) / step.pred_original.numel()
        x = require_finite(x_next, "ElasticDiffusion's step", i, sampler.timesteps)
        if callback is not None:
            callback(i, t, x)
    return x
