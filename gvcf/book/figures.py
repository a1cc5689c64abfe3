"""The chapters' figures."""
from __future__ import annotations

import numpy as np

from ..eval.inception import load_image

# ============================================================================ figures

def show_panoramas(rows, labels, seams=None, title: str | None = None, width_in: float = 12.0, ax_height: float = 0.0):
    """A column of panoramas (uint8 arrays), one labelled row each; seams (one list per row, or one list for all)
    are drawn as thin vertical lines. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    rows = [load_image(r) for r in rows]
    if seams is not None and (len(seams) == 0 or not isinstance(seams[0], (list, tuple, np.ndarray))):
        seams = [seams] * len(rows)
    h, w = rows[0].shape[:2]
    row_h = ax_height or max(0.6, width_in * h / w + 0.35)
    fig, axes = plt.subplots(len(rows), 1, figsize=(width_in, row_h * len(rows) + (0.4 if title else 0)),
                             squeeze=False)
    for i, (ax, im, label) in enumerate(zip(axes[:, 0], rows, labels)):
        ax.imshow(im, interpolation="nearest", aspect="equal")
        ax.set_title(label, fontsize=9, loc="left", pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
        if seams is not None and seams[i] is not None:
            for s in seams[i]:
                ax.axvline(s - 0.5, color="red", linewidth=0.5, alpha=0.7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()) if title else None)
    return fig
