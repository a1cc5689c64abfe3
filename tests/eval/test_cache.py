"""Result cache: key stability, atomic writes, crash leftovers, resume."""
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from gvcf.eval.cache import STALE_TMP_SECONDS, TMP_PREFIX, ResultCache, canonical_json, config_key

CONFIG = {"method": "gf", "sampler": "ddim", "stride": 16, "seed": 3, "alpha": 0.4,
          "prompt": "A photo of a city skyline at night", "size": [512, 3584]}


def _image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))


def test_key_order_irrelevant_and_fields_matter():
    shuffled = dict(reversed(list(CONFIG.items())))
    assert config_key(shuffled) == config_key(CONFIG)
    assert config_key({"a": {"x": 1, "y": 2}}) == config_key({"a": {"y": 2, "x": 1}})
    for field, value in [("stride", 8), ("alpha", 0.5), ("alpha", 0.4000000001), ("prompt", "x"),
                         ("size", [512, 2048]), ("extra", None)]:
        assert config_key({**CONFIG, field: value}) != config_key(CONFIG), field
    assert config_key({**CONFIG, "alpha": np.float64(0.4)}) == config_key(CONFIG)
    assert config_key({**CONFIG, "size": (512, 3584)}) == config_key(CONFIG)
    assert config_key({"x": -0.0}) == config_key({"x": 0.0})
    assert len(config_key(CONFIG)) == 64 and json.loads(canonical_json(CONFIG)) == CONFIG


def test_key_rejects_bad_configs():
    for bad in [{"x": float("nan")}, {"x": object()}, {1: "a"}, ["not", "a", "dict"]]:
        with pytest.raises(ValueError):
            config_key(bad)


def test_put_get_roundtrip_and_sidecar(tmp_path):
    cache = ResultCache(tmp_path)
    assert cache.get(CONFIG) is None
    image = _image(0)
    cache.put(CONFIG, image, {"seconds": 1.5, "hardware": {"gpu": "none"}})
    got = cache.get(CONFIG)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(image))
    meta = json.loads(cache.meta_path(CONFIG).read_text())
    assert meta["config"] == CONFIG and meta["meta"]["seconds"] == 1.5
    assert cache.path_for(CONFIG).name == config_key(CONFIG) + ".png"
    assert not list(tmp_path.glob(TMP_PREFIX + "*"))


def test_crash_leftovers_are_not_results(tmp_path):
    cache = ResultCache(tmp_path)
    # killed while writing the image: only a temp file exists
    (tmp_path / (TMP_PREFIX + "abc")).write_bytes(b"\x89PNG partial")
    assert cache.get(CONFIG) is None and list(cache.iter_missing([CONFIG])) == [CONFIG]
    # image in place but killed before the sidecar landed
    cache.put(CONFIG, _image(1), {})
    cache.meta_path(CONFIG).unlink()
    assert cache.get(CONFIG) is None and not cache.has(CONFIG)
    # truncated image under a finished sidecar (disk trouble, manual copy): not taken
    cache.put(CONFIG, _image(1), {})
    data = cache.path_for(CONFIG).read_bytes()
    cache.path_for(CONFIG).write_bytes(data[: len(data) // 2])
    assert cache.get(CONFIG) is None and not cache.has(CONFIG)
    # same size but corrupted bytes: caught by the sha256
    cache.put(CONFIG, _image(1), {})
    data = bytearray(cache.path_for(CONFIG).read_bytes())
    data[-20] ^= 0xFF
    cache.path_for(CONFIG).write_bytes(bytes(data))
    assert cache.has(CONFIG) and cache.get(CONFIG) is None
    assert not cache.has(CONFIG, verify=True) and list(cache.iter_missing([CONFIG])) == [CONFIG]  # resume remakes it
    assert list(cache.iter_missing([CONFIG], verify=False)) == []


def test_stale_temp_files_cleaned(tmp_path):
    stale, fresh = tmp_path / (TMP_PREFIX + "old"), tmp_path / (TMP_PREFIX + "new")
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    old = time.time() - 2 * STALE_TMP_SECONDS
    os.utime(stale, (old, old))
    ResultCache(tmp_path)
    assert not stale.exists() and fresh.exists()  # a live writer's temp file is left alone


def test_failed_write_leaves_no_entry(tmp_path):
    cache = ResultCache(tmp_path)

    class Broken(Image.Image):
        def save(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(ValueError, match="image"):
        cache.put(CONFIG, np.zeros((4, 4, 3)), {})
    broken = Broken()
    with pytest.raises(OSError):
        cache.put(CONFIG, broken, {})
    assert cache.get(CONFIG) is None and not list(tmp_path.iterdir())


def test_resume_calls_make_only_for_missing(tmp_path):
    configs = [{**CONFIG, "seed": s} for s in range(5)]
    calls = []

    def maker(seed):
        def make():
            calls.append(seed)
            return _image(seed)
        return make

    cache = ResultCache(tmp_path)
    for c in configs[:2]:
        cache.get_or_make(c, maker(c["seed"]))
    assert calls == [0, 1]
    resumed = ResultCache(tmp_path)  # as after a restart
    assert [c["seed"] for c in resumed.iter_missing(configs)] == [2, 3, 4]
    images = [resumed.get_or_make(c, maker(c["seed"])) for c in configs]
    assert calls == [0, 1, 2, 3, 4]
    assert all(np.array_equal(np.asarray(im), np.asarray(_image(c["seed"]))) for im, c in zip(images, configs))
    meta = json.loads(resumed.meta_path(configs[3]).read_text())["meta"]
    assert meta["seconds"] >= 0 and "machine" in meta["hardware"]
    assert list(resumed.iter_missing(configs)) == []
