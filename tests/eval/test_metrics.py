"""Metrics and Inception features: analytic cases, statistics, equivalence with clean-fid."""
import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gvcf.engine import assets
from gvcf.eval import metrics
from gvcf.eval.inception import FEATURE_DIM, INCEPTION_SIZE, InceptionFeatures, clean_resize, preprocess

ATOL_FEATURES = 1e-5  # float32 network; measured max abs diff on CPU: 0.0 (bit-identical)


def _test_images(seed=0):
    """Smooth ramps plus noise, at the tile size and at an odd size."""
    rng = np.random.default_rng(seed)
    images = []
    for i, (h, w) in enumerate([(512, 512), (300, 420)]):
        y, x = np.mgrid[0:h, 0:w]
        im = np.stack([x * 255.0 / w, y * 255.0 / h, rng.integers(0, 256, (h, w))], -1)
        images.append(np.clip(im + 20 * i, 0, 255).astype(np.uint8))
    return images


@pytest.fixture(scope="module")
def inception():
    assets.inception_path(fetch=True)
    return InceptionFeatures(batch_size=1)


# ---------------------------------------------------------------- Inception

def test_clean_resize_equals_cleanfid():
    from cleanfid.resize import build_resizer
    ref = build_resizer("clean")
    for im in _test_images()[:2]:
        ours = clean_resize(im)
        assert ours.shape == (INCEPTION_SIZE, INCEPTION_SIZE, 3) and ours.dtype == np.float32
        np.testing.assert_array_equal(ours, ref(im))


def test_pytorch_fid_preprocess_equals_cleanfid_legacy_pytorch():
    from cleanfid.resize import make_resizer
    ref = make_resizer("PyTorch", False, "bilinear", (INCEPTION_SIZE, INCEPTION_SIZE))
    im = _test_images()[1]
    ours = preprocess([im], "pytorch_fid")[0].permute(1, 2, 0).numpy()
    expected = ref(im) / 255.0 * 2 - 1  # clean-fid legacy_pytorch: resize, /255, then pytorch-fid's 2x-1
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_default_1_is_pool3_without_fc(inception):
    model = inception.model
    assert [n for n, _ in model.named_children()] == ["net"]
    assert not hasattr(model.net, "output"), "fc layer should have been removed"
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, INCEPTION_SIZE, INCEPTION_SIZE))
    assert out.shape == (1, FEATURE_DIM) and (out >= 0).all()  # post-ReLU average pool


def test_features_match_cleanfid_extractor(inception, tmp_path):
    """clean-fid's own pipeline (PNG files -> ResizeDataset -> InceptionV3W "clean") on the same
    network: InceptionV3W loads <dir>/inception-2015-12-05.pt and uses its ``layers``."""
    from cleanfid.fid import get_files_features
    from cleanfid.inception_torchscript import InceptionV3W

    images = _test_images()
    files = []
    for i, im in enumerate(images):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(im).save(files[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(inception.model.net, str(tmp_path / "inception-2015-12-05.pt"))
        wrapper = InceptionV3W(str(tmp_path), download=False, resize_inside=False)
    ref = get_files_features(files, model=wrapper, num_workers=0, batch_size=len(files),
                             device=torch.device("cpu"), mode="clean", verbose=False)
    ours = inception([images[0], files[1]])  # an array and a path
    assert ours.shape == (len(images), FEATURE_DIM)
    np.testing.assert_allclose(ours, ref, atol=ATOL_FEATURES)
    assert np.abs(ours[0] - ours[1]).max() > 100 * ATOL_FEATURES  # different images, different features


def test_both_feature_sets_from_one_decode_equal_each_mode_alone(inception, tmp_path):
    """extract() decodes each file once for both modes; the features are bit-for-bit those of one mode at a time
    (same batches, same process), and those of another batch size up to ATOL_FEATURES (bit-equal on this CPU; a
    batch's convolution algorithm may differ on others)."""
    files = []
    for i, im in enumerate(_test_images(seed=3)):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(im).save(files[-1])
    both = inception.extract(files)
    for mode in ("clean", "pytorch_fid"):
        assert np.array_equal(both[mode], inception(files, mode=mode))
        np.testing.assert_allclose(both[mode], InceptionFeatures(batch_size=2)(files, mode=mode), atol=ATOL_FEATURES)
    assert np.abs(both["clean"] - both["pytorch_fid"]).max() > 100 * ATOL_FEATURES   # two different preprocessings


def test_features_reject_bad_images(inception):
    with pytest.raises(ValueError, match="uint8"):
        inception(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="H, W, 3"):
        inception(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="mode"):
        inception(np.zeros((1, 8, 8, 3), dtype=np.uint8), mode="tf")


# ---------------------------------------------------------------- FID / KID

def test_fid_affine_analytic():
    """b = c*a + t: mu_b = c mu_a + t, S_b = c^2 S_a, so FID = |mu_a - mu_b|^2 + (1 - c)^2 tr S_a."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    c, t = 1.7, rng.normal(size=6)
    b = c * a + t
    mu_diff = a.mean(0) - b.mean(0)
    expected = mu_diff @ mu_diff + (1 - c) ** 2 * np.trace(np.cov(a, rowvar=False))
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_validation():
    with pytest.raises(ValueError, match="feats_b"):
        metrics.fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="feats_a"):
        metrics.fid(np.zeros(5), np.zeros((5, 4)))


def test_kid_equals_cleanfid_with_same_draws(monkeypatch):
    """clean-fid draws with np.random.choice; give it our Generator's draws: results must agree."""
    from cleanfid.fid import kernel_distance
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(60, 16)), rng.normal(0.3, 1.0, size=(45, 16))
    ours = metrics.kid(a, b, seed=7, num_subsets=5, max_subset_size=30)
    gen = np.random.default_rng(7)
    monkeypatch.setattr(np.random, "choice", lambda n, m, replace=True: gen.choice(n, m, replace=replace))
    theirs = kernel_distance(a, b, num_subsets=5, max_subset_size=30)
    assert ours == pytest.approx(theirs, rel=1e-10)


def test_kid_full_set_is_unbiased_mmd():
    """Subsets of the full size are permutations: KID = unbiased MMD^2 of the whole sets."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 5)), rng.normal(0.5, 1.0, size=(20, 5))
    k = lambda p, q: (p @ q.T / 5 + 1) ** 3
    n = len(x)
    mmd = ((k(x, x).sum() - np.trace(k(x, x))) / (n * (n - 1)) + (k(y, y).sum() - np.trace(k(y, y))) / (n * (n - 1))
           - 2 * k(x, y).mean())
    assert metrics.kid(x, y, num_subsets=3) == pytest.approx(mmd, rel=1e-10)


def test_kid_statistics():
    rng = np.random.default_rng(4)
    same = [metrics.kid(rng.normal(size=(150, 8)), rng.normal(size=(150, 8)), seed=s, num_subsets=10)
            for s in range(10)]
    shifted = metrics.kid(rng.normal(size=(150, 8)), rng.normal(1.0, 1.0, size=(150, 8)), num_subsets=10)
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3
    assert shifted > 10 * max(abs(v) for v in same)
    a = rng.normal(size=(50, 4))
    assert metrics.kid(a, a + 0.1, seed=5) == metrics.kid(a, a + 0.1, seed=5)


# ---------------------------------------------------------------- GIQA

def _giqa_reference(query, bank, k):
    """The paper's knn_score.py loop: pairwise_distance(p=1) to every bank row, sorted, sum 1/d."""
    bank_t = torch.as_tensor(bank, dtype=torch.float32)
    scores = []
    for row in torch.as_tensor(query, dtype=torch.float32):
        dis = sorted(F.pairwise_distance(row[None].repeat(len(bank_t), 1), bank_t, p=1).tolist())
        scores.append(sum(1 / d for d in dis[:k]))
    return np.array(scores)


def test_giqa_matches_reference_loop():
    rng = np.random.default_rng(5)
    gen, ref = rng.random((37, 64)), rng.random((53, 64))
    np.testing.assert_allclose(metrics.giqa_scores(gen, ref, k=10, chunk=8), _giqa_reference(gen, ref, 10), rtol=1e-5)
    assert metrics.giqa_qs(gen, ref, k=10) == pytest.approx(_giqa_reference(gen, ref, 10).mean(), rel=1e-5)
    assert metrics.giqa_ds(gen, ref, k=10) == pytest.approx(_giqa_reference(ref, gen, 10).mean(), rel=1e-5)


def test_giqa_analytic_and_chunking():
    query, bank = np.zeros((1, 1)), np.array([[1.0], [2.0], [4.0]])
    eps = metrics.GIQA_PAIRWISE_EPS
    expected = 1 / (1 - eps) + 1 / (2 - eps)  # |0 - r + eps|
    assert metrics.giqa_scores(query, bank, k=2)[0] == pytest.approx(expected, rel=3e-7)
    rng = np.random.default_rng(6)
    q, r = rng.random((30, 8)), rng.random((40, 8))
    np.testing.assert_allclose(metrics.giqa_scores(q, r, 5, chunk=1), metrics.giqa_scores(q, r, 5, chunk=64), rtol=1e-6)


def test_giqa_quality_ordering():
    """Generated points near the reference cloud score higher than far ones."""
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(200, 16))
    near, far = rng.normal(size=(50, 16)), rng.normal(3.0, 1.0, size=(50, 16))
    assert metrics.giqa_qs(near, ref, k=20) > 1.2 * metrics.giqa_qs(far, ref, k=20)


def test_giqa_validation():
    with pytest.raises(ValueError, match="k must"):
        metrics.giqa_qs(np.zeros((3, 2)), np.ones((4, 2)), k=5)
    assert metrics.GIQA_K == 3500  # eval/eval_giqa.py --K default


# ---------------------------------------------------------------- SSIM, seams, crops

def test_ssim_and_matrix():
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(8)
    base = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    near = [np.clip(b.astype(int) + rng.integers(-5, 6, b.shape), 0, 255).astype(np.uint8) for b in base]
    other = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    assert metrics.ssim(base[0], base[0]) == pytest.approx(1.0)
    assert metrics.ssim(base[0], near[0]) == pytest.approx(
        structural_similarity(base[0], near[0], channel_axis=-1, data_range=255))
    table = metrics.ssim_matrix({"A": base, "B": near, "C": other})
    assert list(table.index) == ["A", "B", "C"] and np.allclose(np.diag(table), 1.0)
    assert np.allclose(table.values, table.values.T)
    assert table.loc["A", "B"] == pytest.approx(np.mean([metrics.ssim(x, y) for x, y in zip(base, near)]))
    assert table.loc["A", "B"] > table.loc["A", "C"] + 0.3
    with pytest.raises(ValueError, match="groups"):
        metrics.ssim_matrix({"A": base, "B": near[:2]})


def test_seam_score_gradient_and_steps():
    ramp = np.tile(np.linspace(0, 200, 96), (16, 1))
    assert metrics.seam_score(ramp, [32, 64]) == pytest.approx(1.0)
    stepped = ramp.copy()
    stepped[:, 32:] += 40
    stepped[:, 64:] += 40
    assert metrics.seam_score(stepped, [32, 64]) > 10
    assert metrics.seam_score(stepped, [32, 64], band=3) < metrics.seam_score(stepped, [32, 64])
    assert metrics.seam_score(stepped.T, [32, 64], axis=0) == pytest.approx(metrics.seam_score(stepped, [32, 64]))
    with pytest.raises(ValueError, match="seams"):
        metrics.seam_score(ramp, [96])


def test_crops_protocol():
    pano = np.arange(512 * 3584).reshape(512, 3584)
    tiles = metrics.crops(pano, 512)
    assert len(tiles) == 7 and all(t.shape == (512, 512) for t in tiles)
    np.testing.assert_array_equal(tiles[3], pano[:, 1536:2048])
    assert len(metrics.crops(np.zeros((600, 1100, 3)), 512)) == 2  # remainders dropped
    assert len(metrics.crop_all([pano, pano[:, :1024]], 512)) == 9
    with pytest.raises(ValueError, match="size"):
        metrics.crops(pano, 0)


# ---------------------------------------------------------------- CLIP

@pytest.fixture
def no_clip(monkeypatch, tmp_path):
    monkeypatch.delenv(metrics.CLIP_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def test_clip_unavailable_returns_none(no_clip, monkeypatch, tmp_path):
    images = [np.zeros((8, 8, 3), np.uint8)]
    assert not metrics.clip_available()
    assert metrics.clip_score(images, "a photo") is None
    monkeypatch.setenv(metrics.CLIP_WEIGHTS_ENV, str(tmp_path / "missing.pt"))
    assert not metrics.clip_available() and metrics.clip_score(images, "a photo") is None
    with pytest.raises(ValueError, match="prompts"):
        metrics.clip_score(images, ["a", "b"])


def test_clip_score_with_local_weights(monkeypatch, tmp_path):
    """A tiny randomly initialised open_clip model stored as a local file: the score must be
    torchmetrics' max(mean(100 cos), 0) of open_clip's own embeddings."""
    import open_clip
    from open_clip import factory
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    (tmp_path / "gvcf-tiny-clip.json").write_text(json.dumps(cfg))
    monkeypatch.setattr(factory, "_MODEL_CONFIG_PATHS", list(factory._MODEL_CONFIG_PATHS))
    monkeypatch.setattr(factory, "_MODEL_CONFIGS", dict(factory._MODEL_CONFIGS))
    open_clip.add_model_config(tmp_path / "gvcf-tiny-clip.json")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _, transform = open_clip.create_model_and_transforms("gvcf-tiny-clip")
    weights = tmp_path / "tiny.pt"
    torch.save(model.state_dict(), weights)
    monkeypatch.setenv(metrics.CLIP_WEIGHTS_ENV, str(weights))
    images = [np.full((40, 40, 3), v, np.uint8) for v in (0, 90, 200)]
    prompts = ["a red car", "a blue sky", "a green field"]
    score = metrics.clip_score(images, prompts, model_name="gvcf-tiny-clip", batch_size=2, quick_gelu=False)
    tok = open_clip.get_tokenizer("gvcf-tiny-clip")
    with torch.no_grad():
        img = model.encode_image(torch.stack([transform(Image.fromarray(i)) for i in images]))
        txt = model.encode_text(tok(prompts))
    cos = F.cosine_similarity(img, txt).mean().item()
    assert metrics.clip_available("gvcf-tiny-clip")
    assert score == pytest.approx(max(100 * cos, 0.0), abs=1e-3)


# ---------------------------------------------------------------- evaluate

class _FakeFeatures:
    """Deterministic stand-in for InceptionFeatures: features = per-image channel statistics."""

    def __call__(self, images, mode="clean"):
        x = np.stack([np.asarray(im, dtype=np.float64) for im in images])
        feats = np.concatenate([x.mean((1, 2)), x.std((1, 2)), x[:, ::4, ::4].reshape(len(x), -1)[:, :10]], 1)
        return feats + (1.0 if mode == "pytorch_fid" else 0.0)


def test_evaluate_combines_metrics(no_clip):
    rng = np.random.default_rng(9)
    gen = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(12)]
    ref = [rng.integers(0, 200, (16, 16, 3), dtype=np.uint8) for _ in range(14)]
    f = _FakeFeatures()
    out = metrics.evaluate(gen, ref, prompts="a photo", features=f, giqa_k=3)
    assert out["fid"] == pytest.approx(metrics.fid(f(ref), f(gen)))
    assert out["kid_e3"] == pytest.approx(1e3 * metrics.kid(f(ref), f(gen)))
    assert tuple(out) == metrics.METRIC_ROW and (out["n_tiles"], out["n_reference"], out["giqa_k"]) == (12, 14, 3)
    g, r = f(gen, mode="pytorch_fid"), f(ref, mode="pytorch_fid")
    assert out["giqa_qs"] == pytest.approx(metrics.giqa_qs(g, r, k=3))
    assert out["giqa_ds"] == pytest.approx(metrics.giqa_ds(g, r, k=3))
    assert out["clip"] is None and out["clip_note"] == metrics.CLIP_UNAVAILABLE


def test_evaluate_validates_before_features():
    def explode(*_args, **_kw):
        raise AssertionError("features computed before validation")
    images = [np.zeros((8, 8, 3), np.uint8)] * 5
    with pytest.raises(ValueError, match="giqa_k"):
        metrics.evaluate(images, images, features=explode, giqa_k=6)
    with pytest.raises(ValueError, match="prompts"):
        metrics.evaluate(images, images, prompts=["a"] * 4, features=explode, giqa_k=2)


@pytest.mark.parametrize("n_a,n_b,dim", [(40, 60, 64), (300, 200, 16)])   # small sets, and sets larger than dim
def test_fid_equals_clean_fid_frechet_distance(n_a, n_b, dim):
    from cleanfid.fid import frechet_distance

    rng = np.random.default_rng(dim)
    a = rng.normal(size=(n_a, dim)) @ rng.normal(size=(dim, dim)) * 0.3
    b = rng.normal(size=(n_b, dim)) * 1.2 + 0.1
    expected = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-6)


def _probe_features():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 8)), rng.normal(size=(10, 8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("metric", [lambda a, b: metrics.fid(a, b), lambda a, b: metrics.kid(a, b),
                                    lambda a, b: metrics.giqa_qs(a, b, 3), lambda a, b: metrics.giqa_ds(a, b, 3)])
def test_non_finite_features_are_refused_by_name(metric, bad):
    """Issue 27: kid and GIQA returned NaN, fid an SVD error, for a NaN feature."""
    a, b = _probe_features()
    a[3, 2] = bad
    with pytest.raises(ValueError, match="must be finite"):
        metric(a, b)


def test_features_too_large_for_float64_are_refused_not_inf():
    a, b = _probe_features()
    with pytest.raises(ValueError, match="fid is not finite"):
        metrics.fid(a * 1e200, b)


def test_scores_names_the_set_that_is_bad():
    a, b = _probe_features()
    broken = a.copy()
    broken[0, 0] = np.nan
    with pytest.raises(ValueError, match="gen_clean"):
        metrics.scores(broken, b, a, b)


@pytest.mark.parametrize("call,name", [
    (lambda a, b: metrics.kid(a, b, num_subsets=np.nan), "num_subsets"),
    (lambda a, b: metrics.kid(a, b, max_subset_size=2.5), "max_subset_size"),
    (lambda a, b: metrics.kid(a, b, seed=-1), "seed"),
    (lambda a, b: metrics.giqa_qs(a, b, 2.5), "k"),
    (lambda a, b: metrics.giqa_scores(a, b, 3, chunk=0), "chunk"),
    (lambda a, b: metrics.fid("abc", b), "feats_a"),
    (lambda a, b: metrics.crops(np.zeros((8, 8, 3)), 2.5), "size"),
    (lambda a, b: metrics.crops(np.zeros((8, 8, 3)), "4"), "size"),
    (lambda a, b: metrics.seam_score(np.full((8, 8), np.nan), [4]), "image"),
    (lambda a, b: metrics.seam_score(np.zeros((8, 8)), [4], band=np.nan), "band"),
    (lambda a, b: metrics.seam_score(np.zeros((8, 8)), [2.7]), "seams"),
    (lambda a, b: metrics.seam_score(np.zeros((8, 8)), "5"), "seams"),
    (lambda a, b: metrics.seam_score(np.zeros((8, 8)), None), "seams"),
    (lambda a, b: metrics.ssim_matrix([np.zeros((8, 8, 3), np.uint8)] * 2), "groups"),
    (lambda a, b: metrics.clip_score([np.zeros((8, 8, 3), np.uint8)], None), "prompts"),
    (lambda a, b: metrics.evaluate([0, 0], [0, 0], prompts=3, features=lambda *x, **k: a), "prompts"),
    (lambda a, b: metrics.evaluate([0, 0], [0, 0], giqa_k=np.nan, features=lambda *x, **k: a), "giqa_k"),
])
def test_bad_numbers_and_types_are_value_errors_naming_the_parameter(call, name):
    """Issue 27's probing: each was a TypeError, a NaN or an unrelated message before."""
    a, b = _probe_features()
    with pytest.raises(ValueError, match=name):
        call(a, b)
