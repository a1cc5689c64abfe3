"""Sampler steps split into a mean and a noise part: x_{t-1} = mu_t + sigma_t z (paper Eq. 9-10).

Each sampler is built from a diffusers scheduler config (``XScheduler.from_config``), so betas,
timesteps and sigmas are diffusers' own; its ``step`` reproduces the scheduler's ``step`` exactly
(tests compare them with the same noise) but returns the two parts separately, which is what
Variance-Corrected Fusion needs. ``std is None`` marks a deterministic step: no noise is drawn.

A multistep sampler (``multistep = True``: DPM-Solver++) also takes ``previous``, the previous step's
``pred_original`` of the same rows: in joint denoising each view keeps its own history (the per-view state whose
mixing across views corrupted diffusers' panoramas, diffusers #3494), and only x_t is fused.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .archs import SD2_SCHEDULER
from .checks import finite_number, positive_int

@dataclass(frozen=True)
class SplitStep:
    """x_{t-1} ~ N(mean, std^2 I) (Eq. 10); std is None for a deterministic step (no noise drawn)."""

    mean: torch.Tensor
    std: torch.Tensor | None
    pred_original: torch.Tensor


def _x0_and_eps(model_output, sample, alpha_prod_t, prediction_type: str):
    """Predicted x_0 and epsilon from the model output (epsilon, sample or v prediction)."""
    beta_prod_t = 1 - alpha_prod_t
    if prediction_type == "epsilon":
        return (sample - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5, model_output
    if prediction_type == "sample":
        return model_output, (sample - alpha_prod_t**0.5 * model_output) / beta_prod_t**0.5
    if prediction_type == "v_prediction":
        return (alpha_prod_t**0.5 * sample - beta_prod_t**0.5 * model_output,
                alpha_prod_t**0.5 * model_output + beta_prod_t**0.5 * sample)
    raise ValueError(f"prediction_type must be epsilon, sample or v_prediction, got {prediction_type!r}")


# a chain of timesteps spans the schedule when its first lies within this many mean strides (T / steps) of T - 1 and
# its last within as many of 0 (leading spacing's top gap is one stride plus up to steps - 2 timesteps)
SPAN_STRIDES = 2
# the spacings tried, in order, where a config's own does not span: linspace fits every count up to T but
# DPM-Solver++'s at T (its T + 1 points round to duplicates); trailing fits DPM-Solver++ there
FALLBACK_SPACINGS = ("linspace", "trailing")


def _spans(timesteps, num_train_timesteps: int, steps: int) -> bool:
    """`steps` distinct timesteps, strictly decreasing, inside [0, T), from the top stride of the schedule to its
    bottom stride (T = num_train_timesteps)."""
    t = [float(x) for x in timesteps]
    reach = SPAN_STRIDES * num_train_timesteps / steps
    return (len(t) == steps and all(a > b for a, b in zip(t, t[1:])) and 0 <= t[-1] <= reach
            and num_train_timesteps - 1 - reach <= t[0] <= num_train_timesteps - 1)


def _scheduler(cls, scheduler_config, steps: int, device=None):
    """cls.from_config(scheduler_config) with `steps` timesteps, all within the trained range [0, T).

    With "leading" spacing, diffusers adds steps_offset to every timestep: Stable Diffusion 2's steps_offset = 1
    at steps = T gives t = T ... 1, one past alphas_cumprod. The paper's DDPM-1000 chain is t = T-1 ... 0 (the
    authors load their scheduler with steps_offset = 0 for this reason), so where the offset would run past the
    end we drop it. Leading spacing's integer stride T // steps (DPM-Solver++: T // (steps + 1)) also breaks at
    large counts: DPM-Solver++ at steps = T visits t = 1 a thousand times, and at steps = T / 2 only t = 501 ... 2.
    ("trailing" spacing's float arange gives steps + 1 timesteps at e.g. steps = 61.) Where the chain is not `steps`
    strictly decreasing timesteps spanning [0, T) (_spans), the first of FALLBACK_SPACINGS that gives one is taken
    instead, and a count that none fits is refused; wherever diffusers' chain spans, it is kept as it is.
    """
    T = scheduler_config["num_train_timesteps"]
    scheduler = cls.from_config(scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    if float(scheduler.timesteps.max()) >= T:
        scheduler = cls.from_config({**scheduler_config, "steps_offset": 0})
        scheduler.set_timesteps(steps, device=device)
    for spacing in FALLBACK_SPACINGS:   # (from the given dict: a built config's defaults are not overridable)
        if _spans(scheduler.timesteps, T, steps):
            return scheduler
        scheduler = cls.from_config({**scheduler_config, "timestep_spacing": spacing, "steps_offset": 0})
        scheduler.set_timesteps(steps, device=device)
    if not _spans(scheduler.timesteps, T, steps):
        raise ValueError(f"steps={steps} gives no strictly decreasing chain of timesteps spanning the schedule's "
                         f"{T} with {cls.__name__} (got {scheduler.timesteps.tolist()[:4]} ...)")
    return scheduler


def posterior_variance(alpha_prod_t, alpha_prod_prev):
    """The variance of q(x_{t'} | x_t, x_0) for a step t -> t' of the chain (Ho et al. 2020, Eq. 7; Song et al. 2021,
    Eq. 16 at eta = 1): (1 - abar_t') / (1 - abar_t) * beta, beta = 1 - abar_t / abar_t', from the scheduler's public
    alphas_cumprod (the same operations, in the same order, as diffusers' DDPM and DDIM schedulers: equal bit for bit,
    tests/engine/test_samplers.py)."""
    return (1 - alpha_prod_prev) / (1 - alpha_prod_t) * (1 - alpha_prod_t / alpha_prod_prev)


def dynamic_threshold(x0: torch.Tensor, ratio: float, max_value: float) -> torch.Tensor:
    """Dynamic thresholding (Saharia et al. 2022, Imagen, Sec. 2.3): per sample, s = the `ratio` quantile of |x_0|,
    kept in [1, max_value]; x_0 is clipped to [-s, s] and divided by s. Computed in float32 at least (quantile needs
    it), from the scheduler config's dynamic_thresholding_ratio and sample_max_value, as diffusers' schedulers do."""
    dtype, shape = x0.dtype, x0.shape
    flat = x0.reshape(shape[0], -1)
    if dtype not in (torch.float32, torch.float64):
        flat = flat.float()
    s = torch.quantile(flat.abs(), ratio, dim=1).clamp(min=1, max=max_value).unsqueeze(1)
    return (torch.clamp(flat, -s, s) / s).reshape(shape).to(dtype)


def _threshold(scheduler, x0: torch.Tensor) -> torch.Tensor:
    c = scheduler.config
    return dynamic_threshold(x0, c.dynamic_thresholding_ratio, c.sample_max_value)


def _clip_x0(scheduler, x0):
    if scheduler.config.get("thresholding", False):
        return _threshold(scheduler, x0)
    if scheduler.config.get("clip_sample", False):
        return x0.clamp(-scheduler.config.clip_sample_range, scheduler.config.clip_sample_range)
    return x0


class DDPMSampler:
    """Ancestral DDPM (Ho et al. 2020, Eq. 9): mu_t from x_0 and x_t, sigma_t^2 from the variance type."""

    stochastic = True
    multistep = False

    def __init__(self, scheduler_config, steps: int, device=None):
        from diffusers import DDPMScheduler

        self.scheduler = _scheduler(DDPMScheduler, scheduler_config, steps, device)
        self.timesteps = self.scheduler.timesteps
        self._t = [int(t) for t in self.timesteps]   # host copy: no device sync per step
        self.init_noise_sigma = float(self.scheduler.init_noise_sigma)
        if self.scheduler.config.variance_type in ("learned", "learned_range"):
            raise ValueError("variance_type learned/learned_range is not supported (the UNet must predict 4 channels)")

    def scale_input(self, sample, i: int):
        return sample

    def step(self, model_output, i: int, sample, previous=None) -> SplitStep:
        """One DDPM step (Eq. 9), split into mu_t and sigma_t."""
        s = self.scheduler
        t = self._t[i]
        prev_t = self._t[i + 1] if i + 1 < len(self._t) else -1
        alpha_prod_t = s.alphas_cumprod[t]
        alpha_prod_prev = s.alphas_cumprod[prev_t] if prev_t >= 0 else s.one
        current_alpha = alpha_prod_t / alpha_prod_prev
        x0, _ = _x0_and_eps(model_output, sample, alpha_prod_t, s.config.prediction_type)
        x0 = _clip_x0(s, x0)
        # mu_t: posterior mean of q(x_{t-1} | x_t, x_0) (Ho et al. Eq. 7)
        mean = (alpha_prod_prev**0.5 * (1 - current_alpha) / (1 - alpha_prod_t)) * x0 \
            + (current_alpha**0.5 * (1 - alpha_prod_prev) / (1 - alpha_prod_t)) * sample
        if t == 0:
            return SplitStep(mean, None, x0)
        beta = 1 - current_alpha
        variance = {   # sigma_t^2 by variance type (fixed_small: Eq. 7's posterior variance, clamped as diffusers)
            "fixed_small": lambda: posterior_variance(alpha_prod_t, alpha_prod_prev).clamp(min=1e-20),
            "fixed_small_log": lambda: torch.exp(0.5 * torch.log(posterior_variance(alpha_prod_t, alpha_prod_prev)
                                                                 .clamp(min=1e-20))),   # its std, as diffusers
            "fixed_large": lambda: beta,
            "fixed_large_log": lambda: torch.log(beta),
        }[s.config.variance_type]()
        std = variance if s.config.variance_type == "fixed_small_log" else variance**0.5
        return SplitStep(mean, std.to(sample.dtype), x0)


class DDIMSampler:
    """DDIM (Song et al. 2021, Eq. 12): deterministic for eta = 0, stochastic with sigma_t = eta * sqrt(var) otherwise."""

    multistep = False

    def __init__(self, scheduler_config, steps: int, eta: float = 0.0, device=None):
        from diffusers import DDIMScheduler

        self.scheduler = _scheduler(DDIMScheduler, scheduler_config, steps, device)
        self.timesteps = self.scheduler.timesteps
        self._t = [int(t) for t in self.timesteps]   # host copy: no device sync per step
        self.init_noise_sigma = float(self.scheduler.init_noise_sigma)
        self.eta = eta
        self.stochastic = eta > 0

    def scale_input(self, sample, i: int):
        return sample

    def step(self, model_output, i: int, sample, previous=None) -> SplitStep:
        """One DDIM step (Song et al. Eq. 12), split into its mean and sigma_t."""
        s = self.scheduler
        t = self._t[i]
        prev_t = self._t[i + 1] if i + 1 < len(self._t) else -1   # Song et al.'s sub-sequence: the next in the chain
        alpha_prod_t = s.alphas_cumprod[t]
        alpha_prod_prev = s.alphas_cumprod[prev_t] if prev_t >= 0 else s.final_alpha_cumprod
        x0, eps = _x0_and_eps(model_output, sample, alpha_prod_t, s.config.prediction_type)
        x0 = _clip_x0(s, x0)
        std = self.eta * posterior_variance(alpha_prod_t, alpha_prod_prev) ** 0.5   # Song et al. Eq. 16
        mean = alpha_prod_prev**0.5 * x0 + (1 - alpha_prod_prev - std**2) ** 0.5 * eps
        return SplitStep(mean, std.to(sample.dtype) if self.stochastic else None, x0)


class EulerAncestralSampler:
    """Euler ancestral (Karras et al. 2022): an Euler step to sigma_down, then noise of std sigma_up."""

    stochastic = True
    multistep = False

    def __init__(self, scheduler_config, steps: int, device=None):
        from diffusers import EulerAncestralDiscreteScheduler

        self.scheduler = _scheduler(EulerAncestralDiscreteScheduler, scheduler_config, steps, device)
        self.timesteps = self.scheduler.timesteps
        self.sigmas = self.scheduler.sigmas
        self.init_noise_sigma = float(self.scheduler.init_noise_sigma)

    def scale_input(self, sample, i: int):
        return sample / ((self.sigmas[i] ** 2 + 1) ** 0.5)

    def step(self, model_output, i: int, sample, previous=None) -> SplitStep:
        """One Euler-ancestral step, split into the deterministic Euler part and sigma_up."""
        sigma, sigma_to = self.sigmas[i], self.sigmas[i + 1]
        pt = self.scheduler.config.prediction_type
        if pt == "epsilon":
            x0 = sample - sigma * model_output
        elif pt == "v_prediction":
            x0 = model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1)
        else:
            raise ValueError(f"euler_ancestral supports epsilon and v_prediction, got {pt!r}")
        sigma_up = (sigma_to**2 * (sigma**2 - sigma_to**2) / sigma**2) ** 0.5
        sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
        mean = sample + (sample - x0) / sigma * (sigma_down - sigma)
        # diffusers draws noise at every Euler-ancestral step (sigma_up = 0 at the last): so do we
        return SplitStep(mean, sigma_up.to(sample.dtype), x0)


class DPMSolverSampler:
    """DPM-Solver++ 2M (Lu et al. 2022, Alg. 2) or its SDE variant (their Eq. 18), diffusers' multistep midpoint form.

    With h = lambda_t - lambda_s and D = x0_s + (x0_s - x0_prev) / (2 r), r = h_prev / h (D = x0_s at a first-order
    step), the ODE step is x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) D, and the SDE step
    x_t = (sigma_t / sigma_s) e^{-h} x_s + alpha_t (1 - e^{-2h}) D + sigma_t sqrt(1 - e^{-2h}) z."""

    multistep = True

    def __init__(self, scheduler_config, steps: int, device=None, algorithm: str = "dpmsolver++"):
        from diffusers import DPMSolverMultistepScheduler

        config = {**scheduler_config, "algorithm_type": algorithm, "solver_order": 2, "solver_type": "midpoint"}
        self.scheduler = _scheduler(DPMSolverMultistepScheduler, config, steps, device)
        c = self.scheduler.config
        if c.get("use_flow_sigmas") or c.prediction_type not in ("epsilon", "sample", "v_prediction"):
            raise ValueError(f"dpm-solver supports epsilon, sample and v_prediction, got {c.prediction_type!r}")
        self.timesteps = self.scheduler.timesteps
        self.sigmas = self.scheduler.sigmas
        self.init_noise_sigma = float(self.scheduler.init_noise_sigma)
        self.stochastic = algorithm == "sde-dpmsolver++"
        n = len(self.timesteps)
        last_first_order = c.euler_at_final or (c.lower_order_final and n < 15) or c.final_sigmas_type == "zero"
        # diffusers: first order at the first step (no history) and, for stability, at the last
        self.first_order = [i == 0 or (i == n - 1 and last_first_order) for i in range(n)]

    def scale_input(self, sample, i: int):
        return sample

    def _alpha_sigma(self, i: int):
        sigma = self.sigmas[i]
        alpha = 1 / ((sigma**2 + 1) ** 0.5)   # diffusers' _sigma_to_alpha_sigma_t
        return alpha, sigma * alpha

    def step(self, model_output, i: int, sample, previous=None) -> SplitStep:
        """One DPM-Solver++ (2M or SDE) step, split into its mean and its noise's std (None for the ODE)."""
        s = self.scheduler
        alpha_s, sigma_s = self._alpha_sigma(i)
        alpha_t, sigma_t = self._alpha_sigma(i + 1)
        pt = s.config.prediction_type   # x0_s: the data prediction the solver integrates
        x0 = ((sample - sigma_s * model_output) / alpha_s if pt == "epsilon" else model_output if pt == "sample"
              else alpha_s * sample - sigma_s * model_output)
        if s.config.thresholding:
            x0 = _threshold(s, x0)
        lambda_s, lambda_t = torch.log(alpha_s) - torch.log(sigma_s), torch.log(alpha_t) - torch.log(sigma_t)
        h = lambda_t - lambda_s
        second = not self.first_order[i] and previous is not None
        if second:   # D0 = x0_s, D1 = (x0_s - x0_prev) / r0
            alpha_p, sigma_p = self._alpha_sigma(i - 1)
            r0 = (lambda_s - (torch.log(alpha_p) - torch.log(sigma_p))) / h
            d1 = (1.0 / r0) * (x0 - previous)
        if self.stochastic:
            mean = (sigma_t / sigma_s * torch.exp(-h)) * sample + (alpha_t * (1 - torch.exp(-2.0 * h))) * x0
            if second:
                mean = mean + 0.5 * (alpha_t * (1 - torch.exp(-2.0 * h))) * d1
            std = sigma_t * torch.sqrt(1.0 - torch.exp(-2 * h))
            # diffusers draws noise at every step (std = 0 at a final sigma of zero): so do we
            return SplitStep(mean, std.to(sample.dtype), x0)
        mean = (sigma_t / sigma_s) * sample - (alpha_t * (torch.exp(-h) - 1.0)) * x0
        if second:
            mean = mean - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * d1
        return SplitStep(mean, None, x0)


# EDM's stochastic sampler settings (Karras et al. 2022, Table 5, ImageNet-64): S_churn, S_tmin, S_tmax, S_noise
EDM_CHURN = dict(s_churn=40.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)


class EulerChurnSampler:
    """Euler with churn (Karras et al. 2022, Alg. 2 as diffusers' EulerDiscreteScheduler runs it): raise sigma to
    sigma_hat = (1 + gamma) sigma with noise of std S_noise sqrt(sigma_hat^2 - sigma^2), then an Euler step from
    sigma_hat to the next sigma with the model's output at x. The step is affine in the churned x, so it splits:
    x_next = mean + A S_noise sqrt(sigma_hat^2 - sigma^2) z, with A = d x_next / d x (1 for epsilon prediction)."""

    stochastic = True
    multistep = False

    def __init__(self, scheduler_config, steps: int, device=None, s_churn: float = EDM_CHURN["s_churn"],
                 s_tmin: float = EDM_CHURN["s_tmin"], s_tmax: float = EDM_CHURN["s_tmax"],
                 s_noise: float = EDM_CHURN["s_noise"]):
        from diffusers import EulerDiscreteScheduler

        self.scheduler = _scheduler(EulerDiscreteScheduler, scheduler_config, steps, device)
        if self.scheduler.config.prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"euler_churn supports epsilon, v_prediction and sample, got "
                             f"{self.scheduler.config.prediction_type!r}")
        self.timesteps = self.scheduler.timesteps
        self.sigmas = self.scheduler.sigmas
        self.init_noise_sigma = float(self.scheduler.init_noise_sigma)
        self.churn = dict(s_churn=finite_number(s_churn, "s_churn", minimum=0.0), s_tmin=float(s_tmin),
                          s_tmax=float(s_tmax), s_noise=finite_number(s_noise, "s_noise", minimum=0.0))

    def scale_input(self, sample, i: int):
        return sample / ((self.sigmas[i] ** 2 + 1) ** 0.5)

    def step(self, model_output, i: int, sample, previous=None) -> SplitStep:
        """One Euler step from sigma_hat, split into the step from x itself and the churn noise it carries."""
        c = self.churn
        sigma, sigma_next = self.sigmas[i], self.sigmas[i + 1]
        gamma = min(c["s_churn"] / (len(self.sigmas) - 1), 2**0.5 - 1) if c["s_tmin"] <= sigma <= c["s_tmax"] else 0.0
        sigma_hat = sigma * (gamma + 1)
        pt = self.scheduler.config.prediction_type
        if pt == "epsilon":
            x0, slope = sample - sigma_hat * model_output, 1.0   # slope: d x0 / d x
        elif pt == "v_prediction":
            x0, slope = model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1), 1 / (sigma**2 + 1)
        else:
            x0, slope = model_output, 0.0
        dt = sigma_next - sigma_hat
        mean = sample + (sample - x0) / sigma_hat * dt
        if gamma == 0:   # diffusers draws no noise without churn
            return SplitStep(mean, None, x0)
        gain = 1 + (1 - slope) * dt / sigma_hat    # A = d x_next / d x
        std = gain * c["s_noise"] * (sigma_hat**2 - sigma**2) ** 0.5
        return SplitStep(mean, torch.as_tensor(std).to(sample.dtype), x0)


@dataclass(frozen=True)
class SamplerRecord:
    """Everything the package knows about one sampler, in one place (its row of SAMPLER_RECORDS)."""

    make: Callable          # constructor(scheduler_config, steps, device=...)
    label: str              # its name in the chapters' tables
    default_steps: int      # steps=None: the paper's DDIM-50 and DDPM-1000; the others at their authors' usual counts
    budget: str             # the chapters' step budget it runs: "ddim_steps" (tens of steps) or "ddpm_steps" (the chain)
    stochastic: bool        # draws noise at its steps (DDIM: only with eta > 0), so Variance-Corrected Fusion applies
    multistep: bool         # keeps a per-view history (the previous x_0 prediction)


SAMPLER_RECORDS = {
    "ddim": SamplerRecord(DDIMSampler, "DDIM", 50, "ddim_steps", stochastic=False, multistep=False),
    # DDPM's default is the whole chain of Stable Diffusion 2's schedule
    "ddpm": SamplerRecord(DDPMSampler, "DDPM", SD2_SCHEDULER["num_train_timesteps"], "ddpm_steps",
                          stochastic=True, multistep=False),
    # an ancestral sampler of tens of steps (k-diffusion, diffusers): DDIM's budget in the chapters as in the engine
    "euler_ancestral": SamplerRecord(EulerAncestralSampler, "Euler a", 50, "ddim_steps", stochastic=True,
                                     multistep=False),
    # DPM-Solver++: second order, diffusers' usual 20-25 steps
    "dpmpp_2m": SamplerRecord(functools.partial(DPMSolverSampler, algorithm="dpmsolver++"), "DPM++ 2M", 25,
                              "ddim_steps", stochastic=False, multistep=True),
    "dpmpp_2m_sde": SamplerRecord(functools.partial(DPMSolverSampler, algorithm="sde-dpmsolver++"), "DPM++ 2M SDE",
                                  25, "ddim_steps", stochastic=True, multistep=True),
    # EDM's stochastic sampler: tens of steps
    "euler_churn": SamplerRecord(EulerChurnSampler, "Euler churn", 50, "ddim_steps", stochastic=True,
                                 multistep=False),
}
SAMPLERS = {name: r.make for name, r in SAMPLER_RECORDS.items()}   # name -> constructor(scheduler_config, steps, ...)
DEFAULT_STEPS = {name: r.default_steps for name, r in SAMPLER_RECORDS.items()}


def check_sampler(name: str, steps: int | None, eta: float = 0.0, num_train_timesteps: int | None = None) -> int:
    """Validate the sampler name, step count (1 ... num_train_timesteps when known) and DDIM's eta in [0, 1];
    return the step count (the paper's default if None)."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {name!r}")
    steps = positive_int(DEFAULT_STEPS[name] if steps is None else steps, "steps")
    if num_train_timesteps is not None and steps > num_train_timesteps:
        raise ValueError(f"steps must be at most the scheduler's num_train_timesteps ({num_train_timesteps}): "
                         f"there are no more timesteps to visit, got {steps}")
    finite_number(eta, "eta")
    if eta != 0.0 and name != "ddim":
        raise ValueError(f"eta applies to the ddim sampler only, got eta={eta} with sampler={name!r}")
    if not 0.0 <= eta <= 1.0:   # sigma_t = eta * sqrt(var) > the DDIM step's budget beyond 1: NaN means
        raise ValueError(f"eta must be in [0, 1] (0: DDIM, 1: DDPM's variance), got {eta}")
    return steps


def make_sampler(name: str, scheduler_config, steps: int | None = None, eta: float = 0.0, device=None):
    """A split-step sampler built from a diffusers scheduler config."""
    steps = check_sampler(name, steps, eta, scheduler_config.get("num_train_timesteps"))
    if name == "ddim":
        return DDIMSampler(scheduler_config, steps, eta=eta, device=device)
    return SAMPLERS[name](scheduler_config, steps, device=device)
