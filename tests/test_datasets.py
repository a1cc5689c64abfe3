"""Datasets: identical whatever the number of ranks, resumable after a kill, bad configs fail before generating."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gvcf import datasets
from gvcf.datasets import DatasetConfig
from gvcf.models import load_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, tiny_pipe):
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_pipe.save_pretrained(path)
    return path


def config(tiny_folder, out, **kw):
    return DatasetConfig(**(dict(method="gf", model=str(tiny_folder), sampler="ddim", steps=2, stride=8,
                                 prompts=("a beach with palm trees", "a city skyline at night"), n_per_prompt=3,
                                 width_views=3, output=str(out), device="cpu") | kw))


def files(folder):
    return {p.name: p.read_bytes() for p in Path(folder).glob("*.png")}


def test_image_depends_only_on_prompt_and_k(tiny_folder, tmp_path):
    a = config(tiny_folder, tmp_path / "a")
    b = config(tiny_folder, tmp_path / "b", n_per_prompt=5, prompts=("a city skyline at night", "x"))
    keys_a = {(c["prompt"], c["index"]): c for c in a.items()}
    keys_b = {(c["prompt"], c["index"]): c for c in b.items()}
    common = set(keys_a) & set(keys_b)
    assert len(common) == 3 and all(keys_a[k] == keys_b[k] for k in common)


def test_two_processes_make_exactly_the_files_of_one(tiny_folder, tmp_path, tiny_pipe):
    one = config(tiny_folder, tmp_path / "one")
    datasets.generate_dataset(one, rank=0, world_size=1, progress=False)
    two = config(tiny_folder, tmp_path / "two")
    cfg_file = tmp_path / "two.yaml"
    import yaml
    cfg_file.write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                        for k, v in two.__dict__.items()}))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")
    # accelerate's --multi_gpu launcher is torchrun; without GPUs the two processes talk over gloo
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "-m", "gvcf.cli", "dataset", "generate", "--config", str(cfg_file)]
    done = subprocess.run(launcher, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0/2" in done.stdout and "rank 1/2" in done.stdout
    a, b = files(tmp_path / "one"), files(tmp_path / "two")
    assert len(a) == 6 and a == b
    manifests = sorted((tmp_path / "two").glob("manifest-rank*.jsonl"))
    assert [m.name for m in manifests] == ["manifest-rank0000.jsonl", "manifest-rank0001.jsonl"]
    lines = [json.loads(l) for m in manifests for l in m.read_text().splitlines()]
    assert sorted(l["file"] for l in lines) == sorted(a) and all(l["seconds"] > 0 for l in lines)


def test_killed_run_resumes_without_duplicates_or_truncation(tiny_folder, tmp_path, tiny_pipe):
    cfg = config(tiny_folder, tmp_path / "run")
    calls = {"n": 0}
    real = datasets.make_image

    def dying(model, item, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(model, item, **kw)

    datasets.make_image, saved = dying, datasets.make_image
    try:
        with pytest.raises(KeyboardInterrupt):
            datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    finally:
        datasets.make_image = saved
    assert len(files(tmp_path / "run")) == 2
    # a truncated image whose sidecar never landed, and a stray temp file, as a hard kill would leave
    victim = datasets.ResultCache(cfg.output).path_for(cfg.items()[2])
    victim.write_bytes(b"\x89PNG truncated")
    (tmp_path / "run" / ".tmp-abc").write_bytes(b"partial")
    os.utime(tmp_path / "run" / ".tmp-abc", (0, 0))
    made = []
    datasets.make_image = lambda model, item, **kw: made.append(item["index"]) or real(model, item, **kw)
    try:
        datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    finally:
        datasets.make_image = saved
    assert len(made) == 4   # only the missing ones, the truncated one included
    out = files(tmp_path / "run")
    assert len(out) == 6 and not list((tmp_path / "run").glob(".tmp-*"))
    fresh = config(tiny_folder, tmp_path / "fresh")
    datasets.generate_dataset(fresh, rank=0, world_size=1, progress=False)
    assert out == files(tmp_path / "fresh")
    lines = (tmp_path / "run" / "manifest-rank0000.jsonl").read_text().splitlines()
    assert len(lines) == 6 and len({json.loads(l)["file"] for l in lines}) == 6


@pytest.mark.parametrize("field,value", [("method", "avg"), ("sampler", "plms"), ("alpha", 3.0), ("n_per_prompt", 0),
                                         ("stride", -8), ("prompts", []), ("steps", 0)])
def test_bad_field_fails_before_generation(field, value):
    with pytest.raises(ValueError, match=field):
        DatasetConfig(**{field: value})


def test_unknown_field_in_yaml_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: gf\nstrid: 48\n")
    with pytest.raises(ValueError, match="strid"):
        DatasetConfig.from_yaml(path)
    done = subprocess.run([sys.executable, "-m", "gvcf.cli", "dataset", "generate", "--config", str(path)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode != 0 and "strid" in done.stderr


def test_crop_and_features_resumable(tiny_folder, tmp_path):
    cfg = config(tiny_folder, tmp_path / "pan", n_per_prompt=1)
    datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    assert datasets.crop_dataset(tmp_path / "pan", tmp_path / "tiles", 16) == 2 * 3
    assert datasets.crop_dataset(tmp_path / "pan", tmp_path / "tiles", 16) == 0


def test_reference_views_batched_equal_one_by_one(tiny_folder, tmp_path):
    import numpy as np

    cfg = config(tiny_folder, tmp_path / "ref", method="reference", sampler="ddpm", steps=3, n_per_prompt=3)
    batched = [np.asarray(im, dtype=int) for im in datasets.load_images(cfg, progress=False)]
    single = [np.asarray(datasets.make_image(load_model(str(tiny_folder), device="cpu"), item), dtype=int)
              for item in cfg.items()[:2]]
    assert batched[0].shape == (16, 16, 3)
    assert all(abs(a - b).max() <= 1 for a, b in zip(batched, single))


def test_features_sharded_across_ranks_equal_one_process_and_evaluate(tiny_folder, tmp_path):
    import shutil

    import numpy as np

    cfg = config(tiny_folder, tmp_path / "pan", n_per_prompt=2)
    datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    datasets.crop_dataset(tmp_path / "pan", tmp_path / "tiles", 16)
    shutil.copytree(tmp_path / "tiles", tmp_path / "tiles2")
    whole = datasets.folder_features(tmp_path / "tiles")
    datasets.folder_features(tmp_path / "tiles2", rank=1, world_size=2)
    joined = datasets.folder_features(tmp_path / "tiles2", rank=0, world_size=2)
    assert whole.shape == (12, 2048)
    np.testing.assert_allclose(joined, whole, rtol=1e-5, atol=1e-5)
    row = datasets.evaluate_folders(tmp_path / "tiles", tmp_path / "tiles2")
    assert row["fid"] == pytest.approx(0.0, abs=1e-3) and row["clip"] is None and row["giqa_k"] == 12


def test_default_steps_resolve_to_the_same_images():
    a = DatasetConfig(method="gf", sampler="ddim", steps=None)
    b = DatasetConfig(method="gf", sampler="ddim", steps=50)
    assert a.steps == 50 and a.items() == b.items()


def test_folder_features_embed_only_new_files(tmp_path):
    import numpy as np
    from PIL import Image

    calls = []

    def extractor(paths, mode):   # a stand-in network: the image's mean colour, tiled to 2048 columns
        calls.append([Path(p).name for p in paths])
        return np.stack([np.resize(np.asarray(Image.open(p), np.float32).mean((0, 1)), 2048) for p in paths])

    folder = tmp_path / "tiles"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(np.full((8, 8, 3), 10 * k, np.uint8)).save(folder / f"{k}.png")
    first = datasets.folder_features(folder, extractor=extractor)
    assert calls == [["0.png", "1.png", "2.png"]] and first[:, 0].tolist() == [0, 10, 20]
    Image.fromarray(np.full((8, 8, 3), 30, np.uint8)).save(folder / "3.png")
    again = datasets.folder_features(folder, extractor=extractor)
    assert calls[1:] == [["3.png"]]                           # only the new file is embedded
    np.testing.assert_array_equal(again[:3], first)
    assert again[3, 0] == 30
    assert datasets.folder_features(folder, extractor=extractor) is not None and len(calls) == 2   # all cached
    for cache in folder.glob("features-*.npz"):                    # corrupted caches are recomputed, not trusted
        cache.write_bytes(b"not a zip")
    np.testing.assert_array_equal(datasets.folder_features(folder, extractor=extractor), again)
    assert calls[2:] == [["0.png", "1.png", "2.png", "3.png"]]
