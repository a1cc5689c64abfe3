"""The trainer: a few steps save a Stable Diffusion folder that diffusers and gvcf both load; deterministic; resumes."""
import json

import pytest
import torch

import gvcf
from gvcf.training import TrainConfig, train_embedded

SMOKE = TrainConfig(vae_steps=3, unet_steps=3, decoder_steps=3, decoder_batch=4, n_latents=64, eval_views=8,
                    checkpoint_every=2,
                    vae_channels=(8, 16, 16), unet_channels=(16, 32, 32), attention_head_dim=8, text_hidden=16)


@pytest.fixture(scope="module")
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
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text())["clip_sample"] is False


def test_deterministic_and_resumes(trained, tmp_path):
    out, _ = trained
    again = tmp_path / "again"
    train_embedded(again, SMOKE, progress=False)
    a = gvcf.load_model(str(out), device="cpu").unet.state_dict()
    b = gvcf.load_model(str(again), device="cpu").unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    va = gvcf.load_model(str(out), device="cpu").vae.state_dict()
    vb = gvcf.load_model(str(again), device="cpu").vae.state_dict()
    assert all(torch.equal(va[k], vb[k]) for k in va)
    # a finished run resumes from its checkpoints: no step is repeated, the weights stay the same
    log_lines = len((again / "training_log.csv").read_text().splitlines()) if (again / "training_log.csv").exists() else 0
    train_embedded(again, SMOKE, progress=False)
    c = gvcf.load_model(str(again), device="cpu").unet.state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)
    new_lines = len((again / "training_log.csv").read_text().splitlines()) if (again / "training_log.csv").exists() else 0
    assert new_lines == log_lines


def test_bad_config():
    with pytest.raises(ValueError, match="steps"):
        train_embedded("/tmp/never", TrainConfig(vae_steps=0))
    with pytest.raises(ValueError, match="decoder_steps"):
        train_embedded("/tmp/never", TrainConfig(decoder_steps=-1))
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
        train_embedded(out, other, progress=False)


def test_whitening_keeps_reconstructions_and_standardises_latents():
    import numpy as np

    from gvcf import world
    from gvcf.training import build_vae, latent_moments, to_unit, whiten_latents

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


def test_a_new_decoder_recipe_retrains_only_the_last_stage(trained, tmp_path):
    """Deleting decoder.pt and restamping the work folder with another decoder recipe gives the weights a fresh run
    of that recipe gives: the earlier stages do not read the decoder's fields, and each stage has its own streams."""
    import dataclasses
    import shutil

    from gvcf.training import save_config

    out, _ = trained
    recipe = dataclasses.replace(SMOKE, decoder_lpips_net="alex", decoder_autocast="float32", decoder_lr=1e-3)
    fresh = tmp_path / "fresh"
    train_embedded(fresh, recipe, progress=False)
    reused, work = tmp_path / "reused", tmp_path / "reused.work"
    shutil.copytree(out.with_name(out.name + ".work"), work)
    (work / "decoder.pt").unlink()
    save_config(recipe, work / "train_config.json")
    train_embedded(reused, recipe, progress=False)
    a, b = gvcf.load_model(str(fresh), device="cpu"), gvcf.load_model(str(reused), device="cpu")
    for name in ("vae", "unet", "text_encoder"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    # and the recipe mattered: the default recipe's decoder (bfloat16, vgg) differs from this one
    base, recipe_vae = gvcf.load_model(str(out), device="cpu").vae.state_dict(), a.vae.state_dict()
    assert any(not torch.equal(base[k], recipe_vae[k]) for k in base if k.startswith("decoder."))
