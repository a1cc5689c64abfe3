"""Datasets: identical whatever the number of ranks, resumable after a kill, bad configs fail before generating."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gvcf.eval import datasets, metrics
from gvcf.eval.datasets import DatasetConfig
from gvcf.engine.models import load_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, tiny_pipe):
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_pipe.save_pretrained(path)
    return path


def config(tiny_folder, out, **kw):
    return DatasetConfig(**(dict(method="gf", model=str(tiny_folder), sampler="ddim", steps=2, stride=8,
                                 prompts=("a beach with palm trees", "a city skyline at night"), n_per_prompt=3,
                                 width_views=3, output=str(out), device="cpu", canvas_batch=1) | kw))


def files(folder):
    return {p.name: p.read_bytes() for p in Path(folder).glob("*.png")}


def test_image_depends_only_on_prompt_and_k(tiny_folder, tmp_path):
    a = config(tiny_folder, tmp_path / "a")
    b = config(tiny_folder, tmp_path / "b", n_per_prompt=5, prompts=("a city skyline at night", "x"))
    keys_a = {(c["prompt"], c["index"]): c for c in a.items()}
    keys_b = {(c["prompt"], c["index"]): c for c in b.items()}
    common = set(keys_a) & set(keys_b)
    assert len(common) == 3 and all(keys_a[k] == keys_b[k] for k in common)


def write_yaml(cfg, path):
    import yaml

    path.write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.__dict__.items()}))
    return path


def pixels(folder):
    import numpy as np
    from PIL import Image

    return {p.name: np.asarray(Image.open(p), dtype=int) for p in Path(folder).glob("*.png")}


@pytest.mark.slow   # two subprocesses, each importing torch and diffusers
def test_two_processes_make_exactly_the_files_of_one(tiny_folder, tmp_path, tiny_pipe):
    """Sharding across ranks does not change a single byte at equal thread counts; other thread counts give the same
    images up to float rounding."""
    import numpy as np

    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1")
    one = write_yaml(config(tiny_folder, tmp_path / "one"), tmp_path / "one.yaml")
    done = subprocess.run([sys.executable, "-m", "gvcf.cli", "dataset", "generate", "--config", str(one)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    two = write_yaml(config(tiny_folder, tmp_path / "two"), tmp_path / "two.yaml")
    # accelerate's --multi_gpu launcher is torchrun; without GPUs the two processes talk over gloo
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "-m", "gvcf.cli", "dataset", "generate", "--config", str(two)]
    done = subprocess.run(launcher, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0/2" in done.stdout and "rank 1/2" in done.stdout
    a, b = files(tmp_path / "one"), files(tmp_path / "two")
    assert len(a) == 6 and a == b   # both sides at 1 thread: bit-identical
    manifests = sorted((tmp_path / "two").glob("manifest-rank*.jsonl"))
    assert [m.name for m in manifests] == ["manifest-rank0000.jsonl", "manifest-rank0001.jsonl"]
    lines = [json.loads(l) for m in manifests for l in m.read_text().splitlines()]
    assert sorted(l["file"] for l in lines) == sorted(a) and all(l["seconds"] > 0 for l in lines)
    # This process runs 2 threads (conftest), which changes float summation order, so not every byte. Measured on
    # this config at 1 vs 2 threads: 3 of 13,824 values differ, each by 1/255 (mean |diff| 0.0002/255); with 30 images
    # each of MD, GF, VCF and GVCF at 10 steps at most 3 of 69,120 values per method, again by 1 (book/reproduce.md).
    # The bounds leave a 2x (max) and a 45x (mean) margin, yet fail for other images (two images of this set from
    # different seeds differ by a mean of 39 levels, 95% of values by more than 2).
    datasets.generate_dataset(config(tiny_folder, tmp_path / "threads"), rank=0, world_size=1, progress=False)
    p1, p2 = pixels(tmp_path / "one"), pixels(tmp_path / "threads")
    assert sorted(p1) == sorted(p2)
    diff = np.concatenate([np.abs(p1[n] - p2[n]).ravel() for n in p1])
    assert diff.max() <= 2 and diff.mean() <= 0.01, (diff.max(), diff.mean())


def test_killed_run_resumes_without_duplicates_or_truncation(tiny_folder, tmp_path, tiny_pipe):
    cfg = config(tiny_folder, tmp_path / "run")
    calls = {"n": 0}
    real = datasets.make_images

    def dying(model, batch, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(model, batch, **kw)

    datasets.make_images, saved = dying, datasets.make_images
    try:
        with pytest.raises(KeyboardInterrupt):
            datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    finally:
        datasets.make_images = saved
    assert len(files(tmp_path / "run")) == 2
    # a truncated image whose sidecar never landed, and a stray temp file, as a hard kill would leave
    victim = datasets.ResultCache(cfg.output).path_for(cfg.items()[2])
    victim.write_bytes(b"\x89PNG truncated")
    (tmp_path / "run" / ".tmp-abc").write_bytes(b"partial")
    os.utime(tmp_path / "run" / ".tmp-abc", (0, 0))
    made = []
    datasets.make_images = lambda model, batch, **kw: made.extend(it["index"] for it in batch) or real(model, batch,
                                                                                                       **kw)
    try:
        datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    finally:
        datasets.make_images = saved
    assert len(made) == 4   # only the missing ones, the truncated one included
    out = files(tmp_path / "run")
    assert len(out) == 6 and not list((tmp_path / "run").glob(".tmp-*"))
    fresh = config(tiny_folder, tmp_path / "fresh")
    datasets.generate_dataset(fresh, rank=0, world_size=1, progress=False)
    assert out == files(tmp_path / "fresh")
    lines = (tmp_path / "run" / "manifest-rank0000.jsonl").read_text().splitlines()
    assert len(lines) == 6 and len({json.loads(l)["file"] for l in lines}) == 6


@pytest.mark.parametrize("field,value", [("method", "avg"), ("sampler", "plms"), ("alpha", 3.0), ("n_per_prompt", 0),
                                         ("stride", -8), ("prompts", []), ("steps", 0), ("prompts", "A beach"),
                                         ("seed", -1), ("seed", 2**32), ("seed", 1.5), ("guidance_scale", "7"),
                                         ("sync_weight", -1.0), ("n_per_prompt", True), ("width_views", True),
                                         ("stride", True), ("steps", True)])
def test_bad_field_fails_before_generation(field, value):
    with pytest.raises(ValueError, match=field):
        DatasetConfig(**({"prompts": ("a beach",)} | {field: value}))


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
    single = [np.asarray(datasets.make_images(load_model(str(tiny_folder), device="cpu"), [item])[0], dtype=int)
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
    assert tuple(row) == metrics.METRIC_ROW   # the book's keys and scales (kid_e3: KID x 10^3)


def test_default_steps_resolve_to_the_same_images():
    a = DatasetConfig(method="gf", sampler="ddim", steps=None, prompts=("a beach",))
    b = DatasetConfig(method="gf", sampler="ddim", steps=50, prompts=("a beach",))
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


def test_prompts_as_a_bare_string_in_yaml_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: gf\nprompts: A beach\n")
    with pytest.raises(ValueError, match="prompts must be a list.*one-item list"):
        DatasetConfig.from_yaml(path)
    path.write_text("method: gf\nprompts: [A beach]\n")
    assert DatasetConfig.from_yaml(path).prompts == ("A beach",)


@pytest.mark.parametrize("text,problem", [(None, "no such file"), ("dir", "is a directory"),
                                          ("method: gf\nsteps: [1, 2\nstride: 8\n", "invalid YAML at line 3"),
                                          ("- just\n- a list\n", "expected a mapping")])
def test_bad_config_file_is_a_clean_error_naming_it(tmp_path, text, problem):
    from gvcf import cli

    path = tmp_path / "c.yaml"
    if text == "dir":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"config {path}: {problem}")):
        DatasetConfig.from_yaml(path)
    with pytest.raises(SystemExit) as exit:   # the CLI: one line, exit status 1, no traceback
        cli.main(["dataset", "generate", "--config", str(path)])
    assert str(exit.value.code).startswith(f"gvcf: error: config {path}: {problem}")


def counting_make_images(made):
    real = datasets.make_images
    return lambda model, batch, **kw: made.extend((it["prompt"], it["index"]) for it in batch) or real(model, batch,
                                                                                                        **kw)


def test_overwritten_image_of_the_same_size_is_made_again(tiny_folder, tmp_path, monkeypatch):
    cfg = config(tiny_folder, tmp_path / "run", n_per_prompt=1)
    datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    before = files(cfg.output)
    victim = datasets.ResultCache(cfg.output).path_for(cfg.items()[1])
    victim.write_bytes(bytes(victim.stat().st_size))   # zeros, same size: passes a size check
    made = []
    monkeypatch.setattr(datasets, "make_images", counting_make_images(made))
    datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    assert made == [(cfg.prompts[1], 0)] and files(cfg.output) == before


def test_another_config_into_the_same_output_is_refused_but_a_growing_set_is_not(tiny_folder, tmp_path, monkeypatch):
    cfg = config(tiny_folder, tmp_path / "run", n_per_prompt=1)
    datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    saved = json.loads((tmp_path / "run" / datasets.IDENTITY).read_text())
    assert saved["key"] == datasets.dataset_key(cfg) and saved["identity"]["steps"] == 2
    assert "prompts" not in saved["identity"] and "n_per_prompt" not in saved["identity"]
    made = []
    monkeypatch.setattr(datasets, "make_images", counting_make_images(made))
    for changed in (dict(steps=1), dict(seed=1), dict(method="md"), dict(stride=16)):
        with pytest.raises(ValueError, match=f"output .* holds another dataset .*{next(iter(changed))}: "):
            datasets.generate_dataset(config(tiny_folder, tmp_path / "run", n_per_prompt=1, **changed), progress=False)
    (tmp_path / "run" / datasets.IDENTITY).unlink()   # a folder from before identity files: judged by its sidecars
    with pytest.raises(ValueError, match=r"output .* holds another dataset \(steps: 2 there, 1 here\)"):
        datasets.generate_dataset(config(tiny_folder, tmp_path / "run", n_per_prompt=1, steps=1), progress=False)
    assert made == [] and len(files(tmp_path / "run")) == 2
    grown = config(tiny_folder, tmp_path / "run", n_per_prompt=2, prompts=cfg.prompts + ("a forest",), device=None)
    datasets.generate_dataset(grown, rank=0, world_size=1, progress=False)
    assert len(made) == 4 and len(files(tmp_path / "run")) == 6
    assert json.loads((tmp_path / "run" / datasets.IDENTITY).read_text()) == saved


def test_a_second_run_of_the_same_rank_in_the_same_folder_is_refused(tiny_folder, tmp_path, monkeypatch):
    import threading

    cfg = config(tiny_folder, tmp_path / "run", n_per_prompt=1)
    started, release, made = threading.Event(), threading.Event(), []
    real = datasets.make_images

    def slow(model, batch, **kw):
        made.extend(it["index"] for it in batch)
        if len(made) == 1:   # the first run pauses inside its first image, holding the folder
            started.set()
            release.wait(60)
        return real(model, batch, **kw)

    monkeypatch.setattr(datasets, "make_images", slow)
    first = threading.Thread(target=datasets.generate_dataset, args=(cfg,), kwargs=dict(rank=0, world_size=1,
                                                                                      progress=False))
    first.start()
    try:
        assert started.wait(120)
        with pytest.raises(ValueError, match="output .* another run is generating rank 0"):
            datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
        with datasets.hold_output(cfg.output, 1):   # the lock is per rank: rank 1 of a sharded run may go on
            pass
    finally:
        release.set()
        first.join(120)
    assert len(made) == 2   # the refused run made nothing
    lines = (tmp_path / "run" / "manifest-rank0000.jsonl").read_text().splitlines()
    assert sorted(json.loads(l)["file"] for l in lines) == sorted(files(cfg.output)) and len(lines) == 2
    datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)   # the lock went with its run


def write_panoramas(folder, n=3):
    import numpy as np
    from PIL import Image

    folder.mkdir()
    for k in range(n):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (16, 48, 3), dtype=np.uint8)).save(folder / f"{k}.png")


@pytest.mark.parametrize("damage", ["zeros", "flipped byte", "truncated"])
def test_crop_checks_every_image_before_writing_a_tile(tmp_path, damage):
    write_panoramas(tmp_path / "pan")
    victim = tmp_path / "pan" / "2.png"
    data = bytearray(victim.read_bytes())
    if damage == "zeros":
        data = bytes(len(data))
    elif damage == "flipped byte":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) - 30]
    victim.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="src .*: 2.png is not a readable image"):
        datasets.crop_dataset(tmp_path / "pan", tmp_path / "tiles", 16)
    assert not (tmp_path / "tiles").exists()   # checked before any tile (or the folder) is written
    victim.unlink()
    assert datasets.crop_dataset(tmp_path / "pan", tmp_path / "tiles", 16) == 2 * 3


def test_crop_of_a_missing_or_empty_folder_is_an_error(tmp_path):
    from gvcf import cli

    (tmp_path / "empty").mkdir()
    for src, problem in ((tmp_path / "missing", "no such folder"), (tmp_path / "empty", "no .png images")):
        with pytest.raises(ValueError, match=re.escape(f"src {src}: {problem}")):
            datasets.crop_dataset(src, tmp_path / "tiles", 16)
        with pytest.raises(SystemExit) as exit:
            cli.main(["dataset", "crop", "--src", str(src), "--dst", str(tmp_path / "tiles"), "--size", "16"])
        assert str(exit.value.code).startswith(f"gvcf: error: src {src}: {problem}")
    write_panoramas(tmp_path / "pan", 1)
    with pytest.raises(ValueError, match="size"):
        datasets.crop_dataset(tmp_path / "pan", tmp_path / "tiles", 0)


def test_from_yaml_takes_left_out_fields_from_defaults(tmp_path):
    """The CLI's default prompts (the paper's) fill a config that lists none; a config's own prompts win."""
    bare, own = tmp_path / "bare.yaml", tmp_path / "own.yaml"
    bare.write_text("method: md\nsampler: ddim\n")
    own.write_text("method: md\nsampler: ddim\nprompts: [a lake]\n")
    defaults = dict(prompts=("a beach", "a city"))
    assert DatasetConfig.from_yaml(bare, defaults=defaults).prompts == ("a beach", "a city")
    assert DatasetConfig.from_yaml(own, defaults=defaults).prompts == ("a lake",)
    with pytest.raises(ValueError, match="prompts"):
        DatasetConfig.from_yaml(bare)


@pytest.mark.parametrize("method", ["gvcf", pytest.param("sync", marks=pytest.mark.slow)])   # sync: ~25 s
def test_batched_run_makes_the_files_of_a_one_at_a_time_run(tiny_folder, tmp_path, monkeypatch, method):
    """Canvases denoised together (batches of 4 and 2 here) give the images of one-at-a-time runs: the same noise
    per image; only the UNet's batch differs, so pixels may differ by float rounding. Bound: at most 1 level on at
    most 0.1% of values (measured on this CPU: none differ); another seed differs by tens of levels everywhere."""
    import numpy as np

    if method == "sync":   # SyncDiffusion's LPIPS without downloads: a random backbone (the sync tests' stand-in)
        monkeypatch.setattr("gvcf.engine.perceptual.load_lpips", lambda net, device="cpu": _random_lpips())
    kw = dict(method=method, sampler="ddpm" if method == "gvcf" else "ddim", steps=3)
    datasets.generate_dataset(config(tiny_folder, tmp_path / "one", **kw), rank=0, world_size=1, progress=False)
    made = []
    monkeypatch.setattr(datasets, "make_images", counting_make_images(made))
    batched = config(tiny_folder, tmp_path / "four", canvas_batch=4, **kw)
    datasets.generate_dataset(batched, rank=0, world_size=1, progress=False)
    assert len(made) == 6
    one, four = pixels(tmp_path / "one"), pixels(tmp_path / "four")
    assert sorted(one) == sorted(four) and len(one) == 6
    diff = np.concatenate([np.abs(one[n] - four[n]).ravel() for n in one])
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-3, (diff.max(), (diff > 0).mean())
    sides = [json.loads(p.read_text()) for p in (tmp_path / "four").glob("*.json") if p.name != datasets.IDENTITY]
    assert sorted(side["meta"]["batch"] for side in sides) == [2, 2, 4, 4, 4, 4]


def _random_lpips():
    import warnings

    import lpips
    import torch

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval().requires_grad_(False)


def test_canvas_batch_default_fills_one_unet_call(tiny_folder, tmp_path):
    from gvcf.engine.models import auto_view_batch

    model = load_model(str(tiny_folder), device="cpu")
    cfg = config(tiny_folder, tmp_path, canvas_batch=None)
    views = 5   # 3 views wide at stride 8 px of 16 px views: 5 views
    assert datasets.canvas_batch(cfg, model) == auto_view_batch(model, (8, 8), True) // views
    assert datasets.canvas_batch(config(tiny_folder, tmp_path, canvas_batch=3), model) == 3
    with pytest.raises(ValueError, match="canvas_batch"):
        config(tiny_folder, tmp_path, canvas_batch=0)
    assert "canvas_batch" not in cfg.image_config("a", 0)   # how many at once is not part of an image's key


def test_elastic_dataset_is_generate_elastic_and_resumes(tiny_folder, tmp_path):
    """method 'elastic': each image is generate_elastic's for its seed; a second run makes nothing."""
    from gvcf.engine.elastic import generate_elastic

    cfg = config(tiny_folder, tmp_path / "el", method="elastic", stride=None, n_per_prompt=1, width_views=2)
    paths = datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    item = cfg.items()[0]
    want = generate_elastic(load_model(str(tiny_folder), device="cpu"), item["prompt"], height=16, width=32,
                            seed=item["image_seed"], steps=2, progress=False)
    from PIL import Image
    import numpy as np
    assert np.array_equal(np.asarray(Image.open(paths[0])), np.asarray(want.image))
    made = []
    saved = datasets.make_images
    datasets.make_images = lambda model, batch, **kw: made.append(batch) or saved(model, batch, **kw)
    try:
        datasets.generate_dataset(cfg, rank=0, world_size=1, progress=False)
    finally:
        datasets.make_images = saved
    assert made == []
    with pytest.raises(ValueError, match="elastic"):
        DatasetConfig(prompts=("a beach",), method="elastic", sampler="ddpm")


@pytest.mark.parametrize("bad,message", [(dict(steps=5000), "steps must be at most"),
                                         (dict(stride=128), r"stride must be at most one view \(16 px"),
                                         (dict(stride=5), "stride must be a positive multiple"),
                                         (dict(width_views=10**6, stride=8), None),
                                         (dict(model="/no/such/model"), "no such folder")])
def test_a_bad_config_writes_nothing_and_the_corrected_one_then_runs(tiny_folder, tmp_path, monkeypatch, bad,
                                                                     message):
    """Issue 27 item 3: dataset.json was written before steps, stride and model were checked, so the corrected
    config was then refused with 'holds another dataset (steps: 5000 there, 2 here)'."""
    out = tmp_path / "run"
    made = []
    monkeypatch.setattr(datasets, "make_images", counting_make_images(made))
    if message is None:   # a huge canvas is no error of the config: it passes the checks (not run here)
        config(tiny_folder, out, **bad).check_model(load_model(str(tiny_folder), device="cpu"))
        return
    with pytest.raises(ValueError, match=message):
        datasets.generate_dataset(config(tiny_folder, out, n_per_prompt=1, **bad), rank=0, world_size=1,
                                  progress=False)
    assert not out.exists() and made == []
    datasets.generate_dataset(config(tiny_folder, out, n_per_prompt=1), rank=0, world_size=1, progress=False)
    assert len(made) == 2 and (out / datasets.IDENTITY).exists()


def test_a_repeated_prompt_is_refused():
    """Issue 27 item 8: a config with a prompt twice reported 2 images and wrote 1."""
    with pytest.raises(ValueError, match=r"prompts must be distinct .*\['a beach'\]"):
        DatasetConfig(method="md", sampler="ddim", prompts=["a beach", "a forest", "a beach"])


def test_evaluating_a_missing_or_empty_folder_names_it(tmp_path):
    """Issue 27 item 7: `gvcf dataset evaluate` on a missing folder said 'feats_a must be a 2-D array ... (0, 2048)'."""
    with pytest.raises(ValueError, match="generated .*no such folder"):
        datasets.evaluate_folders(tmp_path / "no-such", tmp_path)
    (tmp_path / "ref").mkdir()
    (tmp_path / "gen").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "gen" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "gen" / "b.png")
    with pytest.raises(ValueError, match="reference .*needs at least 2 .png tiles, holds 0"):
        datasets.evaluate_folders(tmp_path / "gen", tmp_path / "ref")
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == ["a.png", "b.png"]   # no feature file written
