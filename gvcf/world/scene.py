"""What a scene is: the ten scene families (one per paper prompt), the times of day, and the Scene record with its
seeded random draw."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .palette import N_PALETTES

FAMILIES = ("city_night", "mountain_twilight", "snowy_skiers", "cartoon_nature", "anime_landscape",
            "forest_brook", "lalaland_beach", "shooting_stars", "palm_beach", "beach_street_sunset")
TIMES = ("noon", "sunset", "twilight", "night")
# time of day each paper prompt implies (stated or, when unstated, the family's natural one)
PROMPT_TIME = dict(zip(FAMILIES, ("night", "twilight", "noon", "noon", "noon",
                                  "noon", "twilight", "night", "noon", "sunset")))

PROMPT_TIME_PROB = 0.55      # P(scene time == the prompt's time); the rest is uniform over others


@dataclass(frozen=True)
class Scene:
    """Everything needed to render a panorama; hashable."""
    family: str
    time: str
    seed: int
    density: float = 0.6
    palette: int = 0
    roughness: float = 0.5


def check_family_and_time(family: str | None, time: str | None) -> None:
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if time is not None and time not in TIMES:
        raise ValueError(f"time must be one of {TIMES}, got {time!r}")


def sample_scene(rng: np.random.Generator, family: str | None = None, time: str | None = None) -> Scene:
    """A random scene; family uniform, time biased towards the family's paper-prompt time."""
    check_family_and_time(family, time)
    family = family or FAMILIES[int(rng.integers(len(FAMILIES)))]
    if time is None:
        pt = PROMPT_TIME[family]
        others = [t for t in TIMES if t != pt]
        time = pt if rng.random() < PROMPT_TIME_PROB else others[int(rng.integers(len(others)))]
    return Scene(family, time, int(rng.integers(2 ** 31)), round(float(rng.uniform(0.2, 1.0)), 4),
                 int(rng.integers(N_PALETTES)), round(float(rng.uniform(0.0, 1.0)), 4))

