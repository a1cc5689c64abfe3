"""ElasticDiffusion's reduced copy (Haji-Ali et al. 2024, Sec. 4, "resampling"): the whole canvas reduced to fit one
view, each reduced pixel taken from one pixel of a 2 x 2 block of the nearest-doubled canvas, resampled from other
pixels of the blocks at each pass, with the canvas pixels each pass fills. It follows the authors' code
(MoayedHajiAli/ElasticDiffusion-official, ``elastic_diffusion.py``: ``random_nearest_downsample``,
``to_even_rational``, ``restore_mask_shape``, ``random_sample_exclude_mask``,
``approximate_latent_direction_w_resampling``); gvcf.engine.elastic uses it for the global content.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F

MAX_BLOCK = 32              # the largest row (column) block of the reduced copy's pattern (`to_even_rational`)
BLOCK_CHOICES = 4           # pixels of a 2 x 2 block a resampling step may take
MAX_REDRAWS = 50            # redraws of a block's pixel that was taken before (`random_sample_exclude_mask`)
PERCENT = 100               # the keep/new draw is an integer in [0, 100] compared with 100 * (1 - new_p)


def _even_fraction(x: float) -> tuple[int, int]:
    """keep / block ~ x with both even and block <= MAX_BLOCK (a block of rows keeps `keep` of them)."""
    frac = Fraction(x).limit_denominator(MAX_BLOCK)
    if frac.numerator % 2 or frac.denominator % 2:
        frac = Fraction(x).limit_denominator(MAX_BLOCK // 2)
    if frac.numerator % 2 or frac.denominator % 2:
        return frac.numerator * 2, frac.denominator * 2
    return frac.numerator, frac.denominator


def _kept_offsets(block: int, remove: int) -> tuple[torch.Tensor, list[int]]:
    """Offsets kept in a block: `remove` // 2 pairs of adjacent offsets dropped, evenly spaced (even interval); and,
    per dropped pair, the two kept positions either side of the gap (where the fill mask keeps rows apart)."""
    pairs = remove // 2
    interval = block // (pairs + 1)
    interval += interval % 2
    keep = torch.ones(block, dtype=torch.bool)
    gaps = []
    for k in range(pairs):
        start = (k + 1) * interval - 1
        keep[start:start + 2] = False
        gaps += [start - 1 - 2 * k, start - 2 * k]
    return torch.arange(block)[keep], gaps


def _reduced_axis(n_in: int, n_out: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Source latent index of each of the 2 * n_out rows of the doubled canvas kept for the reduced copy, and the
    positions of those rows where a gap was cut (the fill mask keeps the rows either side apart there)."""
    keep, block = _even_fraction(n_out / n_in)
    blocks = (2 * n_out) // keep
    if blocks * block > 2 * n_in:
        blocks -= 1
    span = blocks * block
    offsets, gaps = _kept_offsets(block, block - keep)
    rows = (torch.arange(0, span, block).view(-1, 1) + offsets).view(-1)
    rows = rows[rows < 2 * n_in]
    rest = torch.arange(span, min(span + max(2 * n_out - len(rows), 0), 2 * n_in))
    rows = torch.cat([rows, rest])
    if len(rows) != 2 * n_out:
        raise ValueError(f"{name}: the reduced copy ({n_out} of {n_in} latent pixels) has no resampling pattern "
                         f"({len(rows)} rows instead of {2 * n_out}); choose a canvas closer to square")
    splits = (torch.arange(0, 2 * n_out, keep).view(-1, 1) + torch.tensor(gaps, dtype=torch.long)).view(-1)
    return rows // 2, splits


def _merge_pairs(mask: torch.Tensor, splits: list[int]) -> torch.Tensor:
    """Rows of the doubled grid back to canvas rows: each pair (i, i + 1) merged by OR, but kept as two rows where i
    is the next listed split (the authors' restore_mask_shape, whose list advances only on a match)."""
    parts, j = [], 0
    for i in range(0, mask.shape[0], 2):
        if j < len(splits) and i == splits[j]:
            parts += [mask[i:i + 1], mask[i + 1:i + 2]]
            j += 2
        else:
            parts.append(mask[i:i + 1] | mask[i + 1:i + 2])
    return torch.cat(parts)


@dataclass(frozen=True)
class ReducedCopy:
    """The canvas reduced to fit one view (size `size`): each output pixel takes one of the 2 x 2 block of the
    nearest-doubled canvas at rows `rows` and columns `cols` (the authors' `random_nearest_downsample`); the pixels
    a choice fills are found as the authors find them, from the doubled grid with the gap rows kept apart."""

    size: tuple[int, int]
    canvas: tuple[int, int]
    rows: torch.Tensor
    cols: torch.Tensor
    row_splits: list
    col_splits: list

    @classmethod
    def create(cls, height: int, width: int, size: tuple[int, int]) -> "ReducedCopy":
        rows, row_splits = _reduced_axis(height, size[0], "height")
        cols, col_splits = _reduced_axis(width, size[1], "width")
        return cls(tuple(size), (height, width), rows, cols, row_splits.tolist(), col_splits.tolist())

    def sources(self, choice: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Canvas (row, column) of every reduced pixel, for a choice in [0, 4) per pixel (row-major)."""
        h, w = self.size
        choice = choice.view(h, w)
        rows = self.rows[2 * torch.arange(h).view(-1, 1) + choice // 2]
        cols = self.cols[2 * torch.arange(w).view(1, -1) + choice % 2]
        return rows, cols

    def fill_mask(self, choice: torch.Tensor) -> torch.Tensor:
        """(H, W) bool: the canvas pixels a choice fills with the upsampled direction."""
        h, w = self.size
        choice = choice.view(h, w)
        grid = torch.zeros(2 * h, 2 * w, dtype=torch.bool)
        grid[2 * torch.arange(h).view(-1, 1) + choice // 2, 2 * torch.arange(w).view(1, -1) + choice % 2] = True
        mask = _merge_pairs(_merge_pairs(grid, self.row_splits).T, self.col_splits).T
        H, W = self.canvas
        if mask.shape[0] > H or mask.shape[1] > W:
            raise ValueError(f"height / width: no fill pattern for a {H}x{W} latent canvas reduced to {self.size}")
        return F.pad(mask, (0, W - mask.shape[1], 0, H - mask.shape[0]))


def reduced_size(model, height: int, width: int) -> tuple[int, int]:
    """The reduced copy's size in latent pixels: the canvas scaled so that its longer side is one view (never up)."""
    factor = max(max(height, width) / model.native_size, 1)
    return int((height // factor) // model.vae_scale_factor), int((width // factor) // model.vae_scale_factor)


def _draw_choices(gen: torch.Generator, taken: torch.Tensor, previous: torch.Tensor,
                  drop_threshold: float) -> torch.Tensor:
    """Which of its 2 x 2 block each reduced pixel takes at a resampling step: one not taken before (`taken`: (n, 4),
    redrawn up to MAX_REDRAWS times, then once more at random), or the previous step's where an integer draw in
    [0, 100] is <= drop_threshold (the authors' random_sample_exclude_mask and drop mask, in their order of draws)."""
    n = len(previous)
    choice = torch.randint(0, BLOCK_CHOICES, (n,), generator=gen)
    invalid = taken[torch.arange(n), choice]
    redraws = MAX_REDRAWS
    while invalid.any() and redraws > 0:
        choice[invalid] = torch.randint(0, BLOCK_CHOICES, (int(invalid.sum()),), generator=gen)
        invalid = taken[torch.arange(n), choice]
        redraws -= 1
    if invalid.any():
        choice[invalid] = torch.randint(0, BLOCK_CHOICES, (int(invalid.sum()),), generator=gen)
    new = torch.randint(0, PERCENT + 1, (n,), generator=gen)
    new = ((new > drop_threshold) | (drop_threshold <= 0)).long()
    return choice * new + previous * (1 - new)


def reduced_samples(x: torch.Tensor, copy: ReducedCopy, passes: int, gen: torch.Generator, new_p: float):
    """The reduced copies of x for `passes` resampling passes and, per pass, the canvas pixels it fills: the first
    takes each block's top-left pixel, the others draw (the authors' `approximate_latent_direction_w_resampling`)."""
    n = copy.size[0] * copy.size[1]
    drop_threshold = PERCENT * (1 - new_p)
    choice, taken, out = torch.zeros(n, dtype=torch.long), torch.zeros(n, BLOCK_CHOICES, dtype=torch.bool), []
    for k in range(passes):
        if k > 0:
            choice = _draw_choices(gen, taken, choice, drop_threshold)
        taken[torch.arange(n), choice] = True
        rows, cols = copy.sources(choice)
        out.append((x[:, :, rows.to(x.device), cols.to(x.device)], copy.fill_mask(choice).to(x.device)))
    return out
