"""Region prompts: different text in different parts of the canvas.

MultiDiffusion's region-based generation (its Eq. 5) with any of the four fusions (Eq. 14): a region is a canvas
mask m_r in [0, 1] and a prompt. Every view is denoised once per prompt layer whose mask it overlaps, and that
layer's mask multiplies the view's weights w_i, so x_{t-1} = sum_{r,i} m_r w_i mu^{(r,i)} / sum_{r,i} m_r w_i
(plus the noise, corrected by sqrt(sum (m_r w_i)^2) for VCF/GVCF). The base prompt is layer 0, with weight
1 - sum_r m_r (clamped to [0, 1]): it fills what the regions leave uncovered. MultiDiffusion's "bootstrapping"
(a region's early steps over a random flat background) is not done.
"""
from __future__ import annotations

import numpy as np
import torch

from .checks import is_int


def check_regions(regions) -> list[tuple[np.ndarray, str]]:
    """None or [(mask, prompt), ...] as [(float64 (H, W) mask in [0, 1], prompt)]; ValueError naming regions[k]
    for a mask that is not 2-D, not finite, outside [0, 1] or all zero, or a prompt that is not a string."""
    if regions is None:
        return []
    if not isinstance(regions, (list, tuple)):
        raise ValueError(f"regions must be None or a list of (mask, prompt) pairs, got {type(regions).__name__}")
    out = []
    for k, region in enumerate(regions):
        if not isinstance(region, (list, tuple)) or len(region) != 2:
            raise ValueError(f"regions[{k}] must be a (mask, prompt) pair, got {region!r:.80}")
        mask, prompt = region
        if not isinstance(prompt, str):
            raise ValueError(f"regions[{k}]'s prompt must be a string, got {type(prompt).__name__}")
        if isinstance(mask, torch.Tensor):
            mask = mask.detach().cpu().numpy()
        mask = np.asarray(mask)
        if mask.dtype == bool:
            mask = mask.astype(np.float64)
        if mask.ndim != 2 or not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
            raise ValueError(f"regions[{k}]'s mask must be a 2-D (height, width) array of real numbers in [0, 1], "
                             f"got {mask.dtype} of shape {mask.shape}")
        mask = mask.astype(np.float64)
        if not np.isfinite(mask).all():
            raise ValueError(f"regions[{k}]'s mask must be finite (it has NaN or inf)")
        if mask.min() < 0 or mask.max() > 1:
            raise ValueError(f"regions[{k}]'s mask must lie in [0, 1], got [{mask.min():g}, {mask.max():g}]")
        if not mask.any():
            raise ValueError(f"regions[{k}]'s mask is empty (all zero): it would draw nothing")
        out.append((mask, prompt))
    return out


def layer_masks(regions, height: int, width: int, factor: int) -> torch.Tensor:
    """(1 + R, height / factor, width / factor) latent weights of the prompt layers: the base prompt's
    1 - sum_r m_r (clamped to [0, 1]), then each region's mask m_r, averaged over each latent pixel's
    factor x factor image pixels. regions: check_regions' list; ValueError if a mask is not (height, width)."""
    for k, (mask, _) in enumerate(regions):
        if mask.shape != (height, width):
            raise ValueError(f"regions[{k}]'s mask must be canvas-sized (height, width) = {(height, width)} pixels, "
                             f"got {mask.shape}")
    masks = torch.from_numpy(np.stack([m for m, _ in regions]))[:, None]
    masks = torch.nn.functional.avg_pool2d(masks, factor)[:, 0].float()
    base = (1 - masks.sum(0, keepdim=True)).clamp(0, 1)
    return torch.cat([base, masks])


def strip_mask(height: int, width: int, start: int, stop: int, ramp: int = 0) -> np.ndarray:
    """A (height, width) mask of the columns [start, stop) in pixels: 1 inside, falling linearly to 0 over `ramp`
    pixels past each edge inside the canvas (a soft border between two regions)."""
    for name, value in (("height", height), ("width", width), ("ramp", ramp)):   # pixels; YAML's true is no count
        if not is_int(value) or value < 0 or (value == 0 and name != "ramp"):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'ramp' else 'positive'} int (pixels), "
                             f"got {value!r}")
    if not (is_int(start) and is_int(stop) and 0 <= start < stop <= width):
        raise ValueError(f"start and stop must be ints (pixels) with 0 <= start < stop <= width {width}, got "
                         f"{start!r}, {stop!r}")
    x = np.arange(width) + 0.5
    outside = np.maximum(start - x, x - stop).clip(min=0)   # distance past the strip, in pixels
    row = (1 - outside / ramp).clip(0, 1) if ramp else (outside == 0).astype(np.float64)
    return np.broadcast_to(row, (height, width)).copy()
