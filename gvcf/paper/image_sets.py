"""An image set's files and images, in (prompt, k) order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..eval import datasets
from ..eval.datasets import DatasetConfig
from ..eval.inception import load_image


def image_paths(cfg: DatasetConfig) -> list[Path]:
    cache = datasets.ResultCache(cfg.output)
    return [cache.path_for(item) for item in cfg.items()]


def images(cfg: DatasetConfig, limit: int | None = None) -> list[np.ndarray]:
    """The set's images as uint8 arrays, in (prompt, k) order (the first `limit`)."""
    return [load_image(p) for p in image_paths(cfg)[:limit]]


def prompt_of(cfg: DatasetConfig) -> list[str]:
    return [item["prompt"] for item in cfg.items()]


def image_of(cfg: DatasetConfig, prompt: str, k: int = 0) -> Path:
    """The file of a set's k-th panorama of `prompt`."""
    found = [p for p, item in zip(image_paths(cfg), cfg.items()) if item["prompt"] == prompt]
    if not 0 <= k < len(found):
        raise ValueError(f"prompt {prompt!r} has {len(found)} panorama(s) in this set, not a k = {k}")
    return found[k]
