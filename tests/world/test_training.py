"""The trainer: a few steps save a Stable Diffusion folder that diffusers and gvcf both load; deterministic; resumes."""
import json
import re

import pytest
import torch

import gvcf
from gvcf.world.training import TrainConfig, train_embedded

SMOKE = TrainConfig(vae_steps=3, unet_steps=3, decoder_steps=3, decoder_batch=4, n_latents=64, eval_views=8,
                    checkpoint_every=2,
                    vae_channels=(8, 16, 16), unet_channels=(16, 32, 32), attention_head_dim=8, text_hidden=16)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "model"
    stats = train_embedded(out, SMOKE, progress=False)
    return out, stats


def test_saves_a_stable_diffusion_folder(trained):
    from diffusers import StableDiffusionPipeline

    out, stats = trained
    for sub in ("tokenizer", "text_encoder", "unet", "vae", "scheduler"):
        assert (out / sub).is_dir()
    # weights are stored in float16; transformers keeps that dtype unless told, so diffusers users pass float32
    pipe = StableDiffusionPipeline.from_pretrained(out, torch_dtype=torch.float32)
    assert pipe.tokenizer("A beach with palm trees").input_ids[:3] == [49406, 320, 2117]
    image = pipe("A beach with palm trees", num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (64, 64, 3)   # diffusers' own pipeline runs the folder, pooled text path included
    model = gvcf.load_model(str(out), device="cpu")
    assert model.native_size == 64 and model.vae_scale_factor == 4 and model.latent_channels == 4
    assert model.vae.config.scaling_factor == pytest.approx(1 / stats["latent_std"])
    r = gvcf.generate(model, "a mountain range at night", width=128, stride=48, sampler="ddim", steps=2, progress=False)
    assert r.image.size == (128, 64)
    assert json.loads((out / "train_config.json").read_text())["unet_steps"] == 3
    latents = torch.load(out.with_name(out.name + ".work") / "latents.pt", weights_only=False)["latents"]
    assert latents.shape == (SMOKE.n_latents, 4, 16, 16)   # exactly n_latents, not rounded up to a chunk
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text())["clip_sample"] is False


@pytest.mark.slow   # fast: test_a_run_killed_mid_stage_resumes_to_the_same_weights[vae] (determinism and resume)
def test_deterministic_and_resumes(trained, tmp_path):
    out, _ = trained
    again = tmp_path / "again"
    train_embedded(again, SMOKE, progress=False)
    _assert_same_weights(out, again, ("unet", "vae"))
    # a finished run resumes from its checkpoints: no step is repeated, the weights stay the same
    log_lines = len((again / "training_log.csv").read_text().splitlines()) if (again / "training_log.csv").exists() else 0
    train_embedded(again, SMOKE, progress=False, overwrite=True)
    _assert_same_weights(out, again, ("unet",))
    new_lines = len((again / "training_log.csv").read_text().splitlines()) if (again / "training_log.csv").exists() else 0
    assert new_lines == log_lines


def test_bad_config():
    with pytest.raises(ValueError, match="steps"):
        train_embedded("/tmp/never", TrainConfig(vae_steps=0))
    with pytest.raises(ValueError, match="decoder_steps"):
        train_embedded("/tmp/never", TrainConfig(decoder_steps=-1))
    with pytest.raises(ValueError, match="n_latents"):
        train_embedded("/tmp/never", TrainConfig(n_latents=0))
    with pytest.raises(ValueError, match="decoder_lpips_net"):
        train_embedded("/tmp/never", TrainConfig(decoder_lpips_net="squeeze"))
    with pytest.raises(ValueError, match="decoder_autocast"):
        train_embedded("/tmp/never", TrainConfig(decoder_autocast="float16"))


def test_decoder_fine_tune_keeps_the_latent_space(trained, tmp_path):
    """The last stage trains only post_quant_conv + decoder: the encoder (so the UNet's latents) is untouched."""
    import dataclasses

    out, _ = trained
    plain = tmp_path / "plain"
    train_embedded(plain, dataclasses.replace(SMOKE, decoder_steps=0), progress=False)
    tuned_model, base_model = gvcf.load_model(str(out), device="cpu"), gvcf.load_model(str(plain), device="cpu")
    tuned, base = tuned_model.vae.state_dict(), base_model.vae.state_dict()
    fixed = [k for k in base if k.startswith(("encoder.", "quant_conv."))]
    moved = [k for k in base if k.startswith(("decoder.", "post_quant_conv."))]
    assert fixed and moved
    assert all(torch.equal(tuned[k], base[k]) for k in fixed)
    assert sum(not torch.equal(tuned[k], base[k]) for k in moved) > len(moved) // 2
    a, b = tuned_model.unet.state_dict(), base_model.unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refuses_to_resume_another_configs_checkpoints(trained, tmp_path):
    import dataclasses

    out, _ = trained
    work = out.with_name(out.name + ".work")
    assert (work / "train_config.json").exists()
    other = dataclasses.replace(SMOKE, unet_steps=5)
    with pytest.raises(ValueError, match=r"work: .*another training config.*unet_steps"):
        train_embedded(out, other, progress=False, overwrite=True)


def test_whitening_keeps_reconstructions_and_standardises_latents():
    import numpy as np

    from gvcf.world import scenes as world
    from gvcf.world.training import build_vae, latent_moments, to_unit, whiten_latents

    cfg = TrainConfig(vae_channels=(8, 16, 16), eval_views=8)
    torch.manual_seed(0)
    vae = build_vae(cfg).eval()
    x = to_unit(world.sample_views(np.random.default_rng(1), 8, 64)[0])
    with torch.no_grad():
        before = vae.encode(x).latent_dist
        rec = vae.decode(before.mean).sample
        mean, std = latent_moments(vae, cfg, n=64)
        assert (std - 1).abs().max() > 0.1 or mean.abs().max() > 0.1   # the random VAE is not already white
        whiten_latents(vae, mean, std)
        after = vae.encode(x).latent_dist
        torch.testing.assert_close(after.mean, (before.mean - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1),
                                   rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(after.std, before.std / std.view(1, -1, 1, 1), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(vae.decode(after.mean).sample, rec, rtol=1e-4, atol=1e-5)
        m2, s2 = latent_moments(vae, cfg, n=64)
    torch.testing.assert_close(m2, torch.zeros_like(m2), atol=1e-4, rtol=0)
    torch.testing.assert_close(s2, torch.ones_like(s2), atol=1e-4, rtol=0)


def _assert_same_weights(dir_a, dir_b, parts=("vae", "unet", "text_encoder")):
    a, b = gvcf.load_model(str(dir_a), device="cpu"), gvcf.load_model(str(dir_b), device="cpu")
    for name in parts:
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name


def _checkpoint_bytes(work):
    from gvcf.world.train_config import STAGES

    return {s: (work / st["file"]).read_bytes() for s, st in STAGES.items()}


def _copy_work(out, work):
    """A copy of the trained fixture's work folder; its checkpoints' bytes."""
    import shutil

    shutil.copytree(out.with_name(out.name + ".work"), work)
    return _checkpoint_bytes(work)


@pytest.mark.parametrize("change, stale", [
    (dict(decoder_lpips_net="alex", decoder_autocast="float32", decoder_lr=1e-3), ["decoder"]),
    pytest.param(dict(unet_lr=3e-4), ["unet"], marks=pytest.mark.slow),   # the fast tier retrains the decoder only
    pytest.param(dict(n_latents=48), ["latents", "unet"], marks=pytest.mark.slow),
])
def test_retrain_stale_retrains_only_the_stages_a_change_reaches(trained, tmp_path, change, stale):
    """A work folder of another config is refused, unless retrain_stale: then the stages the change reaches are
    retrained from the others, and the weights equal a fresh run of the new config (each stage has its own streams)."""
    import dataclasses

    from gvcf.world.train_config import STAGES, load_config

    out, _ = trained
    cfg = dataclasses.replace(SMOKE, **change)
    fresh = tmp_path / "fresh"
    train_embedded(fresh, cfg, progress=False)
    reused, work = tmp_path / "reused", tmp_path / "reused.work"
    before = _copy_work(out, work)
    with pytest.raises(ValueError, match=rf"another training config.*stages {re.escape(repr(stale))} are stale.*retrain_stale"):
        train_embedded(reused, cfg, progress=False)
    assert _checkpoint_bytes(work) == before   # refused: nothing touched
    assert load_config(work / "train_config.json") == SMOKE
    train_embedded(reused, cfg, progress=False, retrain_stale=True)
    assert load_config(work / "train_config.json") == cfg
    after = _checkpoint_bytes(work)
    for s in STAGES:   # the stages the change does not reach were resumed, not retrained
        assert (after[s] == before[s]) == (s not in stale), s
    _assert_same_weights(fresh, reused)
    # and the change mattered: some weights differ from the original config's
    base, a = gvcf.load_model(str(out), device="cpu"), gvcf.load_model(str(fresh), device="cpu")
    name = "vae" if stale == ["decoder"] else "unet"
    sa, sb = getattr(base, name).state_dict(), getattr(a, name).state_dict()
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)


def test_every_config_field_belongs_to_one_stage_or_to_the_output():
    import dataclasses

    from gvcf.world.train_config import OUTPUT_FIELDS, STAGES

    placed = [f for st in STAGES.values() for f in st["fields"]] + list(OUTPUT_FIELDS)
    assert sorted(placed) == sorted(f.name for f in dataclasses.fields(TrainConfig))   # none missing, none twice
    assert list(STAGES) == ["vae", "latents", "unet", "decoder"]   # training order: inputs come first
    for name, st in STAGES.items():
        assert all(list(STAGES).index(a) < list(STAGES).index(name) for a in st["after"])


@pytest.mark.parametrize("change, stale", [
    (dict(eval_views=4, save_dtype="float32"), []),
    (dict(decoder_steps=5), ["decoder"]),
    (dict(caption_dropout=0.2), ["unet"]),
    (dict(n_latents=10), ["latents", "unet"]),
    (dict(vae_lr=1e-3), ["vae", "latents", "unet", "decoder"]),
    (dict(seed=1), ["vae", "latents", "unet", "decoder"]),
])
def test_stale_stages(change, stale):
    import dataclasses

    from gvcf.world.train_config import stale_stages

    assert stale_stages(SMOKE, dataclasses.replace(SMOKE, **change)) == stale
    assert stale_stages(SMOKE, SMOKE) == []


def test_an_output_only_change_resumes_without_retraining(trained, tmp_path):
    import dataclasses

    from gvcf.world.train_config import load_config

    out, _ = trained
    reused, work = tmp_path / "reused", tmp_path / "reused.work"
    before = _copy_work(out, work)
    cfg = dataclasses.replace(SMOKE, save_dtype="float32")
    train_embedded(reused, cfg, progress=False)   # no stage reads save_dtype: nothing is stale, nothing refused
    assert _checkpoint_bytes(work) == before
    assert load_config(work / "train_config.json") == cfg
    from safetensors.torch import load_file

    saved = load_file(reused / "unet" / "diffusion_pytorch_model.safetensors")   # the output did change
    assert {t.dtype for t in saved.values()} == {torch.float32}


def test_the_log_forgets_the_steps_a_resumed_stage_repeats(tmp_path):
    import pandas as pd

    from gvcf.world.stage_loop import LossLog

    log = LossLog(tmp_path / "log.csv")
    log.forget("unet", 0)   # no file yet: nothing to do
    for stage, steps in (("vae", (25, 50)), ("unet", (25, 50, 75))):
        for step in steps:
            log.write(stage, step, 0.5, float(step))
    log.forget("unet", 50)   # a checkpoint at 50: step 75 will be logged again
    log.forget("vae", 50)
    rows = pd.read_csv(tmp_path / "log.csv")
    assert list(zip(rows.stage, rows.step)) == [("vae", 25), ("vae", 50), ("unet", 25), ("unet", 50)]
    log.forget("unet", 0)   # a retrained stage: all of its rows go, the others stay
    rows = pd.read_csv(tmp_path / "log.csv")
    assert list(zip(rows.stage, rows.step)) == [("vae", 25), ("vae", 50)]


def test_train_embedded_command_line_settings():
    from gvcf.cli import _parse_settings, main

    parsed = _parse_settings(SMOKE, ["decoder_lr=1e-3", "vae_channels=8,16,32", "pooled_text=false", "seed=3",
                                     "decoder_lpips_net=alex"])
    assert parsed == dict(decoder_lr=1e-3, vae_channels=(8, 16, 32), pooled_text=False, seed=3, decoder_lpips_net="alex")
    for bad, match in (("decoder_rate=1", "--set: expected FIELD=VALUE"), ("seed", "--set: expected FIELD=VALUE"),
                       ("seed=1.5", "--set seed: expected a int"), ("pooled_text=maybe", "--set pooled_text")):
        with pytest.raises(ValueError, match=match):
            _parse_settings(SMOKE, [bad])
    with pytest.raises(SystemExit, match="gvcf: error: --set seed"):   # the command line reports it, before training
        main(["train-embedded", "--out", "/tmp/never", "--set", "seed=x"])


@pytest.mark.parametrize("stage", ["vae", pytest.param("unet", marks=pytest.mark.slow),
                                   pytest.param("decoder", marks=pytest.mark.slow)])
def test_a_run_killed_mid_stage_resumes_to_the_same_weights(trained, tmp_path, monkeypatch, stage):
    """Killed right after the stage's step-2 checkpoint (of 3), a rerun goes on from it: weights, optimizer, EMA and
    random streams resume, so the result equals the uninterrupted run bit for bit."""
    import gvcf.world.stage_loop as stage_loop
    from gvcf.world.train_config import STAGES

    out, _ = trained
    save = stage_loop.atomic_save

    def save_then_die(obj, path):
        save(obj, path)
        if path.name == STAGES[stage]["file"] and isinstance(obj, dict) and obj.get("step") == 2:
            raise KeyboardInterrupt

    again = tmp_path / "again"
    monkeypatch.setattr(stage_loop, "atomic_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_embedded(again, SMOKE, progress=False)
    assert not again.exists() and not list(tmp_path.glob("again.*coming"))   # the model folder comes at the end
    monkeypatch.setattr(stage_loop, "atomic_save", save)
    train_embedded(again, SMOKE, progress=False)
    _assert_same_weights(out, again)


def _tree_bytes(folder):
    """{relative path: bytes} of every file under folder."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_refuses_to_write_into_a_folder_that_holds_files(trained, tmp_path, monkeypatch):
    """Without overwrite, a model folder (or any folder with files) is refused before anything is trained or
    written: the folder and its work folder stay byte for byte the same."""
    import gvcf.world.training as training
    from gvcf.cli import main
    from gvcf.engine.models import EMBEDDED_FOLDER, models_root

    out, _ = trained
    before, work_before = _tree_bytes(out), _tree_bytes(out.with_name(out.name + ".work"))
    monkeypatch.setattr(training, "_train", lambda *a: pytest.fail("training started"))
    with pytest.raises(ValueError, match=rf"out: {out} already holds a model \(model_index.json, .*--overwrite"):
        train_embedded(out, SMOKE, progress=False)
    with pytest.raises(ValueError, match="out: .* already holds a model"):   # refused before the config is compared
        train_embedded(out, TrainConfig(unet_steps=5), progress=False, retrain_stale=True)
    assert _tree_bytes(out) == before and _tree_bytes(out.with_name(out.name + ".work")) == work_before
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"out: .*stray already holds files \(notes.txt\)"):
        train_embedded(stray, SMOKE, progress=False)
    assert not (tmp_path / "stray.work").exists()
    with pytest.raises(ValueError, match=r"out: .*notes.txt is a file, not a folder"):
        train_embedded(stray / "notes.txt", SMOKE, progress=False, overwrite=True)
    # the command line's default --out is the bundled model, from any folder: refused without --overwrite
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=rf"gvcf: error: out: {models_root() / EMBEDDED_FOLDER} already holds the "
                                         rf"bundled model \(README.md, .*--overwrite"):
        main(["train-embedded", "--smoke"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stray"]


def test_stage_plan(tmp_path):
    from gvcf.world.train_config import stage_plan

    assert stage_plan(SMOKE, tmp_path) == f"no checkpoints in {tmp_path}: every stage is trained from scratch " \
                                          f"(vae, latents, unet, decoder)"
    (tmp_path / "vae.pt").write_bytes(b"")
    (tmp_path / "latents.pt").write_bytes(b"")
    assert stage_plan(SMOKE, tmp_path) == f"checkpoints in {tmp_path}: vae, latents (resumed where they stopped); " \
                                          f"trained from scratch: unet, decoder"
    import dataclasses

    assert stage_plan(dataclasses.replace(SMOKE, decoder_steps=0), tmp_path).endswith("trained from scratch: unet")


@pytest.mark.slow   # four more trainings; the fast tier: a killed stage leaves no model folder (..._mid_stage_...)
def test_a_killed_run_leaves_the_model_folder_as_it_was(trained, tmp_path, monkeypatch, capsys):
    """Killed in a stage, while the new folder is written, or between the two renames that swap it in: the model
    folder is the previous version (or, for a moment, absent with the previous one beside it, put back by the next
    run); the next run replaces it whole, keeping the files it does not write (the model card)."""
    import os
    import shutil

    import gvcf.world.training as training

    out, _ = trained
    model, work = tmp_path / "model", tmp_path / "model.work"
    shutil.copytree(out, model)
    _copy_work(out, work)
    (model / "README.md").write_text("the model card")
    # the log of a run from before it lived in the work folder (SMOKE logs no row: it logs every 25 steps)
    assert not (work / "training_log.csv").exists()
    (model / "training_log.csv").write_text("stage,step,loss,seconds\nvae,2,0.5,1.0\nunet,3,0.4,2.0\n")
    before = _tree_bytes(model)

    def die(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_decoder", die)
    with pytest.raises(KeyboardInterrupt):
        train_embedded(model, SMOKE, progress=False, overwrite=True)
    assert _tree_bytes(model) == before
    monkeypatch.undo()

    save = training.save_pipeline
    monkeypatch.setattr(training, "save_pipeline", lambda folder, *a: (save(folder, *a), die()))
    with pytest.raises(KeyboardInterrupt):
        train_embedded(model, SMOKE, progress=False, overwrite=True)
    assert _tree_bytes(model) == before and (tmp_path / "model.incoming").is_dir()   # half a new folder, beside it
    monkeypatch.undo()

    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: die() if str(src).endswith(".incoming") else replace(src, dst))
    with pytest.raises(KeyboardInterrupt):
        train_embedded(model, SMOKE, progress=False, overwrite=True)
    monkeypatch.undo()
    assert not model.exists() and _tree_bytes(tmp_path / "model.outgoing") == before

    train_embedded(model, SMOKE, progress=True, overwrite=True)
    err = capsys.readouterr().err
    assert f"checkpoints in {work}: vae, latents, unet, decoder (resumed where they stopped); no stage" in err
    assert f"kept README.md of the previous {model}" in err
    after = _tree_bytes(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.work"]
    # resumed from finished checkpoints: the same files, byte for byte, but the timings
    assert {k: v for k, v in after.items() if k != "training_stats.json"} == \
        {k: v for k, v in before.items() if k != "training_stats.json"}
    assert (work / "training_log.csv").read_bytes() == before["training_log.csv"]   # the log goes on in the work folder
