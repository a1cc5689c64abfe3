"""The paper's metric row of an image set: its panoramas cut into native tiles, their Inception features (cached per
set, one file per folder and mode), FID, KID, GIQA and CLIP.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..engine.stages import stage
from ..eval import datasets, metrics
from ..eval.datasets import DatasetConfig
from ..eval.inception import load_image
from .image_sets import image_paths, prompt_of


FEATURES_FILE = "features-tiles{size}-{mode}.npz"


_INCEPTION: dict = {}   # one Inception network per device for the kernel (module state, as chapter_setup._MODELS)


def inception(device: str = "cpu"):
    """One InceptionFeatures per device, shared by every metric row of the kernel."""
    from ..eval.inception import InceptionFeatures

    device = str(device)
    if device not in _INCEPTION:
        _INCEPTION[device] = InceptionFeatures(device=device)
    return _INCEPTION[device]


class Tiles(Sequence):
    """The native-size tiles of a list of panorama files (or arrays), loaded lazily and in order: tile j of image i
    is metrics.crops(image i, size)[j]. Slicing loads only the images it needs (paper-size sets never sit in memory)."""

    def __init__(self, images: Sequence, size: int):
        self.images, self.size = list(images), int(size)
        self.index = []
        for i, im in enumerate(self.images):
            h, w = _image_size(im)
            self.index += [(i, j) for j in range((h // self.size) * (w // self.size))]
        self._cached = (None, None)

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, i: int) -> list[np.ndarray]:
        if self._cached[0] != i:
            self._cached = (i, metrics.crops(load_image(self.images[i]), self.size))
        return self._cached[1]

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        i, j = self.index[k]
        return self._load(i)[j]

    def counts(self) -> list[int]:
        out = [0] * len(self.images)
        for i, _ in self.index:
            out[i] += 1
        return out


def _image_size(image) -> tuple[int, int]:
    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        with Image.open(image) as im:
            return im.size[1], im.size[0]
    a = np.asarray(image)
    return a.shape[0], a.shape[1]


def cached_features(images: Sequence, size: int, caches: dict, device: str) -> dict[str, np.ndarray]:
    """{mode: Inception features of every native tile of `images` (files or arrays)} for the modes of `caches`
    ({mode: .npz path or None}), each image decoded once for all modes. With cache paths and file images, features
    are stored per file name and only files missing from a cache are computed."""
    modes = tuple(caches)
    named = all(c is not None for c in caches.values()) and all(isinstance(im, (str, os.PathLike)) for im in images)
    stores = {m: datasets.load_named_features(caches[m]) if named else {} for m in modes}
    names = [Path(im).name for im in images] if named else []
    todo = [im for im, n in zip(images, names) if any(n not in stores[m] for m in modes)] if named else list(images)
    if todo:
        tiles = Tiles(todo, size)
        feats = inception(device).extract(tiles, modes) if len(tiles) else \
            {m: np.zeros((0, 2048), np.float32) for m in modes}
        if not named:
            return feats
        starts = np.concatenate([[0], np.cumsum(tiles.counts())])
        for m in modes:
            for i, im in enumerate(todo):
                stores[m][Path(im).name] = feats[m][starts[i]:starts[i + 1]]
            try:
                datasets.save_named_features(caches[m], stores[m])
            except OSError:
                pass   # a read-only dataset folder: features are recomputed next time
    return {m: np.concatenate([stores[m][n] for n in names]) for m in modes}


@stage("metrics")
def feature_caches(cfg: DatasetConfig, native: int) -> dict[str, Path]:
    """{mode: file}: where a set's tile features (clean-fid's and pytorch-fid's) are cached, in its folder."""
    return {m: Path(cfg.output) / FEATURES_FILE.format(size=native, mode=m) for m in ("clean", "pytorch_fid")}


def metric_row(generated, reference, native: int, prompts=None, device: str = "cpu") -> dict:
    """The paper's metric row: panoramas cut into native tiles (metrics.crops), FID and KID (x1e3) on clean-fid
    features, GIQA-QS/DS on pytorch-fid features (K = min(3500, set sizes)), CLIP (None without local weights,
    clip_note says why).

    generated / reference: DatasetConfigs (features cached in the set's folder) or sequences of uint8 arrays.
    prompts: one per generated image, for CLIP (taken from the set when it is a DatasetConfig)."""
    sets = {}
    for name, value in (("generated", generated), ("reference", reference)):
        if isinstance(value, DatasetConfig):
            sets[name] = (image_paths(value), feature_caches(value, native))
            if name == "generated" and prompts is None:
                prompts = prompt_of(value)
        else:
            sets[name] = (list(value), {"clean": None, "pytorch_fid": None})
    feats = {(name, mode): f for name, (images, caches) in sets.items()
             for mode, f in cached_features(images, native, caches, device).items()}
    n_gen, n_ref = len(feats["generated", "clean"]), len(feats["reference", "clean"])
    if min(n_gen, n_ref) < 2:
        raise ValueError(f"need at least 2 generated tiles and 2 reference tiles, got {n_gen} and {n_ref}")
    row = metrics.scores(feats["generated", "clean"], feats["reference", "clean"], feats["generated", "pytorch_fid"],
                         feats["reference", "pytorch_fid"], device=device)
    clip, note = None, metrics.CLIP_UNAVAILABLE
    if prompts is not None and metrics.clip_available():
        tiles = Tiles(sets["generated"][0], native)
        per_image = tiles.counts()
        tile_prompts = [p for p, c in zip(prompts, per_image) for _ in range(c)]
        clip = metrics.clip_score(tiles, tile_prompts, device=device)
        note = ""
    return {k: (row | dict(clip=clip, clip_note=note))[k] for k in metrics.METRIC_ROW}
