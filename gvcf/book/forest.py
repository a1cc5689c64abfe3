"""A forest plot of the book's claims (book/tally.json): every claim's effect with its 95% interval, on one axis.

Claims measure different things (a seam score, FID, a runtime ratio), so each effect is shown in units of its own
standard error: z = (effect - zero) / SE, SE = the interval's width / (2 * 1.96) (for a 95% interval), on the log
scale for ratios, and oriented so that positive is the paper's side (a claim that expects "lower" is negated). An
equivalence claim (expect "within" a margin) shows (margin - |effect|) / SE: positive inside the margin. So a claim
holds where its whole bar lies right of 0, is reversed where it lies left of 0; +-1.96 marks where a symmetric
interval would stop touching 0. Claims not checked are listed in grey without a bar.
"""
from __future__ import annotations

import math
import textwrap
from statistics import NormalDist

VERDICT_COLOURS = {"holds": "#1b7837", "reversed": "#b2182b", "inconclusive": "#6a6a6a"}
UNCHECKED_COLOUR = "#b0b0b0"
Z_LIMIT = 12.0              # |z| beyond this is drawn at the edge as an arrow, its value written beside it
LABEL_CHARS = 78            # a claim's label wraps at this many characters
ROW_INCHES = 0.2            # height of one label line
BAR_GID = "claim-interval"    # the gid of each claim's interval line
AXIS_LABEL = "effect / its standard error (SE = 95% interval width / 3.92; log scale for ratios); > 0: the paper's side"


def _compared(value: float, effect: dict) -> float:
    """A value in shown units on the compared scale: minus the effect's zero, or the log ratio to it."""
    if effect["log"]:
        if value <= 0 or effect["null"] <= 0:
            raise ValueError(f"a ratio claim needs positive values, got {value} against {effect['null']}")
        return math.log(value) - math.log(effect["null"])
    return value - effect["null"]


def scaled(effect: dict | None) -> tuple[float, float, float] | None:
    """(z, low, high): a claim's effect and interval over its standard error, positive on the paper's side; None
    without an effect or with an interval of zero width."""
    if not effect:
        return None
    est, lo, hi = (_compared(effect[k], effect) for k in ("estimate", "low", "high"))
    se = (hi - lo) / (2 * NormalDist().inv_cdf(0.5 + effect["confidence"] / 2))
    if not (math.isfinite(se) and se > 0):
        return None
    if effect["direction"] == "within":
        m = effect["margin"]
        nearest = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
        return (m - abs(est)) / se, (m - max(abs(lo), abs(hi))) / se, (m - nearest) / se
    sign = -1.0 if effect["direction"] == "lower" else 1.0
    a, b = sorted((sign * lo / se, sign * hi / se))
    return sign * est / se, a, b


def rows(tally: dict) -> list[dict]:
    """The plot's rows, top to bottom: a {"chapter"} header before each chapter's claims, then one {"claim",
    "verdict", "label", "scaled"} per claim, in the tally's order."""
    out, chapter = [], None
    for c in tally.get("claims", []):
        if c["chapter"] != chapter:
            chapter = c["chapter"]
            out.append({"chapter": chapter})
        out.append({"claim": c["claim"], "verdict": c["verdict"], "scaled": scaled(c.get("effect")),
                    "label": textwrap.fill(c["claim"], LABEL_CHARS)})
    return out


def forest_plot(tally: dict):
    """The forest plot of a tally (gvcf.book.render.tally): one row per claim, grouped by chapter, coloured by
    verdict; claims not checked (or without an interval) greyed, without a bar."""
    import matplotlib.pyplot as plt

    table = rows(tally)
    heights = [1 + r["label"].count("\n") if "label" in r else 1.3 for r in table]
    fig, ax = plt.subplots(figsize=(11, 1.2 + ROW_INCHES * sum(heights)), layout="constrained")
    y, ticks, labels, colours = 0.0, [], [], []
    for r, h in zip(table, heights):
        y -= h / 2
        if "chapter" in r:
            ax.text(-Z_LIMIT, y, r["chapter"].replace("_", " "), weight="bold", va="center", ha="left", fontsize=8.5)
            ax.axhline(y + h / 2, color="#dddddd", lw=0.6)
        else:
            ticks.append(y)
            labels.append(r["label"])
            s = r["scaled"]
            colour = VERDICT_COLOURS.get(r["verdict"], UNCHECKED_COLOUR) if s else UNCHECKED_COLOUR
            colours.append(colour)
            if s is None:
                ax.text(0.3, y, r["verdict"] if r["verdict"] == "not checked" else "no interval", color=colour,
                        va="center", fontsize=7, style="italic")
            else:
                z, lo, hi = (max(-Z_LIMIT, min(Z_LIMIT, v)) for v in s)
                ax.plot([lo, hi], [y, y], color=colour, lw=2, solid_capstyle="butt", gid=BAR_GID)
                ax.plot([z], [y], "o", color=colour, ms=4)
                for edge, value in ((lo, s[1]), (hi, s[2]), (z, s[0])):
                    if abs(value) > Z_LIMIT:
                        ax.plot([edge], [y], ">" if value > 0 else "<", color=colour, ms=5)
                if abs(s[0]) > Z_LIMIT:
                    ax.text(math.copysign(Z_LIMIT - 0.6, s[0]), y, f"z = {s[0]:.3g} [{s[1]:.3g}, {s[2]:.3g}]",
                            color=colour, fontsize=6.5, ha="right" if s[0] > 0 else "left", va="center")
        y -= h / 2
    ax.set_yticks(ticks, labels, fontsize=7)
    for tick, colour in zip(ax.get_yticklabels(), colours):
        tick.set_color(colour)
    ax.set_ylim(y - 0.3, 0.3)
    ax.set_xlim(-Z_LIMIT - 0.5, Z_LIMIT + 0.5)
    ax.axvline(0, color="black", lw=0.8)
    for z in (-1.96, 1.96):
        ax.axvline(z, color="black", lw=0.6, ls=":")
    ax.set_xlabel(AXIS_LABEL, fontsize=8)
    ax.xaxis.set_label_position("top")
    ax.tick_params(axis="x", labelsize=7, labeltop=True, top=True)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=c, lw=2, marker="o", ms=4, label=v) for v, c in VERDICT_COLOURS.items()]
    handles.append(Line2D([], [], color=UNCHECKED_COLOUR, lw=0, label="not checked (no bar)"))
    fig.legend(handles=handles, fontsize=7.5, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig


FOREST_DPI = 110            # ~1200 px wide: legible at the book's width, labels at 7 pt


def forest_png(tally: dict, dpi: int = FOREST_DPI) -> bytes:
    """The forest plot of a tally as PNG bytes (the runner writes them to book/figures/claims_forest.png)."""
    import io

    import matplotlib.pyplot as plt

    fig = forest_plot(tally)
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    finally:
        plt.close(fig)
