"""ElasticDiffusion (gvcf.engine.elastic) on tiny random models: what the method promises on its own terms.

Its equality with the authors' code (step by step, on a tiny random SD-geometry model) is measured outside the
repository, since their code may not be copied here; these tests check the properties that comparison rests on.
"""
import pytest
import torch

import gvcf
from gvcf.engine import elastic, reduced_copy
from gvcf.engine.models import Model

PROMPT = "A beach with palm trees"


@pytest.fixture(scope="module")
def model(clip_tokenizer):
    """tiny_pipe's geometry: 8-latent views, VAE factor 2 (16 px native)."""
    from tests.conftest import tiny_pipeline

    return Model.from_pipeline(tiny_pipeline(clip_tokenizer))


def latents(model, **kwargs):
    kwargs = dict(dict(prompt=PROMPT, steps=4, output_type="latent", progress=False), **kwargs)
    return elastic.generate_elastic(model, **kwargs).latents


def test_native_canvas_without_resampling_is_plain_guided_ddim(model):
    """A one-view canvas with no resampling: the reduced copy is the canvas, one patch is the view, RRG pulls x_0
    towards itself (0): ElasticDiffusion is classifier-free guided DDIM, i.e. generate with one view."""
    ours = latents(model, height=16, width=16, seed=3, steps=5, resampling_steps=0)
    plain = gvcf.generate(model, PROMPT, height=16, width=16, seed=3, fusion="md", sampler="ddim", steps=5,
                          output_type="latent", progress=False).latents
    assert (ours - plain).abs().max() <= 1e-5 * plain.abs().max(), float((ours - plain).abs().max())


@pytest.mark.parametrize("height,width,window,context", [(8, 56, 4, 4), (16, 16, 4, 4), (12, 30, 4, 4),
                                                         (64, 448, 32, 32), (16, 112, 8, 8), (20, 20, 6, 10)])
def test_patches_with_context_cover_the_canvas_exactly_once(height, width, window, context):
    patches = elastic.local_patches(height, width, window, context)
    cover = torch.zeros(height, width, dtype=torch.long)
    for p, own in zip(patches, elastic.patch_owners(patches, height, width)):
        assert 0 <= p.crop_top <= p.top < p.bottom <= p.crop_bottom <= height
        assert 0 <= p.crop_left <= p.left < p.right <= p.crop_right <= width
        assert p.crop_bottom - p.crop_top <= max(window + context, p.bottom - p.top)
        assert p.crop_right - p.crop_left <= max(window + context, p.right - p.left)
        cover[p.top:p.bottom, p.left:p.right] += own.long()
    assert torch.equal(cover, torch.ones_like(cover))


def test_patch_context_is_taken_from_the_other_side_at_an_edge():
    """A patch at the left edge gets all its context on the right (the view stays full)."""
    first, second = elastic.local_patches(8, 64, 16, 16)[:2]
    assert (first.crop_left, first.crop_right) == (0, 32)
    assert (second.crop_left, second.crop_right) == (8, 40)


def test_reduced_copy_of_a_native_canvas_is_the_canvas():
    copy = reduced_copy.ReducedCopy.create(8, 8, (8, 8))
    drawn = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(0))
    for choice in (torch.zeros(64, dtype=torch.long), drawn):
        rows, cols = copy.sources(choice)
        assert torch.equal(rows, torch.arange(8).view(-1, 1).expand(8, 8))
        assert torch.equal(cols, torch.arange(8).view(1, -1).expand(8, 8))
        assert copy.fill_mask(choice).all()


def test_resampling_passes_fill_every_pixel_of_the_reduced_grid_once_per_block_choice():
    """Each pass takes one pixel per 2 x 2 block, never one taken before while untaken ones remain (4 choices)."""
    x = torch.randn(1, 4, 8, 56)
    copy = reduced_copy.ReducedCopy.create(8, 56, (1, 8))
    samples = reduced_copy.reduced_samples(x, copy, 4, torch.Generator().manual_seed(1), new_p=1.0)
    assert all(s.shape == (1, 4, 1, 8) for s, _ in samples)
    union = torch.stack([m for _, m in samples]).any(0)
    assert union.sum() > samples[0][1].sum()   # later passes fill pixels the first did not


def test_rrg_weight_follows_the_cosine_schedule():
    assert elastic.rrg_weight(0, 50, 1000.0, 10.0, 0.4) == pytest.approx(1000.0)
    assert elastic.rrg_weight(15, 50, 1000.0, 1.0, 0.4) == pytest.approx(500.0)
    assert elastic.rrg_weight(30, 50, 1000.0, 10.0, 0.4) == 0.0


def test_same_seed_same_canvas_and_another_seed_another(model):
    a = latents(model, height=16, width=112, seed=7)
    b = latents(model, height=16, width=112, seed=7)
    c = latents(model, height=16, width=112, seed=8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.isfinite(a).all() and a.shape == (1, 4, 8, 56)


def test_batched_calls_equal_one_view_at_a_time(model):
    batched = latents(model, height=16, width=112, seed=2)
    single = latents(model, height=16, width=112, seed=2, view_batch_size=1)
    # float32 sums in another order: ~1e-6 of the latents' scale after 4 steps (as against the authors' code)
    assert (batched - single).abs().max() <= 1e-5 * batched.abs().max(), float((batched - single).abs().max())


def test_settings_change_the_canvas(model):
    """Every setting reaches the sampling (a setting that did nothing would be a defect)."""
    base = latents(model, height=16, width=64, seed=1)
    for setting in (dict(resampling_steps=2), dict(new_p=0.9), dict(rrg_scale=0.0), dict(repaint=False),
                    dict(cosine_scale=1.0), dict(rrg_stop_t=0.9), dict(patch_size=4)):
        assert not torch.allclose(base, latents(model, height=16, width=64, seed=1, **setting)), setting


def test_result_and_image(model):
    r = elastic.generate_elastic(model, PROMPT, height=16, width=48, steps=2, progress=False)
    assert r.image.size == (48, 16) and r.config["method"] == "elastic" and r.config["resampling_steps"] == 7
    assert r.seconds > 0


@pytest.mark.parametrize("kwargs,name", [
    (dict(resampling_steps=-1), "resampling_steps"), (dict(resampling_steps=1.5), "resampling_steps"),
    (dict(new_p=1.5), "new_p"), (dict(new_p=float("nan")), "new_p"), (dict(rrg_scale=-1), "rrg_scale"),
    (dict(cosine_scale="x"), "cosine_scale"), (dict(rrg_stop_t=2), "rrg_stop_t"), (dict(repaint=1), "repaint"),
    (dict(patch_size=0), "patch_size"), (dict(steps=0), "steps"), (dict(guidance_scale=-1), "guidance_scale"),
    (dict(seed=-1), "seed"), (dict(output_type="jpg"), "output_type"), (dict(view_batch_size=0), "view_batch_size"),
    (dict(wobble=3), "wobble"), (dict(negative_prompt=3), "negative_prompt"),
])
def test_bad_input_names_the_parameter_before_the_model(kwargs, name):
    with pytest.raises(ValueError, match=name):
        elastic.generate_elastic(None, PROMPT, **kwargs)   # model None: the check comes before the model is touched


@pytest.mark.parametrize("kwargs,name", [
    (dict(height=15), "height"), (dict(width=30, height=16, patch_size=3), "patch_size"),
    (dict(width=32, patch_size=32), "patch_size"), (dict(height=16, width=16 * 40), "height / width"),
])
def test_bad_geometry_names_the_parameter(model, kwargs, name):
    with pytest.raises(ValueError, match=name):
        elastic.generate_elastic(model, PROMPT, progress=False, **kwargs)


def test_plan_counts_the_unet_rows_a_run_evaluates(model):
    """ElasticPlan.step_rows (what the bench's bare-UNet row replays) is what generate_elastic runs."""
    rows = []
    handle = model.unet.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    try:
        latents(model, height=16, width=64, steps=3, resampling_steps=2)
    finally:
        handle.remove()
    plan = elastic.ElasticPlan.create(model, 16, 64)
    # 3 passes x 2 rows + 8 patches of 4 columns at every step, and the repaint pass (1 x 2 + 8) at all but the last
    assert sum(rows) == sum(map(sum, plan.step_rows(3, 2, True))) == 3 * (2 * 3 + 8) + 2 * (2 + 8)
