"""Stable Diffusion XL: two text encoders, pooled embeddings and time ids. A single view is diffusers'
StableDiffusionXLPipeline; panoramas, batches and region prompts work as on Stable Diffusion; SDXL folders load;
the 'sdxl' and 'tiny-sdxl' architectures build and bench."""
import copy

import numpy as np
import pytest
import torch

import gvcf
from gvcf.engine import archs
from gvcf.engine.generate import DEFAULT_GUIDANCE
from gvcf.engine.models import Model
from gvcf.eval import bench

SIZE = 32      # the test pipeline's view in image pixels: UNet sample size 16 x VAE factor 2
PROMPT = "A photo of a city skyline at night"


def tiny_xl_pipeline(tokenizer, scheduler="ddim", force_zeros_for_empty_prompt=True, seed=0):
    """A StableDiffusionXLPipeline with tiny random weights: diffusers' own SDXL test components (its UNet at
    sample size 16, not 32, to keep the CPU time down), our offline CLIP tokenizer for both text encoders."""
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionXLPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**archs.TINY_SDXL_UNET | dict(sample_size=SIZE // 2))
        vae = AutoencoderKL(**archs.TINY_SDXL_VAE)
        text = archs.TINY_SDXL_TEXT | dict(vocab_size=len(tokenizer))
        text_encoder = CLIPTextModel(CLIPTextConfig(**text))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text))
    cls = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}[scheduler]
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer,
        unet=unet, scheduler=cls.from_config(archs.SDXL_SCHEDULER),
        force_zeros_for_empty_prompt=force_zeros_for_empty_prompt, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def xl_pipe(clip_tokenizer):
    return tiny_xl_pipeline(clip_tokenizer)


def test_pipeline_gives_an_xl_model(xl_pipe):
    model = Model.from_pipeline(xl_pipe)
    assert model.is_xl and model.force_zeros_for_empty_prompt and model.text_encoder_2 is xl_pipe.text_encoder_2
    assert (model.native_size, model.vae_scale_factor) == (SIZE, 2)
    assert not Model(*[None] * 5).is_xl   # Stable Diffusion's positional construction still works


@pytest.mark.parametrize("negative", [None, "blurry, low quality"])
@pytest.mark.parametrize("force_zeros", [True, False])
def test_prompt_encoding_is_diffusers(clip_tokenizer, xl_pipe, negative, force_zeros):
    """cond, uncond and both pooled embeddings equal StableDiffusionXLPipeline.encode_prompt's (the same
    computation: exact); no negative prompt ("", diffusers' None) is zeros under force_zeros_for_empty_prompt."""
    pipe = xl_pipe if force_zeros else tiny_xl_pipeline(clip_tokenizer, force_zeros_for_empty_prompt=False)
    ours = Model.from_pipeline(pipe).encode_prompt(PROMPT, negative or "")
    cond, uncond, pooled, uncond_pooled = pipe.encode_prompt(PROMPT, device="cpu", negative_prompt=negative)
    for a, b in ((ours.cond, cond), (ours.uncond, uncond), (ours.pooled, pooled), (ours.uncond_pooled, uncond_pooled)):
        assert torch.equal(a, b)
    assert ours.cond.shape == (1, 77, 64) and ours.pooled.shape == (1, 32)
    assert (ours.uncond.abs().sum() == 0) == (negative is None and force_zeros)
    off = Model.from_pipeline(pipe).encode_prompt(PROMPT, guidance=False)
    assert off.uncond is None and off.uncond_pooled is None and torch.equal(off.pooled, pooled)


def test_prompt_embeds_rows_and_per_view_carry_the_pooled_embeddings(xl_pipe):
    model = Model.from_pipeline(xl_pipe)
    a, b = model.encode_prompt("a beach"), model.encode_prompt("a forest", "fog")
    both = gvcf.engine.models.PromptEmbeds.per_view([a, b, a])
    assert both.pooled.shape == (3, 32) and torch.equal(both.uncond_pooled[1], b.uncond_pooled[0])
    rows = both.rows(1, 2)
    assert torch.equal(rows.pooled, torch.cat([b.pooled, a.pooled])) and torch.equal(rows.cond[0], b.cond[0])
    assert a.rows(0, 4).pooled.shape == (4, 32) and gvcf.engine.models.PromptEmbeds.per_view([a, a]) is a


def test_time_ids_are_the_whole_uncropped_view(xl_pipe):
    model = Model.from_pipeline(xl_pipe)
    assert model.time_ids((16, 24)).tolist() == [[32, 48, 0, 0, 32, 48]]   # latent 16 x 24 = 32 x 48 image px


@pytest.mark.parametrize("sampler,negative,force_zeros", [
    ("ddim", None, True), ("ddpm", None, True), ("ddim", "blurry, low quality", True), ("ddim", None, False)])
def test_single_view_reproduces_the_sdxl_pipeline(clip_tokenizer, sampler, negative, force_zeros):
    """One view covering the canvas is diffusers' StableDiffusionXLPipeline at its default conditioning
    (original_size = target_size = the image, no crop) with that scheduler, CFG 7.5, the same seed."""
    pipe = tiny_xl_pipeline(clip_tokenizer, scheduler=sampler, force_zeros_for_empty_prompt=force_zeros)
    kw = dict(height=SIZE, width=SIZE, guidance_scale=DEFAULT_GUIDANCE, negative_prompt=negative)
    expected = pipe(PROMPT, num_inference_steps=12, generator=torch.Generator().manual_seed(3), output_type="latent",
                    **kw).images
    ours = gvcf.generate(pipe, PROMPT, stride=SIZE, fusion="gvcf", sampler=sampler, steps=12, seed=3,
                         output_type="latent", progress=False, **kw)
    # float32 rounding, not a method difference: the first UNet call is bitwise the pipeline's (latents, text
    # embeddings, pooled embeddings, time ids), then our split step and scheduler.step order the same operations
    # differently, a few ulps per step. The random UNet under guidance 7.5 grows the latents to std ~10 (max ~35),
    # so the rounding is absolute at the latents' scale: measured max 1.7e-5 (DDIM) and 2.7e-5 (DDPM) on latents
    # of std 9.8 and 12.6 (AMD EPYC, AVX2), within 1e-5 x their std by 4-6x; a changed conditioning differs by
    # O(1) (test_crop_conditioning_is_the_uncropped_view).
    tol = 1e-5 * max(1.0, float(expected.std()))
    torch.testing.assert_close(ours.latents, expected, rtol=0, atol=tol)


def test_crop_conditioning_is_the_uncropped_view(xl_pipe):
    """The pipeline told the image was a crop (or another size) gives another canvas: ours is the default one, and
    the time ids reach the UNet."""
    kw = dict(height=SIZE, width=SIZE, num_inference_steps=4, guidance_scale=DEFAULT_GUIDANCE, output_type="latent")
    ours = gvcf.generate(xl_pipe, PROMPT, stride=SIZE, sampler="ddim", steps=4, seed=3, progress=False,
                         **{k: v for k, v in kw.items() if k not in ("num_inference_steps",)}).latents
    same = xl_pipe(PROMPT, generator=torch.Generator().manual_seed(3), **kw).images
    cropped = xl_pipe(PROMPT, generator=torch.Generator().manual_seed(3), crops_coords_top_left=(SIZE, 0), **kw).images
    larger = xl_pipe(PROMPT, generator=torch.Generator().manual_seed(3), original_size=(4 * SIZE, 4 * SIZE), **kw).images
    tol = 1e-5 * float(same.std())
    torch.testing.assert_close(ours, same, rtol=0, atol=tol)
    assert (ours - cropped).abs().max() > 1e3 * tol and (ours - larger).abs().max() > 1e3 * tol


def md(model, **kw):
    args = dict(height=SIZE, width=3 * SIZE, stride=SIZE // 2, fusion="md", sampler="ddpm", steps=4,
                output_type="latent", progress=False) | kw
    return gvcf.generate(model, PROMPT, **args)


def test_md_panorama_is_batching_invariant(xl_pipe):
    """Five views (3 views wide, stride half a view), each with its own pooled embedding row and time ids: 1, 2 or
    all views per UNet call give the same canvas, up to float rounding (batched matmuls round differently)."""
    results = {vb: md(xl_pipe, seed=5, view_batch_size=vb) for vb in (1, 2, None)}
    assert len(results[None].layout) == 5 and results[None].latents.shape == (1, 4, SIZE // 2, 3 * SIZE // 2)
    assert torch.isfinite(results[None].latents).all()
    for vb in (1, 2):
        torch.testing.assert_close(results[vb].latents, results[None].latents, rtol=1e-4, atol=1e-4)


def test_generate_batch_equals_generate(xl_pipe):
    args = dict(height=SIZE, width=3 * SIZE, stride=SIZE // 2, fusion="md", sampler="ddpm", steps=4,
                output_type="latent", progress=False)
    batch = gvcf.generate_batch(xl_pipe, [PROMPT, "a beach"], [1, 2], **args)
    for r, prompt, seed in zip(batch, [PROMPT, "a beach"], [1, 2]):
        one = gvcf.generate(xl_pipe, prompt, seed=seed, **args)
        torch.testing.assert_close(r.latents, one.latents, rtol=1e-4, atol=1e-4)   # float rounding (batching)


def test_one_region_covering_the_canvas_is_plain_generate(xl_pipe):
    plain = gvcf.generate(xl_pipe, "a beach", height=SIZE, width=2 * SIZE, stride=SIZE // 2, fusion="gf",
                          sampler="ddim", steps=3, seed=4, output_type="latent", progress=False)
    full = gvcf.generate(xl_pipe, PROMPT, height=SIZE, width=2 * SIZE, stride=SIZE // 2, fusion="gf",
                         sampler="ddim", steps=3, seed=4, output_type="latent", progress=False,
                         regions=[(np.ones((SIZE, 2 * SIZE), bool), "a beach")])
    assert torch.equal(full.latents, plain.latents)


def test_a_saved_sdxl_folder_loads_as_sdxl(xl_pipe, tmp_path):
    xl_pipe.save_pretrained(tmp_path)
    model = gvcf.load_model(str(tmp_path), device="cpu")
    assert model.is_xl and model.force_zeros_for_empty_prompt and not model.text_encoder_2.training
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        saved, loaded = getattr(xl_pipe, part).state_dict(), getattr(model, part).state_dict()
        assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    args = dict(height=SIZE, width=2 * SIZE, stride=SIZE // 2, sampler="ddim", steps=2, seed=0, progress=False)
    loaded = gvcf.generate(model, PROMPT, **args, output_type="latent").latents
    expected = gvcf.generate(xl_pipe, PROMPT, **args, output_type="latent").latents
    # the weights are bitwise equal, yet the loaded text_encoder_2's pooled output differs by one ulp (1.6e-7,
    # measured; its matmul rounds differently on the loaded tensors), which guidance 7.5 on a random UNet grows to
    # 1.5e-5 on latents of std 2.1 in two steps: 1e-4 x std leaves room; a wrong component would differ by O(1)
    torch.testing.assert_close(loaded, expected, rtol=0, atol=1e-4 * float(expected.std()))
    assert gvcf.generate(model, PROMPT, **args).image.size == (2 * SIZE, SIZE)


def test_an_sdxl_folder_without_its_second_encoder_says_so(xl_pipe, tmp_path):
    import shutil

    xl_pipe.save_pretrained(tmp_path)
    shutil.rmtree(tmp_path / "text_encoder_2")
    with pytest.raises(ValueError, match=r"lacks the component folder\(s\) \['text_encoder_2'\].*Stable Diffusion XL"):
        gvcf.load_model(str(tmp_path), device="cpu")


def test_float16_vae_with_force_upcast_decodes_in_float32(xl_pipe):
    """As StableDiffusionXLPipeline: a float16 VAE with force_upcast decodes in float32 (its weights upcast),
    then is float16 again."""
    half = Model.from_pipeline(xl_pipe)
    half.vae = copy.deepcopy(xl_pipe.vae).to(torch.float16)
    reference = Model.from_pipeline(xl_pipe)
    reference.vae = copy.deepcopy(half.vae).to(torch.float32)
    z = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    image = half.decode(z)
    assert half.vae.dtype == torch.float16 and image.dtype == torch.float32
    assert torch.equal(image, reference.decode(z))


def test_tiny_sdxl_arch_generates_a_panorama(clip_tokenizer):
    model = archs.build_random_model("tiny-sdxl", device="cpu", tokenizer=clip_tokenizer)
    assert model.is_xl and model.native_size == 64 and model.tokenizer_2 is clip_tokenizer
    assert type(model.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
    r = gvcf.generate(model, PROMPT, height=64, width=128, stride=32, fusion="gvcf", sampler="ddpm", steps=2,
                      progress=False)
    assert r.image.size == (128, 64) and len(r.layout) == 3


def test_sdxl_arch_is_sdxl_base_1_0():
    """The published architecture: 2,567,463,684 UNet parameters (built on the meta device: no memory), a
    1024 px native view, two text encoders (CLIP ViT-L/14, OpenCLIP ViT-bigG/14 with projection)."""
    with torch.device("meta"):
        unet = archs.build_unet("sdxl")
    assert sum(p.numel() for p in unet.parameters()) == archs.SDXL_UNET_PARAMETERS
    assert archs.SDXL_NATIVE_SIZE == 1024 and unet.add_embedding.linear_1.in_features == 2816
    configs = archs.arch_configs("sdxl")
    assert configs["unet"]["cross_attention_dim"] == configs["text_encoder"]["hidden_size"] + \
        configs["text_encoder_2"]["hidden_size"] == 2048
    assert "sdxl" in bench.BENCH_ARCHS and "tiny-sdxl" in bench.BENCH_ARCHS


def test_bench_runs_on_tiny_sdxl_without_the_diffusers_rows(clip_tokenizer):
    """diffusers' panorama pipeline is Stable Diffusion 1 / 2's: on SDXL its rows are left out, with a note."""
    model = archs.build_random_model("tiny-sdxl", device="cpu", tokenizer=clip_tokenizer)
    table = bench.run_bench("tiny-sdxl", steps=1, repeats=1, width=128, stride=32, model=model, canvas_batch=1,
                            sweep=False)
    assert "diffusers_vb1" not in set(table["row"]) and "ours" in set(table["row"])
    assert "SDXL" in table.attrs["note"] and (table["median_s"] > 0).all()
    r = table.set_index("row")
    assert r.loc["bare_unet", "unet_rows"] == r.loc["ours", "unet_rows"] == 3 * bench.CFG_ROWS
    assert "ours/bare_unet" in bench.format_bench(table)
