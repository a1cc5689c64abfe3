"""Region prompts (gvcf.engine.regions): MultiDiffusion's region-based generation under all four fusions."""
import numpy as np
import pytest
import torch

import gvcf
from gvcf.engine.fusion import FusionPlan, fuse
from gvcf.engine.regions import check_regions, layer_masks
from gvcf.engine.views import ViewLayout
from gvcf.engine.weights import weight_map

H, W = 16, 64                      # tiny_pipe: 16 px views (8 latent px), VAE factor 2; 64 px = 4 views wide
BEACH, CITY = "A beach with palm trees", "A photo of a city skyline at night"


def run(model, **kw):
    args = dict(prompt=CITY, height=H, width=W, stride=8, steps=5, progress=False, output_type="latent") | kw
    return gvcf.generate(model, **args)


def left(fraction=0.5, soft=False):
    mask = np.zeros((H, W))
    cut = int(W * fraction)
    mask[:, :cut] = 1.0
    if soft:   # a ramp across the cut
        mask[:, cut - 8:cut + 8] = np.linspace(1, 0, 16)
    return mask


@pytest.mark.parametrize("fusion,sampler", [("md", "ddim"), ("gvcf", "ddpm")])
def test_one_region_over_the_whole_canvas_is_plain_generate(tiny_pipe, fusion, sampler):
    """The base layer has weight 0 everywhere and is dropped: the same views, weights, prompt and noise draws."""
    plain = run(tiny_pipe, prompt=BEACH, fusion=fusion, sampler=sampler, seed=3)
    full = run(tiny_pipe, fusion=fusion, sampler=sampler, seed=3, regions=[(np.ones((H, W), bool), BEACH)])
    assert torch.equal(full.latents, plain.latents)
    assert full.config["regions"][0][0] == BEACH and "regions" not in plain.config


@pytest.mark.parametrize("fusion", ["md", "gf"])
@pytest.mark.parametrize("soft", [False, True])
def test_a_region_with_the_base_prompt_changes_nothing_with_ddim(tiny_pipe, fusion, soft):
    """Two layers with one prompt predict the same mu for a view, so their weighted average is that mu: with a
    deterministic sampler the canvas is plain generate's, up to float rounding."""
    plain = run(tiny_pipe, fusion=fusion, sampler="ddim", seed=1)
    split = run(tiny_pipe, fusion=fusion, sampler="ddim", seed=1, regions=[(left(soft=soft), CITY)])
    torch.testing.assert_close(split.latents, plain.latents, rtol=1e-4, atol=1e-4)


def test_a_region_prompt_changes_its_side_most(tiny_pipe):
    plain = run(tiny_pipe, fusion="gf", sampler="ddim", seed=2)
    split = run(tiny_pipe, fusion="gf", sampler="ddim", seed=2, regions=[(left(0.25), BEACH)])
    change = (split.latents - plain.latents).abs().mean(dim=(0, 1, 2))   # per latent column
    assert change[:4].mean() > 5 * change[-8:].mean()   # the region's quarter vs the far right


def test_views_are_denoised_once_per_layer_they_overlap():
    layout = ViewLayout.create(8, 32, 8, 4)                      # 7 views
    masks = layer_masks(check_regions([(left(0.25), BEACH)]), H, W, 2)   # region: latent columns 0-7
    plan = FusionPlan.create(layout, weight_map("guided", 8, 8), masks=masks)
    # base (1 - mask) covers columns 8-31: views at 4 ... 24 (6); the region columns 0-7: views at 0 and 4 (2)
    assert plan.layers == (0,) * 6 + (1,) * 2 and len(plan) == 8
    assert torch.all(plan.weight_sum > 0)


@pytest.mark.parametrize("fusion,expected", [("vcf", 1.0), ("gvcf", 1.0), ("md", None)])
def test_fused_noise_keeps_its_variance_with_masks(fusion, expected):
    """Eq. 14 with masked weights: sum_p w_p z_p / sqrt(sum_p w_p^2) has variance 1 at every pixel; averaging (MD)
    shrinks it to sum w_p^2 / (sum w_p)^2 < 1 where layers or views overlap."""
    method = gvcf.FUSIONS[fusion]
    layout = ViewLayout.create(8, 32, 8, 4)
    regions = check_regions([(left(0.5, soft=True), BEACH), (np.pad(np.ones((H, 16)), ((0, 0), (40, 8))), CITY)])
    plan = FusionPlan.create(layout, weight_map(method.weights, 8, 8), masks=layer_masks(regions, H, W, 2))
    gen = torch.Generator().manual_seed(0)
    n = 4000
    noises = torch.randn(n, len(plan), 1, 8, 8, generator=gen)
    zero = torch.zeros(len(plan), 1, 8, 8)
    var = torch.stack([fuse(zero, z, plan, method.correct_variance)[0, 0] for z in noises]).var(0)
    if expected is None:
        w = plan.weights
        want = layout.scatter_add(w * w, plan.index)[0, 0] / plan.weight_sum[0, 0] ** 2
        assert (want < 0.99).float().mean() > 0.5
    else:
        want = torch.ones_like(var)
    # the sample variance of n normal draws has relative sd sqrt(2 / n) = 0.022: 5 sd
    assert torch.allclose(var / want, torch.ones_like(var), atol=5 * (2 / n) ** 0.5)


def test_zero_predictor_spread_with_regions(zero_model):
    """With eps = 0, x_0 is the injected noise: VCF keeps its spread where two layers overlap, MD shrinks it."""
    kw = dict(height=16, width=128, stride=16, sampler="ddpm", steps=30, guidance_scale=1.0, output_type="latent",
              latents=torch.zeros(1, 4, 8, 64), progress=False, regions=[(np.ones((16, 128)) * 0.5, BEACH)])
    ratios = {}
    for fusion in ("vcf", "md"):
        xs = torch.stack([gvcf.generate(zero_model, "", fusion=fusion, seed=s, **kw).latents[0] for s in range(4)])
        single = gvcf.generate(zero_model, "", fusion=fusion, seed=0, **(kw | dict(regions=None))).latents
        ratios[fusion] = (xs.std() / single.std()).item()
    # every pixel: two layers of weight 1/2 (stride = view: one view each) -> MD's spread 1/sqrt(2), VCF's 1
    assert ratios["vcf"] == pytest.approx(1.0, abs=0.06) and ratios["md"] == pytest.approx(0.5 ** 0.5, abs=0.06)


@pytest.mark.parametrize("regions,match", [
    ("beach", "regions must be"), ([np.ones((H, W))], r"regions\[0\] must be a \(mask, prompt\)"),
    ([(np.ones((H, W)), 3)], r"regions\[0\]'s prompt"), ([(np.ones((H, W, 3)), BEACH)], "2-D"),
    ([(np.zeros((H, W)), BEACH)], "empty"), ([(np.full((H, W), np.nan), BEACH)], "finite"),
    ([(np.ones((H, W)), BEACH), (np.full((H, W), 1.5), CITY)], r"regions\[1\]'s mask must lie in \[0, 1\]"),
    ([(np.ones((H, W + 2)), BEACH)], "canvas-sized"), ([(np.array([["a"]]), BEACH)], "2-D"),
])
def test_bad_regions_are_value_errors(tiny_pipe, regions, match):
    with pytest.raises(ValueError, match=match):
        run(tiny_pipe, regions=regions)


def test_strip_mask_ramps_linearly_past_its_edges():
    m = gvcf.strip_mask(4, 40, 10, 20, ramp=4)
    row = m[0]
    assert (m == row).all() and (row[10:20] == 1).all() and (row[:6] == 0).all() and (row[24:] == 0).all()
    np.testing.assert_allclose(row[20:24], [0.875, 0.625, 0.375, 0.125])   # pixel centres 20.5 ... 23.5
    assert set(np.unique(gvcf.strip_mask(4, 40, 10, 20))) == {0.0, 1.0}


@pytest.mark.parametrize("args,match", [((4, 40, 20, 10), "start and stop"), ((4, 40, 0, 41), "start and stop"),
                                        ((0, 40, 0, 10), "height"), ((4, 40, 0, 10, -1), "ramp")])
def test_strip_mask_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        gvcf.strip_mask(*args)


@pytest.mark.parametrize("mask", [np.ones((H, W), complex), torch.ones(H, W, dtype=torch.complex64),
                                  np.ones((H, W), object), np.full((H, W), "1")])
def test_a_mask_of_complex_or_non_numbers_is_refused_by_name(mask):
    """Issue 27 item 8: a complex mask was accepted with only a ComplexWarning (its imaginary part dropped)."""
    from gvcf.engine.regions import check_regions

    with pytest.raises(ValueError, match=r"regions\[0\]'s mask must be a 2-D \(height, width\) array of real"):
        check_regions([(mask, BEACH)])


@pytest.mark.parametrize("kw,match", [(dict(ramp=True), "ramp"), (dict(ramp=4.0), "ramp"), (dict(start=True), "start"),
                                      (dict(stop=np.float64(20)), "stop"), (dict(height=False), "height")])
def test_strip_mask_refuses_bools_and_floats_as_pixel_counts(kw, match):
    """Issue 27 item 8: strip_mask(ramp=True) was accepted as a ramp of 1 px."""
    args = dict(height=4, width=40, start=10, stop=20) | kw
    with pytest.raises(ValueError, match=match):
        gvcf.strip_mask(**args)
