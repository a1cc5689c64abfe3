"""Intra-LPIPS and Intra-Style-L (gvcf.eval.coherence): SyncDiffusion's coherence between a panorama's crops."""
import numpy as np
import pytest
import torch

from gvcf.engine import assets
from gvcf.engine.perceptual import load_lpips
from gvcf.eval.coherence import _batch, coherence, gram

SIZE = 32


@pytest.fixture(scope="module")
def vgg(real_lpips):
    return real_lpips("vgg")


def smooth(seed, n=4, size=SIZE):
    """n crops of smooth random colour fields side by side, uint8 (H, n * size, 3)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (x.permute(2, 0, 3, 1).reshape(size, n * size, 3).numpy() * 255).round().astype(np.uint8)


def test_intra_lpips_is_the_mean_lpips_over_all_pairs_of_crops(vgg):
    pano = smooth(0, n=5)
    x = _batch(pano, SIZE)
    with torch.no_grad():
        pairs = [float(vgg(x[a:a + 1], x[b:b + 1])) for a in range(5) for b in range(a + 1, 5)]
    assert len(pairs) == 10
    assert coherence(pano, SIZE, vgg)["intra_lpips"] == pytest.approx(np.mean(pairs), rel=1e-5)


def test_a_panorama_of_one_repeated_crop_scores_zero(vgg):
    pano = np.tile(smooth(1, n=1), (1, 4, 1))
    assert coherence(pano, SIZE, vgg) == {"intra_lpips": 0.0, "intra_style": 0.0}


def test_crops_alike_score_lower_than_crops_apart(vgg):
    """One colour field with a little noise per crop against four unrelated fields."""
    base = np.tile(smooth(2, n=1), (1, 4, 1)).astype(float)
    noise = np.random.default_rng(0).normal(0, 6, base.shape)
    alike = coherence((base + noise).clip(0, 255).astype(np.uint8), SIZE, vgg)
    apart = coherence(smooth(3), SIZE, vgg)
    assert alike["intra_lpips"] < apart["intra_lpips"] / 2 and alike["intra_style"] < apart["intra_style"] / 2


def test_gram_matrix_is_symmetric_and_ignores_where_features_are():
    f = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    g = gram(f)
    shuffled = f.flatten(2)[..., torch.randperm(20, generator=torch.Generator().manual_seed(1))].reshape(2, 3, 4, 5)
    torch.testing.assert_close(g, g.transpose(1, 2))
    torch.testing.assert_close(gram(shuffled), g)
    torch.testing.assert_close(g[0, 0, 0], f[0, 0].pow(2).sum() / 60)


def test_fewer_than_two_crops_is_a_value_error(vgg):
    with pytest.raises(ValueError, match="at least 2 crops"):
        coherence(smooth(0, n=1), SIZE, vgg)


@pytest.mark.parametrize("bad", [lambda p: p.astype(np.float64),              # 0-255 floats: read as [0, 1] before
                                 lambda p: p.astype(np.float32) / 255,         # [0, 1] floats: no metric takes them
                                 lambda p: p[..., 0],                          # grayscale (H, W): a permute error
                                 lambda p: np.concatenate([p, p[..., :1]], -1),   # RGBA-like 4 channels
                                 lambda p: p.tolist()])                        # nested lists of ints: int64
def test_a_panorama_that_is_not_a_uint8_rgb_image_is_refused_by_name(vgg, bad):
    """Issue 27: a float image in 0-255 gave Intra-Style-L 620,533 instead of 0.000197."""
    with pytest.raises(ValueError, match="panorama"):
        coherence(bad(smooth(0)), SIZE, vgg)


@pytest.mark.parametrize("size", [0, -32, 32.0, float("nan"), "32", True])
def test_a_bad_crop_size_is_refused_by_name(vgg, size):
    with pytest.raises(ValueError, match="size"):
        coherence(smooth(0), size, vgg)


def test_a_uint8_tensor_panorama_scores_as_its_array(vgg):
    pano = smooth(4)
    assert coherence(torch.from_numpy(pano), SIZE, vgg) == coherence(pano, SIZE, vgg)
