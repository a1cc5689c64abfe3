"""Generated images cached on disk, keyed by their full configuration; safe to kill and resume.

Layout under ``root``: ``<key>.png`` (the image) and ``<key>.json`` (config, meta, the image's
sha256 and size). Both are written to a temporary name in the same folder and moved into place
with ``os.replace`` (atomic), image first, sidecar last: an entry counts as finished only when
the sidecar exists and describes the image on disk, so a crash mid-write leaves no entry.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

IMAGE_SUFFIX = ".png"
META_SUFFIX = ".json"
TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 600  # temp files older than this belong to a killed writer


def _canonical(value, where: str = "config"):
    """JSON-ready copy with sorted keys, plain floats (-0.0 -> 0.0) and lists for tuples."""
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f"{where}: keys must be strings")
        return {k: _canonical(value[k], f"{where}.{k}") for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: non-finite float {value}")
        return value + 0.0  # -0.0 -> 0.0; json writes the shortest round-trip repr
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(f"{where}: {type(value).__name__} is not JSON-serialisable")


def canonical_json(config: dict) -> str:
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict, got {type(config).__name__}")
    return json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_key(config: dict) -> str:
    """sha256 of the canonical JSON of ``config`` (key order irrelevant)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def hardware(device=None) -> dict:
    """Where a result was measured or made: the device (default: cuda if available, else cpu) and its name (the GPU,
    or the CPU model), CPU threads, torch and diffusers versions, the machine, processor and Python version.
    Recorded in the cache's sidecars (``get_or_make``), the datasets' manifests and the benchmark's tables."""
    import diffusers
    import torch

    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
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
                diffusers=diffusers.__version__, machine=platform.machine(), processor=platform.processor(),
                python=platform.python_version())


def write_atomic(target: Path, data: bytes) -> None:
    """Write data to a unique temporary name next to target, then os.replace it into place: readers see the old
    file or the whole new one, never a partial one, even with several writers."""
    fd, tmp = tempfile.mkstemp(dir=Path(target).parent, prefix=TMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clean_tmp(STALE_TMP_SECONDS)

    def path_for(self, config: dict) -> Path:
        return self.root / (config_key(config) + IMAGE_SUFFIX)

    def meta_path(self, config: dict) -> Path:
        return self.root / (config_key(config) + META_SUFFIX)

    def _finished(self, config: dict, verify: bool) -> tuple[dict, bytes | None] | None:
        """(sidecar, image bytes if verify) of a finished entry, else None: the sidecar is present, the image has its
        size and, if verify, its sha256 (reading and hashing a PNG costs far less than generating it)."""
        try:
            meta = json.loads(self.meta_path(config).read_text())
        except (OSError, ValueError):
            return None
        image = self.path_for(config)
        if not isinstance(meta, dict) or not image.is_file() or image.stat().st_size != meta.get("image_bytes"):
            return None
        if not verify:
            return meta, None
        data = image.read_bytes()
        return (meta, data) if hashlib.sha256(data).hexdigest() == meta.get("image_sha256") else None

    def has(self, config: dict, verify: bool = False) -> bool:
        """Finished entry: sidecar present and the image size matches; with verify, its sha256 too."""
        return self._finished(config, verify) is not None

    def get(self, config: dict) -> Image.Image | None:
        """The cached image, or None if absent, unfinished or corrupted (checked by sha256)."""
        found = self._finished(config, verify=True)
        if found is None:
            return None
        image = Image.open(io.BytesIO(found[1]))
        image.load()
        return image

    def put(self, config: dict, image: Image.Image, meta: dict | None = None) -> Path:
        if not isinstance(image, Image.Image):
            raise ValueError(f"image must be a PIL.Image, got {type(image).__name__}")
        key_json = canonical_json(config)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
        self.meta_path(config).unlink(missing_ok=True)  # entry unfinished until the new sidecar lands
        write_atomic(self.path_for(config), data)
        sidecar = {"key": config_key(config), "config": json.loads(key_json), "meta": _canonical(meta or {}, "meta"),
                   "image_sha256": hashlib.sha256(data).hexdigest(), "image_bytes": len(data)}
        write_atomic(self.meta_path(config), json.dumps(sidecar, indent=1, sort_keys=True).encode())
        return self.path_for(config)

    def get_or_make(self, config: dict, make: Callable[[], Image.Image]) -> Image.Image:
        """Cached image, or ``make()`` it, store it with timing and hardware, and return it."""
        cached = self.get(config)
        if cached is not None:
            return cached
        start = time.perf_counter()
        image = make()
        self.put(config, image, {"seconds": time.perf_counter() - start, "hardware": hardware()})
        return image

    def iter_missing(self, configs: Iterable[dict], verify: bool = True) -> Iterator[dict]:
        """The configs without a finished, intact entry (sha256 checked unless verify=False), in order: what a
        resumed run must (re)generate. An image overwritten in place, even at the same size, counts as missing."""
        return (c for c in configs if not self.has(c, verify))

    def clean_tmp(self, min_age_s: float = 0.0) -> list[Path]:
        """Delete temp files left by killed writers (older than ``min_age_s``)."""
        now, removed = time.time(), []
        for tmp in self.root.glob(TMP_PREFIX + "*"):
            if now - tmp.stat().st_mtime >= min_age_s:
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        return removed
