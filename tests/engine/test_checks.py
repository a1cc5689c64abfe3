"""The shared argument checks: what each accepts and refuses, and that a refusal names the parameter."""
import math
from fractions import Fraction

import numpy as np
import pytest

from gvcf.engine.checks import finite_number, is_int, is_number, positive_int

NOT_NUMBERS = [True, False, "3", "nan", None, [1], (1,), b"1", complex(1, 0)]


@pytest.mark.parametrize("value", [0, 1, -3, 2**70, np.int8(3), np.int64(-1), np.uint32(7)])
def test_is_int_accepts_python_and_numpy_integers(value):
    assert is_int(value)


@pytest.mark.parametrize("value", NOT_NUMBERS + [np.bool_(True), 1.0, 2.5, np.float64(3.0), float("nan")])
def test_is_int_refuses_bools_floats_text_and_none(value):
    assert not is_int(value)


@pytest.mark.parametrize("value", [0, -2, 1.5, np.float32(0.5), np.int64(4), Fraction(1, 3), float("nan"),
                                   float("inf")])
def test_is_number_accepts_reals_nan_and_inf_included(value):
    assert is_number(value)


@pytest.mark.parametrize("value", NOT_NUMBERS + [np.bool_(False)])
def test_is_number_refuses_bools_text_and_none(value):
    assert not is_number(value)


@pytest.mark.parametrize("value", [1, 7, 2**40, np.int32(5), np.uint8(1)])
def test_positive_int_accepts_and_returns_a_plain_int(value):
    out = positive_int(value, "steps")
    assert out == value and type(out) is int


@pytest.mark.parametrize("value", [0, -1, np.int64(0), True, False, 1.0, 2.5, np.float64(3.0), float("nan"),
                                   float("inf"), "3", None, [3]])
def test_positive_int_refuses_naming_the_parameter(value):
    with pytest.raises(ValueError, match=r"^view_batch_size must be a positive int, got "):
        positive_int(value, "view_batch_size")


def test_positive_int_optional_passes_none_and_says_so_when_it_refuses():
    assert positive_int(None, "decode_tile", optional=True) is None
    assert positive_int(np.int16(3), "decode_tile", optional=True) == 3
    for bad in (0, True, 1.5, "2"):
        with pytest.raises(ValueError, match=r"^decode_tile must be a positive int or None, got "):
            positive_int(bad, "decode_tile", optional=True)
    with pytest.raises(ValueError, match="decode_tile"):
        positive_int(None, "decode_tile")   # None is refused unless optional


@pytest.mark.parametrize("value", [0, -2, 3, 7.5, -1e300, np.float32(0.25), np.int64(9), Fraction(1, 4), 2**70])
def test_finite_number_accepts_and_returns_a_float(value):
    out = finite_number(value, "eta")
    assert out == pytest.approx(float(value)) and type(out) is float


@pytest.mark.parametrize("value", NOT_NUMBERS + [np.bool_(True), float("nan"), float("inf"), -float("inf"),
                                                 np.float32("nan"), np.float64("inf"), 10**400])
def test_finite_number_refuses_naming_the_parameter(value):
    with pytest.raises(ValueError, match=r"^guidance_scale must be a finite number, got "):
        finite_number(value, "guidance_scale")


def test_finite_number_minimum_is_inclusive_and_named():
    assert finite_number(0, "weight", minimum=0.0) == 0.0
    assert finite_number(0.5, "alpha", minimum=0.5) == 0.5
    assert finite_number(math.nextafter(0.5, 1), "alpha", minimum=0.5) > 0.5
    for bad in (-1e-12, -1, np.float64(-0.1), math.nextafter(0.0, -1)):
        with pytest.raises(ValueError, match=r"^weight must be a finite number >= 0, got "):
            finite_number(bad, "weight", minimum=0.0)
    with pytest.raises(ValueError, match=r"^alpha must be a finite number >= 0\.5, got "):
        finite_number(0.25, "alpha", minimum=0.5)
    for bad in (float("nan"), float("inf"), True, "1"):   # the bound does not let anything else through
        with pytest.raises(ValueError, match="weight"):
            finite_number(bad, "weight", minimum=0.0)


def _model64():
    """The bundled model's geometry: 64 px views, VAE factor 8 (8 latent pixels)."""
    from types import SimpleNamespace

    return SimpleNamespace(vae_scale_factor=8, native_size=64, latent_size=8)


@pytest.mark.parametrize("kw,message", [
    (dict(stride=128), "stride must be at most one view (64 px; views must overlap or touch), got 128 px"),
    (dict(stride=(64, 72)), "stride must be at most one view (64 px"),
    (dict(width=32), "width must be at least one view (64 px), got 32 px"),
    (dict(height=32), "height must be at least one view (64 px), got 32 px"),
    (dict(width=100), "width must be a positive multiple of the VAE scale factor 8 (pixels), got 100"),
    (dict(stride=0), "stride must be a positive multiple"),
    (dict(stride=-8), "stride must be a positive multiple"),
    (dict(stride=12.5), "stride must be None, an int or a pair"),
    (dict(width=float("nan")), "width must be a positive multiple"),
])
def test_canvas_refuses_in_the_pixels_the_caller_gave(kw, message):
    """Issue 27 item 7: stride=128 on 64 px views said 'got 32' (latent units); width=32 said 'canvas 16x8'."""
    from gvcf.engine.views import canvas

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        canvas(_model64(), **kw)


def test_canvas_accepts_a_stride_of_one_view_and_a_width_of_one_view():
    from gvcf.engine.views import canvas

    assert len(canvas(_model64(), width=64, stride=64).layout) == 1
    assert canvas(_model64(), width=448, stride=64).stride == (64, 64)
