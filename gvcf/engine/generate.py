"""The joint denoising loop: views of one canvas denoised together and fused at every step."""
from __future__ import annotations

import hashlib
import inspect
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .checks import finite_number, is_int, positive_int
from .fusion import FusionMethod, FusionPlan, fuse, fusion_method
from .models import Model, PromptEmbeds, auto_view_batch, load_model
from .regions import check_regions, layer_masks
from .samplers import check_sampler, make_sampler
from .stages import stage
from .style import align_noise, check_alpha
from .views import Canvas, ViewLayout, canvas, stride_pair
from .weights import WEIGHT_MAPS, weight_map

OUTPUT_TYPES = ("pil", "np", "pt", "latent")
DEFAULT_GUIDANCE = 7.5   # classifier-free guidance scale: Stable Diffusion's default, and the paper's


@dataclass
class GenerationResult:
    """A generated canvas: the decoded image (None for output_type='latent') and the final latents x_0."""

    image: object
    latents: torch.Tensor
    layout: ViewLayout
    vae_scale_factor: int
    seconds: float
    config: dict = field(default_factory=dict)

    @property
    def seams(self) -> list[int]:
        """Image columns where a view's edge lies (for seam scores and for marking figures)."""
        return self.layout.seams(scale=self.vae_scale_factor)


@dataclass(frozen=True)
class StepContext:
    """What a view_hook may use at a step: the model, prompt embeddings, sampler and guidance scale."""

    model: Model
    text: object
    sampler: object
    guidance_scale: float
    layout: ViewLayout
    view_batch_size: int | None


# torch's CPU generator (mt19937) keeps only the low 32 bits of a seed: 0, 2**32 and -2**32 give the same noise.
# So a seed is an int in [0, 2**32), and anything else is refused rather than silently folded onto another seed.
SEED_LIMIT = 2**32


def check_seed(seed, name: str = "seed") -> int:
    """A seed as an int in [0, 2**32) (every distinct value a distinct noise stream), or ValueError naming it."""
    if not is_int(seed) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{name} must be an int in [0, 2**32) (torch's CPU generator keeps 32 bits), got {seed!r}")
    return int(seed)


def derive_seed(seed: int, stream: str) -> int:
    """An independent seed in [0, 2**32) for a named random stream of one image (e.g. 'reference').

    It is the low 32 bits of the earlier 63-bit digest, which is all torch's generator ever used of it: the noise
    of every derived stream is unchanged."""
    digest = hashlib.sha256(f"{int(seed)}/{stream}".encode()).digest()
    return (int.from_bytes(digest[:8], "little") >> 1) % SEED_LIMIT


def _to_device(x: torch.Tensor, device, dtype) -> torch.Tensor:
    """Move CPU-drawn noise to the device without blocking on a GPU (pinned, asynchronous copy)."""
    if torch.device(device).type == "cuda":
        return x.pin_memory().to(device, dtype, non_blocking=True)
    return x.to(device, dtype)


def _finite_tensor(value, name: str) -> torch.Tensor | None:
    """None, or a torch.Tensor whose every element is finite (NaN or inf noise decodes to a black image)."""
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or None, got {type(value).__name__}")
    if not value.is_floating_point() or not torch.isfinite(value).all():
        raise ValueError(f"{name} must be a floating-point tensor of finite values")
    return value


def require_finite(x: torch.Tensor, where: str, i: int | None = None, timesteps=None) -> torch.Tensor:
    """x itself, or FloatingPointError saying at which denoising step (i of len(timesteps), timestep t) and in which
    stage (where) values became NaN or inf: generation never returns a black image from non-finite latents."""
    if torch.isfinite(x).all():
        return x
    bad = int((~torch.isfinite(x)).sum())
    at = "" if i is None else f" at denoising step {i + 1} of {len(timesteps)} (timestep {int(timesteps[i])})"
    raise FloatingPointError(f"generation stopped: {bad} non-finite value(s) (NaN or inf){at} in {where}; an extreme "
                             "guidance_scale, input latents or model weights overflow float arithmetic")


# The loop's float tensors per canvas: x_t, and per view its latents, guided eps, the step's mean and its noise
VIEW_COPIES = 4
INDEX_BYTES = torch.empty((), dtype=torch.int64).element_size()   # the fusion plan's per-pixel view index


def device_memory(device) -> int:
    """Bytes of memory on the device: the GPU's total, or the machine's physical memory for the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[1]
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits_memory(layout: ViewLayout, n_canvases: int, channels: int, dtype, device, height, width) -> None:
    """ValueError naming height and width (the caller's pixels) when the denoising loop's latents alone would
    exceed the device's memory: refused before anything is allocated, not after minutes of swapping."""
    view_pixels = len(layout) * layout.window[0] * layout.window[1]
    per_canvas = (torch.empty((), dtype=dtype).element_size() * channels
                  * (layout.height * layout.width + VIEW_COPIES * view_pixels) + INDEX_BYTES * view_pixels)
    need, have = n_canvases * per_canvas, device_memory(device)
    if need > have:
        raise ValueError(f"height={height}, width={width}: {n_canvases} canvas(es) of {len(layout)} views need about "
                         f"{need / 2**30:.3g} GiB of latents, more than the {have / 2**30:.3g} GiB of {device}")


def _resolve_model(model) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, str):
        return load_model(model)
    if all(hasattr(model, k) for k in ("unet", "vae", "text_encoder", "tokenizer", "scheduler")):
        return Model.from_pipeline(model)
    raise ValueError(f"model must be a gvcf Model, a StableDiffusionPipeline or StableDiffusionXLPipeline, or a model "
                     f"name, got {type(model).__name__}")


def _prompts(prompts, n: int) -> list[str]:
    """One string for every canvas, or one string per canvas."""
    if isinstance(prompts, str):
        return [prompts] * n
    if not isinstance(prompts, (list, tuple)) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a string or a list of strings, got {type(prompts).__name__}")
    if len(prompts) != n:
        raise ValueError(f"prompts must be one string or one per seed ({n}), got {len(prompts)}")
    return list(prompts)


def _per_canvas(value: torch.Tensor | None, shape: tuple, k: int, name: str, shared: bool) -> list | None:
    """None, or one (1, *shape[1:]) tensor per canvas from a (k, ...) tensor (or a (1, ...) one when shared)."""
    if value is None:
        return None
    rows = tuple(value.shape[1:]) == shape[1:] and value.shape[0] in ((1, k) if shared else (k,))
    if value.ndim != len(shape) or not rows:
        want = f"(1 or {k}, {', '.join(map(str, shape[1:]))})" if shared else str((k, *shape[1:]))
        raise ValueError(f"{name} must have shape {want if k > 1 else shape}, got {tuple(value.shape)}")
    return [value[j:j + 1] if value.shape[0] == k else value for j in range(k)]


def _as_image(image: torch.Tensor, output_type: str):
    if output_type == "pt":
        return image
    array = image[0].permute(1, 2, 0).cpu().numpy()
    if output_type == "np":
        return array
    from PIL import Image

    return Image.fromarray((array * 255).round().astype(np.uint8))


def generate(model, prompt: str, *args, seed: int = 0, **kwargs) -> GenerationResult:
    """Generate one large canvas by joint denoising of overlapping views (paper Eq. 8, 14, 15).

    Every other argument is generate_batch's, for one canvas: latents (1, C, H, W) replaces x_T drawn from `seed`.
    """
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
    return generate_batch(model, prompt, [check_seed(seed)], *args, **kwargs)[0]


@stage("generation")
def generate_batch(
    model, prompts, seeds, height: int | None = None, width: int | None = None, stride=None,
    fusion: str = "gvcf", sampler: str = "ddpm", steps: int | None = None,
    guidance_scale: float = DEFAULT_GUIDANCE, negative_prompt: str = "",
    alpha: float = 0.0, reference_noise: torch.Tensor | None = None, latents: torch.Tensor | None = None,
    circular: bool = False, view_batch_size: int | None = None, output_type: str = "pil", progress: bool = True,
    eta: float = 0.0, weights: str | None = None, decode_tile: int | None = None,
    view_hook: Callable | None = None, regions=None,
) -> list[GenerationResult]:
    """Canvases of one geometry denoised together (Eq. 8, 14, 15): their views share UNet calls.

    Canvas k equals generate(model, prompts[k], seed=seeds[k], ...) up to float rounding, whatever the batch: it
    draws its noise from its own generator in generate's order. prompts: one string or one per seed. Sizes are in
    image pixels; stride: int or (h, w), the last view of a row or column snapped to the canvas edge. weights
    overrides the fusion's map ('uniform', 'guided', 'gaussian'). latents: (K, C, H, W) x_T, one per seed;
    reference_noise: (1 or K, C, h, w). view_batch_size: views per UNet call (None: auto_view_batch for the
    device and model). view_hook(views, i, t, ctx: StepContext) may replace a canvas's views before the UNet at
    step i; it runs per canvas with gradients enabled (SyncDiffusion uses it). seconds: the batch's time / K.
    regions: [(mask, prompt), ...], masks (height, width) in [0, 1] (bool or float) in image pixels: each region's
    views are denoised with its prompt, its mask times their weights; the canvas's prompt fills the rest, weight
    1 - sum of the masks (gvcf.engine.regions).
    """
    inputs = _check_batch_inputs(prompts, seeds, stride, fusion, sampler, steps, guidance_scale, negative_prompt,
                                  alpha, reference_noise, latents, circular, view_batch_size, output_type, eta,
                                  weights, decode_tile, regions)
    model = _resolve_model(model)
    steps = check_sampler(sampler, inputs.steps, eta, model.scheduler_config.get("num_train_timesteps"))
    canvases = _fit_canvases(model, inputs, height, width, stride, circular)
    layout, k = canvases.layout, len(inputs.seeds)

    t0 = time.perf_counter()
    sampler_ = make_sampler(sampler, model.scheduler_config, steps, eta=eta, device=model.device)
    plan = FusionPlan.create(layout, weight_map(weights or inputs.method.weights, *layout.window), model.device,
                             canvases.masks)
    text, canvas_texts = encode_prompts(model, inputs.prompts, inputs.regions, plan, inputs.negative_prompt,
                                        inputs.guidance_scale)
    contexts = [StepContext(model, t, sampler_, inputs.guidance_scale, layout, canvases.view_batch_size)
                for t in canvas_texts]
    gens = [torch.Generator("cpu").manual_seed(s) for s in inputs.seeds]
    xs = prepare_latents(gens, inputs.seeds, canvases.shape, layout.window, sampler_.init_noise_sigma, model.device,
                         canvases.latents, canvases.reference_noise, inputs.alpha)
    with torch.no_grad():
        xs = denoise(model, xs, gens, sampler_, plan, inputs.method.correct_variance, text, contexts,
                     inputs.guidance_scale, canvases.view_batch_size, view_hook, progress=progress,
                     desc=f"{fusion}/{sampler}")
        images = [None if output_type == "latent" else
                  decode(model, x, f"canvas {j}'s decoded image", circular=circular, tile=inputs.decode_tile)
                  for j, x in enumerate(xs)]
    seconds = (time.perf_counter() - t0) / k
    configs = [_canvas_config(model, inputs, canvases.geometry, prompt, seed, fusion, sampler, steps, circular, eta,
                              weights or inputs.method.weights) for prompt, seed in zip(inputs.prompts, inputs.seeds)]
    return [GenerationResult(None if image is None else _as_image(image, output_type), x, layout,
                             model.vae_scale_factor, seconds, config)
            for x, image, config in zip(xs, images, configs)]


@dataclass(frozen=True)
class _BatchInputs:
    """generate_batch's arguments as checked before any model work (the rest pass through unchanged)."""

    method: FusionMethod
    steps: int
    alpha: float
    seeds: list
    prompts: list
    negative_prompt: str
    guidance_scale: float
    view_batch_size: int | None
    decode_tile: int | None
    latents: torch.Tensor | None
    reference_noise: torch.Tensor | None
    regions: list | None


def _check_batch_inputs(prompts, seeds, stride, fusion, sampler, steps, guidance_scale, negative_prompt, alpha,
                        reference_noise, latents, circular, view_batch_size, output_type, eta, weights, decode_tile,
                        regions) -> _BatchInputs:
    """Check generate_batch's arguments, everything that needs no model, in a fixed order: a ValueError names the
    first bad one before a model is loaded."""
    method = fusion_method(fusion)
    steps = check_sampler(sampler, steps, eta)
    alpha = check_alpha(alpha)
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    seeds = [check_seed(s, "seeds") for s in seeds]
    prompts = _prompts(prompts, len(seeds))
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    negative_prompt = "" if negative_prompt is None else negative_prompt   # diffusers' None: no negative prompt
    if not isinstance(negative_prompt, str):
        raise ValueError(f"negative_prompt must be a string or None, got {type(negative_prompt).__name__}")
    guidance_scale = finite_number(guidance_scale, "guidance_scale", minimum=0.0)
    view_batch_size = positive_int(view_batch_size, "view_batch_size", optional=True)
    decode_tile = positive_int(decode_tile, "decode_tile", optional=True)
    if not isinstance(circular, bool):
        raise ValueError(f"circular must be True or False, got {circular!r}")
    if weights is not None and weights not in WEIGHT_MAPS:
        raise ValueError(f"weights must be None or one of {sorted(WEIGHT_MAPS)}, got {weights!r}")
    latents = _finite_tensor(latents, "latents")
    reference_noise = _finite_tensor(reference_noise, "reference_noise")
    stride_pair(stride)   # a malformed stride fails before the model loads
    regions = check_regions(regions)
    return _BatchInputs(method, steps, alpha, seeds, prompts, negative_prompt, guidance_scale, view_batch_size,
                        decode_tile, latents, reference_noise, regions)


@dataclass(frozen=True)
class _Canvases:
    """The canvases' geometry on a model, and the per-canvas inputs checked against it."""

    geometry: Canvas
    shape: tuple
    latents: list | None
    reference_noise: list | None
    view_batch_size: int
    masks: torch.Tensor | None

    @property
    def layout(self) -> ViewLayout:
        return self.geometry.layout


def _fit_canvases(model: Model, inputs: _BatchInputs, height, width, stride, circular: bool) -> _Canvases:
    """The canvas geometry on the model, refused (ValueError) when its latents would not fit the device's memory;
    given latents and reference noise split per canvas and checked against its shape; the views per UNet call; the
    regions' masks on the latent grid."""
    geometry = canvas(model, height, width, stride, circular)
    layout, k = geometry.layout, len(inputs.seeds)
    check_fits_memory(layout, k, model.latent_channels, model.dtype, model.device, height, width)
    shape = (1, model.latent_channels, layout.height, layout.width)
    latents = _per_canvas(inputs.latents, shape, k, "latents", shared=False)
    reference_noise = _per_canvas(inputs.reference_noise, (1, shape[1], *layout.window), k, "reference_noise",
                                  shared=True)
    view_batch_size = inputs.view_batch_size or auto_view_batch(model, layout.window, inputs.guidance_scale > 1.0)
    masks = (layer_masks(inputs.regions, geometry.height, geometry.width, model.vae_scale_factor)
             if inputs.regions else None)
    return _Canvases(geometry, shape, latents, reference_noise, view_batch_size, masks)


def _canvas_config(model: Model, inputs: _BatchInputs, geometry: Canvas, prompt: str, seed: int, fusion: str,
                   sampler: str, steps: int, circular: bool, eta: float, weights: str) -> dict:
    """GenerationResult.config of one canvas: everything that determines it (regions: prompt and mask digest)."""
    config = dict(model=model.name, prompt=prompt, negative_prompt=inputs.negative_prompt, height=geometry.height,
                  width=geometry.width, stride=geometry.stride, fusion=fusion, sampler=sampler, steps=steps,
                  guidance_scale=inputs.guidance_scale, alpha=inputs.alpha, seed=seed, circular=circular, eta=eta,
                  weights=weights)
    if inputs.regions:
        config["regions"] = [(q, hashlib.sha256(m.tobytes()).hexdigest()[:16]) for m, q in inputs.regions]
    return config


def encode_prompts(model: Model, prompts: list[str], regions, plan: FusionPlan, negative_prompt: str,
                   guidance_scale: float) -> tuple[PromptEmbeds, list[PromptEmbeds]]:
    """The text conditioning of every view of every canvas (each distinct prompt encoded once): all canvases' views
    in one PromptEmbeds, and each canvas's own. With regions a view is denoised once per prompt layer it has."""
    n_views = len(plan)   # the layout's views, or one per (prompt layer, view) with regions
    layers = [[p, *(q for _, q in regions or ())] for p in prompts]   # canvas j's prompt of each layer (0: its own)
    texts = {p: model.encode_prompt(p, negative_prompt, guidance=guidance_scale > 1.0)
             for p in dict.fromkeys(q for ps in layers for q in ps)}
    view_texts = [texts[ps[layer]] for ps in layers for layer in plan.layers or [0] * n_views]   # one per view
    return PromptEmbeds.per_view(view_texts), [PromptEmbeds.per_view(view_texts[j * n_views:(j + 1) * n_views])
                                               for j in range(len(prompts))]


def prepare_latents(gens, seeds, shape: tuple, window: tuple, init_noise_sigma: float, device,
                    latents: list | None = None, reference_noise: list | None = None,
                    alpha: float = 0.0) -> list[torch.Tensor]:
    """x_T of each canvas: seeded noise drawn on the CPU from its generator (the same on every device), or the given
    latents, slerped towards a reference noise by one-shot Style Alignment (Eq. 15) when alpha > 0, times the
    sampler's initial sigma."""
    xs = []
    for j, (gen, seed) in enumerate(zip(gens, seeds)):
        x = torch.randn(shape, generator=gen) if latents is None else latents[j].detach().float().cpu()
        if alpha > 0:
            ref = None if reference_noise is None else reference_noise[j].float().cpu()
            if ref is None:
                ref_gen = torch.Generator("cpu").manual_seed(derive_seed(seed, "reference"))
                ref = torch.randn((1, shape[1], *window), generator=ref_gen)
            x = align_noise(x, ref, alpha)
        xs.append(x.to(device) * init_noise_sigma)
    return xs


def denoise_step(model: Model, sampler_, views: torch.Tensor, i: int, t, text: PromptEmbeds, guidance_scale: float,
                 history=None, view_batch_size: int | None = None):
    """One sampler step of a batch of views: the UNet's guided noise prediction (checked finite: a
    FloatingPointError naming step i of n and timestep t), split into mean and noise std (Eq. 9-10)."""
    eps = model.predict_noise(sampler_.scale_input(views, i), t, text, guidance_scale, view_batch_size)
    require_finite(eps, "the UNet's guided noise prediction", i, sampler_.timesteps)
    return sampler_.step(eps, i, views, history)


def denoise(model: Model, xs: list[torch.Tensor], gens, sampler_, plan: FusionPlan, correct_variance: bool,
            text: PromptEmbeds, contexts, guidance_scale: float, view_batch_size: int | None,
            view_hook: Callable | None = None, progress: bool = False, desc: str = "") -> list[torch.Tensor]:
    """Joint denoising of the canvases xs (Eq. 8 / 14): every step gathers all canvases' views, predicts their noise
    in shared UNet calls, splits the step, draws canvas j's per-view noise from gens[j] and fuses each canvas.
    A canvas that turns non-finite stops the run (FloatingPointError naming the step and the stage)."""
    layout, n_views = plan.layout, len(plan)
    history = None   # a multistep sampler's per-view state: each view's previous x_0 prediction (not fused)
    for i, t in enumerate(tqdm(sampler_.timesteps, desc=desc, disable=not progress)):
        views = [layout.gather(x, plan.index) for x in xs]
        if view_hook is not None:
            with torch.enable_grad():
                views = [view_hook(v, i, t, ctx).detach() for v, ctx in zip(views, contexts)]
        views = views[0] if len(xs) == 1 else torch.cat(views)
        step = denoise_step(model, sampler_, views, i, t, text, guidance_scale, history, view_batch_size)
        history = step.pred_original if sampler_.multistep else None
        for j, gen in enumerate(gens):
            rows = slice(j * n_views, (j + 1) * n_views)
            noise = None
            if step.std is not None:  # per-view z^{(i)} of canvas j, in a fixed order independent of batching
                noise = step.std * _to_device(torch.randn((n_views, *views.shape[1:]), generator=gen), model.device,
                                              views.dtype)
            xs[j] = require_finite(fuse(step.mean[rows], noise, plan, correct_variance),
                                   f"canvas {j}'s fused step (sampler and fusion)", i, sampler_.timesteps)
    return xs


def decode(model: Model, latents: torch.Tensor, where: str, circular: bool = False,
           tile: int | None = None) -> torch.Tensor:
    """Latents -> image in [0, 1] through Model.decode (the VAE's scaling and its float16 upcast), checked finite."""
    return require_finite(model.decode(latents, circular=circular, tile=tile), where)


@stage("generation")
def generate_views(model, prompt: str, seeds, sampler: str = "ddpm", steps: int | None = None,
                   guidance_scale: float = DEFAULT_GUIDANCE, negative_prompt: str = "", batch_size: int | None = None,
                   eta: float = 0.0, progress: bool = False) -> np.ndarray:
    """Independent single native views, batched, one seed each: view k equals
    generate(seed=seeds[k]) at native size (the same noise stream), whatever the batch size. Returns uint8 (N, H, W, 3)."""
    steps = check_sampler(sampler, steps, eta)
    seeds = [check_seed(s, "seeds") for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    batch_size = positive_int(batch_size, "batch_size", optional=True)
    guidance_scale = finite_number(guidance_scale, "guidance_scale", minimum=0.0)   # as generate_batch
    model = _resolve_model(model)
    steps = check_sampler(sampler, steps, eta, model.scheduler_config.get("num_train_timesteps"))
    batch_size = batch_size or len(seeds)
    shape = (1, model.latent_channels, model.latent_size, model.latent_size)
    text = model.encode_prompt(prompt, negative_prompt, guidance=guidance_scale > 1.0)
    out = []
    for start in tqdm(range(0, len(seeds), batch_size), desc="views", disable=not progress):
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[start:start + batch_size]]
        draw = lambda: torch.cat([torch.randn(shape, generator=g) for g in gens]).to(model.device)
        sampler_ = make_sampler(sampler, model.scheduler_config, steps, eta=eta, device=model.device)
        x, history = draw() * sampler_.init_noise_sigma, None
        with torch.no_grad():
            for i, t in enumerate(sampler_.timesteps):
                step = denoise_step(model, sampler_, x, i, t, text, guidance_scale, history)
                history = step.pred_original if sampler_.multistep else None
                x = step.mean if step.std is None else step.mean + step.std * draw()
                require_finite(x, "the sampler's step", i, sampler_.timesteps)
            images = torch.cat([decode(model, x[k:k + 1], "a decoded view") for k in range(len(x))])
        out.append((images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8))
    return np.concatenate(out)


def _single_signature() -> inspect.Signature:
    """generate's signature for help(): generate_batch's, with one prompt and one seed."""
    batch = inspect.signature(generate_batch).parameters
    params = [batch["model"], batch["prompts"].replace(name="prompt", annotation="str")]
    for name, param in batch.items():
        if name == "latents":
            params.append(inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=0, annotation="int"))
        if name not in ("model", "prompts", "seeds"):
            kind = inspect.Parameter.KEYWORD_ONLY if len(params) > 2 and params[-1].kind == params[-1].KEYWORD_ONLY \
                else param.kind
            params.append(param.replace(kind=kind))
    return inspect.Signature(params, return_annotation="GenerationResult")


# generate is generate_batch for one canvas: help(gvcf.generate) shows its real arguments without restating
# generate_batch's twenty (which would be a second copy to keep in step)
generate.__signature__ = _single_signature()
