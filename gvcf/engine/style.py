"""One-shot Style Alignment (paper Eq. 15): slerp each non-overlapping crop of x_T toward a reference noise."""
from __future__ import annotations

import torch

from .checks import is_number

_PARALLEL_EPS = 1e-7  # below this angle (radians) slerp degenerates to lerp


def slerp(a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """Spherical linear interpolation (Shoemake 1985) from a (alpha = 0) to b (alpha = 1), over all elements."""
    a64, b64 = a.double(), b.double()
    cos = (a64 * b64).sum() / (a64.norm() * b64.norm())
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if theta.abs() < _PARALLEL_EPS:
        return torch.lerp(a64, b64, alpha).to(a.dtype)
    s = torch.sin(theta)
    return (torch.sin((1 - alpha) * theta) / s * a64 + torch.sin(alpha * theta) / s * b64).to(a.dtype)


def check_alpha(alpha: float) -> float:
    """alpha as a float in [0, 1] (NaN and bools refused), or ValueError naming it."""
    if not is_number(alpha) or not 0.0 <= alpha <= 1.0:   # NaN fails too
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return float(alpha)


def align_noise(noise: torch.Tensor, reference: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. 15: x_T^{(i)} := slerp(x_T^{(i)}, z_ref, alpha) for each non-overlapping crop x_T^{(i)} of the canvas.

    noise is (1, C, H, W); reference is (1, C, h, w), the crop size. Crops tile the canvas from the top-left;
    where H or W is not a multiple of the crop, the remainder crops are slerped toward the matching
    top-left part of the reference.
    """
    alpha = check_alpha(alpha)
    if reference.dim() != 4 or reference.shape[:2] != noise.shape[:2]:
        raise ValueError(f"reference_noise must be (1, {noise.shape[1]}, h, w), got {tuple(reference.shape)}")
    if alpha == 0.0:
        return noise.clone()
    h, w = reference.shape[-2:]
    out = noise.clone()
    for top in range(0, noise.shape[-2], h):
        for left in range(0, noise.shape[-1], w):
            crop = noise[..., top:top + h, left:left + w]
            ref = reference[..., : crop.shape[-2], : crop.shape[-1]].to(noise.device)
            out[..., top:top + h, left:left + w] = slerp(crop, ref, alpha)
    return out
