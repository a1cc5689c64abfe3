"""Procedural panorama world: ten seeded scene families that are continuous in absolute x.

Every pixel is a function of its absolute coordinates (u, v) in units of the image height,
so a window of a wide render equals a render at that offset and panoramas have no seams.
Objects live on hashed integer lattices (object k owns cell k), ridgelines are value noise.
"""
# This module renders: views and panoramas through the camera, the datasets drawn from them, and a preview. The world
# itself: scene (families, times, Scene), palette, hashing, canvas, objects, families, captions; their public names
# are re-exported here (__all__), as they were when this one module held them all.
from __future__ import annotations

import argparse
import time as _time

import numpy as np

from ..engine.views import DEFAULT_WIDTH_VIEWS
from ..paper.constants import PAPER_PROMPTS   # one family per prompt, in this order
from .canvas import Canvas
from .captions import describe, parse_prompt, scene_for_prompt
from .families import PAINTERS
from .hashing import F
from .palette import N_PALETTES, PALETTE_JITTER, PALETTE_TINTS
from .scene import FAMILIES, PROMPT_TIME, TIMES, Scene, check_family_and_time, sample_scene

__all__ = ["BATCH", "CAMERA_BLUR", "FAMILIES", "PAPER_PROMPTS", "PROMPT_TIME", "TIMES", "VIEW_SPAN", "Scene",
           "describe", "main", "parse_prompt", "real_panoramas", "real_views", "render", "sample_scene",
           "sample_views", "scene_for_prompt"]

VIEW_SPAN = 40.0             # random view offsets cover this many heights of panorama
BATCH = 64                   # views rendered per vectorised batch
# The camera's optics: a Gaussian blur of this many pixels (at any height). Without it, hashed 1 px detail (stars,
# windows, flowers, grain) is white noise that no 4x autoencoder can store (48 values per 4 latents), and a
# photo has no such detail either. Rendered with a margin, so a window of a wide render is still exact.
CAMERA_BLUR = 0.8
_BLUR_RADIUS = 3


def _camera_blur(img: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur of (3, B, H, W + 2r) float images -> (3, B, H, W): the r-pixel side margins are
    consumed (they were rendered, so the result is exact at any offset); top and bottom edges are replicated."""
    r = _BLUR_RADIUS
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / CAMERA_BLUR) ** 2).astype(F)
    k /= k.sum()
    w = img.shape[-1] - 2 * r
    x = sum(k[i] * img[..., i:i + w] for i in range(2 * r + 1))
    h = x.shape[-2]
    x = np.concatenate([np.repeat(x[..., :1, :], r, axis=-2), x, np.repeat(x[..., -1:, :], r, axis=-2)], axis=-2)
    return sum(k[i] * x[..., i:i + h, :] for i in range(2 * r + 1))


def _render_batch(scenes, offsets, width: int, height: int) -> np.ndarray:
    """Render same-size views of possibly different scenes, vectorised per family."""
    out = np.empty((len(scenes), height, width, 3), np.uint8)
    offsets = np.asarray(offsets, np.int64) - _BLUR_RADIUS
    width += 2 * _BLUR_RADIUS          # side margins for the camera blur
    by_family: dict[str, list[int]] = {}
    for i, s in enumerate(scenes):
        by_family.setdefault(s.family, []).append(i)
    for fam, idx in by_family.items():
        for j in range(0, len(idx), BATCH):
            part = idx[j:j + BATCH]
            c = Canvas([scenes[i] for i in part], offsets[part], width, height)
            PAINTERS[fam](c)
            tint = np.array([PALETTE_TINTS[scenes[i].palette % N_PALETTES] for i in part], F)
            tint = tint.T.reshape(3, -1, 1, 1) * (1 + PALETTE_JITTER * (2 * np.stack(
                [c.rand(200 + ch) for ch in range(3)]) - 1))
            c.img *= tint
            img = _camera_blur(c.img)
            np.clip(img * 255 + 0.5, 0, 255, out=img)
            out[part] = img.transpose(1, 2, 3, 0)
    return out


def render(scene: Scene, width: int, height: int = 64, offset: int = 0) -> np.ndarray:
    """(height, width, 3) uint8 view of the scene's panorama starting at absolute pixel `offset`."""
    check_family_and_time(scene.family, scene.time)
    if int(width) <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if int(height) <= 0:
        raise ValueError(f"height must be positive, got {height}")
    return _render_batch([scene], [int(offset)], int(width), int(height))[0]



# ----------------------------------------------------------------------------- datasets
def sample_views(rng: np.random.Generator, n: int, size: int = 64):
    """n random square views: images (n, size, size, 3) uint8, captions, family indices (n,) int64."""
    scenes = [sample_scene(rng) for _ in range(n)]
    captions = [describe(s, rng) for s in scenes]
    offsets = rng.integers(0, int(VIEW_SPAN * size), n)
    fam = np.array([FAMILIES.index(s.family) for s in scenes], np.int64)
    return _render_batch(scenes, offsets, size, size), captions, fam


def real_views(prompt: str, n: int, seed: int = 0, size: int = 64) -> np.ndarray:
    """(n, size, size, 3) ground-truth views of random scenes matching `prompt`."""
    rng = np.random.default_rng(seed)
    scenes = [scene_for_prompt(prompt, rng) for _ in range(n)]
    return _render_batch(scenes, rng.integers(0, int(VIEW_SPAN * size), n), size, size)


def real_panoramas(prompt: str, n: int, width: int, seed: int = 0, height: int = 64) -> np.ndarray:
    """(n, height, width, 3) ground-truth panoramas of random scenes matching `prompt`."""
    if int(width) <= 0:
        raise ValueError(f"width must be positive, got {width}")
    rng = np.random.default_rng(seed)
    scenes = [scene_for_prompt(prompt, rng) for _ in range(n)]
    return _render_batch(scenes, rng.integers(0, int(VIEW_SPAN * height), n), int(width), int(height))


# ----------------------------------------------------------------------------- CLI
def _preview(path: str, seed: int = 0, height: int = 64) -> None:
    from PIL import Image
    rng, gap = np.random.default_rng(seed), 4
    rows = []
    for fam in FAMILIES:
        views = [render(sample_scene(rng, fam, t), height, height, int(rng.integers(VIEW_SPAN * height)))
                 for t in TIMES]
        pano = render(sample_scene(rng, fam, PROMPT_TIME[fam]), DEFAULT_WIDTH_VIEWS * height, height)
        sep = np.full((height, gap, 3), 255, np.uint8)
        rows.append(np.concatenate(sum(([v, sep] for v in views), []) + [pano], 1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    grid = np.concatenate(rows, 0)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench", action="store_true", help="print sample_views throughput")
    ap.add_argument("--preview", metavar="DIR", help="write DIR/world_preview.png")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.bench:
        rng = np.random.default_rng(args.seed)
        sample_views(rng, 64)
        t0 = _time.perf_counter()
        n = 2000
        sample_views(rng, n)
        print(f"sample_views: {n / (_time.perf_counter() - t0):.0f} views/s at 64x64")
    if args.preview:
        import os
        os.makedirs(args.preview, exist_ok=True)
        out = os.path.join(args.preview, "world_preview.png")
        _preview(out, args.seed)
        print(out)


if __name__ == "__main__":
    main()
