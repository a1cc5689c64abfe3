"""Sampler steps split into a mean and a noise part: x_{t-1} = mu_t + sigma_t z (paper Eq. 9-10).

Each sampler is built from a diffusers scheduler config (``XScheduler.from_config``), so betas,
timesteps and sigmas are diffusers' own; its ``step`` reproduces the scheduler's ``step`` exactly
(tests compare them with the same noise) but returns the two parts separately, which is what
Variance-Corrected Fusion needs. ``std is None`` marks a deterministic step: no noise is drawn.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .archs import SD2_SCHEDULER
from .checks import finite_number, positive_int

# the paper's DDIM-50 and DDPM-1000: DDPM's default is the whole chain of Stable Diffusion 2's schedule
DEFAULT_STEPS = {"ddim": 50, "ddpm": SD2_SCHEDULER["num_train_timesteps"], "euler_ancestral": 50}


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


def _scheduler(cls, scheduler_config, steps: int, device=None):
    """cls.from_config(scheduler_config) with `steps` timesteps, all within the trained range [0, T).

    With "leading" spacing, diffusers adds steps_offset to every timestep: Stable Diffusion 2's steps_offset = 1
    at steps = T gives t = T ... 1, one past alphas_cumprod. The paper's DDPM-1000 chain is t = T-1 ... 0 (the
    authors load their scheduler with steps_offset = 0 for this reason), so where the offset would run past the
    end we drop it; wherever it stays in range, the timesteps are diffusers' own for that config.
    """
    scheduler = cls.from_config(scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    if float(scheduler.timesteps.max()) >= scheduler.config.num_train_timesteps:
        scheduler = cls.from_config({**scheduler.config, "steps_offset": 0})
        scheduler.set_timesteps(steps, device=device)
    return scheduler


def _clip_x0(scheduler, x0):
    if scheduler.config.get("thresholding", False):
        return scheduler._threshold_sample(x0)
    if scheduler.config.get("clip_sample", False):
        return x0.clamp(-scheduler.config.clip_sample_range, scheduler.config.clip_sample_range)
    return x0


class DDPMSampler:
    """Ancestral DDPM (Ho et al. 2020, Eq. 9): mu_t from x_0 and x_t, sigma_t^2 from the variance type."""

    stochastic = True

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

    def step(self, model_output, i: int, sample) -> SplitStep:
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
        variance = s._get_variance(t)
        std = variance if s.config.variance_type == "fixed_small_log" else variance**0.5
        return SplitStep(mean, std.to(sample.dtype), x0)


class DDIMSampler:
    """DDIM (Song et al. 2021, Eq. 12): deterministic for eta = 0, stochastic with sigma_t = eta * sqrt(var) otherwise."""

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

    def step(self, model_output, i: int, sample) -> SplitStep:
        """One DDIM step (Song et al. Eq. 12), split into its mean and sigma_t."""
        s = self.scheduler
        t = self._t[i]
        prev_t = t - s.config.num_train_timesteps // s.num_inference_steps
        alpha_prod_t = s.alphas_cumprod[t]
        alpha_prod_prev = s.alphas_cumprod[prev_t] if prev_t >= 0 else s.final_alpha_cumprod
        x0, eps = _x0_and_eps(model_output, sample, alpha_prod_t, s.config.prediction_type)
        x0 = _clip_x0(s, x0)
        std = self.eta * s._get_variance(t, prev_t) ** 0.5
        mean = alpha_prod_prev**0.5 * x0 + (1 - alpha_prod_prev - std**2) ** 0.5 * eps
        return SplitStep(mean, std.to(sample.dtype) if self.stochastic else None, x0)


class EulerAncestralSampler:
    """Euler ancestral (Karras et al. 2022): an Euler step to sigma_down, then noise of std sigma_up."""

    stochastic = True

    def __init__(self, scheduler_config, steps: int, device=None):
        from diffusers import EulerAncestralDiscreteScheduler

        self.scheduler = _scheduler(EulerAncestralDiscreteScheduler, scheduler_config, steps, device)
        self.timesteps = self.scheduler.timesteps
        self.sigmas = self.scheduler.sigmas
        self.init_noise_sigma = float(self.scheduler.init_noise_sigma)

    def scale_input(self, sample, i: int):
        return sample / ((self.sigmas[i] ** 2 + 1) ** 0.5)

    def step(self, model_output, i: int, sample) -> SplitStep:
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


SAMPLERS = {"ddim": DDIMSampler, "ddpm": DDPMSampler, "euler_ancestral": EulerAncestralSampler}


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
