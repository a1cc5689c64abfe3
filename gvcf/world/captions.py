"""Captions and prompts: a small grammar that describes a scene (the paper prompt verbatim, or a subject and a
time-of-day phrase), and the keywords that read a prompt back into a scene family and time of day."""
from __future__ import annotations

import re

import numpy as np

from ..paper.constants import PAPER_PROMPTS   # one family per prompt, in this order
from .scene import FAMILIES, PROMPT_TIME, Scene, check_family_and_time, sample_scene

VERBATIM_PROB = 0.55         # P(caption == paper prompt | time matches): ~30% of all captions

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
    check_family_and_time(scene.family, scene.time)
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
