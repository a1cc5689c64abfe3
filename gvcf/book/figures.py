"""The chapters' figures, one call each (each draws, shows and returns its matplotlib figure)."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ..engine.fusion import FUSIONS
from ..engine.stages import stage
from ..eval.inception import load_image

# ============================================================================ figures

@stage("plotting")
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


def _show(fig):
    import matplotlib.pyplot as plt

    plt.show()
    return fig


@stage("plotting")
def guidance_map(S):
    """Fig. 2: the guidance map at image resolution and at the latent view size actually used."""
    import matplotlib.pyplot as plt

    from ..engine import weights

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, size, what in ((axes[0], S.native, f"at image resolution ({S.native} px)"),
                           (axes[1], S.model.latent_size,
                            f"as used: the {S.model.latent_size} x {S.model.latent_size} latent view")):
        im = ax.imshow(weights.guided(size, size).numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(what, fontsize=9)
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    fig.colorbar(im, ax=axes, label="weight $w_i$", shrink=0.9)
    fig.suptitle("Fig. 2: guidance map (1 at the centre, 0 at the corners)")
    return _show(fig)


SYNC_LABEL = "SyncDiffusion (Sync)"


def method_label(name: str) -> str:
    """A paper method's row label: its fusion's label (gvcf.engine.fusion.FUSIONS), with Style Alignment's alpha when
    it has one ('GVCF + Style Alignment (alpha = 0.4)'); SyncDiffusion's; else the name itself (Elastic)."""
    from ..paper.methods import method

    m = method(name)
    if m.sync:
        return SYNC_LABEL
    if m.fusion not in FUSIONS:
        return name
    fusion = FUSIONS[m.fusion]
    return f"{fusion.abbreviation} + Style Alignment (alpha = {m.alpha:g})" if m.alpha else fusion.label


@stage("plotting")
def overview(sets: dict, prompts, n_per_prompt: int) -> list:
    """Fig. 1: every method from the same initial noise, one figure per panorama (prompt, k)."""
    from ..paper.image_sets import images
    from ..paper.methods import method

    panos = {name: images(cfg) for name, cfg in sets.items()}
    labels = [f"{method_label(name)}, {method(name).sampler_label}" for name in sets]
    figures = []
    for j, (prompt, k) in enumerate((p, k) for p in prompts for k in range(n_per_prompt)):
        title = f'Fig. 1: "{prompt}" (panorama {k}, the same initial noise in every row)'
        figures.append(_show(show_panoramas([panos[name][j] for name in sets], labels, title=title)))
    return figures


@stage("plotting")
def regions(panoramas: dict, prompt: str, region_prompt: str):
    """Region prompts: the region's mask (white: region_prompt) above each fusion's panorama."""
    labels = [f'mask: white "{region_prompt}", black "{prompt}"'] + \
             [f"{FUSIONS[f].label}, DDIM" for f in panoramas if f != "mask"]
    return _show(show_panoramas(list(panoramas.values()), labels, title="Two prompts on one canvas"))


FIGURES_DIR = "figures"   # under a chapter's results_dir: the figures a chapter saves, one folder per profile


def overview_path(results_dir, profile: str):
    """Where chapter 1 saves Fig. 1 as a PNG: <results_dir>/figures/<profile>/overview.png (the book profile's is the
    README's picture; gvcf.book.publish.publish copies it to book/figures/overview.png)."""
    from pathlib import Path

    return Path(results_dir) / FIGURES_DIR / str(profile) / "overview.png"


@stage("plotting")
def save_overview(fig, S, profile: str):
    """Save Fig. 1 (one panorama's figure) under the chapter's results_dir, never into the checkout; returns the path.
    """
    from ..eval.cache import write_atomic

    path = overview_path(S.results_dir, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())
    return path


@stage("plotting")
def view_shares(S):
    """How MD and GF split the canvas: each view's share w_i / sum_j w_j along the canvas' middle row."""
    import matplotlib.pyplot as plt

    from ..paper.fusion_measurements import guided_profile

    layout = S.layout()
    fig, axes = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True)
    for ax, fusion, name in ((axes[0], "md", "MultiDiffusion (uniform weights)"), (axes[1], "gf", "Guided Fusion")):
        share = guided_profile(layout, fusion)
        x = (np.arange(layout.width) + 0.5) * S.factor
        for v in range(len(share)):
            ax.plot(x, np.where(share[v] > 0, share[v], np.nan), linewidth=1, drawstyle="steps-mid")
        for s in S.seams():
            ax.axvline(s, color="grey", linewidth=0.4, alpha=0.5)
        ax.set_ylabel("share of the pixel")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{name}: stride {S.stride} px, {len(layout)} views (one colour each)", fontsize=9)
    axes[1].set_xlabel("canvas column (image pixels)")
    plt.tight_layout()
    return _show(fig)


@stage("plotting")
def over_strides(S, sets: dict, prompt: str):
    """Fig. 4: one panorama of `prompt` with MD and GF at each stride (the same initial noise), view edges marked."""
    from ..paper.constants import PAPER_VIEW
    from ..paper.image_sets import image_of
    from ..paper.tables import fraction_label

    rows, labels, seams = [], [], []
    for s, pair in sets.items():
        for f, cfg in pair.items():
            rows.append(image_of(cfg, prompt))
            labels.append(f"{f}, stride {s} px ({fraction_label(s / S.native)} of a view; the paper's "
                          f"{round(s / S.native * PAPER_VIEW)} px)")
            seams.append(S.seams(s))
    return _show(show_panoramas(rows, labels, seams, title=f'Fig. 4: MD vs GF over strides, DDIM, "{prompt}"'))


CROP_VIEWS = 1.5    # a seam crop is 1.5 views wide, centred on the gap between two view edges
CROP_ZOOM = 4       # and enlarged 4x (nearest neighbour: the pixels as they are)


@stage("plotting")
def seam_crops(S, pair: dict, prompt: str, stride: int):
    """Fig. 4, enlarged: the same panorama with MD and GF side by side, cropped around two view edges (marked) in
    the middle of the canvas, with each panorama's seam score (1 = no jump at the edges) under it."""
    import matplotlib.pyplot as plt

    from ..eval import metrics
    from ..paper.image_sets import image_of

    seams = S.seams(stride)
    middle = len(seams) // 2
    pairs = [(seams[middle - 1], seams[middle])] if len(seams) >= 2 else [(seams[0], seams[0])]
    left, right = pairs[0]
    half = round(CROP_VIEWS * S.native / 2)
    centre = (left + right) // 2
    lo, hi = max(0, centre - half), min(S.width, centre + half)
    fig, axes = plt.subplots(1, len(pair), figsize=(6 * len(pair), 6 * S.height / (hi - lo) + 0.8), squeeze=False)
    for ax, (name, cfg) in zip(axes[0], pair.items()):
        im = load_image(image_of(cfg, prompt))
        crop = np.repeat(np.repeat(im[:, lo:hi], CROP_ZOOM, 0), CROP_ZOOM, 1)
        ax.imshow(crop, interpolation="nearest")
        for edge in (left, right):
            ax.axvline((edge - lo) * CROP_ZOOM - 0.5, color="red", linewidth=0.8, alpha=0.6)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name}: columns {lo}-{hi}, x{CROP_ZOOM}", fontsize=10)
        ax.set_xlabel(f"seam score of this panorama {metrics.seam_score(im, seams):.3f}", fontsize=10)
    fig.suptitle(f'View edges at columns {left} and {right} (red), stride {stride} px, "{prompt}"', fontsize=11)
    fig.tight_layout()
    return _show(fig)


@stage("plotting")
def first_panoramas(sets: dict, title: str):
    """The first panorama of each image set, one labelled row each (label -> set)."""
    from ..paper.image_sets import images

    return _show(show_panoramas([images(cfg, limit=1)[0] for cfg in sets.values()], list(sets), title=title))


VARIANCE_HOW = {"md": " (average)", "gf": " (weighted average)", "vcf": "", "gvcf": " (VCF + GF)"}   # the legend's


def variance_name(fusion: str) -> str:
    """Fig. 3's legend: the fusion's abbreviation and how it merges the views' noise."""
    return FUSIONS[fusion].abbreviation + VARIANCE_HOW[fusion]


@stage("plotting")
def noise_variance(V: pd.DataFrame, S):
    """The fused DDPM noise's variance in the overlaps against sigma_t^2 (Eq. 11-14), per fusion."""
    import matplotlib.pyplot as plt

    from ..paper.fusion_measurements import expected_md_ratio

    half = expected_md_ratio(S.layout())
    shown = V[V["sigma2"] > 1e-6 * V["sigma2"].max()]   # the last steps' sigma_t^2 (~1e-20) would squash the axes
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    s2 = np.sort(shown["sigma2"].unique())
    axes[0].plot(s2, s2, "k--", linewidth=1.5, label="variance = $\\sigma_t^2$ (DDPM, one view)")
    axes[0].plot(s2, half * s2, ":", color="grey", linewidth=1.5, label="$\\sigma_t^2 / 2$ (Eq. 11)")
    for m, d in shown.groupby("method", sort=False):
        axes[0].plot(d["sigma2"], d["variance"], "o", markersize=3, label=variance_name(m))
        axes[1].plot(d["t"], d["ratio"], marker=".", linewidth=1, label=variance_name(m))
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("$\\sigma_t^2$ of the DDPM step")
    axes[0].set_ylabel("variance of the fused noise in the overlaps")
    axes[1].axhline(1.0, color="k", linestyle="--", linewidth=1)
    axes[1].axhline(half, color="grey", linestyle=":", linewidth=1)
    axes[1].set_xlabel("timestep t (denoising goes from T to 0)")
    axes[1].set_ylabel("variance / $\\sigma_t^2$")
    axes[1].set_ylim(0, 1.3)
    axes[1].invert_xaxis()
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(f"Fused DDPM noise against $\\sigma_t^2$: {S.steps_for('ddpm')} steps, stride {S.stride} px, "
                 f"{len(S.layout())} views")
    plt.tight_layout()
    return _show(fig)


@stage("plotting")
def against_alpha(ours: pd.DataFrame):
    """Fig. 5: FID and GIQA-DS of each method against the Style Alignment strength."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, col, label in ((axes[0], "fid", "FID (lower: better quality)"),
                           (axes[1], "giqa_ds", "GIQA-DS (higher: more diverse)")):
        for f, d in ours.groupby("method", sort=False):
            ax.plot(d["alpha"], d[col], marker="o", label=f)
        ax.set_xlabel("Style Alignment strength alpha")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle("Fig. 5: quality and diversity against alpha (DDIM)")
    plt.tight_layout()
    return _show(fig)


CALIBRATION_LABELS = {"alpha": "Style Alignment strength alpha", "sync_weight": "SyncDiffusion weight"}


@stage("plotting")
def calibration(calibrations: dict):
    """SSIM to MD against each knob (gvcf.paper.calibration.calibrate), the paper's SSIM and the calibrated value."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(calibrations), figsize=(5 * len(calibrations), 3.6), squeeze=False)
    for ax, (knob, c) in zip(axes[0], calibrations.items()):
        ax.plot(c.values, c.ssim, marker="o", label=f"this model (n = {c.n} panoramas each)")
        ax.axhline(c.target, color="grey", linestyle="--", label=f"the paper's SSIM {c.target:.2f}")
        ax.axvline(c.value, color="red", linewidth=0.8, label=f"calibrated: {c.value:g}" +
                   ("" if c.reached else " (not reached)"))
        if knob == "sync_weight":
            ax.set_xscale("log")
        ax.set_xlabel(CALIBRATION_LABELS.get(knob, knob))
        ax.set_ylabel("SSIM to MD (same noise)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle("How strongly each knob changes this model's panoramas")
    plt.tight_layout()
    return _show(fig)


@stage("plotting")
def left_halves(sets: dict, alphas, prompt: str):
    """Fig. 6: the left half of the first panorama of each (method, alpha) set, alphas down, methods across."""
    import matplotlib.pyplot as plt

    from ..paper.image_sets import images

    methods = list(dict.fromkeys(f for f, _ in sets))
    fig, axes = plt.subplots(len(alphas), len(methods), figsize=(11, 1.9 * len(alphas) + 0.6), squeeze=False)
    for i, a in enumerate(alphas):
        for j, f in enumerate(methods):
            pano = images(sets[f, a], limit=1)[0]
            axes[i, j].imshow(pano[:, : pano.shape[1] // 2], interpolation="nearest")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            axes[i, j].set_title(f"{f}, alpha = {a:g}", fontsize=9, loc="left", pad=2)
    fig.suptitle(f'Fig. 6: the left half of the panorama against alpha (DDIM), "{prompt}"')
    plt.tight_layout()
    return _show(fig)


@stage("plotting")
def runtime_bars(R: pd.DataFrame):
    """Table 3 as bars: seconds per panorama (ours scaled to the paper's steps) and time relative to MD."""
    import matplotlib.pyplot as plt

    from ..paper.tables import paper_table

    paper = paper_table("table3")
    names = list(R["method"])
    paper_s = np.array([paper.loc[paper["method"] == n, "runtime_mean_s"].iloc[0] if n in set(paper["method"])
                        else np.nan for n in names])
    ours_ratio = R["scaled_mean_s"].to_numpy() / R.loc[R["method"] == "MD", "scaled_mean_s"].iloc[0]
    paper_ratio = paper_s / paper.loc[paper["method"] == "MD", "runtime_mean_s"].iloc[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    x = np.arange(len(names))
    axes[0].bar(x - 0.2, R["scaled_mean_s"], 0.4, yerr=R["scaled_std_s"], label=f"this run: {R.attrs['device_name']}")
    axes[0].bar(x + 0.2, paper_s, 0.4, label="paper: Quadro RTX 6000, SD 2")
    axes[0].set_ylabel("seconds per panorama (log)")
    axes[0].set_title("at DDIM 50 / DDPM 1000 steps (ours scaled from the steps run)", fontsize=9)
    axes[1].bar(x - 0.2, ours_ratio, 0.4, label="this run")
    axes[1].bar(x + 0.2, paper_ratio, 0.4, label="paper (Quadro RTX 6000)")
    axes[1].set_ylabel("time relative to MD (log)")
    axes[1].set_title("relative to MD", fontsize=9)
    for ax in axes:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.set_xticks(x, [f"{n}\n{s}" for n, s in zip(names, R["sampler"])])
    fig.suptitle("Table 3: runtime per panorama")
    plt.tight_layout()
    return _show(fig)
