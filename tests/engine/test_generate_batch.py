"""generate_batch(): canvas k of a batch equals generate() for its prompt and seed, whatever the batch."""
import pytest
import torch

import gvcf
from gvcf.engine.models import Model, auto_view_batch
from gvcf.engine.sync import SyncConfig, make_sync_hook

KW = dict(height=16, width=48, stride=8, steps=6, progress=False, output_type="latent")
PROMPTS = ["a beach with palm trees", "a city at night", "a beach with palm trees"]
SEEDS = [3, 8, 21]
# Only the UNet's batch differs from generate (the same noise draws, the same fusion per canvas): float
# reassociation in batched convolutions, relative ~1e-6 here. A different noise draw would differ by O(1).
TOLERANCE = dict(rtol=1e-4, atol=1e-4)

CASES = [("md", "ddim", {}), ("gf", "ddim", {}), ("vcf", "ddpm", {}), ("gvcf", "ddpm", {}),
         ("gvcf", "euler_ancestral", {}), ("gf", "ddim", dict(eta=0.5)), ("gvcf", "ddpm", dict(alpha=0.4)),
         ("md", "ddpm", dict(circular=True, width=64)), ("gf", "ddim", dict(view_batch_size=4))]


@pytest.mark.parametrize("fusion,sampler,kw", CASES)
def test_batch_equals_generate_one_at_a_time(tiny_pipe, fusion, sampler, kw):
    args = KW | dict(fusion=fusion, sampler=sampler) | kw
    batch = gvcf.generate_batch(tiny_pipe, PROMPTS, SEEDS, **args)
    assert len(batch) == 3
    for result, prompt, seed in zip(batch, PROMPTS, SEEDS):
        single = gvcf.generate(tiny_pipe, prompt, seed=seed, **args)
        torch.testing.assert_close(result.latents, single.latents, **TOLERANCE)
        assert result.config == single.config
    assert not torch.allclose(batch[0].latents, batch[2].latents)   # same prompt, another seed: another canvas


def test_one_prompt_for_every_seed_and_decoded_images(tiny_pipe):
    batch = gvcf.generate_batch(tiny_pipe, "a snowy mountain peak", [1, 2], **(KW | dict(output_type="np",
                                                                                        sampler="ddim")))
    single = gvcf.generate(tiny_pipe, "a snowy mountain peak", seed=2, **(KW | dict(output_type="np", sampler="ddim")))
    assert batch[1].image.shape == (16, 48, 3)
    assert abs(batch[1].image - single.image).max() < 1e-4


def test_latents_and_a_shared_reference_noise(tiny_pipe):
    latents = torch.randn(2, 4, 8, 24, generator=torch.Generator().manual_seed(0))
    ref = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    args = KW | dict(sampler="ddim", alpha=0.3, reference_noise=ref)
    batch = gvcf.generate_batch(tiny_pipe, PROMPTS[:2], [5, 6], latents=latents, **args)
    for k in range(2):
        single = gvcf.generate(tiny_pipe, PROMPTS[k], seed=5 + k, latents=latents[k:k + 1], **args)
        torch.testing.assert_close(batch[k].latents, single.latents, **TOLERANCE)


def test_syncdiffusion_per_canvas(tiny_pipe, lpips_net):
    """The view hook runs per canvas (its own anchor view and prompt), as in generate."""
    hook = make_sync_hook(SyncConfig(weight=5.0, threshold=3), lpips=lpips_net)
    args = KW | dict(fusion="md", sampler="ddim", steps=3, view_hook=hook)
    batch = gvcf.generate_batch(tiny_pipe, PROMPTS[:2], [1, 2], **args)
    for k in range(2):
        torch.testing.assert_close(batch[k].latents, gvcf.generate(tiny_pipe, PROMPTS[k], seed=1 + k, **args).latents,
                                   **TOLERANCE)


BAD = [(dict(seeds=[]), "seeds"), (dict(seeds=3), "seeds"), (dict(seeds=[1, -1]), "seeds"),
       (dict(seeds=[1, 2.5]), "seeds"), (dict(prompts=["a", "b", "c"]), "prompts"), (dict(prompts=7), "prompts"),
       (dict(prompts=["a", 3]), "prompts"), (dict(fusion="avg"), "fusion"), (dict(alpha=2.0), "alpha"),
       (dict(view_batch_size=0), "view_batch_size")]


@pytest.mark.parametrize("kw,name", BAD)
def test_bad_input_is_refused_before_any_model_work(kw, name):
    args = dict(prompts=["a", "b"], seeds=[1, 2]) | kw
    with pytest.raises(ValueError, match=name):
        gvcf.generate_batch(object(), **args, **KW)   # not a model: checking must not touch it


@pytest.mark.parametrize("kw,name", [(dict(latents=torch.zeros(1, 4, 8, 24)), "latents"),
                                     (dict(reference_noise=torch.zeros(3, 4, 8, 8), alpha=0.2), "reference_noise")])
def test_bad_per_canvas_tensors(tiny_pipe, kw, name):
    with pytest.raises(ValueError, match=name):
        gvcf.generate_batch(tiny_pipe, "a", [1, 2], **(KW | kw))


def test_auto_view_batch_follows_the_call_budget(tiny_pipe):
    from gvcf.engine.models import UNET_CALL_PIXELS

    model = Model.from_pipeline(tiny_pipe)
    budget = UNET_CALL_PIXELS["cpu"]
    assert auto_view_batch(model, (8, 8), guidance=True) == budget // (2 * 64)
    assert auto_view_batch(model, (8, 8), guidance=False) == budget // 64
    assert auto_view_batch(model, (1000, 1000), guidance=True) == 1
