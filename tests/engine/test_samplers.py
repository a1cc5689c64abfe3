"""Each split step equals its diffusers scheduler's step with the same noise; single-view generation equals
diffusers' StableDiffusionPipeline; MD + DDIM equals diffusers' StableDiffusionPanoramaPipeline."""
import pytest
import torch

import gvcf
from gvcf.engine.archs import SD2_SCHEDULER as SD2
from gvcf.engine.generate import DEFAULT_GUIDANCE
from gvcf.engine.samplers import EDM_CHURN, FALLBACK_SPACINGS, _spans, make_sampler

T = SD2["num_train_timesteps"]   # 1000 (asserted as the paper's DDPM-1000 in test_default_steps_are_the_papers)

CASES = [
    ("ddpm", dict(variance_type="fixed_small"), {}),
    ("ddpm", dict(variance_type="fixed_large"), {}),
    ("ddpm", dict(variance_type="fixed_small", prediction_type="v_prediction"), {}),
    ("ddpm", dict(variance_type="fixed_small", clip_sample=True), {}),
    ("ddim", {}, {}),
    ("ddim", {}, dict(eta=0.7)),
    ("ddim", dict(prediction_type="v_prediction"), dict(eta=1.0)),
    ("euler_ancestral", {}, {}),
    ("euler_ancestral", dict(prediction_type="v_prediction"), {}),
    ("dpmpp_2m", {}, {}),
    ("dpmpp_2m", dict(prediction_type="v_prediction"), {}),
    ("dpmpp_2m", dict(final_sigmas_type="sigma_min"), {}),
    ("dpmpp_2m_sde", {}, {}),
    ("dpmpp_2m_sde", dict(prediction_type="v_prediction"), {}),
    ("euler_churn", {}, {}),
    ("euler_churn", dict(prediction_type="v_prediction"), {}),
]
DIFFUSERS_STEP_KWARGS = {"euler_churn": EDM_CHURN}   # the churn is diffusers' step arguments, ours the sampler's
ALGORITHMS = {"dpmpp_2m": "dpmsolver++", "dpmpp_2m_sde": "sde-dpmsolver++"}   # diffusers' algorithm_type


def diffusers_class(name):
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler

    from diffusers import EulerDiscreteScheduler

    return {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "euler_ancestral": EulerAncestralDiscreteScheduler,
            "dpmpp_2m": DPMSolverMultistepScheduler, "dpmpp_2m_sde": DPMSolverMultistepScheduler,
            "euler_churn": EulerDiscreteScheduler}[name]


def diffusers_config(name, config):
    return config | (dict(algorithm_type=ALGORITHMS[name], solver_order=2) if name in ALGORITHMS else {})


def diffusers_scheduler(name, config, steps):
    s = diffusers_class(name).from_config(diffusers_config(name, config))
    s.set_timesteps(steps)
    return s


@pytest.mark.parametrize("steps", [20, 8])   # DPM-Solver++: below 15 steps diffusers ends on first order
@pytest.mark.parametrize("name,extra,kw", CASES)
def test_split_step_equals_diffusers_step(name, extra, kw, steps):
    """Step for step with the same noise; a multistep sampler is given its previous x_0 prediction (its history)."""
    config = SD2 | extra
    ours = make_sampler(name, config, steps, **kw)
    ref = diffusers_scheduler(name, config, steps)
    assert torch.equal(ours.timesteps, ref.timesteps)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=g) * ours.init_noise_sigma
    previous = None
    for i, t in enumerate(ref.timesteps):
        model_output = torch.randn(2, 4, 8, 8, generator=g)
        torch.testing.assert_close(ours.scale_input(x, i), ref.scale_model_input(x, t))
        gen_ref = torch.Generator().manual_seed(100 + i)
        expected = ref.step(model_output, t, x, generator=gen_ref, **kw, **DIFFUSERS_STEP_KWARGS.get(name, {})).prev_sample
        split = ours.step(model_output, i, x, previous if ours.multistep else None)
        previous = split.pred_original
        if split.std is None:
            got = split.mean
        else:
            gen_ours = torch.Generator().manual_seed(100 + i)
            got = split.mean + split.std * torch.randn(x.shape, generator=gen_ours)
        # euler_churn: diffusers adds the churn to x before x - (x - sigma_hat eps) cancels, we after, so the
        # rounding of x (up to sigma_max = 14.6) shows: 1-3e-6 measured; a different noise draw differs by O(1)
        tol = 1e-6 * (ours.init_noise_sigma if name == "euler_churn" else 1.0)
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
        x = expected


def test_ddpm_last_step_and_ddim_eta0_are_deterministic():
    ddpm = make_sampler("ddpm", SD2 | dict(steps_offset=0), 10)
    assert int(ddpm.timesteps[-1]) == 0  # diffusers adds no noise at t = 0
    x = torch.randn(1, 4, 4, 4)
    assert ddpm.step(torch.zeros_like(x), len(ddpm.timesteps) - 1, x).std is None
    assert ddpm.step(torch.zeros_like(x), 0, x).std is not None
    ddim = make_sampler("ddim", SD2, 10)
    assert all(ddim.step(torch.zeros_like(x), i, x).std is None for i in range(10))


@pytest.mark.parametrize("offset", [0, 1])
def test_ddpm_at_num_train_timesteps_runs_the_full_chain(offset):
    """DDPM-1000 (the paper's) visits t = 999 ... 0 whatever steps_offset, and equals diffusers' DDPMScheduler
    with steps_offset = 0 step for step, with the same noise (SD 2's steps_offset = 1 would start at t = 1000)."""
    from diffusers import DDPMScheduler

    ours = make_sampler("ddpm", SD2 | dict(steps_offset=offset), T)
    assert ours.timesteps.tolist() == list(range(T - 1, -1, -1))
    ref = DDPMScheduler.from_config(SD2 | dict(steps_offset=0))
    ref.set_timesteps(T)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 4, 4, generator=g)
    for i, t in enumerate(ref.timesteps):
        eps = torch.randn(1, 4, 4, 4, generator=g)
        expected = ref.step(eps, t, x, generator=torch.Generator().manual_seed(i)).prev_sample
        split = ours.step(eps, i, x)
        got = split.mean if split.std is None else \
            split.mean + split.std * torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        x = expected
    assert split.std is None   # no noise at t = 0


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler_ancestral"])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 7, 50, T - 1, T])
def test_timesteps_stay_in_range_and_are_diffusers_own_where_they_fit(name, spacing, steps):
    config = SD2 | dict(timestep_spacing=spacing)
    ours = make_sampler(name, config, steps)
    assert len(ours.timesteps) == steps and 0 <= float(ours.timesteps.min()) and float(ours.timesteps.max()) <= T - 1
    ref = diffusers_scheduler(name, config, steps)
    if float(ref.timesteps.max()) > T - 1:   # it ran one past the end: the same spacing without the offset
        ref = diffusers_scheduler(name, config | dict(steps_offset=0), steps)
    if _spans(ref.timesteps, T, steps):      # diffusers' own chain spans the schedule: it is kept as it is
        assert torch.equal(ours.timesteps, ref.timesteps)
    else:                                    # e.g. trailing's float arange at 999 steps: a spacing that spans
        assert any(torch.equal(ours.timesteps, diffusers_scheduler(name, config | dict(timestep_spacing=fallback,
                   steps_offset=0), steps).timesteps) for fallback in FALLBACK_SPACINGS)


STEP_COUNTS = [1, 2, 7, 61, 103, 333, 500, 501, 999, T]   # leading's integer stride and trailing's arange break at some


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "euler_churn"])
@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_every_allowed_step_count_visits_a_strictly_decreasing_chain_spanning_the_schedule(name, spacing):
    """Issue 27: DPM-Solver++ at steps = 1000 visited t = 1 a thousand times, at 500 only t = 501 ... 2."""
    config = SD2 | dict(timestep_spacing=spacing)
    for steps in STEP_COUNTS:
        t = make_sampler(name, config, steps).timesteps.tolist()
        assert len(t) == steps and all(a > b for a, b in zip(t, t[1:])), (steps, t[:5])
        assert T - 1 - 2 * T / steps <= t[0] <= T - 1 and 0 <= t[-1] <= 2 * T / steps, (steps, t[0], t[-1])


@pytest.mark.parametrize("name", ["dpmpp_2m", "dpmpp_2m_sde"])
def test_dpm_solver_at_num_train_timesteps_stays_finite(name):
    """The whole chain with a fixed epsilon stand-in (no UNet): every step's mean and the result finite."""
    sampler = make_sampler(name, SD2, T)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 4, 4, generator=g) * sampler.init_noise_sigma
    eps, previous = torch.randn(1, 4, 4, 4, generator=g), None
    for i in range(T):
        split = sampler.step(eps, i, sampler.scale_input(x, i), previous)
        x = split.mean if split.std is None else split.mean + split.std * torch.randn(x.shape, generator=g)
        previous = split.pred_original
        assert torch.isfinite(x).all(), i


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "euler_churn"])
def test_more_steps_than_trained_timesteps_is_refused(name):
    with pytest.raises(ValueError, match="steps"):
        make_sampler(name, SD2, T + 1)


@pytest.mark.parametrize("sampler", ["ddim", pytest.param("ddpm", marks=pytest.mark.slow), "euler_ancestral",
                                     "dpmpp_2m", "dpmpp_2m_sde", "euler_churn"])   # ddpm: 1000 UNet calls, ~17 s
def test_every_sampler_runs_at_its_default_steps_on_sd2s_scheduler(tiny_pipe, sampler):
    """steps=None is DEFAULT_STEPS (the paper's DDPM 1000 and DDIM 50, test_default_steps_are_the_papers; diffusers'
    usual counts for the others) on Stable Diffusion 2's scheduler config."""
    from gvcf.engine.samplers import DEFAULT_STEPS

    model = gvcf.Model.from_pipeline(tiny_pipe)
    model.scheduler_config = dict(SD2, timestep_spacing="leading")
    r = gvcf.generate(model, "a beach", height=16, width=16, stride=16, sampler=sampler, guidance_scale=1.0,
                      output_type="latent", progress=False)
    assert r.config["steps"] == DEFAULT_STEPS[sampler]
    assert torch.isfinite(r.latents).all() and r.latents.std() > 0.1


def test_default_steps_are_the_papers():
    assert len(make_sampler("ddim", SD2).timesteps) == 50
    assert len(make_sampler("ddpm", SD2).timesteps) == 1000


@pytest.mark.parametrize("sampler,kw", [("ddim", {}), ("ddim", dict(eta=0.5)), ("ddpm", {}), ("euler_ancestral", {}),
                                       ("dpmpp_2m", {}), ("dpmpp_2m_sde", {})])
def test_single_view_reproduces_diffusers_pipeline(tiny_pipe, sampler, kw):
    """One view covering the canvas is diffusers' StableDiffusionPipeline with that scheduler (DPM-Solver++: its own
    multistep state, and the SDE's noise from the pipeline's generator after x_T, as ours)."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    scheduler = diffusers_class(sampler).from_config(diffusers_config(sampler, dict(tiny_pipe.scheduler.config)))
    pipe = StableDiffusionPipeline(**(tiny_pipe.components | dict(scheduler=scheduler)))
    pipe.set_progress_bar_config(disable=True)
    size = 16
    expected = pipe("a mountain range", height=size, width=size, num_inference_steps=12, guidance_scale=DEFAULT_GUIDANCE,
                    generator=torch.Generator().manual_seed(3), output_type="latent", **kw).images
    ours = gvcf.generate(pipe, "a mountain range", height=size, width=size, stride=size, fusion="gvcf",
                         sampler=sampler, steps=12, seed=3, output_type="latent", progress=False, **kw)
    # float32 rounding, not a method difference: the same operations in another order (our split step vs
    # scheduler.step) differ by a few ulps per step. Euler's sample carries sigma up to init_noise_sigma, and
    # DPM-Solver++'s data prediction x_0 = (x - sigma_t eps) / alpha_t divides by alpha_T: both sqrt(1 / alphabar_T - 1)
    # = 14.6 for SD 2, so their rounding is ~15x larger in absolute terms (measured 1.6e-5 for Euler, 1.3e-5 for
    # DPM-Solver++ 2M and 2.1e-5 for its SDE on an AMD EPYC, AVX2; a different noise draw would differ by O(1)).
    sigma_max = float(EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config).init_noise_sigma)
    amplified = sampler in ("euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde")
    tol = 1e-5 * (sigma_max if amplified else max(1.0, float(pipe.scheduler.init_noise_sigma)))
    torch.testing.assert_close(ours.latents, expected, rtol=tol, atol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["ddim", "dpmpp_2m"])
def test_md_equals_diffusers_panorama_pipeline(clip_tokenizer, sampler):
    """fusion='md' is diffusers' MultiDiffusion (its views: window 64, stride 8, factor 8), with DDIM and with
    DPM-Solver++ 2M, whose history diffusers keeps per view batch (views_scheduler_status, the fix of #3494) and
    we per view."""
    from diffusers import StableDiffusionPanoramaPipeline

    from conftest import tiny_pipeline

    base = tiny_pipeline(clip_tokenizer, sample_size=64, vae_blocks=4)
    scheduler = diffusers_class(sampler).from_config(diffusers_config(sampler, dict(base.scheduler.config)))
    pano = StableDiffusionPanoramaPipeline(**(base.components | dict(scheduler=scheduler)))
    pano.set_progress_bar_config(disable=True)
    latents = torch.randn(1, 4, 64, 96, generator=torch.Generator().manual_seed(7))
    kw = dict(prompt="a city skyline at night", height=512, width=768, num_inference_steps=4,
              guidance_scale=DEFAULT_GUIDANCE)
    expected = pano(**kw, latents=latents, output_type="latent", view_batch_size=2).images
    ours = gvcf.generate(base, **kw.__class__((k, v) for k, v in kw.items() if k != "num_inference_steps"),
                         steps=4, stride=64, fusion="md", sampler=sampler, latents=latents, output_type="latent",
                         progress=False)
    assert len(ours.layout) == 5
    torch.testing.assert_close(ours.latents, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "euler_churn"])
def test_the_sampler_record_is_what_the_sampler_does(name):
    """One record per sampler (gvcf.engine.samplers.SAMPLER_RECORDS): its stochastic and multistep flags are the
    built sampler's, and the engine's defaults, the chapters' budgets and labels are read from it."""
    from gvcf.engine.samplers import DEFAULT_STEPS, SAMPLER_RECORDS, SAMPLERS
    from gvcf.paper.chapter_setup import STEP_BUDGETS, steps_for
    from gvcf.paper.methods import SAMPLER_LABELS

    record = SAMPLER_RECORDS[name]
    sampler = make_sampler(name, SD2, 10)
    assert (sampler.stochastic, sampler.multistep) == (record.stochastic, record.multistep)
    assert SAMPLERS[name] is record.make and DEFAULT_STEPS[name] == record.default_steps
    assert SAMPLER_LABELS[name] == record.label and STEP_BUDGETS[name] == record.budget
    budgets = dict(ddim_steps=7, ddpm_steps=70)
    assert steps_for(name, None, **budgets) == budgets[record.budget]
    # the few-step samplers run the DDIM budget, the chain DDPM's: their defaults agree (Euler a: 50 in both)
    assert (record.budget == "ddpm_steps") == (record.default_steps == T)


@pytest.mark.parametrize("name,variance_type", [("ddpm", "fixed_small"), ("ddpm", "fixed_small_log"),
                                                ("ddpm", "fixed_large"), ("ddim", None)])
def test_posterior_variance_is_diffusers_bit_for_bit(name, variance_type):
    """sigma_t^2 from the public alphas_cumprod (Ho et al. Eq. 7; DDIM's at eta = 1) equals what diffusers' schedulers
    compute privately (_get_variance), at every step of a 20-step chain, bit for bit."""
    from gvcf.engine.samplers import posterior_variance

    config = SD2 | ({"variance_type": variance_type} if variance_type else {})
    ours = make_sampler(name, config, 20, eta=1.0 if name == "ddim" else 0.0)
    ref = diffusers_scheduler(name, config, 20)
    x, eps = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(1, 4, 4, 4)
    ts = [int(t) for t in ref.timesteps]
    for i, t in enumerate(ts[:-1]):
        prev = ts[i + 1]
        if name == "ddim":
            expected = ref._get_variance(t, prev) ** 0.5
            ours_variance = posterior_variance(ref.alphas_cumprod[t], ref.alphas_cumprod[prev])
            assert torch.equal(ours_variance, ref._get_variance(t, prev))
        else:
            v = ref._get_variance(t)
            expected = v if variance_type == "fixed_small_log" else v**0.5
        assert torch.equal(ours.step(eps, i, x).std, expected.to(x.dtype)), (i, t)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("ratio,max_value", [(0.995, 1.0), (0.9, 1.5), (0.5, 3.0)])
def test_dynamic_threshold_is_diffusers_bit_for_bit(ratio, max_value, dtype):
    """Dynamic thresholding from its definition (Imagen) equals diffusers' private _threshold_sample bit for bit."""
    from diffusers import DDPMScheduler

    from gvcf.engine.samplers import dynamic_threshold

    ref = DDPMScheduler.from_config(SD2 | dict(thresholding=True, dynamic_thresholding_ratio=ratio,
                                               sample_max_value=max_value))
    x0 = (3 * torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(1))).to(dtype)
    got = dynamic_threshold(x0, ratio, max_value)
    assert got.dtype == dtype and torch.equal(got, ref._threshold_sample(x0))
    assert got.abs().max() <= 1   # clipped to [-s, s], divided by s
