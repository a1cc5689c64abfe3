"""The ten scene families: each paints its layers (sky, ridges, water, objects) onto a canvas, back to front."""
from __future__ import annotations

import numpy as np

from .canvas import rgb_array
from .hashing import F, hash_keys, sub_uniform, unit_float, value_noise
from .objects import buildings, clouds, lamps, palms, skiers, trees
from .palette import ANIME, CARTOON, CITY, FILM_GRAIN, FOREST, LALA, MOUNTAIN, PALM, SHOOT, SNOW, STREET
from .scene import FAMILIES


def _city_night(c):
    hv = 0.7
    c.sky(hv)
    c.stars(1, hv - 0.25, c.dark ** 2)
    c.celestial(hv)
    haze = c.lit(CITY["far"]) * 0.7 + c.hz * 0.3
    lit_p = 0.05 + 0.55 * c.dark
    buildings(c, 2, hv, 0.085 + 0.05 * (1 - c.density), 0.1, 0.38, haze, lit_p * 0.8, c.lit(CITY["glass"]) * 0.9)
    buildings(c, 3, hv, 0.13, 0.05, 0.26, c.lit(CITY["near"]), lit_p, c.lit(CITY["glass"]) * 0.75,
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
    trees(c, 24, 0.09, lambda x: c.waves(23, 0.62, 0.05, 1.3, x=x) + 0.01, 0.05, 0.1, c.lit(SNOW["pine"]),
           presence=0.25 + 0.6 * c.density)
    slope = lambda x: c.waves(25, 0.74, 0.06, 0.7, x=x)
    c.fill(slope(c.u64), c.lit(SNOW["slope"]), outline=c.lit(SNOW["shade"]))
    skiers(c, 26, 0.11, lambda x: c.waves(23, 0.62, 0.05, 1.3, x=x), 0.05, 0.3 * c.density, 0.6)
    skiers(c, 27, 0.16, slope, 0.2, 0.3 + 0.6 * c.density, 1.0)


def _cartoon_nature(c):
    hv = 0.6
    c.sky(hv)
    c.stars(31, 0.4, c.dark ** 2)
    c.celestial(hv)
    clouds(c, 32, 1.1, 0.18, 0.32, 0.3, 0.7, c.lit(CARTOON["cloud"], 0.6), c.lit(CARTOON["cloud_shade"], 0.6))
    hills = [(0.5, 0.06, 1.2), (0.62, 0.06, 1.7), (0.77, 0.05, 1.1)]
    out = c.lit(CARTOON["outline"])
    for i, (base, amp, freq) in enumerate(hills):
        c.fill(c.waves(33 + 2 * i, base, amp, freq), c.lit(CARTOON["hills"][i]), outline=out)
        if i == 1:
            canopy = np.where(c.rand(39) < 0.3, c.lit(CARTOON["blossom"]), c.lit(CARTOON["canopy"]))
            trees(c, 40, 0.32 - 0.12 * c.density, lambda x: c.waves(35, base, amp, freq, x=x) + 0.02,
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
    clouds(c, 52, 1.7, 0.4, 0.5, 0.4, 0.85, c.lit(ANIME["cloud"], 0.8), c.lit(ANIME["cloud_shade"], 0.8), 1.4)
    clouds(c, 53, 0.9, 0.12, 0.22, 0.16, 0.5, c.lit(ANIME["cloud"], 0.8), c.lit(ANIME["cloud_shade"], 0.8))
    c.fill(c.ridge(54, 0.5, 0.15, 0.9), c.lit(ANIME["mount_far"]) * 0.6 + c.hz * 0.4)
    c.fill(c.ridge(55, hv - 0.04, 0.05, 1.6), c.lit(ANIME["mount"]))
    trees(c, 56, 0.035, lambda x: np.full(x.shape, hv, F), 0.03, 0.08, c.lit(ANIME["trees"]), presence=0.9)
    c.reflect(hv, c.lit(ANIME["lake"]), 0.6)
    meadow = c.waves(57, 0.8, 0.03, 0.9)
    g = np.clip((c.v - 0.75) / 0.25, 0, 1)
    c.fill(meadow, c.lit(ANIME["grass_far"]) * (1 - g) + c.lit(ANIME["grass"]) * g)
    m, _ = c.dots(58, 0.05, 0.5, c.v > meadow + 0.03, size=0.008)
    c.paint(m, c.lit(ANIME["grass"]) * 0.7)


def _forest_brook(c):
    c.sky(0.55)
    c.celestial(0.55, visible=0.5)
    trees(c, 61, 0.06, lambda x: np.full(x.shape, 0.56, F), 0.12, 0.25, c.lit(FOREST["far"]) * 0.7 + c.hz * 0.3)
    trees(c, 62, 0.1 + 0.04 * (1 - c.density), lambda x: np.full(x.shape, 0.66, F), 0.28, 0.5,
           c.lit(FOREST["mid"]))
    c.fill(c.waves(63, 0.68, 0.015, 2.0), c.lit(FOREST["ground"]))
    trees(c, 64, 0.17, lambda x: np.full(x.shape, 0.76, F), 0.45, 0.7, c.lit(FOREST["near"]),
           presence=0.4 + 0.5 * c.density)
    canopy = c.ridge(65, 0.06 + 0.08 * c.density, 0.08, 3.0, sharp=True)
    c.blend(np.clip((canopy - c.v) * c.h + 0.5, 0, 1), c.lit(FOREST["canopy"]))
    m, _ = c.dots(66, 0.04, 0.5, c.v < canopy - 0.02, size=0.008)
    c.paint(m, c.lit(FOREST["leaf"]))
    center = (0.85 + 0.05 * (2 * value_noise(c.seed, c.u64 * 0.8, 67) - 1)).astype(F)
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
    lamps(c, 75, 0.8, 0.9, 0.3, c.lit(LALA["pole"], 0.5), rgb_array(LALA["lamp"]),
           0.6 + 0.4 * c.dark, presence=0.5 + 0.5 * c.density)


def _shooting_stars(c):
    hv = 0.72
    c.sky(hv)
    c.stars(81, hv, 0.15 + 0.85 * c.dark, cell=0.04, presence=0.5)
    c.celestial(hv, crescent=True)
    k, fx, h = c.cells(1.1, 82)
    present = sub_uniform(h, 0) < 0.5 + 0.4 * c.density
    ang = 0.3 + 0.5 * sub_uniform(h, 1)
    side = np.where(sub_uniform(h, 2) < 0.5, -1, 1)
    ca, sa = np.cos(ang) * side, np.sin(ang)
    du = (fx - 0.5) * 1.1 + side * 0.2
    dv = c.v - (0.05 + 0.3 * sub_uniform(h, 3))
    along, perp = du * ca + dv * sa, -du * sa + dv * ca
    L = 0.25 + 0.2 * sub_uniform(h, 4)
    m = present & (along > 0) & (along < L) & (np.abs(perp) < 0.6 * c.px)
    c.blend(m * (along / L) * (0.4 + 0.6 * c.dark), rgb_array(SHOOT["streak"]))
    c.fill(c.ridge(83, 0.72, 0.06, 1.2), c.lit(SHOOT["far"], 0.3) * 0.8 + c.hz * 0.2)
    near = lambda x: c.waves(84, 0.86, 0.07, 0.9, x=x)
    sil = rgb_array(SHOOT["sil"])
    c.fill(near(c.u64), sil)
    trees(c, 85, 0.14, lambda x: near(x) + 0.01, 0.08, 0.22, sil, presence=0.2 + 0.5 * c.density)
    trees(c, 86, 0.7, lambda x: near(x) + 0.01, 0.25, 0.35, sil, presence=0.4, kind="round", trunk=sil)


def _palm_beach(c):
    hv = 0.5
    c.sky(hv)
    c.stars(91, hv - 0.1, c.dark ** 2)
    c.celestial(hv)
    clouds(c, 92, 0.9, 0.15, 0.38, 0.14, 0.3 + 0.3 * c.density, c.lit(PALM["cloud"], 0.7),
            c.lit(PALM["cloud_shade"], 0.7))
    r0 = int(round(hv * c.h))
    g = np.clip((c.v[:, r0:] - hv) / 0.25, 0, 1)
    c.reflect(hv, c.lit(PALM["sea_far"]) * (1 - g) + c.lit(PALM["sea_near"]) * g, 0.2)
    shore = (0.74 + 0.02 * (2 * value_noise(c.seed, c.u64 * 1.5, 93) - 1)).astype(F)
    c.fill(shore, c.lit(PALM["wet"]))
    c.fill(shore + 0.025, c.lit(PALM["sand"]))
    c.paint(np.abs(c.v - shore) < 0.9 * c.px, c.lit(PALM["surf"]))
    trunk, frond = c.lit(PALM["trunk"]), c.lit(PALM["frond"])
    palms(c, 94, 0.8, 0.8, 0.28, 0.38, 0.3 + 0.4 * c.density, trunk, frond)
    palms(c, 95, 1.3, 0.93, 0.5, 0.68, 0.5 + 0.45 * c.density, trunk, frond)


def _beach_street_sunset(c):
    hv = 0.58
    c.sky(hv, mid=0.5)
    c.stars(101, 0.3, c.dark ** 2)
    c.celestial(hv)
    c.fill(np.full((c.b, 1, 1), hv, F), c.lit(STREET["sea"]) * 0.5 + c.hz * 0.5)
    c.reflect(hv, c.lit(STREET["sea"]) * 0.6, 0.6)
    dark = c.lit(STREET["palm"], 0.3)
    palms(c, 102, 1.0, 0.7, 0.35, 0.5, 0.3 + 0.4 * c.density, dark, dark)
    buildings(c, 103, 0.7, 0.24, 0.08, 0.28, c.lit(STREET["house"]) * 0.8, 0.1 + 0.6 * c.dark,
               c.lit(STREET["house2"]), presence=0.4 + 0.45 * c.density, win=0.04)
    c.fill(np.full((c.b, 1, 1), 0.7, F), c.lit(STREET["sidewalk"]))
    g = np.clip((c.v - 0.76) / 0.24, 0, 1)
    c.fill(np.full((c.b, 1, 1), 0.76, F), c.lit(STREET["road"]) * (0.7 + 0.3 * g) + c.hz * 0.3 * (1 - g))
    dash = ((c.u64 * 2.5) % 1.0 < 0.5).astype(F)
    c.paint((np.abs(c.v - 0.88) < 0.6 * c.px) & (dash > 0), c.lit(STREET["line"]))
    lamps(c, 104, 0.65, 0.75, 0.3, c.lit(STREET["pole"], 0.3), rgb_array(STREET["lamp"]),
           0.2 + 0.8 * c.dark)
    noise = unit_float(hash_keys(c.seed, 105, c.col, c.row)) - 0.5
    c.img += noise * (2 * FILM_GRAIN)
    c.img *= np.asarray(STREET["tint"], F).reshape(3, 1, 1, 1)


PAINTERS = dict(zip(FAMILIES, (_city_night, _mountain_twilight, _snowy_skiers, _cartoon_nature,   # family -> painter
                               _anime_landscape, _forest_brook, _lalaland_beach, _shooting_stars,
                               _palm_beach, _beach_street_sunset)))
