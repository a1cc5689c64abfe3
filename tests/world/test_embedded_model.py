"""The committed bundled model loads offline and makes non-degenerate panoramas that depend on the prompt."""
import numpy as np
import pytest

import gvcf
from gvcf.engine.generate import DEFAULT_GUIDANCE
from gvcf.engine.models import EMBEDDED_FOLDER, models_root
from gvcf.engine.views import DEFAULT_WIDTH_VIEWS, stride_pixels

pytestmark = pytest.mark.skipif(not (models_root() / EMBEDDED_FOLDER / "model_index.json").exists(),
                                reason="bundled model not present")


@pytest.fixture(scope="module")
def model():
    return gvcf.load_model("embedded", device="cpu")


def test_loads_offline_with_sd_geometry(model):
    assert (model.native_size, model.vae_scale_factor, model.latent_channels) == (64, 4, 4)
    assert model.scheduler_config["num_train_timesteps"] == 1000


def test_scheduler_config_is_sd2s_and_does_not_clip_latents(model):
    from diffusers import DDIMScheduler, DDPMScheduler

    from gvcf.engine.archs import SD2_SCHEDULER

    assert {k: model.scheduler_config[k] for k in SD2_SCHEDULER if not k.startswith("_")} == \
        {k: v for k, v in SD2_SCHEDULER.items() if not k.startswith("_")}
    # DDIM and DDPM default to clip_sample=True (x_0 clamped to [-1, 1], meant for pixels): the file says false
    for scheduler in (DDIMScheduler, DDPMScheduler):
        assert scheduler.from_config(model.scheduler_config).config.clip_sample is False


def test_ddim_with_guidance_follows_the_prompt(model):
    # the paper's deterministic setting: GF + DDIM at guidance 7.5; with clipped x_0 both came out one haze
    kw = dict(fusion="gf", sampler="ddim", steps=25, guidance_scale=DEFAULT_GUIDANCE, seed=0, progress=False)
    night = np.asarray(gvcf.generate(model, "A photo of a city skyline at night", **kw).image, dtype=float)
    noon = np.asarray(gvcf.generate(model, "A beach with palm trees", **kw).image, dtype=float)
    assert night.mean() + 40 < noon.mean()


@pytest.mark.slow   # DDPM 50 on two 448 px panoramas (~18 s); the fast tier: the DDIM test above
def test_panorama_is_not_degenerate_and_prompts_change_it(model):
    # DDPM with Variance-Corrected Fusion, the paper's stochastic setting
    # the paper's canvas on 64 px views: 7 views wide (448 px) at a stride of 3/4 of a view (48 px)
    width = DEFAULT_WIDTH_VIEWS * model.native_size
    kw = dict(width=width, stride=stride_pixels(model.native_size, model.vae_scale_factor), fusion="gvcf",
              sampler="ddpm", steps=50, seed=0, progress=False)
    city = np.asarray(gvcf.generate(model, "A photo of a city skyline at night", **kw).image, dtype=float)
    beach = np.asarray(gvcf.generate(model, "A beach with palm trees", **kw).image, dtype=float)
    assert city.shape == (model.native_size, width, 3)
    from gvcf.world import scenes as world

    for prompt, image in (("A photo of a city skyline at night", city), ("A beach with palm trees", beach)):
        real = world.real_panoramas(prompt, 4, width).astype(float)
        assert image.std() > 0.5 * np.mean([r.std() for r in real])   # not flat: contrast like its world's
        assert np.abs(np.diff(image, axis=1)).mean() > 1         # has structure
    assert np.abs(city - beach).mean() > 20                      # the prompt matters
    assert city.mean() < beach.mean()                            # a night city is darker than a beach at noon
