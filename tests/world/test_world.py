"""Tests for the procedural panorama world (gvcf.world.scenes)."""
import numpy as np
import pytest

from gvcf.world import scenes as w


def _scene(family, time="noon", seed=7):
    return w.Scene(family, time, seed, density=0.7, palette=1, roughness=0.5)


def _luma(img):
    return (img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).mean()


def test_api_constants():
    assert len(w.FAMILIES) == len(w.PAPER_PROMPTS) == 10
    assert w.TIMES == ("noon", "sunset", "twilight", "night")
    a, b, other = _scene("city_night"), _scene("city_night"), _scene("city_night", seed=8)
    assert a is not b and a == b and hash(a) == hash(b) and {a: 1}[b] == 1   # hashable by value: a key
    assert a != other and len({a, b, other}) == 2


def test_determinism():
    s = _scene("city_night", "night")
    a, b = w.render(s, 128), w.render(s, 128)
    assert a.dtype == np.uint8 and a.shape == (64, 128, 3)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, w.render(_scene("city_night", "night", seed=8), 128))
    v1 = w.sample_views(np.random.default_rng(3), 20)
    v2 = w.sample_views(np.random.default_rng(3), 20)
    assert np.array_equal(v1[0], v2[0]) and v1[1] == v2[1] and np.array_equal(v1[2], v2[2])
    assert not np.array_equal(v1[0], w.sample_views(np.random.default_rng(4), 20)[0])
    assert w.sample_scene(np.random.default_rng(5)) == w.sample_scene(np.random.default_rng(5))


@pytest.mark.parametrize("family", w.FAMILIES)
def test_window_equals_offset_render(family):
    for height in (64, 96):
        s = _scene(family, w.PROMPT_TIME[family], seed=11)
        wide = w.render(s, 7 * height, height, offset=5)
        assert np.array_equal(wide[:, 100:100 + height], w.render(s, height, height, offset=105))
        tiles = [w.render(s, height, height, offset=5 + k * height) for k in range(7)]
        assert np.array_equal(np.concatenate(tiles, 1), wide)


@pytest.mark.parametrize("family", w.FAMILIES)
def test_no_seams_in_panorama(family):
    s = _scene(family, w.PROMPT_TIME[family], seed=13)

    def col_diffs(img):
        return np.abs(np.diff(img.astype(np.float64), axis=1)).mean(axis=(0, 2))

    pano = col_diffs(w.render(s, 448))
    views = np.concatenate([col_diffs(w.render(s, 64, offset=448 + 64 * k)) for k in range(20)])
    assert pano.max() <= 1.5 * views.max() + 2.0
    assert pano.mean() <= 2.0 * views.mean() + 1.0


def test_height_scales_layout():
    for family in w.FAMILIES:
        s = _scene(family, w.PROMPT_TIME[family], seed=17)
        lo = w.render(s, 128, 64, offset=640).astype(np.float64)
        hi = w.render(s, 256, 128, offset=1280).astype(np.float64)
        down = hi.reshape(64, 2, 128, 2, 3).mean(axis=(1, 3))
        assert np.abs(lo - down).mean() < 15, family


@pytest.mark.parametrize("family", w.FAMILIES)
def test_non_degenerate_and_night_darker(family):
    lum = {}
    for t in w.TIMES:
        imgs = [w.render(_scene(family, t, seed), 64, offset=64 * seed) for seed in range(4)]
        for img in imgs:
            assert img.std() > 8, (family, t)
            assert len(np.unique(img.reshape(-1, 3), axis=0)) > 10, (family, t)
        lum[t] = np.mean([_luma(i) for i in imgs])
    assert lum["night"] < 0.7 * lum["noon"], lum
    assert lum["night"] < lum["twilight"] < lum["noon"], lum


def test_families_are_separable():
    def feat(x):
        return x.reshape(len(x), 8, 8, 8, 8, 3).mean(axis=(2, 4)).reshape(len(x), -1)

    cents = np.stack([feat(w.real_views(p, 30, seed=1)).mean(0) for p in w.PAPER_PROMPTS])
    for i, p in enumerate(w.PAPER_PROMPTS):
        x = feat(w.real_views(p, 30, seed=2))
        pred = np.argmin(((x[:, None] - cents[None]) ** 2).sum(-1), axis=1)
        assert (pred == i).mean() >= 0.8, p


def test_paper_prompts_parse_and_are_described():
    rng = np.random.default_rng(0)
    for fam, prompt in zip(w.FAMILIES, w.PAPER_PROMPTS):
        assert w.parse_prompt(prompt) == (fam, w.PROMPT_TIME[fam])
        caps = {w.describe(_scene(fam, w.PROMPT_TIME[fam]), rng) for _ in range(40)}
        assert prompt in caps and len(caps) > 2
        other = next(t for t in w.TIMES if t != w.PROMPT_TIME[fam])
        assert prompt not in {w.describe(_scene(fam, other), rng) for _ in range(40)}


def test_captions_roundtrip_and_mention_time():
    rng = np.random.default_rng(1)
    for fam in w.FAMILIES:
        for t in w.TIMES:
            for _ in range(15):
                cap = w.describe(_scene(fam, t), rng)
                assert w.parse_prompt(cap) == (fam, t), cap


def test_parse_prompt_variants():
    assert w.parse_prompt("a beach at night") == ("palm_beach", "night")
    assert w.parse_prompt("a mountain range at night") == ("mountain_twilight", "night")
    assert w.parse_prompt("mountains at sunset, photo") == ("mountain_twilight", "sunset")
    assert w.parse_prompt("city skyline at dusk") == ("city_night", "twilight")
    assert w.parse_prompt("a street by the beach at noon") == ("beach_street_sunset", "noon")
    assert w.parse_prompt("a cat on a sofa") == (None, None)
    s = w.scene_for_prompt("a beach at night", np.random.default_rng(0))
    assert (s.family, s.time) == ("palm_beach", "night")


def test_sample_views():
    imgs, caps, fam = w.sample_views(np.random.default_rng(2), 60, size=32)
    assert imgs.shape == (60, 32, 32, 3) and imgs.dtype == np.uint8
    assert fam.shape == (60,) and fam.dtype == np.int64 and len(caps) == 60
    assert [w.FAMILIES.index(w.parse_prompt(c)[0]) for c in caps] == fam.tolist()
    assert len(set(fam.tolist())) > 5
    assert 0.1 < np.mean([c in w.PAPER_PROMPTS for c in caps]) < 0.6


def test_real_views_and_panoramas():
    v = w.real_views(w.PAPER_PROMPTS[0], 5, seed=3, size=48)
    assert v.shape == (5, 48, 48, 3) and v.dtype == np.uint8
    assert np.array_equal(v, w.real_views(w.PAPER_PROMPTS[0], 5, seed=3, size=48))
    p = w.real_panoramas(w.PAPER_PROMPTS[8], 3, 448, seed=1)
    assert p.shape == (3, 64, 448, 3) and p.dtype == np.uint8
    assert not np.array_equal(p[0], p[1])


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="family"):
        w.sample_scene(rng, "moon_base")
    with pytest.raises(ValueError, match="time"):
        w.sample_scene(rng, "city_night", "dawn")
    with pytest.raises(ValueError, match="family"):
        w.render(_scene("moon_base"), 64)
    with pytest.raises(ValueError, match="time"):
        w.render(_scene("city_night", "dawn"), 64)
    for width in (0, -5):
        with pytest.raises(ValueError, match="width"):
            w.render(_scene("city_night"), width)
    with pytest.raises(ValueError, match="height"):
        w.render(_scene("city_night"), 64, height=0)
    with pytest.raises(ValueError, match="a cat on a sofa"):
        w.scene_for_prompt("a cat on a sofa", rng)
    with pytest.raises(ValueError, match="width"):
        w.real_panoramas(w.PAPER_PROMPTS[0], 2, 0)
