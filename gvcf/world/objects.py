"""The objects scenes are made of: buildings with windows, pines and round trees, palms, street lamps, clouds and
skiers, each one per cell of a hashed lattice along the panorama."""
from __future__ import annotations

import numpy as np

from .canvas import rgb_array
from .hashing import F, GOLD, M1, mix, sub_uniform, unit_float
from .palette import SNOW, WINDOW_LIT


def buildings(c, salt, base, cell, hmin, hmax, color, lit_p, glass, presence=1.0, win=1 / 32):
    """Skyline blocks standing on v = base, each with a seeded grid of lit/unlit windows."""
    k, fx, h = c.cells(cell, salt)
    width = 0.55 + 0.4 * sub_uniform(h, 0)
    roof = base - (hmin + (hmax - hmin) * sub_uniform(h, 1) ** 1.5 * (1 + (sub_uniform(h, 3) > 0.9)))
    inside = (np.abs(fx - 0.5) < width / 2) & (sub_uniform(h, 2) < presence)
    mask = inside & (c.v > roof)
    c.paint(mask, color)
    lx = (fx - 0.5 + width / 2) * cell / win
    ci = np.floor(lx)
    wy = (c.v - roof) / F(win)
    rj = np.floor(wy)
    wmask = mask & ((lx - ci) < 0.5) & ((wy - rj) >= 0.5) & (rj >= 1) & (lx < width * cell / win - 1)
    with np.errstate(over="ignore"):
        on = unit_float(mix(h + ci.astype(np.uint32) * GOLD + rj.astype(np.uint32) * M1)) < lit_p
    c.paint(wmask & on, rgb_array(WINDOW_LIT))
    c.paint(wmask & ~on, glass)


def trees(c, salt, cell, ground, hmin, hmax, color, presence=1.0, kind="pine", trunk=None, outline=None):
    """Pines (tiered triangles) or round trees, one per cell, standing on the surface ground(x)."""
    k, fx, h = c.cells(cell, salt)
    cxf = 0.5 + 0.25 * (sub_uniform(h, 0) - 0.5)
    cx = (k + cxf) * cell
    hgt = hmin + (hmax - hmin) * sub_uniform(h, 1)
    gy = ground(cx)
    du = np.abs(c.u64 - cx).astype(F)
    present = sub_uniform(h, 2) < presence
    halfw = np.minimum(hgt * 0.3, (0.5 - np.abs(cxf - 0.5)) * cell)
    if kind == "pine":
        t = (c.v - (gy - hgt)) / hgt
        tier = 0.55 + 0.45 * (t * 3 - np.floor(t * 3))
        m = present & (t > 0) & (t < 1) & (du < halfw * t * tier + 0.3 * c.px)
        c.paint(m | (present & (du < 0.4 * c.px + hgt * 0.03) & (t >= 1) & (t < 1.08)), color)
        return
    r = np.minimum(hgt * 0.4, halfw * 1.6)
    dv = c.v - (gy - hgt + r)
    d2 = du * du + dv * dv
    tr = present & (du < max(0.6 * c.px, 0.012)) & (dv > 0) & (c.v < gy)
    if outline is not None:
        c.paint(present & (d2 < (r + c.px) ** 2) | tr & (du < max(0.6 * c.px, 0.012) + c.px), outline)
    c.paint(tr, trunk)
    c.paint(present & (d2 < r * r), color)


def palms(c, salt, cell, ground, hmin, hmax, presence, trunk, frond):
    """Leaning palm trees: curved trunk plus drooping fronds (curves in x), one per cell."""
    k, fx, h = c.cells(cell, salt)
    present = sub_uniform(h, 0) < presence
    cx = (k + 0.4 + 0.2 * sub_uniform(h, 1)) * cell
    hgt = hmin + (hmax - hmin) * sub_uniform(h, 2)
    lean = (sub_uniform(h, 3) - 0.5) * 0.3 * hgt
    gy = ground + 0.04 * (sub_uniform(h, 4) - 0.5)
    du = (c.u64 - cx).astype(F)
    t = (gy - c.v) / hgt
    tw = max(0.6 * c.px, 0.012) + 0.006 * (1 - t)
    m = present & (t >= 0) & (t <= 1) & (np.abs(du - lean * t * t) < tw)
    c.paint(m, trunk)
    dx, top = du - lean, gy - hgt
    fm = np.zeros_like(m)
    for j, (side, lift, droop) in enumerate(((1, 0.7, 1.6), (1, 0.1, 1.1), (1, -0.5, 0.6),
                                             (-1, 0.8, 1.7), (-1, 0.05, 1.2), (-1, -0.5, 0.5))):
        L = hgt * (0.38 + 0.12 * sub_uniform(h, 5 + j))
        q = side * dx / L
        yc = top - L * (lift * q - droop * q * q)
        slope = np.abs(lift - 2 * droop * q)
        thick = (0.5 * c.px + 0.018 * hgt * (1 - q)) * np.sqrt(1 + slope * slope)
        fm |= (q > 0) & (q < 1) & (np.abs(c.v - yc) < thick)
    c.paint(fm & present, frond)


def lamps(c, salt, cell, base, hgt, pole, lamp, glow, presence=1.0):
    """Street lamps: thin pole, bright head, halo scaled by `glow` (per scene)."""
    k, fx, h = c.cells(cell, salt)
    present = sub_uniform(h, 0) < presence
    du = ((fx - 0.45 - 0.1 * sub_uniform(h, 1)) * cell)
    top = base - hgt
    c.paint(present & (np.abs(du) < max(0.5 * c.px, 0.008)) & (c.v > top) & (c.v < base), pole)
    d2 = du * du + (c.v - top) ** 2
    c.blend(present * np.exp(-d2 / F(0.012)) * glow * 0.7, lamp)
    c.paint(present & (d2 < max(c.px, 0.018) ** 2), lamp)


def clouds(c, salt, cell, vlo, vhi, size, presence, color, shade, tall=0.9):
    """Puffy clouds: bumpy top profile over a flat base, shaded bottom half."""
    k, fx, h = c.cells(cell, salt)
    present = sub_uniform(h, 0) < presence
    half = size * (0.6 + 0.4 * sub_uniform(h, 1))
    x = (fx - 0.5) * cell / half
    base = vlo + (vhi - vlo) * sub_uniform(h, 2)
    prof = np.zeros_like(x)
    for j, (bx, br) in enumerate(((-0.5, 0.45), (0.0, 0.6), (0.45, 0.5), (0.75, 0.28))):
        r = br * (0.8 + 0.4 * sub_uniform(h, 3 + j))
        prof = np.maximum(prof, np.sqrt(np.clip(1 - ((x - bx) / r) ** 2, 0, 1)) * r)
    topv = base - prof * half * tall
    inside = present & (np.abs(x) < 1) & (c.v > topv) & (c.v < base)
    c.paint(inside, color)
    c.paint(inside & (c.v > (topv + base) / 2 + 0.25 * (base - topv)), shade)


def skiers(c, salt, cell, surface, depth, presence, scale):
    """Small skiers (jacket, dark head, skis) standing on the slope below `surface`."""
    k, fx, h = c.cells(cell, salt)
    present = sub_uniform(h, 0) < presence
    cx = (k + 0.3 + 0.4 * sub_uniform(h, 1)) * cell
    foot = surface(cx) + depth * (0.15 + 0.85 * sub_uniform(h, 2))
    s = scale * (0.7 + 0.6 * sub_uniform(h, 2))
    du = (c.u64 - cx).astype(F)
    bw = np.maximum(0.008 * s, 0.5 * c.px)
    body = present & (np.abs(du) < bw) & (c.v > foot - 0.05 * s) & (c.v < foot)
    jackets = np.asarray(SNOW["jackets"], F).T / 255
    jk = jackets[:, (sub_uniform(h, 3) * jackets.shape[1]).astype(np.int64)] * c.light
    c.paint(body & (c.v < foot - 0.02 * s), jk)
    c.paint(body & (c.v >= foot - 0.02 * s) | present & (np.abs(du) < bw) & (c.v > foot - 0.065 * s)
            & (c.v < foot - 0.05 * s) | present & (np.abs(du - 0.01 * s) < 0.03 * s)
            & (np.abs(c.v - foot) < 0.5 * c.px), c.lit(SNOW["gear"]))

