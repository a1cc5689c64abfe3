"""The forest plot of the claims: scaling, orientation, rows and colours on a hand-made tally."""
import math

import matplotlib
import pytest

matplotlib.use("Agg")

from gvcf.book import forest  # noqa: E402
from gvcf.paper.claims import effect_record  # noqa: E402


def _effect(est, lo, hi, direction="lower", null=0.0, log=False, margin=0.0):
    return {"kind": "ratio" if log else "difference", "metric": "m", "direction": direction, "estimate": est,
            "low": lo, "high": hi, "confidence": 0.95, "n": 6, "unit": "panoramas", "null": null, "log": log,
            "margin": margin}


def _tally():
    return {"claims": [
        {"chapter": "02_a", "claim": "A lower", "verdict": "holds", "effect": _effect(-2.0, -3.96, -0.04)},
        {"chapter": "02_a", "claim": "B not checked", "verdict": "not checked", "effect": None},
        {"chapter": "03_b", "claim": "C higher", "verdict": "reversed", "effect": _effect(-2.0, -3.96, -0.04, "higher")},
        {"chapter": "03_b", "claim": "D ratio", "verdict": "inconclusive",
         "effect": _effect(6.0, 2.0, 18.0, "higher", null=3.0, log=True)},
    ]}


def test_scaled_known_interval_and_orientation():
    # half-width 1.96 -> SE 1 (to float rounding of the 97.5% normal quantile)
    z, lo, hi = forest.scaled(_effect(-2.0, -3.96, -0.04, "lower"))
    assert (z, lo, hi) == pytest.approx((2.0, 0.04, 3.96), rel=1e-4)       # lower is the paper's side: flipped
    z, lo, hi = forest.scaled(_effect(-2.0, -3.96, -0.04, "higher"))
    assert (z, lo, hi) == pytest.approx((-2.0, -3.96, -0.04), rel=1e-4)


def test_scaled_ratio_on_log_scale_and_within():
    se = (math.log(18) - math.log(2)) / 3.919928
    z, lo, hi = forest.scaled(_effect(6.0, 2.0, 18.0, "higher", null=3.0, log=True))
    assert z == pytest.approx(math.log(2) / se, rel=1e-5)
    assert lo == pytest.approx(math.log(2 / 3) / se, rel=1e-5) and hi == pytest.approx(math.log(6) / se, rel=1e-5)
    se = 1.92 / 3.919928                         # within: (margin - |effect|) / SE, positive inside the margin
    z, lo, hi = forest.scaled(_effect(0.5, -0.46, 1.46, "within", margin=2.0))
    assert (z, lo, hi) == pytest.approx((1.5 / se, 0.54 / se, 2.0 / se), rel=1e-5)
    assert forest.scaled(None) is None and forest.scaled(_effect(1.0, 1.0, 1.0)) is None


def test_rows_grouped_in_order_and_coloured_by_verdict():
    t = _tally()
    rs = forest.rows(t)
    assert [r.get("chapter") or r["claim"] for r in rs] == ["02_a", "A lower", "B not checked", "03_b", "C higher",
                                                            "D ratio"]
    fig = forest.forest_plot(t)
    ax = fig.axes[0]
    labels = ax.get_yticklabels()
    assert [tick.get_text() for tick in labels] == ["A lower", "B not checked", "C higher", "D ratio"]
    colours = [matplotlib.colors.to_hex(tick.get_color()) for tick in labels]
    assert colours == [forest.VERDICT_COLOURS["holds"], forest.UNCHECKED_COLOUR, forest.VERDICT_COLOURS["reversed"],
                       forest.VERDICT_COLOURS["inconclusive"]]
    # top to bottom: tick positions fall; the bars: one per claim with an interval (3), none for the unchecked one
    assert all(a > b for a, b in zip(ax.get_yticks(), ax.get_yticks()[1:]))
    bars = [ln for ln in ax.get_lines() if ln.get_gid() == forest.BAR_GID]
    assert len(bars) == 3
    assert list(bars[0].get_xdata()) == pytest.approx([0.04, 3.96], rel=1e-4)      # A: flipped, on the right
    assert list(bars[1].get_xdata()) == pytest.approx([-3.96, -0.04], rel=1e-4)    # C: reversed, on the left
    assert [b.get_ydata()[0] for b in bars] == pytest.approx([ax.get_yticks()[i] for i in (0, 2, 3)])
    assert "standard error" in ax.get_xlabel()


def test_effect_record_reads_a_claim_line():
    rec = effect_record("GF shows weaker seams than MD at stride 1/4 of a view",
                        "this run: difference -0.0818 [-0.104, -0.0622] (95% expanded percentile CI, n = 6 panoramas)"
                        "; paper: MD shows seams at every stride, GF much weaker ones")
    assert rec["estimate"] == -0.0818 and (rec["low"], rec["high"], rec["n"]) == (-0.104, -0.0622, 6)
    assert rec["direction"] == "lower" and rec["null"] == 0.0 and not rec["log"] and rec["metric"] == "seam_score"
    assert effect_record("GF shows weaker seams than MD at stride 1/4 of a view", "n = 1: an interval needs") is None
    assert effect_record("no such claim", "this run: difference 1 [0, 2] (95% x CI, n = 6 panoramas)") is None
