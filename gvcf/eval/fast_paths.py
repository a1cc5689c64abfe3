"""`gvcf bench --fast-paths`: each part the book runs many times, eager float32 beside its fast paths, in one run.

A part is one call the chapters repeat (the UNet on one view, as the reference sets and SyncDiffusion's gradient step
call it; the UNet at generate's view batch; the VAE decoding a panorama; a whole gvcf.generate). A path is how it
runs: eager float32 (the default), torch.compile, or bfloat16 autocast. For each part and path the table gives the
first call (compilation included), the median of the timed calls, the speed-up over eager, the calls it takes to pay
back its first call's extra cost, and its largest difference from eager's output relative to eager's largest value.
The generate rows also give their time over the bare UNet's under the same path (the loop's share of a panorama).
"""
from __future__ import annotations

import dataclasses
import math
import textwrap
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch

from ..engine.checks import finite_number, positive_int
from ..engine.generate import DEFAULT_GUIDANCE
from ..engine.views import ViewLayout, canvas
from .bench import CFG_ROWS, DEFAULT_BENCH_STEPS, DEFAULT_PROMPT, DEFAULT_REPEATS
from .timing import StandInUNet, time_runs, timed

PRINT_WIDTH = 100   # the header's lines, wrapped (the table is as wide as it is)


def bf16_cpu_flags() -> str:
    """The CPU's bfloat16 dot-product flags from /proc/cpuinfo (avx512_bf16, amx_bf16), or 'none'."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    except OSError:
        flags = []
    return ", ".join(f for f in ("avx512_bf16", "amx_bf16") if f in flags) or "none"


def _eager(fn: Callable, device: torch.device) -> Callable:
    return fn


def _compiled(fn: Callable, device: torch.device) -> Callable:
    return torch.compile(fn, dynamic=False)


def _bf16_autocast(fn: Callable, device: torch.device) -> Callable:
    def run(*args):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return fn(*args).float()
    return run


@dataclass(frozen=True)
class FastPath:
    name: str
    what: str
    wrap: Callable[[Callable, torch.device], Callable]   # (part's function, device) -> the function on this path


FAST_PATHS = (
    FastPath("eager", "float32, eager (the default)", _eager),
    FastPath("compile", "torch.compile (inductor), float32", _compiled),
    FastPath("bf16", "bfloat16 autocast, float32 weights and output", _bf16_autocast),
)
PATH_NAMES = tuple(p.name for p in FAST_PATHS)


@dataclass(frozen=True)
class _Work:
    model: object
    prompt: str
    layout: ViewLayout
    steps: int
    guidance_scale: float
    generate_args: dict


def _unet_inputs(w: _Work, views: int):
    """One UNet call's inputs for `views` views (times two rows with CFG), fixed beforehand from seed 0."""
    cfg = w.guidance_scale > 1.0
    rows = views * (CFG_ROWS if cfg else 1)
    text = w.model.encode_prompt(w.prompt, "", guidance=cfg)
    x = torch.randn((rows, w.model.latent_channels, *w.layout.window), generator=torch.Generator("cpu").manual_seed(0))
    t = torch.tensor(w.model.scheduler_config.get("num_train_timesteps", 1000) // 2, device=w.model.device)
    return x.to(w.model.device, w.model.dtype), t, w.model.unet_conditioning(text.rows(0, views), w.layout.window)


def _unet_call(w: _Work):
    unet = w.model.unet
    return lambda x, t, conditioning: unet(x, t, **conditioning).sample


def _unet_part(views_of: Callable[[_Work], int]):
    def build(w: _Work, path: FastPath):
        return path.wrap(_unet_call(w), w.model.device), _unet_inputs(w, views_of(w))
    return build


def _decode_part(w: _Work, path: FastPath):
    z = torch.randn((1, w.model.latent_channels, w.layout.height, w.layout.width),
                    generator=torch.Generator("cpu").manual_seed(0)).to(w.model.device, w.model.dtype)
    return path.wrap(w.model.decode_views, w.model.device), (z,)


def _generate_part(w: _Work, path: FastPath):
    from ..engine.generate import generate

    run = path.wrap(_unet_call(w), w.model.device)
    model = dataclasses.replace(w.model, unet=StandInUNet(w.model.unet, lambda x, t, text, kw: run(
        x, t, dict(kw, encoder_hidden_states=text))))
    return lambda: generate(model, w.prompt, seed=0, **w.generate_args), ()


@dataclass(frozen=True)
class Part:
    name: str
    what: str
    build: Callable   # (work, path) -> (function, its arguments)
    repeated: bool = True   # a timed run calls it `steps` times in a row (as a panorama's loop does): cache-warm


def _auto_views(w: _Work) -> int:
    from ..engine.models import auto_view_batch

    return min(len(w.layout), auto_view_batch(w.model, w.layout.window, w.guidance_scale > 1.0))


PARTS = (
    Part("unet_1_view", "the UNet on one view (with CFG: two rows), the smallest call",
         _unet_part(lambda w: 1)),
    Part("unet_batch", "the UNet at generate's view batch (a panorama's views in one call)", _unet_part(_auto_views)),
    Part("vae_decode", "the VAE decoding one panorama's latents", _decode_part),
    Part("generate", "gvcf.generate, md, DDIM (output latents), its UNet on this path", _generate_part,
         repeated=False),
)
PART_NAMES = tuple(p.name for p in PARTS)


def _relative_difference(out, reference) -> float:
    if not torch.is_tensor(out):   # a GenerationResult
        out, reference = out.latents, reference.latents
    scale = reference.abs().max().item()
    return (out.float() - reference.float()).abs().max().item() / scale if scale else math.nan


def fast_path_table(model, prompt: str = DEFAULT_PROMPT, height: int | None = None, width: int | None = None,
                    stride: int | None = None, steps: int = DEFAULT_BENCH_STEPS,
                    guidance_scale: float = DEFAULT_GUIDANCE, repeats: int = DEFAULT_REPEATS, paths=PATH_NAMES,
                    parts=PART_NAMES) -> pd.DataFrame:
    """One row per part and path (FAST_PATHS x PARTS, named by `paths` and `parts`; eager is always timed): first call
    (compilation included), median and min seconds per call over `repeats` timed runs after one warm-up (a run: the
    part `steps` times in a row, as a panorama's loop calls it, or one whole generate; the paths of a part interleaved
    run by run), speed-up over eager, calls to pay back the first call's extra cost, largest difference from eager's
    output over eager's largest absolute value; generate rows: their median over `steps` bare UNet-batch calls on the
    same path. ValueError for an unknown path or part name."""
    for names, known, what in ((paths, PATH_NAMES, "paths"), (parts, PART_NAMES, "parts")):
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"{what} must be among {', '.join(known)}; got {', '.join(unknown)}")
    steps = positive_int(steps, "steps")
    repeats = positive_int(repeats, "repeats")
    finite_number(guidance_scale, "guidance_scale", minimum=0)
    geometry = canvas(model, height, width, stride)
    generate_args = dict(height=geometry.height, width=geometry.width, stride=geometry.stride[1], fusion="md",
                         sampler="ddim", steps=steps, guidance_scale=guidance_scale, output_type="latent",
                         progress=False)
    work = _Work(model, prompt, geometry.layout, steps, guidance_scale, generate_args)
    chosen = [p for p in FAST_PATHS if p.name == "eager" or p.name in paths]
    rows = []
    with torch.no_grad():
        for part in (p for p in PARTS if p.name in parts):
            calls, first, outputs = {}, {}, {}
            n_calls = steps if part.repeated else 1
            for path in chosen:
                fn, args = part.build(work, path)
                first[path.name] = timed(lambda: outputs.setdefault(path.name, fn(*args)), model.device)
                calls[path.name] = lambda i, fn=fn, args=args: [fn(*args) for _ in range(n_calls)]
            timings = time_runs(calls, model.device, repeats)
            eager = timings["eager"].median / n_calls
            for path in chosen:
                median = timings[path.name].median / n_calls
                gain = eager - median
                rows.append(dict(part=part.name, path=path.name, what=part.what, path_what=path.what,
                                 first_s=first[path.name], median_s=median,
                                 min_s=min(timings[path.name].seconds) / n_calls,
                                 speedup=eager / median,
                                 payback_calls=math.nan if path.name == "eager" else
                                 max(0.0, first[path.name] - median) / gain if gain > 0 else math.inf,
                                 max_rel_diff=_relative_difference(outputs[path.name], outputs["eager"])))
    df = pd.DataFrame(rows)
    bare = df[df.part == "unet_batch"].set_index("path").median_s
    df["over_bare_unet"] = [r.median_s / (steps * bare[r.path]) if r.part == "generate" and r.path in bare else math.nan
                            for r in df.itertuples()]
    df.attrs.update(bf16_flags=bf16_cpu_flags(), repeats=repeats, steps=steps, views=len(geometry.layout))
    return df


FAST_PATH_COLUMNS = ["part", "path", "first_s", "median_s", "speedup", "payback_calls", "max_rel_diff",
                     "over_bare_unet"]


def format_fast_paths(df: pd.DataFrame) -> str:
    """The fast-path table as printed: what each part and path is, then one line per part and path."""
    a = df.attrs
    lines = [f"fast paths: seconds per call, median of {a['repeats']} runs of {a['steps']} calls (one generate) after "
             f"one warm-up, the paths interleaved run by run; {a['views']} views; CPU bf16 flags: {a['bf16_flags']}",
             "speedup = eager / path; payback_calls = calls before the first call's extra cost (compilation, which "
             "inductor caches on disk: a second process pays less) is paid back; max_rel_diff = max |path - eager| / "
             "max |eager|; over_bare_unet = generate / (steps x unet_batch), the same path"]
    lines = [wrapped for line in lines for wrapped in textwrap.wrap(line, PRINT_WIDTH, subsequent_indent="  ")]
    lines += [f"  {p.name}: {p.what}" for p in PARTS if p.name in set(df.part)]
    lines += [f"  {p.name}: {p.what}" for p in FAST_PATHS if p.name in set(df.path)]
    fmt = {"first_s": "{:.3f}", "median_s": "{:.4f}", "speedup": "{:.2f}", "payback_calls": "{:.0f}",
           "max_rel_diff": "{:.1e}", "over_bare_unet": "{:.3f}"}
    shown = df[FAST_PATH_COLUMNS].copy()
    for column, f in fmt.items():
        shown[column] = [("" if column == "over_bare_unet" else "n/a") if isinstance(v, float) and math.isnan(v)
                         else "never" if v == math.inf else f.format(v) for v in shown[column]]
    lines.append(shown.to_string(index=False))
    return "\n".join(lines)
