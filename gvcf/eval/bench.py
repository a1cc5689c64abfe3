"""`gvcf bench`: wall time of our joint-denoising loop beside diffusers' panorama pipeline and the bare UNet.

All rows of the comparison run the same work on the same model in the same process: the same views, steps and
classifier-free-guidance batches (UNet calls and their batch rows are counted during the warm-up and printed).
Every row includes its prompt encoding (one text-encoder pass each for the prompt and the negative prompt) and
excludes VAE decoding (output_type='latent'). Times are medians of `repeats` runs after one warm-up run, the rows
interleaved run by run so that a change in machine load affects them alike. Two more rows time our loop and the
bare calls with a UNet that returns its input: their difference is the loop's own cost (gather, sampler step,
fusion), which gives ours / bare UNet free of the UNet's run-to-run spread on a loaded machine.

The rows are data (BENCH_ROWS: what each runs, on which UNet, with which view batch) and every row is timed by
gvcf.eval.timing.time_runs, as is the paper's per-method runtime table (gvcf.paper.runtime.runtime_table, Table 3);
the command line that prints both is gvcf.cli's `gvcf bench`.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass

import pandas as pd
import torch

from ..engine.checks import finite_number, positive_int
from ..engine.generate import DEFAULT_GUIDANCE, generate, generate_batch
from ..engine.samplers import make_sampler
from ..engine.views import ViewLayout, canvas
from .timing import WARMUP_RUNS, StandInUNet, hardware_columns, time_runs

BENCH_ARCHS = ("tiny64", "embedded", "sd2", "tiny-sdxl", "sdxl")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_ARCH = "tiny64"
DEFAULT_BENCH_STEPS = 4        # "a few" DDIM steps: every step costs the same, so the ratios do not depend on it
DEFAULT_REPEATS = 3
DEFAULT_PROMPT = "a photo of a mountain range at twilight"
OVERHEAD_GOAL = 1.05           # ours / bare UNet: the loop around the UNet should cost at most 5 %
FASTEST_GOAL = 1.02            # ours (its own view batch) / the fastest bare-UNet schedule for the same work
CFG_ROWS = 2                   # with CFG every view is evaluated twice (unconditional and conditional) per call
NOOP_MIN_REPEATS = 10          # the no-op-UNet rows take milliseconds: time them at least this often


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
    """The model a bench runs on: 'tiny64' / 'sd2' / 'tiny-sdxl' / 'sdxl' random weights (archs), 'embedded' the
    bundled model.

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
    our layout's boxes so that both loops denoise the same views (the rest of its loop is diffusers' own). get_views
    is a public method and the pipeline takes no views argument, so a subclass overriding it is the way in."""
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
              view_batch_size: int | None = None, canvases: int = 1):
    """A function running only the UNet calls of `canvases` panoramas (their views side by side, in batches of
    view_batch_size; no fusion, no scheduler). The prompt is encoded inside (as every other row does); inputs are
    fixed tensors built beforehand."""
    n = len(layout) * canvases
    batch = view_batch_size or n
    sizes = [min(batch, n - s) for s in range(0, n, batch)]
    cfg = guidance_scale > 1.0
    timesteps = make_sampler("ddim", model.scheduler_config, steps, device=model.device).timesteps
    gen = torch.Generator("cpu").manual_seed(0)
    inputs = {k: torch.randn((k * (CFG_ROWS if cfg else 1), model.latent_channels, *layout.window), generator=gen)
              .to(model.device, model.dtype) for k in set(sizes)}

    def run():
        text = model.encode_prompt(prompt, "", guidance=cfg)
        conditioning = {k: model.unet_conditioning(text.rows(0, k), layout.window) for k in inputs}
        with torch.no_grad():
            for t in timesteps:
                for k in sizes:
                    model.unet(inputs[k], t, **conditioning[k])

    return run


def bare_elastic_unet(model, prompt: str, height: int, width: int, steps: int, view_batch_size: int | None = None):
    """A function running only the UNet calls of one ElasticDiffusion canvas with its default settings (every pass
    of every step, ElasticPlan.step_rows, in batches of view_batch_size; no resampling, fusion or scheduler). The
    prompt is encoded inside; inputs are fixed tensors built beforehand."""
    from ..engine.elastic import ELASTIC_DEFAULTS, ElasticPlan
    from ..engine.models import PromptEmbeds, auto_view_batch

    plan = ElasticPlan.create(model, height, width)
    view = (model.latent_size, model.latent_size)
    batch = view_batch_size or auto_view_batch(model, view, False)
    passes = plan.step_rows(steps, ELASTIC_DEFAULTS["resampling_steps"], ELASTIC_DEFAULTS["repaint"])
    calls = [[min(batch, n - s) for n in step for s in range(0, n, batch)] for step in passes]
    timesteps = make_sampler("ddim", model.scheduler_config, steps, device=model.device).timesteps
    gen = torch.Generator("cpu").manual_seed(0)
    inputs = {k: torch.randn((k, model.latent_channels, *view), generator=gen).to(model.device, model.dtype)
              for k in {k for step in calls for k in step}}

    def run():
        text = model.encode_prompt(prompt, "", guidance=True)
        rows = PromptEmbeds(text.cond, None)   # one embedding per row (which one costs the same)
        conditioning = {k: model.unet_conditioning(rows.rows(0, k), view) for k in inputs}
        with torch.no_grad():
            for t, step in zip(timesteps, calls):
                for k in step:
                    model.unet(inputs[k], t, **conditioning[k])

    return run


# ---------------------------------------------------------------- the comparison

AUTO, ALL = "auto", "all"   # a row's view batch: generate's own choice (auto_view_batch), or every view in one call


@dataclass(frozen=True)
class BenchRow:
    """One row of the comparison: what it runs, with how many views per UNet call, on which UNet, for how many
    panoramas at once (canvases: 1, or CANVAS_BATCH: generate_batch's default for the model and device)."""
    name: str
    what: str
    runs: str                       # a key of RUNNERS
    view_batch: int | str = AUTO    # views per UNet call: an int, AUTO or ALL
    noop_unet: bool = False         # the UNet replaced by StandInUNet (identity): the time of everything around it
    canvases: int | str = 1         # panoramas per run: 1 or CANVAS_BATCH


CANVAS_BATCH = "canvas_batch"
BENCH_ROWS = (
    BenchRow("ours", "gvcf.generate, fusion md", "ours"),
    BenchRow("diffusers_vb1", "diffusers StableDiffusionPanoramaPipeline", "diffusers", view_batch=1),
    BenchRow("diffusers_all", "diffusers StableDiffusionPanoramaPipeline", "diffusers", view_batch=ALL),
    BenchRow("bare_unet", "bare UNet calls (ours' batches)", "bare"),
    # the loop's own cost, free of the UNet's run-to-run spread: the same two rows with a UNet that does nothing
    BenchRow("ours_noop_unet", "gvcf.generate, UNet replaced by identity", "ours", noop_unet=True),
    BenchRow("bare_noop_unet", "bare calls, UNet replaced by identity", "bare", noop_unet=True),
    # throughput: many panoramas per UNet call (generate_batch) against a loop of generate, and the bare UNet
    BenchRow("batch", "gvcf.generate_batch, canvas_batch panoramas", "batch", canvases=CANVAS_BATCH),
    BenchRow("loop", "a loop of gvcf.generate, canvas_batch panoramas", "loop", canvases=CANVAS_BATCH),
    BenchRow("bare_batch", "bare UNet calls (generate_batch's batches)", "bare", canvases=CANVAS_BATCH),
)
ROWS = tuple(row.name for row in BENCH_ROWS)
# ElasticDiffusion (issue 29), its default settings on the same canvas: against the bare UNet calls it makes, and
# the same two with the identity UNet (its own cost: resampling, backgrounds' VAE encodes, RRG)
ELASTIC_ROWS = (
    BenchRow("elastic", "gvcf.generate_elastic (ElasticDiffusion)", "elastic"),
    BenchRow("bare_elastic", "bare UNet calls (elastic's batches)", "bare_elastic"),
    BenchRow("elastic_noop_unet", "gvcf.generate_elastic, UNet replaced by identity", "elastic", noop_unet=True),
    BenchRow("bare_elastic_noop_unet", "bare elastic calls, UNet replaced by identity", "bare_elastic",
             noop_unet=True),
)
# SyncDiffusion (issue 30): its gradient step with the views differentiated together (SyncConfig's default) against
# one view at a time (its authors' code), each a whole panorama; the UNet rows count its forward passes only
SYNC_ROWS = (
    BenchRow("sync", "SyncDiffusion, views differentiated together", "sync"),
    BenchRow("sync_grad1", "SyncDiffusion, one view differentiated at a time", "sync_grad1"),
)
SWEEP_PREFIX = "bare_vb"   # + views per call: the bare UNet at every schedule of sweep_batches


def sweep_batches(n_views: int) -> list[int]:
    """The view batches the bare UNet is timed at: powers of two below the view count, and all views."""
    return sorted({2**i for i in range(max(1, n_views).bit_length()) if 2**i < n_views} | {n_views})


def sweep_rows(n_views: int) -> tuple[BenchRow, ...]:
    return tuple(BenchRow(f"{SWEEP_PREFIX}{b}", f"bare UNet calls, {b} views per call", "bare", view_batch=b)
                 for b in sweep_batches(n_views))


@dataclass(frozen=True)
class _Work:
    """What every row denoises: `canvases` panoramas of `prompt` on this canvas, DDIM `steps`, this guidance."""
    model: object
    prompt: str
    height: int
    width: int
    stride: int
    layout: ViewLayout
    steps: int
    guidance_scale: float
    pipe: object = None   # diffusers' panorama pipeline on the model's components (built once, for its rows)
    auto_batch: int = 1   # views per UNet call that generate picks (auto_view_batch)
    canvas_batch: int = 1 # panoramas per generate_batch call in the throughput rows
    elastic_batch: int = 1  # views per UNet call that generate_elastic picks (no CFG pairs: its rows are views)

    def views_per_call(self, row: BenchRow) -> int:
        auto = self.elastic_batch if row.runs in ("elastic", "bare_elastic") else self.auto_batch
        return {AUTO: auto, ALL: len(self.layout)}.get(row.view_batch, row.view_batch)

    def canvases(self, row: BenchRow) -> int:
        return self.canvas_batch if row.canvases == CANVAS_BATCH else row.canvases


def _generate_args(w: _Work, view_batch: int) -> dict:
    return dict(height=w.height, width=w.width, stride=w.stride, fusion="md", sampler="ddim", steps=w.steps,
                guidance_scale=w.guidance_scale, view_batch_size=view_batch, output_type="latent", progress=False)


def _run_ours(w: _Work, view_batch: int, canvases: int):
    return lambda: generate(w.model, w.prompt, seed=0, **_generate_args(w, view_batch))


def _run_batch(w: _Work, view_batch: int, canvases: int):
    return lambda: generate_batch(w.model, w.prompt, list(range(canvases)), **_generate_args(w, view_batch))


def _run_loop(w: _Work, view_batch: int, canvases: int):
    return lambda: [generate(w.model, w.prompt, seed=k, **_generate_args(w, view_batch)) for k in range(canvases)]


def _run_diffusers(w: _Work, view_batch: int, canvases: int):
    return lambda: w.pipe(w.prompt, height=w.height, width=w.width, num_inference_steps=w.steps,
                          guidance_scale=w.guidance_scale, view_batch_size=view_batch,
                          output_type="latent", generator=torch.Generator("cpu").manual_seed(0))


def _run_bare(w: _Work, view_batch: int, canvases: int):
    return bare_unet(w.model, w.prompt, w.layout, w.steps, w.guidance_scale, view_batch, canvases)


def _run_elastic(w: _Work, view_batch: int, canvases: int):
    from ..engine.elastic import generate_elastic

    return lambda: generate_elastic(w.model, w.prompt, height=w.height, width=w.width, steps=w.steps,
                                    guidance_scale=w.guidance_scale, view_batch_size=view_batch,
                                    output_type="latent", progress=False)


def _run_bare_elastic(w: _Work, view_batch: int, canvases: int):
    return bare_elastic_unet(w.model, w.prompt, w.height, w.width, w.steps, view_batch)


def _run_sync(w: _Work, view_batch: int, canvases: int, grad_batch: int | None = None):
    from ..engine.sync import SyncConfig, make_sync_hook

    config = SyncConfig(grad_batch=grad_batch)
    hook = make_sync_hook(config, random_lpips(config.lpips_net, w.model.device))
    return lambda: generate(w.model, w.prompt, seed=0, view_hook=hook, **_generate_args(w, view_batch))


RUNNERS = {"ours": _run_ours, "batch": _run_batch, "loop": _run_loop, "diffusers": _run_diffusers, "bare": _run_bare,
           "elastic": _run_elastic, "bare_elastic": _run_bare_elastic,
           "sync": _run_sync, "sync_grad1": functools.partial(_run_sync, grad_batch=1)}


def run_bench(arch: str = DEFAULT_ARCH, device=None, dtype=None, compile: bool = False,
              steps: int = DEFAULT_BENCH_STEPS, height: int | None = None, width: int | None = None,
              stride: int | None = None, repeats: int = DEFAULT_REPEATS, guidance_scale: float = DEFAULT_GUIDANCE,
              prompt: str = DEFAULT_PROMPT, model=None, diffusers: bool = True, note: str = "",
              canvas_batch: int | None = None, sweep: bool = True, elastic: bool = False,
              sync: bool = False) -> pd.DataFrame:
    """Our gvcf.generate (md, DDIM) vs diffusers' panorama pipeline (view_batch_size 1 and all views) vs the bare UNet
    (ours' batches, and with `sweep` every schedule of sweep_batches); then the throughput of generate_batch
    (canvas_batch panoramas; None: as many as fill one auto-sized UNet call) against a loop of generate.

    One row per BENCH_ROWS entry (the diffusers rows only with `diffusers`) and sweep row: median/min/max seconds
    per run, panoramas per second, UNet calls and evaluated batch rows, `ours_over` = ours' median / this row's
    median (NaN on the no-op-UNet and throughput rows); hardware and settings in every row (for CSV) and df.attrs.
    elastic: add ELASTIC_ROWS, ElasticDiffusion on the same canvas and steps (Stable Diffusion 1 / 2 only).
    sync: add SYNC_ROWS, SyncDiffusion's views differentiated together against one at a time.
    model: time this model instead of building `arch` (arch, compile and note then only label the rows).
    """
    from ..engine.models import auto_view_batch

    steps = positive_int(steps, "steps")
    repeats = positive_int(repeats, "repeats")
    canvas_batch = positive_int(canvas_batch, "canvas_batch", optional=True)
    finite_number(guidance_scale, "guidance_scale", minimum=0)
    if model is None:
        model, note = bench_model(arch, device, dtype, compile)
    if diffusers and model.is_xl:   # diffusers' panorama pipeline is Stable Diffusion 1 / 2's: no SDXL conditioning
        diffusers = False
        note = "; ".join(filter(None, [note, "SDXL: diffusers' panorama pipeline (SD 1 / 2 only) is not timed"]))
    geometry = canvas(model, height, width, stride)
    n_views = len(geometry.layout)
    auto = auto_view_batch(model, geometry.layout.window, guidance_scale > 1.0)
    canvas_batch = canvas_batch or max(1, auto // n_views)
    if elastic and model.is_xl:
        elastic = False
        note = "; ".join(filter(None, [note, "SDXL: ElasticDiffusion (SD 1 / 2 only here) is not timed"]))
    rows = [row for row in BENCH_ROWS + (sweep_rows(n_views) if sweep else ()) + (ELASTIC_ROWS if elastic else ())
            + (SYNC_ROWS if sync else ()) if diffusers or row.runs != "diffusers"]
    work = _Work(model, prompt, geometry.height, geometry.width, geometry.stride[1], geometry.layout, steps,
                 guidance_scale, panorama_pipeline(model, geometry.layout) if diffusers else None, auto, canvas_batch,
                 auto_view_batch(model, (model.latent_size, model.latent_size), False))
    noop = dataclasses.replace(work, model=dataclasses.replace(model, unet=StandInUNet(model.unet)))
    timings = {}
    for on, n_repeats in ((work, repeats), (noop, max(repeats, NOOP_MIN_REPEATS))):
        runs = {row.name: lambda i, fn=RUNNERS[row.runs](on, on.views_per_call(row), on.canvases(row)): fn()
                for row in rows if row.noop_unet == (on is noop)}
        timings |= time_runs(runs, model.device, n_repeats, unet=on.model.unet)

    info = hardware_columns(model.device) | dict(
        arch=arch, dtype=str(model.dtype).removeprefix("torch."), compile=compile, height=work.height,
        width=work.width, stride=work.stride, steps=steps, views=n_views, guidance_scale=guidance_scale,
        repeats=repeats, canvas_batch=canvas_batch, auto_view_batch=auto, note=note)
    ours = timings["ours"].median
    df = pd.DataFrame([dict(row=row.name, what=row.what, view_batch_size=work.views_per_call(row),
                            panoramas=work.canvases(row), unet_calls=timings[row.name].unet_calls,
                            unet_rows=timings[row.name].unet_rows, median_s=timings[row.name].median,
                            min_s=min(timings[row.name].seconds), max_s=max(timings[row.name].seconds),
                            panoramas_per_s=work.canvases(row) / timings[row.name].median,
                            ours_over=math.nan if row.noop_unet or row.canvases != 1 else ours / timings[row.name].median)
                       | info for row in rows])
    df.attrs.update(info)
    df.attrs["ratios"] = ratios(df)
    return df


def ratios(df: pd.DataFrame, stat: str = "median_s") -> dict:
    """From a run_bench table (of medians, or of `stat`): ours / bare UNet at ours' batches and at the fastest bare
    schedule, ours / diffusers (each batching, and the faster), and generate_batch's throughput over a loop of
    generate and over the bare UNet at the same batches."""
    med = df.set_index("row")[stat]
    out = {"ours/bare_unet": med["ours"] / med["bare_unet"]}
    if "ours_noop_unet" in med:   # bare UNet time + the loop's own cost, over the bare UNet time
        out["ours/bare_unet from loop cost"] = 1 + (med["ours_noop_unet"] - med["bare_noop_unet"]) / med["bare_unet"]
    bare = [name for name in med.index if name == "bare_unet" or name.startswith(SWEEP_PREFIX)]
    out["ours/fastest bare_unet schedule"] = med["ours"] / min(med[name] for name in bare)
    theirs = [key for key in ("diffusers_all", "diffusers_vb1") if key in med]
    for key in theirs:
        out[f"ours/{key}"] = med["ours"] / med[key]
    if theirs:
        out["ours/best diffusers"] = med["ours"] / min(med[key] for key in theirs)
    out["batch speed-up over loop"] = med["loop"] / med["batch"]
    out["batch/bare_batch"] = med["batch"] / med["bare_batch"]
    if "elastic" in med:
        out["elastic/bare_elastic"] = med["elastic"] / med["bare_elastic"]
        out["elastic/bare_elastic from its own cost"] = \
            1 + (med["elastic_noop_unet"] - med["bare_elastic_noop_unet"]) / med["bare_elastic"]
        out["elastic/ours (MD)"] = med["elastic"] / med["ours"]
    if "sync" in med:
        out["sync one view at a time / together"] = med["sync_grad1"] / med["sync"]
        out["sync/ours (MD)"] = med["sync"] / med["ours"]
    return out


GOALS = {"ours/bare_unet": OVERHEAD_GOAL, "ours/bare_unet from loop cost": OVERHEAD_GOAL,
         "ours/fastest bare_unet schedule": FASTEST_GOAL, "ours/best diffusers": 1.0,
         "batch/bare_batch": OVERHEAD_GOAL}


# ---------------------------------------------------------------- printing

COMPARE_COLUMNS = ["row", "what", "view_batch_size", "panoramas", "unet_calls", "unet_rows", "median_s", "min_s",
                   "max_s", "panoramas_per_s", "ours_over"]


def format_bench(df: pd.DataFrame) -> str:
    """The comparison as printed: settings, hardware, the table and the ratios."""
    a = df.attrs
    lines = [f"gvcf bench: arch={a['arch']} dtype={a['dtype']} compile={a['compile']} "
             f"canvas {a['height']}x{a['width']} stride {a['stride']} ({a['views']} views), DDIM {a['steps']} steps, "
             f"guidance {a['guidance_scale']}, median of {a['repeats']} after {WARMUP_RUNS} warm-up; "
             f"auto view batch {a['auto_view_batch']}, canvas batch {a['canvas_batch']}",
             f"hardware: {a['device']} ({a['device_name']}), {a['cpu_threads']} CPU threads, torch {a['torch']}, "
             f"diffusers {a['diffusers']}",
             "all rows: prompt encoding included, VAE decode excluded (output_type='latent')"]
    if a.get("note"):
        lines.append(f"note: {a['note']}")
    lines.append(df[COMPARE_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    fastest = ratios(df, "min_s")
    for key, value in a["ratios"].items():
        goal = f"  (goal <= {GOALS[key]})" if key in GOALS else ""
        lines.append(f"{key} = {value:.3f} (medians){goal};  {fastest[key]:.3f} (fastest runs)")
    return "\n".join(lines)
