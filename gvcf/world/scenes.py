"""Procedural panorama world: ten seeded scene families that are continuous in absolute x.

Every pixel is a function of its absolute coordinates (u, v) in units of the image height,
so a window of a wide render equals a render at that offset and panoramas have no seams.
Objects live on hashed integer lattices (object k owns cell k), ridgelines are value noise.
"""
from __future__ import annotations

import argparse
import re
import time as _time
from dataclasses import dataclass

import numpy as np

from ..engine.views import DEFAULT_WIDTH_VIEWS
from ..paper.constants import PAPER_PROMPTS   # one family per prompt, in this order

FAMILIES = ("city_night", "mountain_twilight", "snowy_skiers", "cartoon_nature", "anime_landscape",
            "forest_brook", "lalaland_beach", "shooting_stars", "palm_beach", "beach_street_sunset")
TIMES = ("noon", "sunset", "twilight", "night")
# time of day each paper prompt implies (stated or, when unstated, the family's natural one)
PROMPT_TIME = dict(zip(FAMILIES, ("night", "twilight", "noon", "noon", "noon",
                                  "noon", "twilight", "night", "noon", "sunset")))

PROMPT_TIME_PROB = 0.55      # P(scene time == the prompt's time); the rest is uniform over others
VERBATIM_PROB = 0.55         # P(caption == paper prompt | time matches): ~30% of all captions
N_PALETTES = 3
PALETTE_TINTS = ((1.0, 1.0, 1.0), (1.06, 0.98, 0.91), (0.93, 0.99, 1.07))  # neutral, warm, cool
PALETTE_JITTER = 0.05        # per-seed per-channel tint jitter
VIEW_SPAN = 40.0             # random view offsets cover this many heights of panorama
SUN_PERIOD = 9.0             # one sun/moon every SUN_PERIOD heights of panorama
BATCH = 64                   # views rendered per vectorised batch

F = np.float32
_M1, _M2, _GOLD = np.uint32(0x7FEB352D), np.uint32(0x846CA68B), np.uint32(0x9E3779B9)

# ----------------------------------------------------------------------------- palettes (RGB 0..255)
SKY = {  # (zenith, middle, horizon)
    "noon": ((60, 125, 215), (120, 175, 235), (195, 225, 245)),
    "sunset": ((75, 60, 130), (225, 110, 80), (255, 190, 110)),
    "twilight": ((20, 28, 75), (80, 70, 140), (210, 130, 135)),
    "night": ((4, 6, 20), (12, 18, 45), (30, 40, 80)),
}
FAMILY_SKY = {
    "mountain_twilight": {"twilight": ((15, 25, 70), (75, 65, 140), (240, 145, 110))},
    "cartoon_nature": {"noon": ((70, 175, 245), (125, 205, 248), (200, 238, 252))},
    "anime_landscape": {"noon": ((15, 55, 175), (60, 135, 235), (195, 228, 252))},
    "forest_brook": {"noon": ((175, 215, 165), (205, 228, 180), (230, 238, 195))},
    "lalaland_beach": {"noon": ((120, 150, 230), (230, 170, 220), (255, 215, 200)),
                       "sunset": ((90, 60, 160), (235, 110, 170), (255, 190, 150)),
                       "twilight": ((50, 30, 115), (150, 70, 175), (250, 150, 180)),
                       "night": ((20, 15, 60), (65, 35, 115), (150, 75, 150))},
    "shooting_stars": {"twilight": ((15, 15, 55), (85, 45, 125), (220, 105, 150)),
                       "night": ((6, 6, 30), (40, 25, 85), (155, 60, 125))},
    "snowy_skiers": {"noon": ((25, 80, 190), (70, 135, 225), (150, 195, 240))},
    "palm_beach": {"noon": ((20, 95, 210), (85, 160, 238), (190, 228, 252))},
    "beach_street_sunset": {"sunset": ((115, 40, 95), (245, 95, 45), (255, 200, 85))},
}
LIGHT = {"noon": (1.0, 1.0, 1.0), "sunset": (0.92, 0.7, 0.58), "twilight": (0.45, 0.45, 0.62),
         "night": (0.2, 0.22, 0.36)}                       # multiplier for lit (non-emissive) surfaces
SUN_ELEVATION = {"sunset": 0.13, "twilight": -0.03}   # low sun: height above the horizon
DARKNESS = {"noon": 0.0, "sunset": 0.35, "twilight": 0.7, "night": 1.0}
SUN = {  # time: (v or None for a low sun, radius, disc rgb, glow rgb, glow radius, glow alpha)
    "noon": (0.12, 0.045, (255, 252, 232), (255, 250, 225), 0.3, 0.25),
    "sunset": (None, 0.07, (255, 220, 140), (255, 165, 80), 0.5, 0.6),
    "twilight": (None, 0.07, (255, 160, 120), (255, 130, 110), 0.6, 0.35),
    "night": (0.16, 0.04, (240, 240, 220), (170, 180, 230), 0.2, 0.15),
}
WINDOW_LIT, STAR = (255, 205, 110), (255, 250, 235)
CITY = dict(far=(150, 160, 190), near=(85, 92, 115), glass=(150, 175, 205), water=(25, 45, 80))
MOUNTAIN = dict(far=(110, 110, 170), near=(30, 34, 60))
SNOW = dict(gear=(30, 30, 40), snow=(248, 250, 255), shade=(165, 185, 225), slope=(238, 243, 252), pine=(25, 65, 45),
            jackets=((220, 40, 40), (40, 80, 210), (250, 200, 30), (25, 25, 30)))
CARTOON = dict(hills=((165, 220, 95), (110, 200, 70), (70, 175, 55)), outline=(35, 70, 35),
               trunk=(125, 80, 40), canopy=(55, 165, 60), blossom=(245, 150, 195),
               flowers=((240, 60, 60), (255, 225, 40), (255, 255, 255)), cloud=(255, 255, 255),
               cloud_shade=(215, 235, 250))
ANIME = dict(mount_far=(140, 160, 215), mount=(85, 105, 175), trees=(30, 85, 75), lake=(55, 115, 205),
             grass_far=(150, 205, 80), grass=(50, 140, 55), cloud=(255, 255, 255), cloud_shade=(180, 195, 235))
FOREST = dict(far=(120, 165, 110), mid=(55, 110, 60), near=(22, 62, 35), canopy=(30, 80, 35),
              ground=(80, 120, 45), bank=(60, 70, 40), brook=(110, 170, 200), foam=(235, 248, 252),
              leaf=(150, 200, 80))
LALA = dict(hills_far=(165, 105, 190), hills=(105, 60, 150), sea=(20, 175, 180), sand=(220, 165, 200),
            pole=(60, 35, 95), lamp=(255, 235, 150), star=(255, 230, 250))
SHOOT = dict(far=(40, 25, 70), sil=(8, 5, 20), streak=(255, 250, 230))
PALM = dict(sea_far=(15, 95, 170), sea_near=(40, 205, 200), surf=(245, 250, 250), sand=(240, 220, 170),
            wet=(205, 185, 140), trunk=(125, 90, 55), frond=(40, 145, 55), cloud=(255, 255, 255),
            cloud_shade=(220, 232, 248))
STREET = dict(house=(135, 75, 70), house2=(95, 55, 70), sea=(240, 130, 70), sidewalk=(150, 110, 95),
              road=(70, 58, 70), line=(240, 210, 120), pole=(40, 28, 40), lamp=(255, 230, 160),
              palm=(45, 25, 40), tint=(1.05, 0.97, 0.86))
FILM_GRAIN = 0.035
# The camera's optics: a Gaussian blur of this many pixels (at any height). Without it, hashed 1 px detail (stars,
# windows, flowers, grain) is white noise that no 4x autoencoder can store (48 values per 4 latents), and a
# photo has no such detail either. Rendered with a margin, so a window of a wide render is still exact.
CAMERA_BLUR = 0.8
_BLUR_RADIUS = 3


# ----------------------------------------------------------------------------- scenes
@dataclass(frozen=True)
class Scene:
    """Everything needed to render a panorama; hashable."""
    family: str
    time: str
    seed: int
    density: float = 0.6
    palette: int = 0
    roughness: float = 0.5


def _check(family: str | None, time: str | None) -> None:
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if time is not None and time not in TIMES:
        raise ValueError(f"time must be one of {TIMES}, got {time!r}")


def sample_scene(rng: np.random.Generator, family: str | None = None, time: str | None = None) -> Scene:
    """A random scene; family uniform, time biased towards the family's paper-prompt time."""
    _check(family, time)
    family = family or FAMILIES[int(rng.integers(len(FAMILIES)))]
    if time is None:
        pt = PROMPT_TIME[family]
        others = [t for t in TIMES if t != pt]
        time = pt if rng.random() < PROMPT_TIME_PROB else others[int(rng.integers(len(others)))]
    return Scene(family, time, int(rng.integers(2 ** 31)), round(float(rng.uniform(0.2, 1.0)), 4),
                 int(rng.integers(N_PALETTES)), round(float(rng.uniform(0.0, 1.0)), 4))


# ----------------------------------------------------------------------------- hashing and noise
def _col(rgb) -> np.ndarray:
    """Constant colour as a channel-first (3, 1, 1, 1) float array in 0..1."""
    return np.asarray(rgb, F).reshape(3, 1, 1, 1) / 255


def _u32(k) -> np.ndarray:
    k = np.asarray(k)
    return k if k.dtype == np.uint32 else k.astype(np.int64).astype(np.uint32)


def _mix(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> 16)
    h = h * _M1
    h = h ^ (h >> 15)
    h = h * _M2
    return h ^ (h >> 16)


def _hash(*keys) -> np.ndarray:
    """uint32 hash of integer keys (broadcast)."""
    with np.errstate(over="ignore"):
        h = np.uint32(0x2545F491)
        for k in keys:
            h = _mix(h + _u32(k) * _GOLD)
        return h


def _unit(h: np.ndarray) -> np.ndarray:
    return (h >> 8).astype(F) * F(2.0 ** -24)


def _sub(h: np.ndarray, i: int) -> np.ndarray:
    """i-th independent uniform derived from a hash."""
    with np.errstate(over="ignore"):
        return _unit(_mix(h + np.uint32(i + 1) * _GOLD))


def _vnoise(seed, x: np.ndarray, salt: int, smooth: bool = True) -> np.ndarray:
    """1-D value noise in [0, 1] at float64 positions x (smoothstep or piecewise linear)."""
    i = np.floor(x)
    t = (x - i).astype(F)
    i = i.astype(np.int64)
    a, b = _unit(_hash(seed, salt, i)), _unit(_hash(seed, salt, i + 1))
    return a + (b - a) * (t * t * (3 - 2 * t) if smooth else t)


# ----------------------------------------------------------------------------- render context
class _Ctx:
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
        return _unit(_hash(self.seed, salt))

    def lit(self, rgb, amount=1.0) -> np.ndarray:
        """Per-scene colour of a surface under the scene's light (amount 0 = emissive)."""
        return _col(rgb) * (1 - amount + amount * self.light)

    def cells(self, cell, salt: int):
        """Lattice of width `cell`: cell index, position in cell (0..1), per-cell hash; all (B, 1, W)."""
        x = self.u64 / cell
        k = np.floor(x)
        return k.astype(np.int64), (x - k).astype(F), _hash(self.seed, salt, k.astype(np.int64))

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
            total = total + a * _vnoise(self.seed, x * (freq * 2.1 ** o) + 11.7 * o, salt * 8 + o, not sharp)
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
            hh = _mix(_hash(self.seed, salt, cu.astype(np.int64)) + cv.astype(np.uint32) * _GOLD)
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
        self.blend(m * (alpha * (0.35 + 0.65 * bright)), _col(color))

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
        phase = F(0.9) / (d + F(0.03)) * 10 + 5 * _vnoise(self.seed, self.u64 * 7.0, 99)
        wave = np.sin(phase)
        src = np.clip(2 * r0 - 1 - rows + np.rint(wave * ripple * (0.01 + 0.06 * d) * self.h).astype(np.int64),
                      0, r0 - 1)
        refl = self.img[:, np.arange(self.b).reshape(-1, 1, 1), src, np.arange(self.w).reshape(1, 1, -1)]
        refl *= 0.82 + 0.18 * wave
        self.img[:, :, r0:] = water + (refl - water) * mix


# ----------------------------------------------------------------------------- objects
def _buildings(c, salt, base, cell, hmin, hmax, color, lit_p, glass, presence=1.0, win=1 / 32):
    """Skyline blocks standing on v = base, each with a seeded grid of lit/unlit windows."""
    k, fx, h = c.cells(cell, salt)
    width = 0.55 + 0.4 * _sub(h, 0)
    roof = base - (hmin + (hmax - hmin) * _sub(h, 1) ** 1.5 * (1 + (_sub(h, 3) > 0.9)))
    inside = (np.abs(fx - 0.5) < width / 2) & (_sub(h, 2) < presence)
    mask = inside & (c.v > roof)
    c.paint(mask, color)
    lx = (fx - 0.5 + width / 2) * cell / win
    ci = np.floor(lx)
    wy = (c.v - roof) / F(win)
    rj = np.floor(wy)
    wmask = mask & ((lx - ci) < 0.5) & ((wy - rj) >= 0.5) & (rj >= 1) & (lx < width * cell / win - 1)
    with np.errstate(over="ignore"):
        on = _unit(_mix(h + ci.astype(np.uint32) * _GOLD + rj.astype(np.uint32) * _M1)) < lit_p
    c.paint(wmask & on, _col(WINDOW_LIT))
    c.paint(wmask & ~on, glass)


def _trees(c, salt, cell, ground, hmin, hmax, color, presence=1.0, kind="pine", trunk=None, outline=None):
    """Pines (tiered triangles) or round trees, one per cell, standing on the surface ground(x)."""
    k, fx, h = c.cells(cell, salt)
    cxf = 0.5 + 0.25 * (_sub(h, 0) - 0.5)
    cx = (k + cxf) * cell
    hgt = hmin + (hmax - hmin) * _sub(h, 1)
    gy = ground(cx)
    du = np.abs(c.u64 - cx).astype(F)
    present = _sub(h, 2) < presence
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


def _palms(c, salt, cell, ground, hmin, hmax, presence, trunk, frond):
    """Leaning palm trees: curved trunk plus drooping fronds (curves in x), one per cell."""
    k, fx, h = c.cells(cell, salt)
    present = _sub(h, 0) < presence
    cx = (k + 0.4 + 0.2 * _sub(h, 1)) * cell
    hgt = hmin + (hmax - hmin) * _sub(h, 2)
    lean = (_sub(h, 3) - 0.5) * 0.3 * hgt
    gy = ground + 0.04 * (_sub(h, 4) - 0.5)
    du = (c.u64 - cx).astype(F)
    t = (gy - c.v) / hgt
    tw = max(0.6 * c.px, 0.012) + 0.006 * (1 - t)
    m = present & (t >= 0) & (t <= 1) & (np.abs(du - lean * t * t) < tw)
    c.paint(m, trunk)
    dx, top = du - lean, gy - hgt
    fm = np.zeros_like(m)
    for j, (side, lift, droop) in enumerate(((1, 0.7, 1.6), (1, 0.1, 1.1), (1, -0.5, 0.6),
                                             (-1, 0.8, 1.7), (-1, 0.05, 1.2), (-1, -0.5, 0.5))):
        L = hgt * (0.38 + 0.12 * _sub(h, 5 + j))
        q = side * dx / L
        yc = top - L * (lift * q - droop * q * q)
        slope = np.abs(lift - 2 * droop * q)
        thick = (0.5 * c.px + 0.018 * hgt * (1 - q)) * np.sqrt(1 + slope * slope)
        fm |= (q > 0) & (q < 1) & (np.abs(c.v - yc) < thick)
    c.paint(fm & present, frond)


def _lamps(c, salt, cell, base, hgt, pole, lamp, glow, presence=1.0):
    """Street lamps: thin pole, bright head, halo scaled by `glow` (per scene)."""
    k, fx, h = c.cells(cell, salt)
    present = _sub(h, 0) < presence
    du = ((fx - 0.45 - 0.1 * _sub(h, 1)) * cell)
    top = base - hgt
    c.paint(present & (np.abs(du) < max(0.5 * c.px, 0.008)) & (c.v > top) & (c.v < base), pole)
    d2 = du * du + (c.v - top) ** 2
    c.blend(present * np.exp(-d2 / F(0.012)) * glow * 0.7, lamp)
    c.paint(present & (d2 < max(c.px, 0.018) ** 2), lamp)


def _clouds(c, salt, cell, vlo, vhi, size, presence, color, shade, tall=0.9):
    """Puffy clouds: bumpy top profile over a flat base, shaded bottom half."""
    k, fx, h = c.cells(cell, salt)
    present = _sub(h, 0) < presence
    half = size * (0.6 + 0.4 * _sub(h, 1))
    x = (fx - 0.5) * cell / half
    base = vlo + (vhi - vlo) * _sub(h, 2)
    prof = np.zeros_like(x)
    for j, (bx, br) in enumerate(((-0.5, 0.45), (0.0, 0.6), (0.45, 0.5), (0.75, 0.28))):
        r = br * (0.8 + 0.4 * _sub(h, 3 + j))
        prof = np.maximum(prof, np.sqrt(np.clip(1 - ((x - bx) / r) ** 2, 0, 1)) * r)
    topv = base - prof * half * tall
    inside = present & (np.abs(x) < 1) & (c.v > topv) & (c.v < base)
    c.paint(inside, color)
    c.paint(inside & (c.v > (topv + base) / 2 + 0.25 * (base - topv)), shade)


def _skiers(c, salt, cell, surface, depth, presence, scale):
    """Small skiers (jacket, dark head, skis) standing on the slope below `surface`."""
    k, fx, h = c.cells(cell, salt)
    present = _sub(h, 0) < presence
    cx = (k + 0.3 + 0.4 * _sub(h, 1)) * cell
    foot = surface(cx) + depth * (0.15 + 0.85 * _sub(h, 2))
    s = scale * (0.7 + 0.6 * _sub(h, 2))
    du = (c.u64 - cx).astype(F)
    bw = np.maximum(0.008 * s, 0.5 * c.px)
    body = present & (np.abs(du) < bw) & (c.v > foot - 0.05 * s) & (c.v < foot)
    jackets = np.asarray(SNOW["jackets"], F).T / 255
    jk = jackets[:, (_sub(h, 3) * jackets.shape[1]).astype(np.int64)] * c.light
    c.paint(body & (c.v < foot - 0.02 * s), jk)
    c.paint(body & (c.v >= foot - 0.02 * s) | present & (np.abs(du) < bw) & (c.v > foot - 0.065 * s)
            & (c.v < foot - 0.05 * s) | present & (np.abs(du - 0.01 * s) < 0.03 * s)
            & (np.abs(c.v - foot) < 0.5 * c.px), c.lit(SNOW["gear"]))


# ----------------------------------------------------------------------------- families
def _city_night(c):
    hv = 0.7
    c.sky(hv)
    c.stars(1, hv - 0.25, c.dark ** 2)
    c.celestial(hv)
    haze = c.lit(CITY["far"]) * 0.7 + c.hz * 0.3
    lit_p = 0.05 + 0.55 * c.dark
    _buildings(c, 2, hv, 0.085 + 0.05 * (1 - c.density), 0.1, 0.38, haze, lit_p * 0.8, c.lit(CITY["glass"]) * 0.9)
    _buildings(c, 3, hv, 0.13, 0.05, 0.26, c.lit(CITY["near"]), lit_p, c.lit(CITY["glass"]) * 0.75,
               presence=0.35 + 0.55 * c.density)
    c.reflect(hv, c.lit(CITY["water"]), 0.55)


def _mountain_twilight(c):
    hv = 0.62
    c.sky(hv + 0.05)
    c.stars(11, 0.35, c.dark * 0.7)
    c.celestial(hv)
    haze = c.mid * 0.6 + c.hz * 0.4
    layers = ((0.36, 0.3, 1.3, True), (0.5, 0.26, 1.7, True), (0.66, 0.2, 2.2, True), (0.82, 0.12, 2.0, False))
    for i, (base, amp, freq, sharp) in enumerate(layers):
        top = c.ridge(12 + i, base, amp * (0.75 + 0.5 * c.rough), freq, sharp=sharp)
        k = i / (len(layers) - 1)
        col = haze * (0.8 - 0.8 * k) + c.lit(MOUNTAIN["far"]) * 0.2 * (1 - k) + c.lit(MOUNTAIN["near"]) * k
        c.fill(top, col + np.clip((c.v - base) / 0.4, 0, 0.6) * (c.hz - col) * (1 - k) * 0.6)


def _snowy_skiers(c):
    hv = 0.55
    c.sky(hv)
    c.stars(21, 0.3, c.dark ** 2)
    c.celestial(hv)
    c.fill(c.ridge(20, 0.36, 0.3, 1.4, sharp=True), c.lit(SNOW["shade"]) * 0.6 + c.hz * 0.4)
    far = c.ridge(22, 0.38, 0.4, 0.9, octaves=3, sharp=True)
    slope = (c.ridge(22, 0.38, 0.4, 0.9, octaves=3, sharp=True, x=c.u64 + 0.01) - far) * 60
    face = c.lit(SNOW["shade"]) + np.clip(0.5 - slope, 0, 1) * (c.lit(SNOW["snow"]) - c.lit(SNOW["shade"]))
    c.fill(far, face)
    mid = c.waves(23, 0.62, 0.05, 1.3)
    c.fill(mid, c.lit(SNOW["shade"]) * 0.35 + c.lit(SNOW["snow"]) * 0.65)
    _trees(c, 24, 0.09, lambda x: c.waves(23, 0.62, 0.05, 1.3, x=x) + 0.01, 0.05, 0.1, c.lit(SNOW["pine"]),
           presence=0.25 + 0.6 * c.density)
    slope = lambda x: c.waves(25, 0.74, 0.06, 0.7, x=x)
    c.fill(slope(c.u64), c.lit(SNOW["slope"]), outline=c.lit(SNOW["shade"]))
    _skiers(c, 26, 0.11, lambda x: c.waves(23, 0.62, 0.05, 1.3, x=x), 0.05, 0.3 * c.density, 0.6)
    _skiers(c, 27, 0.16, slope, 0.2, 0.3 + 0.6 * c.density, 1.0)


def _cartoon_nature(c):
    hv = 0.6
    c.sky(hv)
    c.stars(31, 0.4, c.dark ** 2)
    c.celestial(hv)
    _clouds(c, 32, 1.1, 0.18, 0.32, 0.3, 0.7, c.lit(CARTOON["cloud"], 0.6), c.lit(CARTOON["cloud_shade"], 0.6))
    hills = [(0.5, 0.06, 1.2), (0.62, 0.06, 1.7), (0.77, 0.05, 1.1)]
    out = c.lit(CARTOON["outline"])
    for i, (base, amp, freq) in enumerate(hills):
        c.fill(c.waves(33 + 2 * i, base, amp, freq), c.lit(CARTOON["hills"][i]), outline=out)
        if i == 1:
            canopy = np.where(c.rand(39) < 0.3, c.lit(CARTOON["blossom"]), c.lit(CARTOON["canopy"]))
            _trees(c, 40, 0.32 - 0.12 * c.density, lambda x: c.waves(35, base, amp, freq, x=x) + 0.02,
                   0.12, 0.2, canopy, presence=0.7, kind="round", trunk=c.lit(CARTOON["trunk"]), outline=out)
    region = c.v > c.waves(37, 0.79, 0.05, 1.1)
    for i, col in enumerate(CARTOON["flowers"]):
        m, _ = c.dots(41 + i, 0.07, 0.25 + 0.35 * c.density, region, size=0.01)
        c.paint(m, c.lit(col))


def _anime_landscape(c):
    hv = 0.62
    c.sky(hv)
    c.stars(51, 0.4, c.dark ** 2)
    c.celestial(hv)
    _clouds(c, 52, 1.7, 0.4, 0.5, 0.4, 0.85, c.lit(ANIME["cloud"], 0.8), c.lit(ANIME["cloud_shade"], 0.8), 1.4)
    _clouds(c, 53, 0.9, 0.12, 0.22, 0.16, 0.5, c.lit(ANIME["cloud"], 0.8), c.lit(ANIME["cloud_shade"], 0.8))
    c.fill(c.ridge(54, 0.5, 0.15, 0.9), c.lit(ANIME["mount_far"]) * 0.6 + c.hz * 0.4)
    c.fill(c.ridge(55, hv - 0.04, 0.05, 1.6), c.lit(ANIME["mount"]))
    _trees(c, 56, 0.035, lambda x: np.full(x.shape, hv, F), 0.03, 0.08, c.lit(ANIME["trees"]), presence=0.9)
    c.reflect(hv, c.lit(ANIME["lake"]), 0.6)
    meadow = c.waves(57, 0.8, 0.03, 0.9)
    g = np.clip((c.v - 0.75) / 0.25, 0, 1)
    c.fill(meadow, c.lit(ANIME["grass_far"]) * (1 - g) + c.lit(ANIME["grass"]) * g)
    m, _ = c.dots(58, 0.05, 0.5, c.v > meadow + 0.03, size=0.008)
    c.paint(m, c.lit(ANIME["grass"]) * 0.7)


def _forest_brook(c):
    c.sky(0.55)
    c.celestial(0.55, visible=0.5)
    _trees(c, 61, 0.06, lambda x: np.full(x.shape, 0.56, F), 0.12, 0.25, c.lit(FOREST["far"]) * 0.7 + c.hz * 0.3)
    _trees(c, 62, 0.1 + 0.04 * (1 - c.density), lambda x: np.full(x.shape, 0.66, F), 0.28, 0.5,
           c.lit(FOREST["mid"]))
    c.fill(c.waves(63, 0.68, 0.015, 2.0), c.lit(FOREST["ground"]))
    _trees(c, 64, 0.17, lambda x: np.full(x.shape, 0.76, F), 0.45, 0.7, c.lit(FOREST["near"]),
           presence=0.4 + 0.5 * c.density)
    canopy = c.ridge(65, 0.06 + 0.08 * c.density, 0.08, 3.0, sharp=True)
    c.blend(np.clip((canopy - c.v) * c.h + 0.5, 0, 1), c.lit(FOREST["canopy"]))
    m, _ = c.dots(66, 0.04, 0.5, c.v < canopy - 0.02, size=0.008)
    c.paint(m, c.lit(FOREST["leaf"]))
    center = (0.85 + 0.05 * (2 * _vnoise(c.seed, c.u64 * 0.8, 67) - 1)).astype(F)
    d = np.abs(c.v - center)
    half = 0.035 + 0.02 * c.rand(68)
    c.paint(d < half + 1.5 * c.px, c.lit(FOREST["bank"]))
    water = d < half
    c.paint(water, c.lit(FOREST["brook"]) * (1 + 0.15 * np.sin(c.u * 40 + c.v * 90)))
    m, _ = c.dots(69, 0.03, 0.3, water, size=0.006)
    c.paint(m, c.lit(FOREST["foam"]))


def _lalaland_beach(c):
    hv = 0.6
    c.sky(hv, bands=8)
    c.stars(71, hv - 0.12, 0.45 + 0.55 * c.dark, presence=0.3, color=LALA["star"])
    c.celestial(hv, crescent=True)
    c.fill(c.waves(72, hv - 0.03, 0.05, 0.8), c.lit(LALA["hills_far"], 0.5) * 0.7 + c.hz * 0.3)
    c.fill(c.ridge(73, hv - 0.03, 0.04, 1.4), c.lit(LALA["hills"], 0.5))
    c.reflect(hv, c.lit(LALA["sea"], 0.5), 0.4, ripple=1.5)
    sand = c.waves(74, 0.87, 0.015, 1.0)
    c.fill(sand, c.lit(LALA["sand"], 0.5))
    _lamps(c, 75, 0.8, 0.9, 0.3, c.lit(LALA["pole"], 0.5), _col(LALA["lamp"]),
           0.6 + 0.4 * c.dark, presence=0.5 + 0.5 * c.density)


def _shooting_stars(c):
    hv = 0.72
    c.sky(hv)
    c.stars(81, hv, 0.15 + 0.85 * c.dark, cell=0.04, presence=0.5)
    c.celestial(hv, crescent=True)
    k, fx, h = c.cells(1.1, 82)
    present = _sub(h, 0) < 0.5 + 0.4 * c.density
    ang = 0.3 + 0.5 * _sub(h, 1)
    side = np.where(_sub(h, 2) < 0.5, -1, 1)
    ca, sa = np.cos(ang) * side, np.sin(ang)
    du = (fx - 0.5) * 1.1 + side * 0.2
    dv = c.v - (0.05 + 0.3 * _sub(h, 3))
    along, perp = du * ca + dv * sa, -du * sa + dv * ca
    L = 0.25 + 0.2 * _sub(h, 4)
    m = present & (along > 0) & (along < L) & (np.abs(perp) < 0.6 * c.px)
    c.blend(m * (along / L) * (0.4 + 0.6 * c.dark), _col(SHOOT["streak"]))
    c.fill(c.ridge(83, 0.72, 0.06, 1.2), c.lit(SHOOT["far"], 0.3) * 0.8 + c.hz * 0.2)
    near = lambda x: c.waves(84, 0.86, 0.07, 0.9, x=x)
    sil = _col(SHOOT["sil"])
    c.fill(near(c.u64), sil)
    _trees(c, 85, 0.14, lambda x: near(x) + 0.01, 0.08, 0.22, sil, presence=0.2 + 0.5 * c.density)
    _trees(c, 86, 0.7, lambda x: near(x) + 0.01, 0.25, 0.35, sil, presence=0.4, kind="round", trunk=sil)


def _palm_beach(c):
    hv = 0.5
    c.sky(hv)
    c.stars(91, hv - 0.1, c.dark ** 2)
    c.celestial(hv)
    _clouds(c, 92, 0.9, 0.15, 0.38, 0.14, 0.3 + 0.3 * c.density, c.lit(PALM["cloud"], 0.7),
            c.lit(PALM["cloud_shade"], 0.7))
    r0 = int(round(hv * c.h))
    g = np.clip((c.v[:, r0:] - hv) / 0.25, 0, 1)
    c.reflect(hv, c.lit(PALM["sea_far"]) * (1 - g) + c.lit(PALM["sea_near"]) * g, 0.2)
    shore = (0.74 + 0.02 * (2 * _vnoise(c.seed, c.u64 * 1.5, 93) - 1)).astype(F)
    c.fill(shore, c.lit(PALM["wet"]))
    c.fill(shore + 0.025, c.lit(PALM["sand"]))
    c.paint(np.abs(c.v - shore) < 0.9 * c.px, c.lit(PALM["surf"]))
    trunk, frond = c.lit(PALM["trunk"]), c.lit(PALM["frond"])
    _palms(c, 94, 0.8, 0.8, 0.28, 0.38, 0.3 + 0.4 * c.density, trunk, frond)
    _palms(c, 95, 1.3, 0.93, 0.5, 0.68, 0.5 + 0.45 * c.density, trunk, frond)


def _beach_street_sunset(c):
    hv = 0.58
    c.sky(hv, mid=0.5)
    c.stars(101, 0.3, c.dark ** 2)
    c.celestial(hv)
    c.fill(np.full((c.b, 1, 1), hv, F), c.lit(STREET["sea"]) * 0.5 + c.hz * 0.5)
    c.reflect(hv, c.lit(STREET["sea"]) * 0.6, 0.6)
    dark = c.lit(STREET["palm"], 0.3)
    _palms(c, 102, 1.0, 0.7, 0.35, 0.5, 0.3 + 0.4 * c.density, dark, dark)
    _buildings(c, 103, 0.7, 0.24, 0.08, 0.28, c.lit(STREET["house"]) * 0.8, 0.1 + 0.6 * c.dark,
               c.lit(STREET["house2"]), presence=0.4 + 0.45 * c.density, win=0.04)
    c.fill(np.full((c.b, 1, 1), 0.7, F), c.lit(STREET["sidewalk"]))
    g = np.clip((c.v - 0.76) / 0.24, 0, 1)
    c.fill(np.full((c.b, 1, 1), 0.76, F), c.lit(STREET["road"]) * (0.7 + 0.3 * g) + c.hz * 0.3 * (1 - g))
    dash = ((c.u64 * 2.5) % 1.0 < 0.5).astype(F)
    c.paint((np.abs(c.v - 0.88) < 0.6 * c.px) & (dash > 0), c.lit(STREET["line"]))
    _lamps(c, 104, 0.65, 0.75, 0.3, c.lit(STREET["pole"], 0.3), _col(STREET["lamp"]),
           0.2 + 0.8 * c.dark)
    noise = _unit(_hash(c.seed, 105, c.col, c.row)) - 0.5
    c.img += noise * (2 * FILM_GRAIN)
    c.img *= np.asarray(STREET["tint"], F).reshape(3, 1, 1, 1)


_RENDERERS = dict(zip(FAMILIES, (_city_night, _mountain_twilight, _snowy_skiers, _cartoon_nature,
                                 _anime_landscape, _forest_brook, _lalaland_beach, _shooting_stars,
                                 _palm_beach, _beach_street_sunset)))


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
            c = _Ctx([scenes[i] for i in part], offsets[part], width, height)
            _RENDERERS[fam](c)
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
    _check(scene.family, scene.time)
    if int(width) <= 0:
        raise ValueError(f"width must be positive, got {width}")
    if int(height) <= 0:
        raise ValueError(f"height must be positive, got {height}")
    return _render_batch([scene], [int(offset)], int(width), int(height))[0]


# ----------------------------------------------------------------------------- captions
TIME_PHRASES = {"noon": ("at noon", "in daylight"), "sunset": ("at sunset",),
                "twilight": ("at twilight", "at dusk"), "night": ("at night",)}
SUBJECTS = {
    "city_night": ("a city skyline", "a city", "skyscrapers of a city"),
    "mountain_twilight": ("a mountain range", "mountains", "mountain peaks"),
    "snowy_skiers": ("a snowy mountain with skiers", "skiers on a snowy slope", "a ski slope"),
    "cartoon_nature": ("cartoon nature", "a cartoon landscape", "cartoon hills and trees"),
    "anime_landscape": ("an anime landscape", "anime style scenery", "a landscape in anime style"),
    "forest_brook": ("a lush forest with a brook", "a forest brook", "a brook in the forest"),
    "lalaland_beach": ("a la la land beach", "a beach in la la land style", "la la land style seaside"),
    "shooting_stars": ("shooting stars over silhouettes", "a dreamy scene with shooting stars",
                       "silhouette wallpaper with shooting stars"),
    "palm_beach": ("a beach with palm trees", "palm trees on a beach", "a tropical beach"),
    "beach_street_sunset": ("a beachside street", "a street by the beach", "a seaside street with lamps"),
}
PHOTO_TEMPLATES = ("a photo of {s} {t}", "{s} {t}", "{s} {t}, photo")
ART_TEMPLATES = ("an illustration of {s} {t}", "{s} {t}", "{s} {t}, wallpaper")
ART_FAMILIES = ("cartoon_nature", "anime_landscape", "lalaland_beach", "shooting_stars")
FAMILY_KEYWORDS = (  # checked in order; the first match wins
    ("lalaland_beach", r"la la land|lalaland"), ("shooting_stars", r"shooting stars?|silhouettes?"),
    ("snowy_skiers", r"ski|skiers?|skiing|snowy|snow"), ("beach_street_sunset", r"street|beachside street"),
    ("palm_beach", r"palms?"), ("city_night", r"city|skyline|skyscrapers?"),
    ("forest_brook", r"forest|brook|woods"), ("cartoon_nature", r"cartoon"), ("anime_landscape", r"anime"),
    ("mountain_twilight", r"mountains?|peaks?"), ("palm_beach", r"beach|tropical|sea|ocean"))
TIME_KEYWORDS = (("night", r"night|midnight"), ("twilight", r"twilight|dusk"),
                 ("sunset", r"sunset|sundown"), ("noon", r"noon|midday|daylight|day"))


def describe(scene: Scene, rng: np.random.Generator) -> str:
    """Caption from a small grammar: the paper prompt verbatim, or subject + time-of-day phrase."""
    _check(scene.family, scene.time)
    fam = scene.family
    if scene.time == PROMPT_TIME[fam] and rng.random() < VERBATIM_PROB:
        return PAPER_PROMPTS[FAMILIES.index(fam)]
    templates = ART_TEMPLATES if fam in ART_FAMILIES else PHOTO_TEMPLATES
    subj, phrases = SUBJECTS[fam], TIME_PHRASES[scene.time]
    return templates[int(rng.integers(len(templates)))].format(
        s=subj[int(rng.integers(len(subj)))], t=phrases[int(rng.integers(len(phrases)))])


def parse_prompt(prompt: str) -> tuple[str | None, str | None]:
    """(family, time) by keywords; time defaults to the family's prompt time when unstated."""
    text = prompt.lower()
    family = next((f for f, pat in FAMILY_KEYWORDS if re.search(rf"\b(?:{pat})\b", text)), None)
    time = next((t for t, pat in TIME_KEYWORDS if re.search(rf"\b(?:{pat})\b", text)), None)
    if time is None and family is not None:
        time = PROMPT_TIME[family]
    return family, time


def scene_for_prompt(prompt: str, rng: np.random.Generator) -> Scene:
    family, time = parse_prompt(prompt)
    if family is None:
        raise ValueError(f"prompt {prompt!r} matches no scene family")
    return sample_scene(rng, family, time)


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
