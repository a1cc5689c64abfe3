"""Where each view sits on the canvas: a 1-D or 2-D grid of windows, optionally wrapping horizontally.

All sizes here are in latent pixels. Gathering views and scattering them back are single indexed
tensor operations (no Python loop over views or pixels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .checks import is_int


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def axis_starts(size: int, window: int, stride: int, circular: bool = False) -> list[int]:
    """Start offsets of the windows along one axis.

    Non-circular: windows at 0, stride, 2*stride, ...; where stride does not divide (size - window),
    the last window is snapped to the edge (start = size - window), so every pixel is covered.
    Circular: ceil(size / stride) windows at multiples of stride, wrapping past the end.
    """
    if window > size:
        raise ValueError(f"canvas size {size} is smaller than the view {window}")
    if circular:
        return [i * stride for i in range(math.ceil(size / stride))]
    n = math.ceil((size - window) / stride) + 1
    return [min(i * stride, size - window) for i in range(n)]


@dataclass(frozen=True)
class ViewLayout:
    """A grid of (window_h x window_w) views on a (height x width) latent canvas."""

    height: int
    width: int
    window: tuple[int, int]
    stride: tuple[int, int]
    circular: bool = False

    @classmethod
    def create(cls, height: int, width: int, window, stride, circular: bool = False) -> "ViewLayout":
        window, stride = _pair(window, "window"), _pair(stride, "stride")
        for name, (s, w) in (("stride", (stride[0], window[0])), ("stride", (stride[1], window[1]))):
            if s <= 0 or s > w:
                raise ValueError(f"{name} must be in [1, view size {w}], got {s}")
        if height < window[0] or (width < window[1]):
            raise ValueError(f"canvas {height}x{width} is smaller than a view {window[0]}x{window[1]}")
        return cls(height, width, window, stride, circular)

    @property
    def rows(self) -> list[int]:
        return axis_starts(self.height, self.window[0], self.stride[0])

    @property
    def cols(self) -> list[int]:
        return axis_starts(self.width, self.window[1], self.stride[1], self.circular)

    @property
    def boxes(self) -> list[tuple[int, int]]:
        """(top, left) of every view, row-major: the fixed order of views (and of their noise draws)."""
        return [(r, c) for r in self.rows for c in self.cols]

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def flat_index(self, device=None) -> torch.Tensor:
        """(V, wh, ww) indices into the flattened (height * width) canvas; columns wrap if circular."""
        wh, ww = self.window
        tops = torch.tensor([r for r, _ in self.boxes], device=device)
        lefts = torch.tensor([c for _, c in self.boxes], device=device)
        ys = tops[:, None] + torch.arange(wh, device=device)[None]            # (V, wh)
        xs = (lefts[:, None] + torch.arange(ww, device=device)[None]) % self.width  # (V, ww)
        return ys[:, :, None] * self.width + xs[:, None, :]

    def gather(self, canvas: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """(1, C, H, W) canvas -> (V, C, wh, ww) views."""
        index = self.flat_index(canvas.device) if index is None else index
        c = canvas.shape[1]
        flat = canvas.reshape(c, -1)
        return flat[:, index].permute(1, 0, 2, 3)

    def scatter_add(self, views: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Sum (V, C, wh, ww) views (or (V, 1, wh, ww) maps) into a (1, C, H, W) canvas."""
        index = self.flat_index(views.device) if index is None else index
        c = views.shape[1]
        out = torch.zeros(c, self.height * self.width, dtype=views.dtype, device=views.device)
        out.index_add_(1, index.reshape(-1), views.permute(1, 0, 2, 3).reshape(c, -1))
        return out.reshape(1, c, self.height, self.width)

    def coverage(self) -> torch.Tensor:
        """(H, W) number of views covering each canvas pixel."""
        ones = torch.ones(len(self), 1, *self.window)
        return self.scatter_add(ones)[0, 0]

    def seams(self, scale: int = 1) -> list[int]:
        """Canvas columns (times `scale`) where a view's left or right edge falls, inside the canvas."""
        edges = set()
        for c in self.cols:
            for e in (c, c + self.window[1]):
                if self.circular:
                    edges.add(e % self.width)
                elif 0 < e < self.width:
                    edges.add(e)
        return sorted(e * scale for e in edges if 0 < e < self.width or self.circular)


# ---- the canvas in image pixels: one function computes every caller's geometry and defaults ----
DEFAULT_WIDTH_VIEWS = 7        # the paper's 512 x 3584 panoramas are 7 views wide
DEFAULT_STRIDE_FRACTION = 0.75  # the paper's stride of 384 px on 512 px views


def pixels_to_latent(value, factor: int, name: str) -> int:
    """An image size in pixels -> latent pixels (it must be a positive multiple of the VAE factor)."""
    if not is_int(value) or value <= 0 or value % factor:
        raise ValueError(f"{name} must be a positive multiple of the VAE scale factor {factor} (pixels), "
                         f"got {value!r}")
    return int(value) // factor


def stride_pixels(native: int, factor: int, fraction: float = DEFAULT_STRIDE_FRACTION) -> int:
    """A stride given as a fraction of a view, in image pixels rounded down to the VAE factor (at least one)."""
    return max(factor, int(native * fraction) // factor * factor)


def stride_pair(stride) -> tuple:
    """A stride as (h, w) in pixels; None (3/4 of a view) stays None in each place."""
    pair = tuple(stride) if isinstance(stride, (tuple, list)) else (stride, stride)
    if len(pair) != 2 or not all(s is None or is_int(s) for s in pair):
        raise ValueError(f"stride must be None, an int or a pair (h, w) of ints in pixels, got {stride!r}")
    return pair


@dataclass(frozen=True)
class Canvas:
    """A panorama's size and stride in image pixels, and its views (in latent pixels)."""

    height: int
    width: int
    stride: tuple[int, int]
    layout: ViewLayout


def canvas(model, height=None, width=None, stride=None, circular: bool = False) -> Canvas:
    """The canvas of a model (native_size, vae_scale_factor, latent_size): height defaults to one view, width to
    DEFAULT_WIDTH_VIEWS views, stride (an int or a pair (h, w) of pixels, None in either place) to 3/4 of a view."""
    f, native = model.vae_scale_factor, model.native_size
    height = native if height is None else height
    width = DEFAULT_WIDTH_VIEWS * native if width is None else width
    sh, sw = (stride_pixels(native, f) if s is None else s for s in stride_pair(stride))
    h, w = pixels_to_latent(height, f, "height"), pixels_to_latent(width, f, "width")
    for name, value in (("height", height), ("width", width)):   # refused in the pixels the caller gave
        if value < native:
            raise ValueError(f"{name} must be at least one view ({native} px), got {value} px")
    latent_stride = (pixels_to_latent(sh, f, "stride"), pixels_to_latent(sw, f, "stride"))
    for value in (sh, sw):
        if value > native:
            raise ValueError(f"stride must be at most one view ({native} px; views must overlap or touch), "
                             f"got {value} px")
    layout = ViewLayout.create(h, w, model.latent_size, latent_stride, circular)
    return Canvas(int(height), int(width), (int(sh), int(sw)), layout)
