"""Datasets of generated panoramas: a work list of (prompt, k), split across ranks, cached and resumable.

Image k of a prompt is generated from ``derive_seed(seed, f"{prompt}/{k}")`` alone, so a dataset is the same
whatever the number of processes, and rerunning skips finished images. Files live in a ResultCache (atomic
PNG + sidecar JSON per image, resumed only where the PNG's sha256 matches); each rank also appends to its own
manifest JSONL (config, seed, timing, hardware). An output folder holds one dataset (its identity() is recorded in
dataset.json by the first run; prompts and n_per_prompt may grow) and one run per rank at a time (an flock).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .cache import ResultCache, canonical_json, config_key, hardware, write_atomic
from ..engine.checks import finite_number, positive_int
from ..engine.fusion import FUSIONS
from ..engine.generate import DEFAULT_GUIDANCE, check_seed, derive_seed
from ..engine.samplers import check_sampler
from ..engine.stages import labelled
from ..engine.style import check_alpha
from ..engine.sync import DEFAULT_WEIGHT as DEFAULT_SYNC_WEIGHT
from ..engine.views import DEFAULT_WIDTH_VIEWS

# elastic: ElasticDiffusion (gvcf.engine.elastic); reference: single native views (the paper's reference set)
METHODS = tuple(sorted(FUSIONS)) + ("sync", "elastic", "reference")
MANIFEST = "manifest-rank{rank:04d}.jsonl"
IDENTITY = "dataset.json"          # the identity of the dataset an output folder holds, written by its first run
LOCK = ".lock-rank{rank:04d}"      # flock-ed by the run generating that rank's share into the folder
PER_IMAGE = ("prompt", "index", "image_seed")   # the image-config fields that vary within one dataset
FEATURES = "features-{name}.npz"


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines a dataset's images, plus where to put them (output) and how many (n_per_prompt)."""

    method: str = "gvcf"
    model: str = "embedded"
    sampler: str = "ddpm"
    steps: int | None = None
    stride: int | None = None          # pixels; None = 3/4 of a view (the paper's 384 of 512)
    alpha: float = 0.0
    prompts: tuple[str, ...] = ()     # required: the prompts, each n_per_prompt panoramas
    n_per_prompt: int = 1
    seed: int = 0
    width_views: int = DEFAULT_WIDTH_VIEWS   # panorama width in views (the paper's 3584 = 7 x 512)
    guidance_scale: float = DEFAULT_GUIDANCE
    sync_weight: float = DEFAULT_SYNC_WEIGHT
    eta: float = 0.0
    output: str = "results/dataset"
    device: str | None = None
    canvas_batch: int | None = None    # panoramas denoised together (None: as many as fill one UNet call)

    def __post_init__(self):
        if isinstance(self.prompts, (str, bytes)) or not isinstance(self.prompts, (list, tuple)):
            hint = " (a single prompt is a one-item list: [\"...\"])" if isinstance(self.prompts, str) else ""
            raise ValueError(f"prompts must be a list of strings, got {self.prompts!r}{hint}")
        object.__setattr__(self, "prompts", tuple(self.prompts))
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        # steps: None means the sampler's default; stored resolved, so "null" in a YAML and 50 give the same images
        object.__setattr__(self, "steps", check_sampler(self.sampler, self.steps, self.eta))
        check_alpha(self.alpha)
        if self.method == "elastic" and (self.sampler, self.alpha, self.stride) != ("ddim", 0.0, None):
            raise ValueError("method 'elastic' (ElasticDiffusion) samples with sampler 'ddim', alpha 0 and no stride, "
                             f"got sampler={self.sampler!r}, alpha={self.alpha!r}, stride={self.stride!r}")
        if not self.prompts or not all(isinstance(p, str) and p for p in self.prompts):
            raise ValueError("prompts must be a non-empty list of non-empty strings")
        repeated = sorted({p for p in self.prompts if self.prompts.count(p) > 1})
        if repeated:   # one image per (prompt, k): a repeated prompt would count its images twice and make them once
            raise ValueError(f"prompts must be distinct (raise n_per_prompt for more images of one), got {repeated} "
                             "more than once")
        for name in ("n_per_prompt", "width_views", "stride", "canvas_batch"):   # YAML's true is no count
            object.__setattr__(self, name, positive_int(getattr(self, name), name,
                                                        optional=name in ("stride", "canvas_batch")))
        object.__setattr__(self, "seed", check_seed(self.seed, "seed"))
        for name in ("guidance_scale", "sync_weight"):   # checked only: 7 and 7.0 stay distinct cache keys
            finite_number(getattr(self, name), name, minimum=0.0)

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                raise ValueError(f"unknown config field {key!r} (known: {sorted(names)})")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, defaults: dict | None = None) -> "DatasetConfig":
        """The config of a YAML file, fields it leaves out taken from `defaults` (the CLI's: the paper's prompts);
        ValueError naming the file for a missing or unreadable file, a YAML syntax error (with its line), or a bad
        field."""
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except IsADirectoryError:
            raise ValueError(f"config {path}: is a directory, not a YAML file") from None
        except FileNotFoundError:
            raise ValueError(f"config {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"config {path}: cannot read it ({err})") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err)
            raise ValueError(f"config {path}: invalid YAML{where}: {problem}") from None
        if not isinstance(data, dict):
            raise ValueError(f"config {path}: expected a mapping of fields, got {type(data).__name__}")
        try:
            return cls.from_dict((defaults or {}) | data)
        except (ValueError, TypeError) as err:
            raise ValueError(f"config {path}: {err}") from None

    def check_model(self, model) -> None:
        """ValueError naming the field for what this model cannot do: more steps than its scheduler's timesteps, or
        a stride that is no stride of its views (checked in the config's pixels)."""
        check_sampler(self.sampler, self.steps, self.eta, model.scheduler_config.get("num_train_timesteps"))
        if self.method not in ("reference", "elastic"):
            from ..engine.views import canvas

            canvas(model, None, self.width_views * model.native_size, self.stride)

    def image_config(self, prompt: str, k: int) -> dict:
        """The full configuration of image k of a prompt: its cache key."""
        d = dataclasses.asdict(self)
        for name in ("prompts", "n_per_prompt", "output", "device", "canvas_batch"):   # how, not what
            d.pop(name)
        if self.method != "sync":
            d.pop("sync_weight")
        if self.method == "elastic":   # its own settings are part of what makes the images
            from ..engine.elastic import ELASTIC_DEFAULTS

            d["elastic"] = dict(ELASTIC_DEFAULTS)
        return d | dict(prompt=prompt, index=k, image_seed=derive_seed(self.seed, f"{prompt}/{k}"))

    def items(self) -> list[dict]:
        """The work list, prompt-major: every (prompt, k) image config."""
        return [self.image_config(p, k) for p in self.prompts for k in range(self.n_per_prompt)]


def process_rank() -> tuple[int, int]:
    """(rank, world size) under accelerate or torch.distributed launchers; (0, 1) for a plain process."""
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", 1))
    return rank, world


def shard(items: list, rank: int, world_size: int) -> list:
    """Deterministic round-robin split of the work list."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return items[rank::world_size]


def make_images(model, batch: list[dict], sync_lpips=None) -> list[Image.Image]:
    """Images for a batch of items of one dataset: reference views through generate_views, panoramas through
    generate_batch (per-image seeds, so each equals its one-at-a-time image). Timed stages inside are labelled with
    the method and sampler ("gf ddim"), so a profile splits generation by method."""
    with labelled(f"{batch[0]['method']} {batch[0]['sampler']}"):
        return _make_images(model, batch, sync_lpips)


def _make_images(model, batch: list[dict], sync_lpips=None) -> list[Image.Image]:
    from ..engine.generate import generate_batch, generate_views

    item = batch[0]
    seeds = [it["image_seed"] for it in batch]
    kw = dict(sampler=item["sampler"], steps=item["steps"], guidance_scale=item["guidance_scale"], eta=item["eta"])
    if item["method"] == "reference":
        views = generate_views(model, item["prompt"], seeds, **kw)
        return [Image.fromarray(v) for v in views]
    size = dict(height=model.native_size, width=item["width_views"] * model.native_size)
    if item["method"] == "elastic":   # one canvas per call: its UNet calls are batched within the canvas
        from ..engine.elastic import generate_elastic

        return [generate_elastic(model, it["prompt"], seed=it["image_seed"], steps=it["steps"],
                                 guidance_scale=it["guidance_scale"], progress=False, **size, **it["elastic"]).image
                for it in batch]
    kw |= dict(size, stride=item["stride"], alpha=item["alpha"], fusion=item["method"], progress=False)
    if item["method"] == "sync":
        from ..engine.sync import SyncConfig, make_sync_hook

        kw |= dict(fusion="md", view_hook=make_sync_hook(SyncConfig(weight=item["sync_weight"]), sync_lpips))
    return [r.image for r in generate_batch(model, [it["prompt"] for it in batch], seeds, **kw)]


def canvas_batch(config: "DatasetConfig", model) -> int:
    """Panoramas per generate_batch call: the config's, or as many as fill one auto-sized UNet call on the model's
    device (gvcf.engine.models.auto_view_batch), at least one."""
    if config.canvas_batch is not None:
        return config.canvas_batch
    if config.method == "elastic":
        return 1
    from ..engine.models import auto_view_batch
    from ..engine.views import canvas

    geometry = canvas(model, None, config.width_views * model.native_size, config.stride)
    return max(1, auto_view_batch(model, geometry.layout.window, config.guidance_scale > 1.0) // len(geometry.layout))


def generate_dataset(config: DatasetConfig, model=None, rank: int | None = None, world_size: int | None = None,
                     progress: bool = True) -> list[Path]:
    """Generate this rank's share of the dataset's missing images; returns the paths of all its images.

    ValueError naming output, before any work, if the folder holds another dataset or another run holds this rank."""
    from ..engine.models import load_model

    if rank is None or world_size is None:
        rank, world_size = process_rank()
    mine = shard(config.items(), rank, world_size)
    check_output(config, record=False)   # all checks before the first write (folder, lock, dataset.json)
    if model is None and not _finished(config, mine):
        model = load_model(config.model, device=config.device)
    if model is not None:
        config.check_model(model)
    cache = ResultCache(config.output)
    with hold_output(config.output, rank):
        check_output(config)
        todo = list(cache.iter_missing(mine))   # sha256-checked: an image changed on disk is made again
        if todo:
            model = model if model is not None else load_model(config.model, device=config.device)
            config.check_model(model)
            manifest = Path(config.output) / MANIFEST.format(rank=rank)
            bar = tqdm(total=len(todo), desc=f"{config.method} rank {rank}", disable=not progress)
            size = REFERENCE_BATCH if config.method == "reference" else canvas_batch(config, model)
            for batch in _batches(todo, size):
                start = time.perf_counter()
                images = make_images(model, batch)
                meta = dict(seconds=(time.perf_counter() - start) / len(batch), hardware=hardware(), rank=rank,
                            world_size=world_size, batch=len(batch))
                for item, image in zip(batch, images):
                    path = cache.put(item, image, meta)
                    with open(manifest, "a") as fh:   # one writer per rank file; a line per finished image
                        fh.write(json.dumps(dict(file=path.name, config=item, **meta), sort_keys=True) + "\n")
                        fh.flush()
                        os.fsync(fh.fileno())
                bar.update(len(batch))
            bar.close()
    return [cache.path_for(item) for item in mine]


@contextlib.contextmanager
def hold_output(folder: str | os.PathLike, rank: int) -> Iterator[None]:
    """Hold rank's exclusive lock on an output folder for a run (ValueError naming output if another run holds it),
    so two runs of one rank never both make its images. The kernel drops the lock when its holder exits, even
    killed: a lock file left behind blocks nothing."""
    path = Path(folder) / LOCK.format(rank=rank)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"output {folder}: another run is generating rank {rank} of this folder (it holds "
                             f"{path.name}); wait for it to finish, or give this run another output") from None
        yield


def identity(config: DatasetConfig) -> dict:
    """What makes images one dataset: every field of their image configs but the per-image prompt, index and seed.
    So prompts, n_per_prompt, output and device are not part of it: more prompts or more images per prompt extend
    the same dataset, while another method, model, sampler, steps, stride, alpha, seed, size, guidance (or
    sync_weight for sync) or eta makes another one."""
    d = config.image_config("", 0)
    for name in PER_IMAGE:
        d.pop(name)
    return json.loads(canonical_json(d))


def _finished(config: DatasetConfig, mine: list[dict]) -> bool:
    """Whether every image of this rank's share is already in the output folder (read only: nothing is created)."""
    if not Path(config.output).is_dir():
        return False
    return not any(True for _ in ResultCache(config.output).iter_missing(mine, verify=False))   # files, not hashes


def check_output(config: DatasetConfig, record: bool = True) -> None:
    """Refuse (ValueError naming output) to put this dataset's images into a folder that holds another dataset;
    record its identity there (IDENTITY) on first use (unless record=False: the check alone, writing nothing). A
    folder from before identity files is judged by its images' sidecars."""
    folder, mine = Path(config.output), identity(config)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output {folder}: is a file, not a folder")
    path = folder / IDENTITY
    if path.exists():
        try:
            theirs = json.loads(path.read_text())["identity"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ValueError(f"output {folder}: {path.name} is unreadable; delete it (the images' sidecars are "
                             "checked instead) or choose another output") from None
    else:
        found = (_sidecar_identity(p) for p in folder.glob("*.json") if p.name != IDENTITY)
        theirs = next((other for other in found if other not in (None, mine)), mine)
    if theirs != mine:
        diff = "; ".join(f"{k}: {theirs.get(k)!r} there, {mine.get(k)!r} here"
                         for k in sorted(mine.keys() | theirs.keys()) if mine.get(k) != theirs.get(k))
        raise ValueError(f"output {folder} holds another dataset ({diff}); choose another output for this config")
    if record and not path.exists():
        write_atomic(path, json.dumps(dict(key=dataset_key(config), identity=mine), indent=1, sort_keys=True).encode())


REFERENCE_BATCH = 32   # single views per UNet batch for reference sets


def _batches(items: list[dict], size: int) -> Iterator[list[dict]]:
    """Consecutive runs of at most `size` items; reference views of one prompt only (they share one text)."""
    groups = [items] if items[0]["method"] != "reference" else \
        [[it for it in items if it["prompt"] == p] for p in dict.fromkeys(it["prompt"] for it in items)]
    for group in groups:
        yield from (group[i:i + size] for i in range(0, len(group), size))


def load_images(config: DatasetConfig, model=None, progress: bool = True) -> list[Image.Image]:
    """All images of the dataset in work-list order, generating the missing ones in this process first."""
    generate_dataset(config, model=model, rank=0, world_size=1, progress=progress)
    cache = ResultCache(config.output)
    return [cache.get(item) for item in config.items()]


def timings(config: DatasetConfig) -> list[float]:
    """Seconds per image, as recorded when each image was made."""
    cache = ResultCache(config.output)
    out = []
    for item in config.items():
        path = cache.meta_path(item)
        if path.exists():
            out.append(json.loads(path.read_text())["meta"]["seconds"])
    return out


def iter_image_files(folder: str | os.PathLike) -> Iterator[Path]:
    """Finished images of a folder in a stable order (sorted names)."""
    return iter(sorted(p for p in Path(folder).glob("*.png") if not p.name.startswith(".")))


def crop_dataset(src: str | os.PathLike, dst: str | os.PathLike, size: int, rank: int = 0, world_size: int = 1) -> int:
    """Cut every panorama of src into non-overlapping size x size tiles in dst (the paper's protocol); returns the
    number of new tiles. Resumable. ValueError, before any tile is written, if src is not a folder of PNGs or one of
    this rank's images is broken (each is checked with PIL's verify: its structure and every chunk's CRC)."""
    from .metrics import crops

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ValueError(f"src {src}: " + ("not a folder" if src.exists() else "no such folder"))
    size = positive_int(size, "size")   # pixels
    files = list(iter_image_files(src))
    if not files:
        raise ValueError(f"src {src}: no .png images in it")
    mine = shard(files, rank, world_size)
    for path in mine:
        try:
            with Image.open(path) as image:
                image.verify()
        except (OSError, SyntaxError, ValueError) as err:   # PIL raises SyntaxError for some broken chunks
            raise ValueError(f"src {src}: {path.name} is not a readable image ({err}); nothing was cropped: "
                             "regenerate or remove it") from None
    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in mine:
        tiles = crops(np.asarray(Image.open(path).convert("RGB")), size)
        for j, tile in enumerate(tiles):
            out = dst / f"{path.stem}_{j:02d}.png"
            if not out.exists():
                tmp = dst / f".tmp-{out.name}"
                Image.fromarray(tile).save(tmp, format="PNG")
                os.replace(tmp, out)
                n += 1
    return n


def load_named_features(path: Path) -> dict[str, np.ndarray]:
    """file name -> its (k, d) feature rows, from a file written by save_named_features; {} if absent or unreadable
    (a stale or foreign file is recomputed, never trusted)."""
    if not Path(path).exists():
        return {}
    try:
        with np.load(path) as data:
            names, counts, feats = [str(n) for n in data["names"]], data["counts"], data["features"]
    except (OSError, ValueError, KeyError):
        return {}
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    return {n: feats[starts[i]:starts[i + 1]] for i, n in enumerate(names)}


def save_named_features(path: Path, store: dict[str, np.ndarray]) -> None:
    """Write {file name: (k, d) rows} atomically; the one feature-cache format of the package."""
    keys = sorted(store)
    save_npz_atomic(Path(path), names=np.array(keys, dtype=str), counts=np.array([len(store[k]) for k in keys], np.int64),
                    features=np.concatenate([store[k] for k in keys]) if keys else np.zeros((0, 2048), np.float32))


def folder_features(folder: str | os.PathLike, extractor=None, mode: str = "clean", batch_size: int | None = None,
                    rank: int = 0, world_size: int = 1) -> np.ndarray:
    """Inception features ("clean" or "pytorch_fid") of every image in a folder, streamed in batches and cached
    next to the images by file name, so only new files are embedded. Each rank computes its shard into its own
    file; rank 0 (or a single process) joins them."""
    from .inception import DEFAULT_BATCH_SIZE, InceptionFeatures

    folder = Path(folder)
    files = list(iter_image_files(folder))
    whole = folder / FEATURES.format(name=f"inception-{mode}")
    known = load_named_features(whole)
    if all(f.name in known for f in files):
        return np.concatenate([known[f.name] for f in files]) if files else np.zeros((0, 2048), np.float32)
    part_name = lambda r: folder / FEATURES.format(name=f"inception-{mode}-rank{r:04d}-of-{world_size:04d}")
    mine = shard(files, rank, world_size)
    store = {**known, **load_named_features(part_name(rank))}
    todo = [f for f in mine if f.name not in store]
    if todo:
        extractor = extractor or InceptionFeatures(batch_size=batch_size or DEFAULT_BATCH_SIZE)
        feats = extractor([str(f) for f in todo], mode=mode)   # loads and embeds one batch at a time
        part = {f.name: store[f.name] for f in mine if f.name in store}
        part.update({f.name: feats[i:i + 1] for i, f in enumerate(todo)})
        if world_size > 1:   # a single process writes only the whole folder's file below
            save_named_features(part_name(rank), part)
        store.update(part)
    if rank != 0:
        return np.concatenate([store[f.name] for f in mine])
    for r in range(1, world_size):
        store.update(load_named_features(part_name(r)))
    missing = [f.name for f in files if f.name not in store]
    if missing:
        raise RuntimeError(f"{folder}: no features for {len(missing)} files (e.g. {missing[0]}): "
                           f"run every rank of {world_size} before joining on rank 0")
    save_named_features(whole, {f.name: store[f.name] for f in files})
    return np.concatenate([store[f.name] for f in files])


def save_npz_atomic(path: Path, **arrays) -> None:
    """np.savez, written through a temporary name (cache.write_atomic): a killed writer leaves no partial file."""
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(Path(path), buffer.getvalue())


def evaluate_folders(generated: str | os.PathLike, reference: str | os.PathLike) -> dict:
    """The paper's metric row (metrics.METRIC_ROW, as the book's: FID, KID x 10^3, GIQA-QS, GIQA-DS, CLIP None, the
    set sizes) for two folders of tiles, streamed. ValueError naming generated or reference, before any feature is
    computed, for a folder that does not exist or holds fewer than 2 .png tiles."""
    from . import metrics

    for name, folder in (("generated", Path(generated)), ("reference", Path(reference))):
        if not folder.is_dir():
            raise ValueError(f"{name} {folder}: " + ("not a folder" if folder.exists() else "no such folder"))
        n = sum(1 for _ in iter_image_files(folder))
        if n < 2:   # FID, KID and GIQA need two tiles a side
            raise ValueError(f"{name} {folder}: needs at least 2 .png tiles, holds {n}")

    feats = {(name, mode): folder_features(folder, mode=mode) for name, folder in (("gen", generated), ("ref", reference))
             for mode in ("clean", "pytorch_fid")}
    row = metrics.scores(feats["gen", "clean"], feats["ref", "clean"], feats["gen", "pytorch_fid"],
                         feats["ref", "pytorch_fid"]) | dict(clip=None, clip_note=metrics.CLIP_UNAVAILABLE)
    return {k: row[k] for k in metrics.METRIC_ROW}


def _sidecar_identity(path: Path) -> dict | None:
    """The dataset identity of one cached image's sidecar; None if it is not a readable sidecar."""
    try:
        config = json.loads(path.read_text())["config"]
        return {k: v for k, v in config.items() if k not in PER_IMAGE}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def dataset_key(config: DatasetConfig) -> str:
    """A short stable name for a dataset's identity (independent of prompts, n_per_prompt, output and device)."""
    return config_key(identity(config) | dict.fromkeys(PER_IMAGE))[:16]


def in_results(config: DatasetConfig, results_dir: str | os.PathLike) -> DatasetConfig:
    """The same config with output set to results_dir/<method>-<key>: the book's cache folder for it."""
    return dataclasses.replace(config, output=str(Path(results_dir) / f"{config.method}-{dataset_key(config)}"))
