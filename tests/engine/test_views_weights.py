"""Views cover the canvas, gather/scatter are inverse, weight maps are as in the paper's Fig. 2."""
import math

import pytest
import torch

from gvcf.engine.views import ViewLayout, axis_starts
from gvcf.engine.weights import WEIGHT_FLOOR, gaussian, guided, uniform, weight_map


@pytest.mark.parametrize("size,window,stride", [(112, 16, 12), (112, 16, 5), (100, 16, 16), (16, 16, 4), (448, 64, 48)])
def test_every_pixel_covered_and_last_view_snapped(size, window, stride):
    starts = axis_starts(size, window, stride)
    assert starts[0] == 0 and starts[-1] == size - window
    assert all(0 < b - a <= stride for a, b in zip(starts, starts[1:]))
    layout = ViewLayout.create(window, size, window, stride)
    cov = layout.coverage()
    assert cov.min() >= 1
    assert len(layout) == math.ceil((size - window) / stride) + 1


def test_matches_diffusers_views_when_stride_divides():
    # diffusers' StableDiffusionPanoramaPipeline.get_views (pixels / 8, window 64, stride 8)
    from diffusers import StableDiffusionPanoramaPipeline

    views = StableDiffusionPanoramaPipeline.get_views(None, 512, 2048, window_size=64, stride=8)
    layout = ViewLayout.create(64, 256, 64, 8)
    assert [(h0, w0) for h0, _, w0, _ in views] == layout.boxes


def test_gather_scatter_round_trip_2d_circular():
    layout = ViewLayout.create(24, 40, 16, (8, 12), circular=True)
    canvas = torch.randn(1, 4, 24, 40)
    views = layout.gather(canvas)
    assert views.shape == (len(layout), 4, 16, 16)
    back = layout.scatter_add(views) / layout.coverage()
    torch.testing.assert_close(back, canvas)
    # a wrapped view really continues on the left edge
    r, c = layout.boxes[len(layout.cols) - 1]
    assert c + 16 > 40
    k = len(layout.cols) - 1
    torch.testing.assert_close(views[k, :, :, 40 - c:], canvas[0, :, r:r + 16, : 16 - (40 - c)])


def test_circular_covers_every_column_evenly_when_stride_divides():
    layout = ViewLayout.create(16, 64, 16, 8, circular=True)
    cov = layout.coverage()
    assert torch.all(cov == 2)  # every column is covered by exactly window/stride views


@pytest.mark.parametrize("kwargs,name", [
    (dict(stride=0), "stride"), (dict(stride=17), "stride"), (dict(height=8), "smaller"), (dict(width=15), "smaller"),
])
def test_bad_layouts(kwargs, name):
    args = dict(height=16, width=64, window=16, stride=8) | kwargs
    with pytest.raises(ValueError, match=name):
        ViewLayout.create(**args)


def test_guided_map_is_fig2():
    w = guided(64, 64)
    assert w.shape == (64, 64)
    # 1 at the centre falling linearly with distance to 0 at the corners; pixel (31, 0)'s centre is at (-0.5, -31.5)
    assert w[31, 0].item() == pytest.approx(1 - math.hypot(-0.5, -31.5) / math.hypot(32, 32), abs=1e-6)
    assert w.max().item() == pytest.approx(1 - math.hypot(0.5, 0.5) / math.hypot(32, 32), abs=1e-6)
    assert w[0, 0].item() < 0.03 and w[0, 0].item() >= WEIGHT_FLOOR
    torch.testing.assert_close(w, w.flip(0))
    torch.testing.assert_close(w, w.flip(1))
    torch.testing.assert_close(w, w.T)
    # monotone along a ray from the centre
    diag = torch.stack([w[i, i] for i in range(32, 64)])
    assert torch.all(diag[1:] < diag[:-1])


def test_all_maps_positive_and_named():
    for m in (uniform(8, 12), guided(8, 12), gaussian(8, 12)):
        assert m.shape == (8, 12) and m.min() > 0
    assert torch.equal(weight_map("uniform", 4, 4), torch.ones(4, 4))
    with pytest.raises(ValueError, match="weights"):
        weight_map("triangle", 4, 4)
    g = gaussian(33, 33)
    assert g[16, 16] == g.max()
