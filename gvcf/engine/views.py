"""Where each view sits on the canvas: a 1-D or 2-D grid of windows, optionally wrapping horizontally.

All sizes here are in latent pixels. Gathering views and scattering them back are single indexed
tensor operations (no Python loop over views or pixels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


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
