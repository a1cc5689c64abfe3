"""Coherence inside one panorama: SyncDiffusion's Intra-LPIPS and Intra-Style-L (Lee et al. 2023, Sec. 5).

Both cut the panorama into its non-overlapping native crops (metrics.crops: 7 of 512 px in 512 x 3584) and average a
distance over every pair of crops (lower = the crops look more alike = more coherent):
- Intra-LPIPS: LPIPS (VGG) between the two crops;
- Intra-Style-L: the style loss of Gatys et al., sum over layers l of mean_{c,c'} (G_l(a) - G_l(b))^2, with the
  Gram matrix G_l = F_l F_l^T / (C_l H_l W_l) of the feature maps F_l (C_l x H_l W_l).
The features are LPIPS's VGG16 (relu1_2 ... relu5_3, ImageNet weights from gvcf.engine.perceptual, one forward
pass for both metrics): absolute Style-L values are on this backbone's scale, comparisons between methods are not.
"""
from __future__ import annotations

import numpy as np
import torch

from ..engine.checks import is_int
from ..engine import perceptual
from ..engine.perceptual import feature_maps, lpips_from_features, unit_features
from .inception import UINT8_MAX, load_image
from .metrics import TILE_SIZE, crops

COHERENCE_METRICS = ("intra_lpips", "intra_style")
NET = "vgg"   # SyncDiffusion's Intra-LPIPS uses LPIPS-VGG


def _batch(panorama, size: int) -> torch.Tensor:
    """The panorama's crops as an (N, 3, size, size) batch in [-1, 1]; the panorama as every metric takes an image
    (inception.load_image: a uint8 (H, W, 3) array or tensor, a PIL image or a file path)."""
    if not is_int(size) or size < 1:
        raise ValueError(f"size must be a positive int (pixels), got {size!r}")
    try:
        image = load_image(panorama)
    except ValueError as error:   # a float image in [0, 255] read as [0, 1] scored Intra-Style-L 620,533
        raise ValueError(f"panorama must be a uint8 (H, W, 3) image: {error}") from None
    tiles = crops(image, size)
    if len(tiles) < 2:
        raise ValueError(f"panorama must hold at least 2 crops of size {size}, got {len(tiles)} "
                         f"(shape {image.shape})")
    x = np.stack(tiles).astype(np.float32) / UINT8_MAX
    return torch.from_numpy(x).permute(0, 3, 1, 2) * 2 - 1


def gram(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) feature maps -> (N, C, C) Gram matrices F F^T / (C H W) (Gatys et al.)."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


@torch.no_grad()
def coherence(panorama, size: int = TILE_SIZE, net=None, device="cpu") -> dict[str, float]:
    """{"intra_lpips", "intra_style"}: the mean LPIPS and style loss over all pairs of the panorama's size x size
    crops. net: an LPIPS-VGG module (default gvcf.engine.perceptual.load_lpips("vgg"), loaded here)."""
    if net is None:
        net = perceptual.load_lpips(NET, device=device)
    x = _batch(panorama, size).to(device)
    maps = feature_maps(net, x)                                    # LPIPS's five VGG16 stages, one pass for all crops
    i, j = torch.triu_indices(len(x), len(x), 1, device=x.device)  # every pair of crops
    units = unit_features(maps)
    lpips = lpips_from_features(net, [u[i] for u in units], [u[j] for u in units])
    style = sum((g[i] - g[j]).pow(2).mean(dim=(1, 2)) for g in (gram(f.float()) for f in maps))
    return {"intra_lpips": float(lpips.mean()), "intra_style": float(style.mean())}
