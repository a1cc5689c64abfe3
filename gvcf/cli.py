"""Command line: gvcf generate | bench | train-embedded | model-card | dataset {generate,crop,evaluate}."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path


def _stride(text: str):
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected pixels as S or H,W, got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def check_output_image(path: str | os.PathLike, name: str = "output") -> Path:
    """An image path PIL can write, in a folder we can write to: checked (by creating and removing a temporary
    file beside it) before minutes of generation, not after."""
    from PIL import Image

    path = Path(path)
    formats = Image.registered_extensions()
    if path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} is a directory; give a file name such as {path / 'pano.png'}")
    if path.suffix.lower() not in formats:
        raise ValueError(f"{name}: {str(path)!r} has no image extension PIL writes (e.g. .png, .jpg, .webp)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".gvcf-", suffix=path.suffix):
            pass
    except OSError as err:
        raise ValueError(f"{name}: cannot write to {str(path.parent)!r} ({err.strerror or err})") from None
    return path


def save_image_atomic(image, path: Path) -> None:
    """Encode, then write through a temporary name (cache.write_atomic): a killed run never leaves half an image."""
    import io

    from PIL import Image

    from .eval.cache import write_atomic

    buffer = io.BytesIO()
    image.save(buffer, format=Image.registered_extensions()[path.suffix.lower()])
    write_atomic(path, buffer.getvalue())


def check_generate_numbers(args) -> None:
    """The options of `gvcf generate` that need no model, checked before one is loaded (the model's own limits,
    steps past its schedule or a stride past its view, are checked by generate)."""
    from .engine.checks import finite_number, positive_int
    from .engine.generate import check_seed
    from .engine.samplers import check_sampler
    from .engine.style import check_alpha

    check_sampler(args.sampler or ("ddim" if args.method == "elastic" else "ddpm"), args.steps, args.eta)
    check_alpha(args.alpha)
    finite_number(args.guidance_scale, "guidance_scale", minimum=0.0)
    check_seed(args.seed)
    positive_int(args.view_batch_size, "view_batch_size", optional=True)
    for name in ("height", "width"):
        positive_int(getattr(args, name), name, optional=True)


def cmd_generate(args) -> None:
    import gvcf

    output = check_output_image(args.output)
    check_generate_numbers(args)
    if args.method == "elastic":   # ElasticDiffusion: DDIM, no fusion, stride, Style Alignment or circular canvas
        ignored = [f"--{k}" for k, v in (("stride", args.stride), ("alpha", args.alpha), ("eta", args.eta),
                                        ("circular", args.circular)) if v]
        if ignored or args.sampler not in (None, "ddim"):
            raise ValueError(f"--method elastic samples with DDIM alone; drop {ignored or ['--sampler']}")
        model = gvcf.load_model(args.model, device=args.device)
        result = gvcf.generate_elastic(model, args.prompt, height=args.height, width=args.width, seed=args.seed,
                                       steps=args.steps, guidance_scale=args.guidance_scale,
                                       negative_prompt=args.negative_prompt, view_batch_size=args.view_batch_size)
        save_image_atomic(result.image, output)
        print(f"{output}: {result.image.size[0]}x{result.image.size[1]}, ElasticDiffusion, {result.seconds:.1f} s")
        return
    model = gvcf.load_model(args.model, device=args.device)
    result = gvcf.generate(
        model, prompt=args.prompt, negative_prompt=args.negative_prompt, height=args.height, width=args.width,
        stride=args.stride, fusion=args.fusion, sampler=args.sampler or "ddpm", steps=args.steps,
        guidance_scale=args.guidance_scale, alpha=args.alpha, seed=args.seed, circular=args.circular,
        view_batch_size=args.view_batch_size, eta=args.eta, progress=True)
    save_image_atomic(result.image, output)
    print(f"{output}: {result.image.size[0]}x{result.image.size[1]}, {len(result.layout)} views, "
          f"{result.seconds:.1f} s")


def add_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `gvcf bench`: the overhead comparison (gvcf.eval.bench) and, with --methods, the runtime
    table (gvcf.paper.runtime)."""
    from .engine.generate import DEFAULT_GUIDANCE
    from .engine.views import DEFAULT_WIDTH_VIEWS
    from .eval import bench
    from .paper import runtime

    parser.add_argument("--arch", choices=bench.BENCH_ARCHS, default=bench.DEFAULT_ARCH,
                        help="tiny64: a small random model with SD's geometry (factor 8, 64-latent views); "
                             "embedded: the bundled model; sd2: Stable Diffusion 2 base's architecture, random weights; "
                             "tiny-sdxl: a small random SDXL model; sdxl: SDXL base 1.0's architecture, random weights "
                             "(about 10 GB in float32)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dtype", choices=sorted(bench.DTYPES), default=None,
                        help="default: float16 on cuda, float32 on cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    parser.add_argument("--steps", type=int, default=bench.DEFAULT_BENCH_STEPS, help="DDIM steps")
    parser.add_argument("--ddpm-steps", type=int, default=runtime.DEFAULT_DDPM_STEPS,
                        help="DDPM steps run for the runtime table (times are also reported scaled to 1000)")
    parser.add_argument("--methods", default="",
                        help=f"comma-separated subset of {','.join(runtime.METHODS)}: also print the runtime table")
    parser.add_argument("--height", type=int, default=None, help="pixels; default: the model's native size")
    parser.add_argument("--width", type=int, default=None, help=f"pixels; default: {DEFAULT_WIDTH_VIEWS} views")
    parser.add_argument("--stride", type=int, default=None, help="pixels; default: 3/4 of a view")
    parser.add_argument("--repeats", type=int, default=bench.DEFAULT_REPEATS,
                        help="timed runs per row (median reported)")
    parser.add_argument("--guidance-scale", type=float, default=DEFAULT_GUIDANCE)
    parser.add_argument("--no-diffusers", action="store_true", help="skip diffusers' panorama pipeline rows")
    parser.add_argument("--elastic", action="store_true",
                        help="add ElasticDiffusion's rows (gvcf.generate_elastic against the bare UNet calls it makes)")
    parser.add_argument("--sync", action="store_true",
                        help="add SyncDiffusion's rows (its views differentiated together against one at a time)")
    parser.add_argument("--canvas-batch", type=int, default=None,
                        help="panoramas per generate_batch call in the throughput rows; default: as many as fill one "
                             "auto-sized UNet call")
    parser.add_argument("--no-sweep", action="store_true",
                        help="skip the bare-UNet rows at every view batch (1, 2, 4, ..., all views)")
    parser.add_argument("--fast-paths", action="store_true",
                        help="add the fast-path table: the UNet on one view and at generate's batch, the VAE decode "
                             "and gvcf.generate, each eager float32 beside torch.compile and bfloat16 autocast "
                             "(speed-up, calls to pay back compilation, largest difference from eager)")
    parser.add_argument("--csv", default=None,
                        help="write the comparison to this CSV (the runtime table to <stem>_runtime.csv, the "
                             "fast-path table to <stem>_fast_paths.csv)")
    return parser


def cmd_bench(args) -> int:
    """`gvcf bench`: the comparison (with --methods the runtime table, with --fast-paths the fast-path table) printed,
    and written with --csv."""
    from .eval import bench
    from .paper import runtime

    from .engine.checks import positive_int

    positive_int(args.ddpm_steps, "--ddpm-steps")   # these before the minute of benchmarking, not after
    if args.methods:
        runtime.check_methods(args.methods)
    if args.fast_paths and args.compile:
        raise ValueError("--fast-paths times torch.compile beside eager itself: leave out --compile")
    model, note = bench.bench_model(args.arch, args.device, args.dtype, args.compile)
    df = bench.run_bench(args.arch, compile=args.compile, steps=args.steps, height=args.height, width=args.width,
                         stride=args.stride, repeats=args.repeats, guidance_scale=args.guidance_scale, model=model,
                         diffusers=not args.no_diffusers, note=note, canvas_batch=args.canvas_batch,
                         sweep=not args.no_sweep, elastic=args.elastic, sync=args.sync)
    print(bench.format_bench(df), flush=True)
    table = None
    if args.methods:
        table = runtime.runtime_table(model, args.methods, repeats=args.repeats, steps=args.steps,
                                      ddpm_steps=args.ddpm_steps, height=args.height, width=args.width,
                                      stride=args.stride, guidance_scale=args.guidance_scale)
        print(runtime.format_runtime(table), flush=True)
    paths = None
    if args.fast_paths:
        from .eval import fast_paths

        paths = fast_paths.fast_path_table(model, height=args.height, width=args.width, stride=args.stride,
                                           steps=args.steps, guidance_scale=args.guidance_scale, repeats=args.repeats)
        print(fast_paths.format_fast_paths(paths), flush=True)
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False)
        if table is not None:
            table.assign(**table.attrs).to_csv(path.with_name(f"{path.stem}_runtime{path.suffix or '.csv'}"),
                                               index=False)
        if paths is not None:
            paths.assign(**paths.attrs).to_csv(path.with_name(f"{path.stem}_fast_paths{path.suffix or '.csv'}"),
                                               index=False)
    return 0


def cmd_train(args) -> None:
    import dataclasses

    from .world.training import TrainConfig, train_embedded

    overrides = {k: v for k, v in dict(seed=args.seed, vae_steps=args.vae_steps, unet_steps=args.unet_steps,
                                       decoder_steps=args.decoder_steps, n_latents=args.n_latents).items() if v is not None}
    overrides |= _parse_settings(TrainConfig(), args.set)
    if args.smoke:
        overrides = dict(vae_steps=4, unet_steps=4, decoder_steps=4, n_latents=500, eval_views=16, checkpoint_every=2) | overrides
    cfg = dataclasses.replace(TrainConfig(), **overrides)
    if args.out is None:   # the bundled model's folder, wherever the command is run from
        from .engine.models import EMBEDDED_FOLDER, models_root

        args.out = models_root() / EMBEDDED_FOLDER
    print(json.dumps(train_embedded(args.out, cfg, work=args.work, retrain_stale=args.retrain_stale,
                                    overwrite=args.overwrite), indent=1))


def _parse_settings(base, pairs: list[str]) -> dict:
    """FIELD=VALUE strings -> {field: value}, each value parsed as the type of the field's value in `base`."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(base)}
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in names:
            raise ValueError(f"--set: expected FIELD=VALUE with FIELD one of {sorted(names)}, got {pair!r}")
        kind = type(getattr(base, name))
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                out[name] = text.lower() in ("true", "1")
            elif kind is tuple:
                out[name] = tuple(int(v) for v in text.split(","))
            else:
                out[name] = kind(text)
                if kind is float and not math.isfinite(out[name]):   # a NaN learning rate trains to NaN weights
                    raise ValueError(text)
        except ValueError:
            raise ValueError(f"--set {name}: expected a {'finite ' if kind is float else ''}{kind.__name__}, "
                             f"got {text!r}") from None
    return out


def cmd_model_card(args) -> None:
    from .world.modelcard import write_model_card

    print(json.dumps(write_model_card(args.model_dir, quick=args.quick, render_only=args.render_only), indent=1))


def cmd_dataset(args) -> None:
    from .eval import datasets

    if args.action == "generate":
        from .paper.constants import PAPER_PROMPTS

        config = datasets.DatasetConfig.from_yaml(args.config, defaults=dict(prompts=PAPER_PROMPTS))
        try:   # under `accelerate launch`: one device per process
            import torch
            from accelerate import PartialState

            state = PartialState(cpu=not torch.cuda.is_available())  # gloo across CPU processes when no GPU
            rank, world = state.process_index, state.num_processes
            if config.device is None and state.device.type != "cpu":
                import dataclasses
                config = dataclasses.replace(config, device=str(state.device))
        except ImportError:
            rank, world = datasets.process_rank()
        paths = datasets.generate_dataset(config, rank=rank, world_size=world)
        print(f"rank {rank}/{world}: {len(paths)} images in {config.output}")
    elif args.action == "crop":
        rank, world = datasets.process_rank()
        n = datasets.crop_dataset(args.src, args.dst, args.size, rank, world)
        print(f"{n} new tiles in {args.dst}")
    else:
        row = datasets.evaluate_folders(args.generated, args.reference)
        print(json.dumps(row, indent=1))
        if args.csv:
            import pandas as pd

            pd.DataFrame([row]).to_csv(args.csv, index=False)


def _add_generate(sub) -> None:
    """The `generate` subcommand: one panorama by fusion or ElasticDiffusion."""
    from .engine.fusion import FUSIONS
    from .engine.generate import DEFAULT_GUIDANCE
    from .engine.samplers import SAMPLERS

    g = sub.add_parser("generate", help="generate one panorama")
    g.add_argument("--prompt", required=True)
    g.add_argument("--negative-prompt", default="")
    g.add_argument("--model", default="embedded", help="'embedded', a hub id or a local diffusers folder")
    g.add_argument("--device", default=None)
    g.add_argument("--height", type=int, default=None, help="pixels (default: one view)")
    g.add_argument("--width", type=int, default=None, help="pixels (default: 7 views)")
    g.add_argument("--stride", type=_stride, default=None, help="pixels, 'S' or 'H,W' (default: 3/4 view)")
    g.add_argument("--method", choices=("fusion", "elastic"), default="fusion",
                   help="fusion: joint denoising with --fusion; elastic: ElasticDiffusion (DDIM)")
    g.add_argument("--fusion", choices=sorted(FUSIONS), default="gvcf")
    g.add_argument("--sampler", choices=sorted(SAMPLERS), default=None, help="default: ddpm (ddim for elastic)")
    g.add_argument("--steps", type=int, default=None)
    g.add_argument("--guidance-scale", type=float, default=DEFAULT_GUIDANCE)
    g.add_argument("--alpha", type=float, default=0.0, help="Style Alignment strength in [0, 1]")
    g.add_argument("--eta", type=float, default=0.0, help="DDIM eta")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--circular", action="store_true")
    g.add_argument("--view-batch-size", type=int, default=None)
    g.add_argument("-o", "--output", default="panorama.png")
    g.set_defaults(func=cmd_generate)


def _add_bench(sub) -> None:
    """The `bench` subcommand (optional: without its dependencies it says why and exits)."""
    b = sub.add_parser("bench", help="time generation against diffusers and the bare UNet")
    try:
        add_bench_arguments(b)
        b.set_defaults(func=cmd_bench)
    except ImportError as err:  # pragma: no cover - bench is optional at import time
        unavailable = f"bench unavailable: {err}"
        b.set_defaults(func=lambda a: sys.exit(unavailable))


def _add_train_embedded(sub) -> None:
    """The `train-embedded` subcommand: train the bundled model (gvcf.world.training)."""
    t = sub.add_parser("train-embedded", help="train the bundled model from scratch")
    t.add_argument("--out", default=None, help="the model folder, written when training has finished (default: "
                   "the bundled model's, data/models/gvcf-world-64, which needs --overwrite)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds files (it is swapped in when training has finished)")
    t.add_argument("--work", default=None, help="checkpoint folder (default: <out>.work); reruns resume from it")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--vae-steps", type=int, default=None)
    t.add_argument("--unet-steps", type=int, default=None)
    t.add_argument("--decoder-steps", type=int, default=None, help="decoder fine-tune steps (0 skips it)")
    t.add_argument("--n-latents", type=int, default=None)
    t.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any TrainConfig field, e.g. --set decoder_lr=1e-3 (repeatable; tuples as 32,64,64)")
    t.add_argument("--retrain-stale", action="store_true",
                   help="if --work holds checkpoints of another config, retrain only the stages it changes "
                        "(no checkpoints, as in a fresh clone: every stage is trained)")
    t.add_argument("--smoke", action="store_true", help="a few steps only (CI)")
    t.set_defaults(func=cmd_train)


def _add_model_card(sub) -> None:
    """The `model-card` subcommand: measure the bundled model and write its README."""
    m = sub.add_parser("model-card", help="measure the bundled model's quality bars and write its README")
    m.add_argument("--model-dir", default="data/models/gvcf-world-64")
    m.add_argument("--quick", action="store_true", help="small sample sizes (a smoke run)")
    m.add_argument("--render-only", action="store_true", help="rewrite README.md from card.json without measuring")
    m.set_defaults(func=cmd_model_card)


def _add_dataset(sub) -> None:
    """The `dataset` subcommand and its actions: generate, crop, evaluate."""
    d = sub.add_parser("dataset", help="generate, crop and evaluate datasets (accelerate-aware)")
    dsub = d.add_subparsers(dest="action", required=True)
    dg = dsub.add_parser("generate")
    dg.add_argument("--config", required=True, help="YAML with DatasetConfig fields (prompts: a list; default: the paper's ten)")
    dc = dsub.add_parser("crop")
    dc.add_argument("--src", required=True, help="folder of panoramas (.png); every one is checked before cropping")
    dc.add_argument("--dst", required=True)
    dc.add_argument("--size", type=int, required=True, help="tile size in pixels (the model's native size)")
    de = dsub.add_parser("evaluate")
    de.add_argument("--generated", required=True)
    de.add_argument("--reference", required=True)
    de.add_argument("--csv", default=None)
    d.set_defaults(func=cmd_dataset)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gvcf", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_generate, _add_bench, _add_train_embedded, _add_model_card, _add_dataset):
        add(sub)
    return p


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:
        sys.exit(f"gvcf: error: {err}")


if __name__ == "__main__":
    main()
