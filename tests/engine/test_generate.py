"""generate(): determinism, batching invariance, circular wrap, the blur of MD with DDPM, bad input, decoding."""
import pytest
import torch

import gvcf
from gvcf.engine.archs import SD2_SCHEDULER
from gvcf.engine.generate import DEFAULT_GUIDANCE
from gvcf.engine.models import Model

TOO_MANY_STEPS = SD2_SCHEDULER["num_train_timesteps"] + 1   # the tiny pipe runs SD 2's schedule (conftest)


def run(pipe, **kw):
    args = dict(prompt="a beach with palm trees", height=16, width=48, stride=8, steps=6, progress=False,
                output_type="latent") | kw
    return gvcf.generate(pipe, **args)


def test_same_seed_same_result_and_seed_matters(tiny_pipe):
    a = run(tiny_pipe, fusion="gvcf", sampler="ddpm", seed=5)
    b = run(tiny_pipe, fusion="gvcf", sampler="ddpm", seed=5)
    c = run(tiny_pipe, fusion="gvcf", sampler="ddpm", seed=6)
    assert torch.equal(a.latents, b.latents)
    assert not torch.allclose(a.latents, c.latents)


@pytest.mark.parametrize("sampler", ["ddpm", "euler_ancestral"])
def test_view_batch_size_does_not_change_the_result(tiny_pipe, sampler):
    full = run(tiny_pipe, fusion="vcf", sampler=sampler, seed=1)
    for bs in (1, 2, 3):
        part = run(tiny_pipe, fusion="vcf", sampler=sampler, seed=1, view_batch_size=bs)
        # same noise draws: only float reassociation in batched convolutions differs (latents have std ~10 here;
        # a different noise draw would differ by O(1))
        torch.testing.assert_close(part.latents, full.latents, rtol=1e-4, atol=1e-4)


def test_style_alignment_reference_from_seed(tiny_pipe):
    a = run(tiny_pipe, sampler="ddim", alpha=0.4, seed=2)
    b = run(tiny_pipe, sampler="ddim", alpha=0.4, seed=2)
    c = run(tiny_pipe, sampler="ddim", alpha=0.0, seed=2)
    assert torch.equal(a.latents, b.latents) and not torch.allclose(a.latents, c.latents)
    ref = torch.zeros(1, 4, 8, 8)
    ref[:, :, ::2] = 1.0
    d = run(tiny_pipe, sampler="ddim", alpha=0.4, seed=2, reference_noise=ref)
    assert not torch.allclose(a.latents, d.latents)


@pytest.mark.parametrize("height", [16, 32])
def test_circular_is_equivariant_to_horizontal_roll(tiny_pipe, height):
    """With wrap-around views (any number of rows) and a deterministic sampler, rolling x_T by one stride rolls x_0."""
    latents = torch.randn(1, 4, height // 2, 32, generator=torch.Generator().manual_seed(0))
    kw = dict(height=height, width=64, stride=8, sampler="ddim", fusion="gf", circular=True)
    a = run(tiny_pipe, latents=latents, **kw)
    b = run(tiny_pipe, latents=latents.roll(4, dims=-1), **kw)
    torch.testing.assert_close(b.latents, a.latents.roll(4, dims=-1), rtol=1e-4, atol=1e-4)
    flat = run(tiny_pipe, latents=latents, **(kw | dict(circular=False)))
    assert not torch.allclose(flat.latents.roll(4, dims=-1), run(tiny_pipe, latents=latents.roll(4, dims=-1),
                                                                   **(kw | dict(circular=False))).latents, atol=1e-3)


@pytest.mark.parametrize("sampler,steps", [("ddpm", 50), ("dpmpp_2m_sde", 20), ("euler_churn", 30)])
@pytest.mark.parametrize("fusion,expected", [("md", 0.5 ** 0.5), ("gf", None), ("vcf", 1.0), ("gvcf", 1.0)])
def test_zero_predictor_spread_in_overlaps(zero_model, fusion, expected, sampler, steps):
    """Fig. 3's blur: with DDPM (or DPM-Solver++ SDE, or Euler with churn), averaging shrinks the spread of x where views overlap;
    VCF/GVCF keep it.

    With eps = 0 and x_T = 0, x_0 is the sampler's injected noise propagated pixel-wise linearly (DPM-Solver++'s
    history too: every view's x_0 prediction of a pixel is the same), so where two views overlap MD's spread is
    exactly 1/sqrt(2) of the single-view spread, and VCF/GVCF's is the same."""
    model = zero_model
    # window 8, stride 4 latent: columns 0-3 and 60-63 are covered once, the rest twice
    spreads = []
    for seed in range(6):
        x = gvcf.generate(model, "", height=16, width=128, stride=8, fusion=fusion, sampler=sampler, steps=steps,
                          guidance_scale=1.0, seed=seed, latents=torch.zeros(1, 4, 8, 64), output_type="latent",
                          progress=False).latents[0]
        spreads.append((x[:, :, 8:56].std(), torch.cat([x[:, :, :4], x[:, :, 60:]], -1).std()))
    overlap = torch.stack([s[0] for s in spreads]).mean()
    single = torch.stack([s[1] for s in spreads]).mean()
    ratio = (overlap / single).item()
    if expected is None:   # GF: sum w^2 / W^2 varies across the overlap, always < 1
        assert 0.72 < ratio < 0.9
    else:
        assert ratio == pytest.approx(expected, abs=0.04)


BAD = [
    (dict(height=17), "height"), (dict(width=49), "width"), (dict(stride=0), "stride"), (dict(stride=32), "stride"),
    (dict(stride=3), "stride"), (dict(alpha=1.2), "alpha"), (dict(alpha=-0.5), "alpha"), (dict(fusion="avg"), "fusion"),
    (dict(sampler="plms"), "sampler"), (dict(width=8), "width must be at least one view"), (dict(steps=0), "steps"),
    (dict(output_type="jpeg"), "output_type"), (dict(view_batch_size=0), "view_batch_size"),
    (dict(latents=torch.zeros(1, 4, 8, 8)), "latents"), (dict(reference_noise=torch.zeros(1, 4, 4, 4), alpha=0.2), "reference_noise"),
    (dict(eta=0.5, sampler="ddpm"), "eta"),
    # found by trying as a new user would: each used to run to a black image, a silent fold or a raw TypeError
    (dict(eta=2.0, sampler="ddim"), "eta"), (dict(eta=float("nan"), sampler="ddim"), "eta"),
    (dict(guidance_scale=float("inf")), "guidance_scale"), (dict(guidance_scale=float("nan")), "guidance_scale"),
    (dict(guidance_scale="7.5"), "guidance_scale"), (dict(steps=True), "steps"), (dict(steps=2.5), "steps"),
    (dict(seed=2**32), "seed"), (dict(seed=-1), "seed"), (dict(seed=-2**32), "seed"), (dict(seed=1.5), "seed"),
    (dict(seed=None), "seed"), (dict(seed=2**70), "seed"), (dict(seed=True), "seed"),
    (dict(latents=torch.full((1, 4, 8, 24), float("nan"))), "latents"),
    (dict(latents=torch.zeros(1, 4, 8, 24).numpy()), "latents"),
    (dict(reference_noise=torch.full((1, 4, 8, 8), float("inf")), alpha=0.2), "reference_noise"),
    (dict(view_batch_size=True), "view_batch_size"), (dict(view_batch_size=1.5), "view_batch_size"),
    (dict(stride=(8, 8, 8)), "stride"), (dict(stride="8"), "stride"), (dict(decode_tile=-4), "decode_tile"),
    (dict(negative_prompt=3), "negative_prompt"), (dict(circular="yes"), "circular"), (dict(weights="flat"), "weights"),
]


@pytest.mark.parametrize("kw,name", BAD)
def test_bad_input_raises_value_error_naming_the_parameter(tiny_pipe, kw, name):
    with pytest.raises(ValueError, match=name):
        run(tiny_pipe, **kw)


@pytest.mark.parametrize("kw,name", [(dict(fusion="avg"), "fusion"), (dict(sampler="x"), "sampler"),
                                     (dict(alpha=2.0), "alpha"), (dict(output_type="x"), "output_type")]
                         + [case for case in BAD[16:] if "latents" not in case[0] and "reference_noise" not in case[0]])
def test_bad_input_is_caught_before_any_model_work(kw, name):
    with pytest.raises(ValueError, match=name):
        run(object(), **kw)   # an object that is not a model: checking must not touch it


class Refusing(torch.nn.Module):
    """A UNet that fails the test if called: bad input must be refused before any denoising."""

    def __init__(self, unet):
        super().__init__()
        self.config, self.inner = unet.config, unet

    device = property(lambda self: self.inner.device)
    dtype = property(lambda self: self.inner.dtype)

    def forward(self, *args, **kwargs):
        raise AssertionError("the UNet ran before the input was checked")


@pytest.mark.parametrize("kw,name", [(dict(steps=TOO_MANY_STEPS), "steps"),
                                     (dict(steps=TOO_MANY_STEPS, sampler="euler_ancestral"), "steps"),
                                     (dict(latents=torch.full((1, 4, 8, 24), float("nan"))), "latents"),
                                     (dict(decode_tile=-4, output_type="pil"), "decode_tile")])
def test_bad_input_that_needs_the_model_is_caught_before_the_unet(tiny_pipe, kw, name):
    model = Model.from_pipeline(tiny_pipe)
    model.unet = Refusing(tiny_pipe.unet)
    with pytest.raises(ValueError, match=name):
        run(model, **kw)


def test_negative_prompt_none_is_diffusers_no_negative_prompt(tiny_pipe):
    assert torch.equal(run(tiny_pipe, sampler="ddim", negative_prompt=None).latents,
                       run(tiny_pipe, sampler="ddim", negative_prompt="").latents)


def test_every_seed_below_2_32_is_its_own_noise_stream(tiny_pipe):
    """torch's CPU generator keeps 32 bits: the valid range is exactly the seeds that give distinct noise."""
    a, b = (run(tiny_pipe, sampler="ddim", steps=1, seed=s).latents for s in (7, 7 + 2**31))
    assert not torch.allclose(a, b)
    assert gvcf.derive_seed(0, "reference") < 2**32 and gvcf.derive_seed(123, "x") != gvcf.derive_seed(124, "x")


METHODS = [("md", "ddim", {}), ("gf", "ddim", dict(alpha=0.4)), ("vcf", "ddpm", {}), ("gvcf", "ddpm", dict(alpha=0.4)),
           ("gvcf", "euler_ancestral", {}), ("gf", "ddim", dict(eta=0.5)), ("md", "ddpm", dict(circular=True))]


@pytest.mark.parametrize("fusion,sampler,kw", METHODS)
def test_the_same_call_twice_in_one_process_is_bit_identical(tiny_pipe, fusion, sampler, kw):
    """The determinism promise (book/reproduce.md): same seed, settings, device and threads -> the same bits."""
    a, b = (run(tiny_pipe, fusion=fusion, sampler=sampler, seed=4, **kw).latents for _ in range(2))
    assert torch.equal(a, b)


def test_outputs_pil_np_pt(tiny_pipe):
    r = run(tiny_pipe, output_type="pil", sampler="ddim", steps=2)
    assert r.image.size == (48, 16) and r.latents.shape == (1, 4, 8, 24)
    assert run(tiny_pipe, output_type="np", sampler="ddim", steps=2).image.shape == (16, 48, 3)
    pt = run(tiny_pipe, output_type="pt", sampler="ddim", steps=2).image
    assert pt.shape == (1, 3, 16, 48) and 0 <= pt.min() and pt.max() <= 1
    assert r.seams == [8, 16, 24, 32, 40]


def test_generate_views_equals_single_view_generate_at_any_batch_size(tiny_pipe):
    seeds = [11, 12, 13]
    kw = dict(sampler="ddpm", steps=5, guidance_scale=DEFAULT_GUIDANCE)
    all_at_once = gvcf.generate_views(tiny_pipe, "a snowy mountain peak", seeds, **kw)
    one_by_one = gvcf.generate_views(tiny_pipe, "a snowy mountain peak", seeds, batch_size=1, **kw)
    assert all_at_once.shape == (3, 16, 16, 3) and all_at_once.dtype == "uint8"
    assert abs(all_at_once.astype(int) - one_by_one.astype(int)).max() <= 1
    single = gvcf.generate(tiny_pipe, "a snowy mountain peak", height=16, width=16, stride=16, seed=12,
                           output_type="np", progress=False, **kw).image
    assert abs((single * 255).round().astype(int) - all_at_once[1].astype(int)).max() <= 1
    assert abs(all_at_once[0].astype(int) - all_at_once[1].astype(int)).max() > 10


class NaNFromCall(torch.nn.Module):
    """The real UNet, except that from its call number `first` on its output is NaN (a model that blows up)."""

    def __init__(self, unet, first):
        super().__init__()
        self.config, self.inner, self.first, self.calls = unet.config, unet, first, 0

    device = property(lambda self: self.inner.device)
    dtype = property(lambda self: self.inner.dtype)

    def forward(self, *args, **kwargs):
        self.calls += 1
        out = self.inner(*args, **kwargs)
        if self.calls >= self.first:
            out.sample[:] = float("nan")
        return out


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_a_unet_that_turns_nan_stops_generation_at_its_step(tiny_pipe, sampler):
    model = Model.from_pipeline(tiny_pipe)
    model.unet = counter = NaNFromCall(tiny_pipe.unet, first=10**9)
    run(model, sampler=sampler, output_type="latent")
    per_step = counter.calls // 6
    model.unet = NaNFromCall(tiny_pipe.unet, first=2 * per_step + 1)   # the first call of step 3
    with pytest.raises(FloatingPointError, match=r"step 3 of 6 \(timestep \d+\).*UNet"):
        run(model, sampler=sampler, output_type="pil")


@pytest.mark.parametrize("kw", [dict(guidance_scale=3e38), dict(guidance_scale=3e38, sampler="euler_churn"),
                                dict(latents=torch.full((1, 4, 8, 24), 1e30))])
def test_overflow_is_an_error_never_a_black_image(tiny_pipe, kw):
    with pytest.raises(FloatingPointError, match=r"denoising step \d of 6"):
        run(tiny_pipe, output_type="pil", **kw)


@pytest.mark.parametrize("entry", ["generate", "generate_views"])
def test_generate_and_generate_views_refuse_the_same_guidance_scale_before_model_work(entry):
    """One rule for both loops (they once drifted: only one refused a negative scale)."""
    call = {"generate": lambda **kw: gvcf.generate(object(), "a beach", **kw),
            "generate_views": lambda **kw: gvcf.engine.generate.generate_views(object(), "a beach", [0], **kw)}[entry]
    for bad in (-1.0, -1e-6, float("nan")):
        with pytest.raises(ValueError, match="guidance_scale"):
            call(guidance_scale=bad)


def test_generate_views_and_elastic_stop_on_non_finite_steps(tiny_pipe):
    model = Model.from_pipeline(tiny_pipe)
    model.unet = NaNFromCall(tiny_pipe.unet, first=2)
    with pytest.raises(FloatingPointError, match=r"step 2 of 4"):
        gvcf.engine.generate.generate_views(model, "a beach", [0], sampler="ddim", steps=4)
    with pytest.raises(FloatingPointError, match=r"step 1 of 4"):
        gvcf.generate_elastic(model, "a beach", height=16, width=48, steps=4, progress=False)


def test_a_canvas_beyond_the_devices_memory_is_refused_by_its_size_before_the_unet(tiny_pipe, monkeypatch):
    from gvcf.engine import generate as G

    model = Model.from_pipeline(tiny_pipe)
    model.unet = Refusing(tiny_pipe.unet)
    # 5 views of 8x8 latents (stride 4), 4 channels, float32: (8*24 + 4*5*64) * 4 * 4 + 8 * 5*64 = 26,112 bytes
    monkeypatch.setattr(G, "device_memory", lambda device: 26_111)
    with pytest.raises(ValueError, match=r"height=16, width=48: 1 canvas\(es\) of 5 views"):
        run(model)
    monkeypatch.setattr(G, "device_memory", lambda device: 26_112)
    with pytest.raises(AssertionError, match="UNet ran"):   # it fits: denoising starts
        run(model)
