"""One fusion formula for MultiDiffusion, Guided Fusion, VCF and GVCF (paper Eq. 8 and Eq. 14).

Each view i proposes x_{t-1}^{(i)} = mu_t^{(i)} + sigma_t z^{(i)}. With W = sum_i w_i, Eq. 14 reads

    x_{t-1} = sum_i w_i x^{(i)} / sqrt(sum_i w_i^2) + (1 - W / sqrt(sum_i w_i^2)) sum_i w_i mu^{(i)} / W
            = sum_i w_i mu^{(i)} / W  +  sum_i w_i sigma_t z^{(i)} / sqrt(sum_i w_i^2),

so the fused mean is the weighted average (Eq. 8) and the noise keeps its variance sigma_t^2.
Without the correction the noise is averaged like the mean and its variance shrinks (Eq. 11).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .views import ViewLayout


@dataclass(frozen=True)
class FusionMethod:
    """The two switches: which weight map, and whether the noise variance is corrected; and its names (the one place
    a fusion is named: the paper's abbreviation and the full name)."""

    weights: str
    correct_variance: bool
    abbreviation: str
    full_name: str

    @property
    def label(self) -> str:
        """'Guided Fusion (GF)'."""
        return f"{self.full_name} ({self.abbreviation})"


FUSIONS = {
    "md": FusionMethod("uniform", False, "MD", "MultiDiffusion"),                        # Eq. 5
    "gf": FusionMethod("guided", False, "GF", "Guided Fusion"),                          # Eq. 8
    "vcf": FusionMethod("uniform", True, "VCF", "Variance-Corrected Fusion"),            # Eq. 13
    "gvcf": FusionMethod("guided", True, "GVCF", "Guided Variance-Corrected Fusion"),    # Eq. 14
}


def fusion_method(name: str) -> FusionMethod:
    if name not in FUSIONS:
        raise ValueError(f"fusion must be one of {sorted(FUSIONS)}, got {name!r}")
    return FUSIONS[name]


@dataclass(frozen=True)
class FusionPlan:
    """Everything about fusion that does not change between steps: layout, index, weights and their sums.

    Its views are the layout's, or with prompt layers (gvcf.engine.regions) one per (layer, view) that the layer's
    mask overlaps, layer by layer: layers[p] is view p's layer, its weights w_i times the mask."""

    layout: ViewLayout
    index: torch.Tensor          # (P, wh, ww) flat canvas indices
    weights: torch.Tensor        # (P, 1, wh, ww) w_i (times the layer's mask)
    weight_sum: torch.Tensor     # (1, 1, H, W) W = sum_i w_i
    weight_norm: torch.Tensor    # (1, 1, H, W) sqrt(sum_i w_i^2)
    layers: tuple = ()           # (P,) the prompt layer of each view; () without layers

    @classmethod
    def create(cls, layout: ViewLayout, weight_map: torch.Tensor, device=None,
               masks: torch.Tensor | None = None) -> "FusionPlan":
        """masks: None, or (L, H, W) latent weights of L prompt layers (regions.layer_masks)."""
        index = layout.flat_index(device)
        w = weight_map.to(device=device, dtype=torch.float32).expand(len(layout), 1, *layout.window).contiguous()
        layers = ()
        if masks is not None:
            m = masks.to(device=device, dtype=torch.float32).reshape(len(masks), -1)[:, index]   # (L, V, wh, ww)
            layer, view = (m.flatten(2).amax(-1) > 0).nonzero(as_tuple=True)   # layer-major, views in order
            index, w, layers = index[view], w[view] * m[layer, view][:, None], tuple(layer.tolist())
        return cls(layout, index, w, layout.scatter_add(w, index), layout.scatter_add(w * w, index).sqrt(), layers)

    def __len__(self) -> int:
        return self.index.shape[0]


def fuse(means: torch.Tensor, noises: torch.Tensor | None, plan: FusionPlan, correct_variance: bool) -> torch.Tensor:
    """Fuse per-view means mu^{(i)} and noises sigma z^{(i)}, each (V, C, wh, ww), into x_{t-1} on the canvas (Eq. 14)."""
    w = plan.weights.to(means.dtype)
    x = plan.layout.scatter_add(w * means, plan.index) / plan.weight_sum
    if noises is not None:
        norm = plan.weight_norm if correct_variance else plan.weight_sum
        x = x + plan.layout.scatter_add(w * noises, plan.index) / norm
    return x
