"""The trainer: a few steps save a Stable Diffusion folder that diffusers and gvcf both load; deterministic; resumes."""
import json

import pytest
import torch

import gvcf
from gvcf.training import TrainConfig, train_embedded

SMOKE = TrainConfig(vae_steps=3, unet_steps=3, n_latents=64, eval_views=8, checkpoint_every=2,
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
    pipe = StableDiffusionPipeline.from_pretrained(out)
    assert pipe.tokenizer("A beach with palm trees").input_ids[:3] == [49406, 320, 2117]
    model = gvcf.load_model(str(out), device="cpu")
    assert model.native_size == 64 and model.vae_scale_factor == 4 and model.latent_channels == 4
    assert model.vae.config.scaling_factor == pytest.approx(1 / stats["latent_std"])
    r = gvcf.generate(model, "a mountain range at night", width=128, stride=48, sampler="ddim", steps=2, progress=False)
    assert r.image.size == (128, 64)
    assert json.loads((out / "train_config.json").read_text())["unet_steps"] == 3


def test_deterministic_and_resumes(trained, tmp_path):
    out, _ = trained
    again = tmp_path / "again"
    train_embedded(again, SMOKE, progress=False)
    a = gvcf.load_model(str(out), device="cpu").unet.state_dict()
    b = gvcf.load_model(str(again), device="cpu").unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
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
