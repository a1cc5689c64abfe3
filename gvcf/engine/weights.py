"""Per-view weight maps w_i for fusion: uniform (MultiDiffusion), guided (paper Fig. 2), Gaussian."""
from __future__ import annotations

import math

import torch

# A guided map is 0 at the exact corners; pixel centres never reach them, but a floor keeps every
# covered canvas pixel at a positive total weight whatever the window (the reference code's map is 0
# at a corner pixel, which zeroes the canvas corner).
WEIGHT_FLOOR = 1e-3
GAUSSIAN_SIGMA = 0.5  # Mixture of Diffusers' default: std of 0.5 x half the window (in units of half-size)


def _centred_grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates, 0 at the window centre, in pixels."""
    y = torch.arange(h, dtype=torch.float64) + 0.5 - h / 2
    x = torch.arange(w, dtype=torch.float64) + 0.5 - w / 2
    return torch.meshgrid(y, x, indexing="ij")


def uniform(h: int, w: int) -> torch.Tensor:
    """MultiDiffusion: every view weighs 1 everywhere."""
    return torch.ones(h, w)


def guided(h: int, w: int, floor: float = WEIGHT_FLOOR) -> torch.Tensor:
    """Guided Fusion map (Fig. 2): 1 at the centre, falling linearly with distance to 0 at the corners."""
    y, x = _centred_grid(h, w)
    d = torch.sqrt(y**2 + x**2) / math.hypot(h / 2, w / 2)
    return (1 - d).clamp(min=floor).float()


def gaussian(h: int, w: int, sigma: float = GAUSSIAN_SIGMA, floor: float = WEIGHT_FLOOR) -> torch.Tensor:
    """Mixture of Diffusers: an isotropic Gaussian centred on the view, sigma in units of the half-size."""
    y, x = _centred_grid(h, w)
    g = torch.exp(-0.5 * ((y / (sigma * h / 2)) ** 2 + (x / (sigma * w / 2)) ** 2))
    return g.clamp(min=floor).float()


WEIGHT_MAPS = {"uniform": uniform, "guided": guided, "gaussian": gaussian}


def weight_map(name: str, h: int, w: int) -> torch.Tensor:
    """The named (h, w) weight map."""
    if name not in WEIGHT_MAPS:
        raise ValueError(f"weights must be one of {sorted(WEIGHT_MAPS)}, got {name!r}")
    return WEIGHT_MAPS[name](h, w)
