"""Table 3: seconds per panorama per method, beside the paper's.

runtime_table times each method with its paper sampler (MD, GF, Sync with DDIM; VCF, GVCF with DDPM) by the
benchmark's timing loop (gvcf.eval.timing.time_runs); `gvcf bench --methods` prints it (format_runtime) after the
overhead comparison; runtime() is the chapter's view of it, runtime_comparison() sets it beside the paper's.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..engine.checks import positive_int
from ..engine.generate import DEFAULT_GUIDANCE, generate
from ..engine.samplers import DEFAULT_STEPS
from ..engine.stages import labelled
from ..engine.views import canvas
from ..eval import bench, timing
from ..eval.bench import DEFAULT_PROMPT, DEFAULT_REPEATS
from ..eval.results import PanoramaSet, Results
from .methods import METHOD_SAMPLER, NOT_REPRODUCED, RUNTIME_NAMES
from .tables import _lookup, _num, _value, paper_table

if TYPE_CHECKING:
    from .chapter_setup import Setup

METHODS = ("md", "gf", "vcf", "gvcf", "sync", "elastic")   # the keys of METHOD_SAMPLER, in `gvcf bench --help`'s order
DEFAULT_DDPM_STEPS = 10        # `gvcf bench --methods`: DDPM steps run, reported scaled to the paper's 1000
WARMUP_STEPS = 2               # warm-up run: enough to allocate and (with --compile) compile


# ============================================================================ the runtime table

def _scaled(method: str, sampler: str, steps: int, sync) -> tuple[int, float]:
    """(reported steps, factor): times are reported at the paper's step count (DDIM 50, DDPM 1000), scaled linearly
    from the steps run (every step costs the same); NaN for a sync schedule that is not uniform over both."""
    target = DEFAULT_STEPS[sampler]
    if steps == target:
        return target, 1.0
    if method == "sync":
        share = lambda n: sum(sync.is_sync_step(i) for i in range(n)) / n   # noqa: E731
        if share(steps) != share(target):
            return target, math.nan
    return target, target / steps


def check_methods(methods) -> list[str]:
    """A comma-separated string or a list of METHODS names, as a list; ValueError naming methods otherwise."""
    if isinstance(methods, str):
        methods = [m for m in methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {methods!r}")
    return list(methods)


def runtime_table(model, methods=METHODS, repeats: int = DEFAULT_REPEATS, steps: int = DEFAULT_STEPS["ddim"],
                  ddpm_steps: int = DEFAULT_STEPS["ddpm"], height: int | None = None, width: int | None = None,
                  stride: int | None = None, guidance_scale: float = DEFAULT_GUIDANCE, prompt: str = DEFAULT_PROMPT,
                  sync=None, lpips=None) -> pd.DataFrame:
    """Seconds per panorama, mean +- std over `repeats` runs after a short warm-up, per method with its sampler
    (paper Table 3: MD, GF, Sync with DDIM; VCF, GVCF with DDPM). Decoding excluded, prompt encoding included.

    Rows also give the time at the paper's step counts (DDIM 50, DDPM 1000), scaled linearly where fewer steps
    were run (`scaled` True). Sync uses `sync` (default SyncConfig(grad_batch=1): one view differentiated at a time,
    as SyncDiffusion's code and the paper's Table 3 run it; the chapters' panoramas batch them) and `lpips` (default: a random-backbone LPIPS
    of its net, gvcf.eval.bench.random_lpips; timing does not depend on the weights)."""
    from ..engine.elastic import generate_elastic
    from ..engine.sync import SyncConfig, make_sync_hook

    methods = check_methods(methods)
    for name, value in (("repeats", repeats), ("steps", steps), ("ddpm_steps", ddpm_steps)):
        positive_int(value, name)
    sync = SyncConfig(grad_batch=1) if sync is None else sync
    if "sync" in methods and lpips is None:
        lpips = bench.random_lpips(sync.lpips_net, model.device)
    geometry = canvas(model, height, width, stride)
    height, width, stride = geometry.height, geometry.width, geometry.stride[1]
    runs, warmups, steps_of = {}, {}, {}
    for method in methods:
        sampler = METHOD_SAMPLER[method]
        n = steps_of[method] = ddpm_steps if sampler == "ddpm" else steps
        kw = dict(height=height, width=width, stride=stride, sampler=sampler, guidance_scale=guidance_scale,
                  output_type="latent", progress=False, fusion="md" if method == "sync" else method)

        @labelled(f"timed {method} {sampler}")
        def run(n_steps, seed, kw=kw, method=method):
            if method == "elastic":   # ElasticDiffusion: its own loop on the same canvas (no stride, no fusion)
                generate_elastic(model, prompt, height=height, width=width, steps=n_steps, seed=seed,
                                 guidance_scale=guidance_scale, output_type="latent", progress=False)
                return
            hook = make_sync_hook(sync, lpips) if method == "sync" else None
            generate(model, prompt, steps=n_steps, seed=seed, view_hook=hook, **kw)

        runs[method] = lambda seed, run=run, n=n: run(n, seed)
        warmups[method] = lambda run=run, n=n: run(min(n, WARMUP_STEPS), 0)
    # one loop for all methods: round i times every method once, so run i of each shares the machine's load
    timings = timing.time_runs(runs, model.device, repeats, warmups=warmups)
    rows = []
    for method, t in timings.items():
        sampler, n = METHOD_SAMPLER[method], steps_of[method]
        target, factor = _scaled(method, sampler, n, sync)
        rows.append(dict(method=method, sampler=sampler, steps=n, repeats=repeats, mean_s=t.mean, std_s=t.std,
                         reported_steps=target, reported_mean_s=t.mean * factor, reported_std_s=t.std * factor,
                         reported_runs_s=tuple(x * factor for x in t.seconds), scaled=factor != 1.0))
    df = pd.DataFrame(rows)
    df.attrs.update(timing.hardware_columns(model.device) | dict(height=height, width=width, stride=stride,
                                                                dtype=str(model.dtype).removeprefix("torch.")))
    return df


def format_runtime(df: pd.DataFrame) -> str:
    """The runtime table as printed: mean +- std per panorama, as run and at the paper's step counts."""
    lines = [f"runtime per panorama ({df.attrs['height']}x{df.attrs['width']}, stride {df.attrs['stride']}):"]
    for r in df.itertuples():
        at = f"{r.reported_mean_s:.2f} +- {r.reported_std_s:.2f} s at {r.reported_steps} steps" + \
             (" (scaled)" if r.scaled else "")
        lines.append(f"  {r.method:5s} {r.sampler:5s} {r.steps:5d} steps: {r.mean_s:.3f} +- {r.std_s:.3f} s;  {at}")
    return "\n".join(lines)


# ============================================================================ Table 3 beside the paper's

def runtime(S: Setup, prompt: str, repeats: int = 1,
            methods=("md", "sync", "elastic", "gf", "vcf", "gvcf")) -> pd.DataFrame:
    """Seconds per panorama (mean and std over `repeats`, after a warm-up) per method with the paper's sampler, by
    runtime_table on this chapter's canvas; also scaled linearly to the paper's step counts (DDIM 50, DDPM 1000).
    Hardware in df.attrs (device name, torch version, dtype, threads)."""
    repeats = positive_int(repeats, "repeats")
    df = runtime_table(S.model, methods=list(methods), repeats=repeats, steps=S.steps_for("ddim"),
                       ddpm_steps=S.steps_for("ddpm"), height=S.height, width=S.width, stride=S.stride, prompt=prompt)
    out = pd.DataFrame(dict(
        sampler=df["sampler"].str.upper(), method=df["method"].map(RUNTIME_NAMES), steps=df["steps"],
        repeats=df["repeats"],
        runtime_mean_s=df["mean_s"], runtime_std_s=df["std_s"], paper_steps=df["reported_steps"],
        scaled_mean_s=df["reported_mean_s"], scaled_std_s=df["reported_std_s"], scaled_runs_s=df["reported_runs_s"]))
    out.attrs.update(df.attrs)
    return out


def runtime_results(table: pd.DataFrame) -> Results:
    """runtime()'s seconds per timed run, at the paper's step counts, as results for gvcf.paper.claims: run i of
    every method shares round i of the interleaved timing loop (the same machine load)."""
    return Results([PanoramaSet({"method": r.method}, {"seconds": np.asarray(r.scaled_runs_s, float)})
                    for r in table.itertuples()], unit="timed runs")


def runtime_comparison(ours: pd.DataFrame) -> pd.DataFrame:
    """Table 3 for display: the paper's rows (plus ours not in it), our seconds per panorama as run and scaled to the
    paper's step counts, the paper's, and both relative to MD (the comparable part across machines)."""
    paper = paper_table("table3")
    keys = list(zip(paper["sampler"], paper["method"]))
    keys += [k for k in zip(ours["sampler"], ours["method"]) if k not in keys]
    md_o = _value(ours, "scaled_mean_s", method="MD")
    md_p = _value(paper, "runtime_mean_s", method="MD")
    def fmt(m, s, runs=2):
        if math.isnan(m):
            return "n/a"
        return f"{m:.2f} ± {s:.2f}" if runs > 1 else f"{m:.2f} (1 run)"

    rows = []
    for sampler, name in keys:
        o = _lookup(ours, sampler=sampler, method=name)
        p = _lookup(paper, sampler=sampler, method=name)
        om = _num(o["runtime_mean_s"].iloc[0]) if len(o) else math.nan
        osd = _num(o["runtime_std_s"].iloc[0]) if len(o) else math.nan
        sm = _num(o["scaled_mean_s"].iloc[0]) if len(o) else math.nan
        ssd = _num(o["scaled_std_s"].iloc[0]) if len(o) else math.nan
        runs = int(o["repeats"].iloc[0]) if len(o) and "repeats" in o else 2
        pm = _num(p["runtime_mean_s"].iloc[0]) if len(p) else math.nan
        psd = _num(p["runtime_std_s"].iloc[0]) if len(p) else math.nan
        rows.append({"sampler": sampler, "method": name,
                     "steps (ours)": int(o["steps"].iloc[0]) if len(o) else "n/a",
                     "ours, s": fmt(om, osd, runs) if len(o) else NOT_REPRODUCED,
                     "ours at the paper's steps, s": fmt(sm, ssd, runs) if len(o) else "n/a",
                     "paper, s": fmt(pm, psd),
                     "ours ÷ MD": "n/a" if math.isnan(sm / md_o) else f"{sm / md_o:.1f}",
                     "paper ÷ MD": "n/a" if math.isnan(pm / md_p) else f"{pm / md_p:.1f}"})
    return pd.DataFrame(rows)


def hardware_text(attrs: dict) -> str:
    a = attrs
    return (f"{a.get('device_name', '?')} ({a.get('device', '?')}, {a.get('cpu_threads', '?')} CPU threads), "
            f"torch {a.get('torch', '?')}, diffusers {a.get('diffusers', '?')}, {a.get('dtype', '?')}")

