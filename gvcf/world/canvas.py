"""The canvas: a batch of same-family scenes on a (B, H, W) pixel grid in absolute coordinates, and its drawing
primitives (sky, ridgelines, fills, dots and stars, the sun or moon, reflections in water)."""
from __future__ import annotations

import numpy as np

from .hashing import F, GOLD, hash_keys, mix, unit_float, value_noise
from .palette import DARKNESS, FAMILY_SKY, LIGHT, SKY, STAR, SUN, SUN_ELEVATION

SUN_PERIOD = 9.0             # one sun/moon every SUN_PERIOD heights of panorama


def rgb_array(rgb) -> np.ndarray:
    """Constant colour as a channel-first (3, 1, 1, 1) float array in 0..1."""
    return np.asarray(rgb, F).reshape(3, 1, 1, 1) / 255



class Canvas:
    """Batch of same-family scenes on a (B, H, W) pixel grid plus drawing primitives."""

    def __init__(self, scenes, offsets, width: int, height: int):
        b = len(scenes)
        self.b, self.h, self.w, self.px = b, height, width, 1.0 / height
        self.seed = np.array([s.seed % 2 ** 32 for s in scenes], np.uint32).reshape(b, 1, 1)
        self.col = np.asarray(offsets, np.int64).reshape(b, 1, 1) + np.arange(width)
        self.u64 = (self.col + 0.5) / height                        # (B, 1, W) absolute x
        self.u = self.u64.astype(F)
        self.row = np.arange(height).reshape(1, height, 1)
        self.v = ((self.row + 0.5) / height).astype(F)              # (1, H, 1)
        self.times = [s.time for s in scenes]
        self.dark = self.per_time(DARKNESS)
        self.light = self.per_time(LIGHT)
        self.density = np.array([s.density for s in scenes], F).reshape(b, 1, 1)
        self.rough = np.array([s.roughness for s in scenes], F).reshape(b, 1, 1)
        sky = FAMILY_SKY.get(scenes[0].family, {})
        stops = np.array([sky.get(t, SKY[t]) for t in self.times], F) / 255
        self.top, self.mid, self.hz = (stops[:, i].T.reshape(3, b, 1, 1) for i in range(3))
        self.img = np.zeros((3, b, height, width), F)   # channel-first: fast broadcasting

    def per_time(self, table) -> np.ndarray:
        a = np.array([table[t] for t in self.times], F)
        return a.reshape(self.b, 1, 1) if a.ndim == 1 else a.T.reshape(-1, self.b, 1, 1)

    def rand(self, salt: int) -> np.ndarray:
        return unit_float(hash_keys(self.seed, salt))

    def lit(self, rgb, amount=1.0) -> np.ndarray:
        """Per-scene colour of a surface under the scene's light (amount 0 = emissive)."""
        return rgb_array(rgb) * (1 - amount + amount * self.light)

    def cells(self, cell, salt: int):
        """Lattice of width `cell`: cell index, position in cell (0..1), per-cell hash; all (B, 1, W)."""
        x = self.u64 / cell
        k = np.floor(x)
        return k.astype(np.int64), (x - k).astype(F), hash_keys(self.seed, salt, k.astype(np.int64))

    def paint(self, mask, color) -> None:
        np.copyto(self.img, color, where=mask)

    def blend(self, alpha, color) -> None:
        self.img += alpha * (color - self.img)

    def fill(self, top, color, outline=None) -> None:
        """Fill below the surface v = top(u) with antialiased edge and optional 1 px outline."""
        self.blend(np.clip((self.v - top) * self.h + 0.5, 0, 1), color)
        if outline is not None:
            self.paint(np.abs(self.v - top - 0.5 * self.px) < 0.75 * self.px, outline)

    def sky(self, horizon: float, bands: int = 0, mid: float = 0.55) -> None:
        t = np.clip(self.v / horizon, 0, 1)
        if bands:
            t = np.floor(t * bands) / bands
        c = self.top + (self.mid - self.top) * np.clip(t / mid, 0, 1) \
            + (self.hz - self.mid) * np.clip((t - mid) / (1 - mid), 0, 1)
        self.img = np.ascontiguousarray(np.broadcast_to(c, self.img.shape))

    def ridge(self, salt, base, amp, freq, octaves=4, sharp=False, x=None) -> np.ndarray:
        """Surface v(u) = base - amp * (2 fbm - 1); roughness boosts the high octaves."""
        x = self.u64 if x is None else x
        gain = 0.35 + 0.3 * self.rough
        total, norm, a = 0.0, 0.0, 1.0
        for o in range(octaves):
            total = total + a * value_noise(self.seed, x * (freq * 2.1 ** o) + 11.7 * o, salt * 8 + o, not sharp)
            norm, a = norm + a, a * gain
        return (base - amp * (2 * total / norm - 1)).astype(F)

    def waves(self, salt, base, amp, freq, x=None) -> np.ndarray:
        """Gentle rolling surface from two seeded sinusoids."""
        x = self.u64 if x is None else x
        p1, p2 = self.rand(salt) * 6.283, self.rand(salt + 1) * 6.283
        return (base - amp * (0.6 * np.sin(x * freq + p1) + 0.4 * np.sin(x * freq * 2.3 + p2))).astype(F)

    def lattice(self, salt, cell):
        """Per-pixel hash of a 2-D lattice with cell size `cell`, plus position inside the cell."""
        x, y = self.u64 / cell, self.v / F(cell)
        cu, cv = np.floor(x), np.floor(y)
        with np.errstate(over="ignore"):
            hh = mix(hash_keys(self.seed, salt, cu.astype(np.int64)) + cv.astype(np.uint32) * GOLD)
        return hh, (x - cu).astype(F), y - cv

    def dots(self, salt, cell, presence, region, size=0.0):
        """Mask of small seeded dots (one per occupied lattice cell) inside `region`, and their hash."""
        hh, fu, fv = self.lattice(salt, cell)
        r = max(size, 0.5 * self.px) / cell
        jx = ((hh >> 8) & 255).astype(F) * F(0.6 / 255) + F(0.2)
        jy = ((hh >> 16) & 255).astype(F) * F(0.6 / 255) + F(0.2)
        m = ((hh & 255).astype(F) < presence * 256) & (np.abs(fu - jx) < r) & (np.abs(fv - jy) < r) & region
        return m, hh

    def stars(self, salt, vmax, alpha, cell=0.05, presence=0.35, color=STAR) -> None:
        m, hh = self.dots(salt, cell, presence, self.v < vmax)
        bright = (hh >> 24).astype(F) * F(1 / 255)
        self.blend(m * (alpha * (0.35 + 0.65 * bright)), rgb_array(color))

    def celestial(self, horizon, salt=3, visible=1.0, crescent=False) -> None:
        """Sun (day/sunset), glow (twilight) or moon (night), once per SUN_PERIOD of panorama."""
        cv = self.per_time({t: horizon - SUN_ELEVATION[t] if s[0] is None else s[0] for t, s in SUN.items()})
        rad, disc, glow, gr, ga = (self.per_time({t: s[i] for t, s in SUN.items()}) for i in range(1, 6))
        disc, glow, ga = disc / 255, glow / 255, ga * visible
        ph = self.rand(salt).astype(np.float64) * SUN_PERIOD
        du = ((self.u64 - ph) % SUN_PERIOD - SUN_PERIOD / 2).astype(F)
        dv = self.v - cv
        d2 = du * du + dv * dv
        self.img += np.exp(-d2 / (gr * gr)) * ga * glow
        m = (d2 < rad * rad) & (self.v < horizon)
        if crescent:
            m &= (du + 0.4 * rad) ** 2 + (dv + 0.2 * rad) ** 2 > rad * rad
        self.paint(m & (visible > 0), disc)

    def reflect(self, horizon, water, mix, ripple=1.0) -> None:
        """Mirror rows above the horizon row into the water below it, with perspective ripples."""
        r0 = int(round(horizon * self.h))
        if r0 >= self.h or r0 < 1:
            return
        rows = np.arange(r0, self.h).reshape(1, -1, 1)
        d = ((rows - r0 + 0.5) / self.h).astype(F)
        phase = F(0.9) / (d + F(0.03)) * 10 + 5 * value_noise(self.seed, self.u64 * 7.0, 99)
        wave = np.sin(phase)
        src = np.clip(2 * r0 - 1 - rows + np.rint(wave * ripple * (0.01 + 0.06 * d) * self.h).astype(np.int64),
                      0, r0 - 1)
        refl = self.img[:, np.arange(self.b).reshape(-1, 1, 1), src, np.arange(self.w).reshape(1, 1, -1)]
        refl *= 0.82 + 0.18 * wave
        self.img[:, :, r0:] = water + (refl - water) * mix

