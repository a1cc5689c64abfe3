"""SyncDiffusion (Lee et al. 2023) on the joint-denoising engine: the baseline of the paper's Fig. 1, Table 2-4, Fig. 7.

At a sync step i, the anchor view's predicted x_0 is decoded once (no gradient); every other view j is pulled toward
it by one gradient step on its latent, x_t^(j) <- x_t^(j) - w * decay**i * grad LPIPS(D(x_0-hat^(j)), D(x_0-hat^anchor)),
before the usual denoising step and fusion. This follows the authors' code
(github.com/KAIST-Visual-AI-Group/SyncDiffusion, syncdiffusion/syncdiffusion_model.py): each view is updated
independently (overlaps are averaged by the fusion afterwards), sync steps are those with i < sync_thres and
(i + 1) % sync_freq == 0, and the anchor is the middle view len(views) // 2.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch

from .checks import finite_number, is_int, is_number, positive_int
from . import perceptual
from .perceptual import feature_maps, lpips_from_features, unit_features
from .stages import stage

# SyncDiffusion's defaults (their sample_syncdiffusion function; README: "w=20 is a suitable weight";
# decay 0.95 "set as in the paper"; gradient descent at every one of the 50 DDIM steps).
DEFAULT_WEIGHT = 20.0
DEFAULT_DECAY = 0.95
DEFAULT_THRESHOLD = 50
DEFAULT_EVERY = 1
LPIPS_NETS = ("alex", "vgg")
# The gradient step differentiates through the UNet, the VAE decoder and LPIPS. By default it takes as many views
# at once as hold one Stable Diffusion view's latent pixels (64 x 64, what SyncDiffusion's code differentiates at
# once): one view at a time on SD 1/2, every view of a canvas in one batch on the bundled model (8 x 8 latents).
GRAD_LATENT_PIXELS = 64 * 64


@dataclass(frozen=True)
class SyncConfig:
    """SyncDiffusion's settings: weight w, its per-step decay, threshold (sync only for i < threshold), every
    (sync when (i + 1) % every == 0), the anchor view (None: the middle view, as SyncDiffusion), the LPIPS net, and
    grad_batch, the views differentiated together (None: GRAD_LATENT_PIXELS' worth; the gradients are the same in
    exact arithmetic, each view's loss being its own; in float32 they differ by rounding)."""

    weight: float = DEFAULT_WEIGHT
    decay: float = DEFAULT_DECAY
    threshold: int = DEFAULT_THRESHOLD
    every: int = DEFAULT_EVERY
    anchor: int | None = None
    lpips_net: str = "vgg"
    grad_batch: int | None = None

    def __post_init__(self):
        finite_number(self.weight, "weight", minimum=0.0)
        if not is_number(self.decay) or not 0 < self.decay <= 1:   # NaN fails too
            raise ValueError(f"decay must be in (0, 1], got {self.decay!r}")
        if not is_int(self.threshold) or self.threshold < 0:
            raise ValueError(f"threshold must be an int >= 0, got {self.threshold!r}")
        positive_int(self.every, "every")
        if self.anchor is not None and (not is_int(self.anchor) or self.anchor < 0):
            raise ValueError(f"anchor must be None (the middle view) or a view index >= 0, got {self.anchor!r}")
        if self.lpips_net not in LPIPS_NETS:
            raise ValueError(f"lpips_net must be one of {LPIPS_NETS}, got {self.lpips_net!r}")
        positive_int(self.grad_batch, "grad_batch", optional=True)

    def views_per_gradient(self, latent_size: tuple[int, int]) -> int:
        """grad_batch, or as many views of latent_size (h, w) as hold GRAD_LATENT_PIXELS (at least one)."""
        return self.grad_batch or max(1, GRAD_LATENT_PIXELS // (latent_size[0] * latent_size[1]))

    def is_sync_step(self, i: int) -> bool:
        """Whether step i does gradient descent (SyncDiffusion: (i + 1) % sync_freq == 0 and i < sync_thres)."""
        return i < self.threshold and (i + 1) % self.every == 0

    def step_weight(self, i: int) -> float:
        """w * decay**i: SyncDiffusion's exponentially decaying weight at step i."""
        return float(self.weight) * float(self.decay) ** i

    def anchor_index(self, n_views: int) -> int:
        """The anchor view's index among n_views (the middle one unless set)."""
        anchor = n_views // 2 if self.anchor is None else self.anchor
        if anchor >= n_views:
            raise ValueError(f"anchor must be < the number of views {n_views}, got {anchor}")
        return anchor


@contextlib.contextmanager
def _mkldnn_deterministic():
    """torch.backends.mkldnn.deterministic = True for the block, then as it was."""
    before = torch.backends.mkldnn.deterministic
    torch.backends.mkldnn.deterministic = True
    try:
        yield
    finally:
        torch.backends.mkldnn.deterministic = before


def decode_x0(views: torch.Tensor, i: int, t, ctx, first: int = 0) -> torch.Tensor:
    """Views x_t (the canvas's views first, first + 1, ...) -> the sampler's x_0-hat -> VAE-decoded images in
    [0, 1] (Model.decode_views, decode's path), differentiable w.r.t. the views."""
    model, sampler = ctx.model, ctx.sampler
    text = ctx.text.rows(first, views.shape[0])
    eps = model.predict_noise(sampler.scale_input(views, i), t, text, ctx.guidance_scale)
    x0 = sampler.step(eps, i, views).pred_original
    return model.decode_views(x0)   # Model.decode's path with gradients: scaling, shift, float16 upcast


def lpips_units(net, images: torch.Tensor) -> list[torch.Tensor]:
    """LPIPS' unit-normalised features of images in [0, 1] (the network takes [-1, 1])."""
    return unit_features(feature_maps(net, images * 2 - 1))


def make_sync_hook(config: SyncConfig = SyncConfig(), lpips=None):
    """A view_hook for gvcf.generate doing SyncDiffusion's gradient step (Lee et al. 2023) at sync steps.

    lpips: an LPIPS module taking images in [-1, 1]; default gvcf.engine.perceptual.load_lpips(config.lpips_net),
    loaded on the model's device at the first sync step. The anchor's LPIPS features are computed once per step
    (lpips.LPIPS's forward would rerun its backbone on the anchor for every view). Views are differentiated config.views_per_gradient at a
    time (runs of neighbouring views, the anchor left out), so memory is that many views' UNet + VAE-decoder + LPIPS
    graphs.
    """
    if not isinstance(config, SyncConfig):
        raise ValueError(f"config must be a SyncConfig, got {type(config).__name__}")
    net = [lpips]

    @stage("sync gradient")   # the anchor's decode, the LPIPS gradients through the decoder, the update
    def hook(views: torch.Tensor, i: int, t, ctx) -> torch.Tensor:
        w = config.step_weight(i)
        if not config.is_sync_step(i) or w == 0.0:
            return views
        anchor = config.anchor_index(views.shape[0])
        if net[0] is None:
            net[0] = perceptual.load_lpips(config.lpips_net, device=ctx.model.device)
        views = views.detach()
        with torch.no_grad():   # the anchor's image and its LPIPS features, once per step for every other view
            target = lpips_units(net[0], decode_x0(views[anchor:anchor + 1], i, t, ctx, anchor))
        out = views.clone()
        # oneDNN primitives may pick non-deterministic algorithms unless asked not to; torch passes this flag on
        # (dnnl attr set_deterministic), so the gradient step is repeatable in one process as the plain steps are
        size = config.views_per_gradient(views.shape[-2:])
        with torch.enable_grad(), _mkldnn_deterministic():
            for first, count in _runs(views.shape[0], anchor, size):
                batch = views[first:first + count].clone().requires_grad_(True)
                images = decode_x0(batch, i, t, ctx, first)
                loss = lpips_from_features(net[0], lpips_units(net[0], images), target).sum()
                (grad,) = torch.autograd.grad(loss, batch)   # each view's own loss: frees this batch's graph
                out[first:first + count] = batch.detach() - w * grad.to(batch.dtype)
        return out

    return hook


def _runs(n: int, skip: int, size: int):
    """(first, count) runs of at most `size` neighbouring indices covering range(n) without `skip`."""
    for low, high in ((0, skip), (skip + 1, n)):
        for first in range(low, high, size):
            yield first, min(size, high - first)


def generate_sync(model, prompt: str, sync: SyncConfig = SyncConfig(), lpips=None, **generate_kwargs):
    """SyncDiffusion panorama: gvcf.generate with fusion 'md' and sampler 'ddim' by default, plus the sync hook."""
    from .generate import generate

    if not isinstance(sync, SyncConfig):
        raise ValueError(f"sync must be a SyncConfig, got {type(sync).__name__}")
    if "view_hook" in generate_kwargs:
        raise ValueError("view_hook is set by generate_sync; pass no view_hook")
    generate_kwargs.setdefault("fusion", "md")
    generate_kwargs.setdefault("sampler", "ddim")
    result = generate(model, prompt, view_hook=make_sync_hook(sync, lpips), **generate_kwargs)
    result.config["sync"] = asdict(sync)
    return result
