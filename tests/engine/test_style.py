"""Style Alignment (Eq. 15): slerp endpoints, angles and norms; crop-wise alignment with edge remainders."""
import math

import pytest
import torch
from scipy import stats

from gvcf.engine.style import align_noise, slerp


def angle(a, b):
    return torch.arccos((a * b).sum() / (a.norm() * b.norm())).item()


def test_slerp_endpoints_and_angle():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 16, 16, generator=g), torch.randn(4, 16, 16, generator=g)
    b = b / b.norm() * a.norm()   # on one sphere, slerp moves along the great circle at constant speed
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    theta = angle(a, b)
    for alpha in (0.1, 0.4, 0.75):
        assert angle(a, slerp(a, b, alpha)) == pytest.approx(alpha * theta, abs=1e-4)


def test_slerp_keeps_noise_on_the_gaussian_shell():
    g = torch.Generator().manual_seed(1)
    n = 4 * 64 * 64
    for alpha in (0.1, 0.4, 0.7, 0.9):
        a, b = torch.randn(n, generator=g), torch.randn(n, generator=g)
        c = slerp(a, b, alpha)
        # norm stays at sqrt(n) (within the spread of a chi distribution), unlike lerp which shrinks it
        assert c.norm().item() / math.sqrt(n) == pytest.approx(1.0, abs=0.03)
        assert torch.lerp(a, b, 0.5).norm().item() / math.sqrt(n) < 0.75
        assert stats.kstest(c.numpy(), "norm").pvalue > 0.01
    # equal-norm inputs: the norm is preserved exactly
    a = torch.randn(n, generator=g)
    b = torch.randn(n, generator=g)
    b = b / b.norm() * a.norm()
    assert slerp(a, b, 0.3).norm().item() == pytest.approx(a.norm().item(), rel=1e-5)


def test_align_noise_per_crop_with_remainders():
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(1, 4, 20, 50, generator=g)   # crops of 16x16: 2 x 4 tiles with remainders
    ref = torch.randn(1, 4, 16, 16, generator=g)
    out = align_noise(noise, ref, 1.0)
    for top in (0, 16):
        for left in (0, 16, 32, 48):
            crop = out[..., top:top + 16, left:left + 16]
            torch.testing.assert_close(crop, ref[..., : crop.shape[-2], : crop.shape[-1]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(align_noise(noise, ref, 0.0), noise)
    half = align_noise(noise, ref, 0.4)
    # each crop, the corner remainder included, is slerped toward the matching part of the reference
    crop, r = noise[..., 16:20, 48:50], ref[..., :4, :2]
    torch.testing.assert_close(half[..., 16:20, 48:50], slerp(crop, r, 0.4))
    assert 0 < angle(crop, half[..., 16:20, 48:50]) < angle(crop, r)
    # tiles become more alike: nearly orthogonal crops slerped by alpha toward a nearly orthogonal
    # reference keep cos(alpha * pi / 2) of their distance (0.809 for alpha = 0.4)
    tiles = lambda x: [x[..., 0:16, c:c + 16] for c in (0, 16, 32)]
    d = lambda x: sum((p - q).norm() for p in tiles(x) for q in tiles(x)).item()
    assert d(half) / d(noise) == pytest.approx(math.cos(0.4 * math.pi / 2), abs=0.03)


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_out_of_range(alpha):
    with pytest.raises(ValueError, match="alpha"):
        align_noise(torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8), alpha)
