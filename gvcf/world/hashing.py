"""Hashed integer lattices and value noise: every random choice of the world is a hash of the scene's seed, a salt
and integer coordinates, so any pixel can be computed on its own and a panorama has no seams."""
from __future__ import annotations

import numpy as np

F = np.float32
M1, M2, GOLD = np.uint32(0x7FEB352D), np.uint32(0x846CA68B), np.uint32(0x9E3779B9)


def _u32(k) -> np.ndarray:
    k = np.asarray(k)
    return k if k.dtype == np.uint32 else k.astype(np.int64).astype(np.uint32)


def mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> 16)
    h = h * M1
    h = h ^ (h >> 15)
    h = h * M2
    return h ^ (h >> 16)


def hash_keys(*keys) -> np.ndarray:
    """uint32 hash of integer keys (broadcast)."""
    with np.errstate(over="ignore"):
        h = np.uint32(0x2545F491)
        for k in keys:
            h = mix(h + _u32(k) * GOLD)
        return h


def unit_float(h: np.ndarray) -> np.ndarray:
    return (h >> 8).astype(F) * F(2.0 ** -24)


def sub_uniform(h: np.ndarray, i: int) -> np.ndarray:
    """i-th independent uniform derived from a hash."""
    with np.errstate(over="ignore"):
        return unit_float(mix(h + np.uint32(i + 1) * GOLD))


def value_noise(seed, x: np.ndarray, salt: int, smooth: bool = True) -> np.ndarray:
    """1-D value noise in [0, 1] at float64 positions x (smoothstep or piecewise linear)."""
    i = np.floor(x)
    t = (x - i).astype(F)
    i = i.astype(np.int64)
    a, b = unit_float(hash_keys(seed, salt, i)), unit_float(hash_keys(seed, salt, i + 1))
    return a + (b - a) * (t * t * (3 - 2 * t) if smooth else t)

