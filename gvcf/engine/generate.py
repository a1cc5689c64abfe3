"""The joint denoising loop: views of one canvas denoised together and fused at every step."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .checks import finite_number, is_int, positive_int
from .fusion import FusionPlan, fuse, fusion_method
from .models import Model, load_model
from .samplers import check_sampler, make_sampler
from .stages import stage
from .style import align_noise, check_alpha
from .views import ViewLayout, canvas, stride_pair
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


def _resolve_model(model) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, str):
        return load_model(model)
    if all(hasattr(model, k) for k in ("unet", "vae", "text_encoder", "tokenizer", "scheduler")):
        return Model.from_pipeline(model)
    raise ValueError(f"model must be a gvcf Model, a StableDiffusionPipeline or a model name, got {type(model).__name__}")


@stage("generation")
def generate(
    model, prompt: str, height: int | None = None, width: int | None = None, stride=None,
    fusion: str = "gvcf", sampler: str = "ddpm", steps: int | None = None,
    guidance_scale: float = DEFAULT_GUIDANCE, negative_prompt: str = "",
    alpha: float = 0.0, reference_noise: torch.Tensor | None = None,
    seed: int = 0, latents: torch.Tensor | None = None,
    circular: bool = False, view_batch_size: int | None = None, output_type: str = "pil", progress: bool = True,
    eta: float = 0.0, weights: str | None = None, decode_tile: int | None = None,
    view_hook: Callable | None = None,
) -> GenerationResult:
    """Generate one large canvas by joint denoising of overlapping views (paper Eq. 8, 14, 15).

    Sizes are in image pixels. stride: int or (h, w); the last view of a row or column is snapped to the
    canvas edge where the stride does not divide evenly. A canvas smaller than a view raises ValueError.
    weights overrides the fusion's map ('uniform', 'guided', 'gaussian').
    view_hook(views, i, t, ctx: StepContext) may replace the views before the UNet at step i; it runs with
    gradients enabled (SyncDiffusion uses it).
    """
    # -- check everything that needs no model --
    method = fusion_method(fusion)
    steps = check_sampler(sampler, steps, eta)
    alpha = check_alpha(alpha)
    seed = check_seed(seed)
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
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
    model = _resolve_model(model)
    steps = check_sampler(sampler, steps, eta, model.scheduler_config.get("num_train_timesteps"))
    geometry = canvas(model, height, width, stride, circular)
    layout, f = geometry.layout, model.vae_scale_factor
    shape = (1, model.latent_channels, layout.height, layout.width)
    if latents is not None and tuple(latents.shape) != shape:
        raise ValueError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
    if reference_noise is not None and tuple(reference_noise.shape) != (1, shape[1], *layout.window):
        raise ValueError(f"reference_noise must have shape {(1, shape[1], *layout.window)}, "
                         f"got {tuple(reference_noise.shape)}")

    t0 = time.perf_counter()
    device = model.device
    sampler_ = make_sampler(sampler, model.scheduler_config, steps, eta=eta, device=device)
    text = model.encode_prompt(prompt, negative_prompt, guidance=guidance_scale > 1.0)
    plan = FusionPlan.create(layout, weight_map(weights or method.weights, *layout.window), device)
    ctx = StepContext(model, text, sampler_, guidance_scale, layout, view_batch_size)
    # -- x_T: seeded noise on the CPU (the same on every device), then one-shot Style Alignment (Eq. 15) --
    gen = torch.Generator("cpu").manual_seed(seed)
    x = torch.randn(shape, generator=gen) if latents is None else latents.detach().float().cpu()
    if alpha > 0:
        if reference_noise is None:
            ref_gen = torch.Generator("cpu").manual_seed(derive_seed(seed, "reference"))
            reference_noise = torch.randn((1, shape[1], *layout.window), generator=ref_gen)
        x = align_noise(x, reference_noise.float().cpu(), alpha)
    x = x.to(device) * sampler_.init_noise_sigma
    # -- joint denoising: gather views, predict noise with CFG, split step, fuse (Eq. 8 / 14) --
    with torch.no_grad():
        for i, t in enumerate(tqdm(sampler_.timesteps, desc=f"{fusion}/{sampler}", disable=not progress)):
            views = layout.gather(x, plan.index)
            if view_hook is not None:
                with torch.enable_grad():
                    views = view_hook(views, i, t, ctx).detach()
            eps = model.predict_noise(sampler_.scale_input(views, i), t, text, guidance_scale, view_batch_size)
            step = sampler_.step(eps, i, views)
            noise = None
            if step.std is not None:  # per-view z^{(i)} in a fixed order, independent of batching
                noise = step.std * _to_device(torch.randn(views.shape, generator=gen), device, views.dtype)
            x = fuse(step.mean, noise, plan, method.correct_variance)
        image = None if output_type == "latent" else model.decode(x, circular=circular, tile=decode_tile)
    if image is not None and output_type != "pt":
        array = image[0].permute(1, 2, 0).cpu().numpy()
        if output_type == "pil":
            from PIL import Image

            image = Image.fromarray((array * 255).round().astype(np.uint8))
        else:
            image = array
    config = dict(model=model.name, prompt=prompt, negative_prompt=negative_prompt, height=geometry.height,
                  width=geometry.width, stride=geometry.stride, fusion=fusion, sampler=sampler, steps=steps, guidance_scale=guidance_scale,
                  alpha=alpha, seed=seed, circular=circular, eta=eta, weights=weights or method.weights)
    return GenerationResult(image, x, layout, f, time.perf_counter() - t0, config)


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
    guidance_scale = finite_number(guidance_scale, "guidance_scale")
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
        x = draw() * sampler_.init_noise_sigma
        with torch.no_grad():
            for i, t in enumerate(sampler_.timesteps):
                eps = model.predict_noise(sampler_.scale_input(x, i), t, text, guidance_scale)
                step = sampler_.step(eps, i, x)
                x = step.mean if step.std is None else step.mean + step.std * draw()
            images = torch.cat([model.decode(x[k:k + 1]) for k in range(len(x))])
        out.append((images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8))
    return np.concatenate(out)
