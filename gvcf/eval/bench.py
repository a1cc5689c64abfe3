"""`gvcf bench`: wall time of our joint-denoising loop beside diffusers' panorama pipeline and the bare UNet,
and the per-method runtime table (paper Table 3: MD, GF, Sync with DDIM; VCF, GVCF with DDPM).

All rows of the comparison run the same work on the same model in the same process: the same views, steps and
classifier-free-guidance batches (UNet calls and their batch rows are counted during the warm-up and printed).
Every row includes its prompt encoding (one text-encoder pass each for the prompt and the negative prompt) and
excludes VAE decoding (output_type='latent'). Times are medians of `repeats` runs after one warm-up run, the rows
interleaved run by run so that a change in machine load affects them alike. Two more rows time our loop and the
bare calls with a UNet that returns its input: their difference is the loop's own cost (gather, sampler step,
fusion), which gives ours / bare UNet free of the UNet's run-to-run spread on a loaded machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import statistics
import time
import types
import warnings
from pathlib import Path

import pandas as pd
import torch

from ..engine.generate import DEFAULT_GUIDANCE, generate
from ..engine.samplers import DEFAULT_STEPS, make_sampler
from ..engine.views import DEFAULT_WIDTH_VIEWS, ViewLayout, canvas

BENCH_ARCHS = ("tiny64", "embedded", "sd2")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
METHODS = ("md", "gf", "vcf", "gvcf", "sync")
METHOD_SAMPLER = {"md": "ddim", "gf": "ddim", "vcf": "ddpm", "gvcf": "ddpm", "sync": "ddim"}   # paper Table 3
DEFAULT_ARCH = "tiny64"
DEFAULT_BENCH_STEPS = 4        # "a few" DDIM steps: every step costs the same, so the ratios do not depend on it
DEFAULT_DDPM_STEPS = 10        # runtime table: DDPM steps run, reported scaled to the paper's 1000
DEFAULT_REPEATS = 3
WARMUP_RUNS = 1
WARMUP_STEPS = 2               # runtime table warm-up: enough to allocate and (with --compile) compile
DEFAULT_PROMPT = "a photo of a mountain range at twilight"
OVERHEAD_GOAL = 1.05           # ours / bare UNet: the loop around the UNet should cost at most 5 %
CFG_ROWS = 2                   # with CFG every view is evaluated twice (unconditional and conditional) per call
ROWS = ("ours", "diffusers_vb1", "diffusers_all", "bare_unet", "ours_noop_unet", "bare_noop_unet")
NOOP_MIN_REPEATS = 10          # the no-op-UNet rows take milliseconds: time them at least this often


# ---------------------------------------------------------------- helpers

def hardware(device) -> dict:
    """Where the numbers were measured: device name (GPU or CPU model), threads, torch and diffusers versions."""
    import diffusers

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return dict(device=str(device), device_name=name, cpu_threads=torch.get_num_threads(), torch=torch.__version__,
                diffusers=diffusers.__version__)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


class _UNetCounter:
    """Counts UNet calls and the batch rows they evaluate (a forward pre-hook, removed on exit)."""

    def __init__(self, unet):
        self.unet, self.calls, self.rows = unet, 0, 0

    def _hook(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.calls += 1
        self.rows += int(sample.shape[0])

    def __enter__(self):
        self.handle = self.unet.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def resolve_dtype(dtype, device) -> torch.dtype:
    """--dtype name (or torch dtype) -> torch dtype; None: float16 on CUDA, float32 elsewhere (as load_model)."""
    if dtype is None:
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def bench_model(arch: str = DEFAULT_ARCH, device=None, dtype=None, compile: bool = False):
    """The model a bench runs on: 'tiny64' / 'sd2' random weights (archs), 'embedded' the bundled model.

    Returns (model, note); note says when the bundled model is missing and its architecture was built instead."""
    from ..engine.archs import build_random_model
    from ..engine.models import EMBEDDED, load_model, resolve_device

    if arch not in BENCH_ARCHS:
        raise ValueError(f"arch must be one of {BENCH_ARCHS}, got {arch!r}")
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    note = ""
    if arch == "embedded":
        try:
            model = load_model(EMBEDDED, device=device, dtype=dtype)
        except ValueError:
            model = build_random_model("tiny", device=device, dtype=dtype)
            note = "the bundled model is missing: its architecture with random weights was timed"
    else:
        model = build_random_model(arch, device=device, dtype=dtype)
    if compile:
        model.unet = torch.compile(model.unet)
    return model, note


def random_lpips(net: str = "vgg", device="cpu"):
    """LPIPS with a random backbone (timing does not depend on its weights; nothing is downloaded)."""
    import lpips

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    return model.eval().requires_grad_(False).to(device)


# ---------------------------------------------------------------- the three implementations

def panorama_pipeline(model, layout: ViewLayout):
    """diffusers' StableDiffusionPanoramaPipeline on the model's components, with a DDIM scheduler.

    Its get_views hard-codes a 64-latent window, a factor-8 VAE and a stride of 8 latent pixels; it is replaced by
    our layout's boxes so that both loops denoise the same views (the rest of its loop is diffusers' own)."""
    from diffusers import DDIMScheduler
    from diffusers.utils import logging as dlogging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from diffusers import StableDiffusionPanoramaPipeline

    wh, ww = layout.window
    views = [(top, top + wh, left, left + ww) for top, left in layout.boxes]

    class LayoutPanoramaPipeline(StableDiffusionPanoramaPipeline):
        def get_views(self, panorama_height, panorama_width, window_size=64, stride=8, circular_padding=False):
            return list(views)

    verbosity = dlogging.get_verbosity()
    dlogging.set_verbosity_error()
    try:
        pipe = LayoutPanoramaPipeline(
            vae=model.vae, text_encoder=model.text_encoder, tokenizer=model.tokenizer, unet=model.unet,
            scheduler=DDIMScheduler.from_config(model.scheduler_config), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
    finally:
        dlogging.set_verbosity(verbosity)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bare_unet(model, prompt: str, layout: ViewLayout, steps: int, guidance_scale: float,
              view_batch_size: int | None = None):
    """A function running only the UNet calls of one panorama (same batches, same calls; no fusion, no scheduler).

    The prompt is encoded inside (as every other row does); inputs are fixed tensors built beforehand."""
    n = len(layout)
    batch = view_batch_size or n
    sizes = [min(batch, n - s) for s in range(0, n, batch)]
    cfg = guidance_scale > 1.0
    timesteps = make_sampler("ddim", model.scheduler_config, steps, device=model.device).timesteps
    gen = torch.Generator("cpu").manual_seed(0)
    inputs = {k: torch.randn((k * (CFG_ROWS if cfg else 1), model.latent_channels, *layout.window), generator=gen)
              .to(model.device, model.dtype) for k in set(sizes)}

    def run():
        text = model.encode_prompt(prompt, "", guidance=cfg)
        embeds = {k: (torch.cat([text.uncond.expand(k, -1, -1), text.cond.expand(k, -1, -1)]) if cfg
                      else text.cond.expand(k, -1, -1)) for k in inputs}
        with torch.no_grad():
            for t in timesteps:
                for k in sizes:
                    model.unet(inputs[k], t, encoder_hidden_states=embeds[k])

    return run


class NoOpUNet(torch.nn.Module):
    """The UNet's stand-in returning its input: timing a loop with it measures the loop's own cost around the UNet."""

    def __init__(self, unet):
        super().__init__()
        self.config = unet.config
        self._where = (unet.device, unet.dtype)

    @property
    def device(self) -> torch.device:
        return self._where[0]

    @property
    def dtype(self) -> torch.dtype:
        return self._where[1]

    def forward(self, sample, timestep, encoder_hidden_states=None, **kwargs):
        return types.SimpleNamespace(sample=sample)


# ---------------------------------------------------------------- the comparison

def run_bench(arch: str = DEFAULT_ARCH, device=None, dtype=None, compile: bool = False,
              steps: int = DEFAULT_BENCH_STEPS, height: int | None = None, width: int | None = None,
              stride: int | None = None, repeats: int = DEFAULT_REPEATS, guidance_scale: float = DEFAULT_GUIDANCE,
              prompt: str = DEFAULT_PROMPT, model=None, diffusers: bool = True, note: str = "") -> pd.DataFrame:
    """Our gvcf.generate (md, DDIM) vs diffusers' panorama pipeline (view_batch_size 1 and all views) vs the bare UNet.

    One row per implementation: median/min/max seconds per panorama, UNet calls and evaluated batch rows,
    `ours_over` = ours' median / this row's median; hardware and settings in every row (for CSV) and in df.attrs.
    model: time this model instead of building `arch` (arch, compile and note then only label the rows).
    """
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats <= 0:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    if guidance_scale < 0:
        raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
    if model is None:
        model, note = bench_model(arch, device, dtype, compile)
    geometry = canvas(model, height, width, stride)
    height, width, stride, layout = geometry.height, geometry.width, geometry.stride[1], geometry.layout
    n_views, dev = len(layout), model.device

    def ours():
        generate(model, prompt, height=height, width=width, stride=stride, fusion="md", sampler="ddim", steps=steps,
                 guidance_scale=guidance_scale, seed=0, output_type="latent", progress=False)

    runs = {"ours": (ours, n_views, "gvcf.generate, fusion md")}
    if diffusers:
        pipe = panorama_pipeline(model, layout)
        for key, vb, what in (("diffusers_vb1", 1, "diffusers StableDiffusionPanoramaPipeline"),
                              ("diffusers_all", n_views, "diffusers StableDiffusionPanoramaPipeline")):
            def call(vb=vb):
                pipe(prompt, height=height, width=width, num_inference_steps=steps, guidance_scale=guidance_scale,
                     view_batch_size=vb, output_type="latent", generator=torch.Generator("cpu").manual_seed(0))
            runs[key] = (call, vb, what)
    runs["bare_unet"] = (bare_unet(model, prompt, layout, steps, guidance_scale), n_views,
                         "bare UNet calls (same batches)")
    # the loop's own cost, free of the UNet's run-to-run spread: the same two rows with a UNet that does nothing
    noop = dataclasses.replace(model, unet=NoOpUNet(model.unet))
    noop_runs = {"ours_noop_unet": (lambda: generate(
        noop, prompt, height=height, width=width, stride=stride, fusion="md", sampler="ddim", steps=steps,
        guidance_scale=guidance_scale, seed=0, output_type="latent", progress=False), n_views,
        "gvcf.generate, UNet replaced by identity"),
        "bare_noop_unet": (bare_unet(noop, prompt, layout, steps, guidance_scale), n_views,
                           "bare calls, UNet replaced by identity")}

    counts = {}
    for key, (fn, _, _) in runs.items():   # warm-up, counting the UNet's work
        with _UNetCounter(model.unet) as counter:
            for _ in range(WARMUP_RUNS):
                _timed(fn, dev)
        counts[key] = (counter.calls // WARMUP_RUNS, counter.rows // WARMUP_RUNS)
    times = {key: [] for key in runs | noop_runs}
    for _ in range(repeats):
        for key, (fn, _, _) in runs.items():
            times[key].append(_timed(fn, dev))
    for key, (fn, _, _) in noop_runs.items():
        with _UNetCounter(noop.unet) as counter:
            _timed(fn, dev)
        counts[key] = (counter.calls, counter.rows)
    for _ in range(max(repeats, NOOP_MIN_REPEATS)):
        for key, (fn, _, _) in noop_runs.items():
            times[key].append(_timed(fn, dev))

    info = hardware(dev) | dict(arch=arch, dtype=str(model.dtype).removeprefix("torch."), compile=compile,
                                height=height, width=width, stride=stride, steps=steps, views=n_views,
                                guidance_scale=guidance_scale, repeats=repeats, note=note)
    ours_median = statistics.median(times["ours"])
    rows = []
    for key, (_, vb, what) in (runs | noop_runs).items():
        median = statistics.median(times[key])
        rows.append(dict(row=key, what=what, view_batch_size=vb, unet_calls=counts[key][0],
                         unet_rows=counts[key][1], median_s=median, min_s=min(times[key]), max_s=max(times[key]),
                         ours_over=ours_median / median if key in runs else math.nan) | info)
    df = pd.DataFrame(rows)
    df.attrs.update(info)
    df.attrs["ratios"] = ratios(df)
    return df


def ratios(df: pd.DataFrame, stat: str = "median_s") -> dict:
    """ours / bare UNet and ours / diffusers (both batchings) from a run_bench table (of medians, or of `stat`)."""
    med = df.set_index("row")[stat]
    out = {"ours/bare_unet": med["ours"] / med["bare_unet"]}
    if "ours_noop_unet" in med:   # bare UNet time + the loop's own cost, over the bare UNet time
        out["ours/bare_unet from loop cost"] = 1 + (med["ours_noop_unet"] - med["bare_noop_unet"]) / med["bare_unet"]
    for key in ("diffusers_all", "diffusers_vb1"):
        if key in med:
            out[f"ours/{key}"] = med["ours"] / med[key]
    return out


# ---------------------------------------------------------------- the runtime table (paper Table 3)

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
    were run (`scaled` True). Sync uses `sync` (default SyncConfig()) and `lpips` (default: a random-backbone LPIPS
    of its net; timing does not depend on the weights)."""
    from ..engine.sync import SyncConfig, make_sync_hook

    methods = check_methods(methods)
    for name, value in (("repeats", repeats), ("steps", steps), ("ddpm_steps", ddpm_steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    sync = SyncConfig() if sync is None else sync
    if "sync" in methods and lpips is None:
        lpips = random_lpips(sync.lpips_net, model.device)
    geometry = canvas(model, height, width, stride)
    height, width, stride = geometry.height, geometry.width, geometry.stride[1]
    rows = []
    for method in methods:
        sampler = METHOD_SAMPLER[method]
        n = ddpm_steps if sampler == "ddpm" else steps
        kw = dict(height=height, width=width, stride=stride, sampler=sampler, guidance_scale=guidance_scale,
                  output_type="latent", progress=False, fusion="md" if method == "sync" else method)

        def run(n_steps, seed, kw=kw, method=method):
            hook = make_sync_hook(sync, lpips) if method == "sync" else None
            generate(model, prompt, steps=n_steps, seed=seed, view_hook=hook, **kw)

        _timed(lambda: run(min(n, WARMUP_STEPS), 0), model.device)
        times = [_timed(lambda r=r: run(n, r), model.device) for r in range(repeats)]
        mean = statistics.fmean(times)
        std = statistics.stdev(times) if len(times) > 1 else 0.0
        target, factor = _scaled(method, sampler, n, sync)
        rows.append(dict(method=method, sampler=sampler, steps=n, repeats=repeats, mean_s=mean, std_s=std,
                         reported_steps=target, reported_mean_s=mean * factor, reported_std_s=std * factor,
                         scaled=factor != 1.0))
    df = pd.DataFrame(rows)
    df.attrs.update(hardware(model.device) | dict(height=height, width=width, stride=stride,
                                                  dtype=str(model.dtype).removeprefix("torch.")))
    return df


# ---------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `gvcf bench`."""
    parser.add_argument("--arch", choices=BENCH_ARCHS, default=DEFAULT_ARCH,
                        help="tiny64: a small random model with SD's geometry (factor 8, 64-latent views); "
                             "embedded: the bundled model; sd2: Stable Diffusion 2 base's architecture, random weights")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help="default: float16 on cuda, float32 on cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    parser.add_argument("--steps", type=int, default=DEFAULT_BENCH_STEPS, help="DDIM steps")
    parser.add_argument("--ddpm-steps", type=int, default=DEFAULT_DDPM_STEPS,
                        help="DDPM steps run for the runtime table (times are also reported scaled to 1000)")
    parser.add_argument("--methods", default="",
                        help=f"comma-separated subset of {','.join(METHODS)}: also print the runtime table")
    parser.add_argument("--height", type=int, default=None, help="pixels; default: the model's native size")
    parser.add_argument("--width", type=int, default=None, help=f"pixels; default: {DEFAULT_WIDTH_VIEWS} views")
    parser.add_argument("--stride", type=int, default=None, help="pixels; default: 3/4 of a view")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="timed runs per row (median reported)")
    parser.add_argument("--guidance-scale", type=float, default=DEFAULT_GUIDANCE)
    parser.add_argument("--no-diffusers", action="store_true", help="skip diffusers' panorama pipeline rows")
    parser.add_argument("--csv", default=None,
                        help="write the comparison to this CSV (and the runtime table to <stem>_runtime.csv)")
    return parser


COMPARE_COLUMNS = ["row", "what", "view_batch_size", "unet_calls", "unet_rows", "median_s", "min_s", "max_s",
                   "ours_over"]


def format_bench(df: pd.DataFrame) -> str:
    """The comparison as printed: settings, hardware, the table and the ratios."""
    a = df.attrs
    lines = [f"gvcf bench: arch={a['arch']} dtype={a['dtype']} compile={a['compile']} "
             f"canvas {a['height']}x{a['width']} stride {a['stride']} ({a['views']} views), DDIM {a['steps']} steps, "
             f"guidance {a['guidance_scale']}, median of {a['repeats']} after {WARMUP_RUNS} warm-up",
             f"hardware: {a['device']} ({a['device_name']}), {a['cpu_threads']} CPU threads, torch {a['torch']}, "
             f"diffusers {a['diffusers']}",
             "all rows: prompt encoding included, VAE decode excluded (output_type='latent')"]
    if a.get("note"):
        lines.append(f"note: {a['note']}")
    lines.append(df[COMPARE_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    fastest = ratios(df, "min_s")
    for key, value in a["ratios"].items():
        goal = f"  (goal <= {OVERHEAD_GOAL})" if key.startswith("ours/bare_unet") else ""
        lines.append(f"{key} = {value:.3f} (medians){goal};  {fastest[key]:.3f} (fastest runs)")
    return "\n".join(lines)


def format_runtime(df: pd.DataFrame) -> str:
    """The runtime table as printed: mean +- std per panorama, as run and at the paper's step counts."""
    lines = [f"runtime per panorama ({df.attrs['height']}x{df.attrs['width']}, stride {df.attrs['stride']}):"]
    for r in df.itertuples():
        at = f"{r.reported_mean_s:.2f} +- {r.reported_std_s:.2f} s at {r.reported_steps} steps" + \
             (" (scaled)" if r.scaled else "")
        lines.append(f"  {r.method:5s} {r.sampler:5s} {r.steps:5d} steps: {r.mean_s:.3f} +- {r.std_s:.3f} s;  {at}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """Run `gvcf bench` with parsed arguments; print the tables (and write CSVs)."""
    if args.methods:
        check_methods(args.methods)   # before the minute of benchmarking, not after
    model, note = bench_model(args.arch, args.device, args.dtype, args.compile)
    df = run_bench(args.arch, compile=args.compile, steps=args.steps, height=args.height, width=args.width,
                   stride=args.stride, repeats=args.repeats, guidance_scale=args.guidance_scale, model=model,
                   diffusers=not args.no_diffusers, note=note)
    print(format_bench(df), flush=True)
    runtime = None
    if args.methods:
        runtime = runtime_table(model, args.methods, repeats=args.repeats, steps=args.steps,
                                ddpm_steps=args.ddpm_steps, height=args.height, width=args.width, stride=args.stride,
                                guidance_scale=args.guidance_scale)
        print(format_runtime(runtime), flush=True)
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        if runtime is not None:
            runtime.assign(**{k: v for k, v in runtime.attrs.items()}).to_csv(
                path.with_name(f"{path.stem}_runtime{path.suffix or '.csv'}"), index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(add_arguments(argparse.ArgumentParser(prog="gvcf bench", description=__doc__)).parse_args()))
