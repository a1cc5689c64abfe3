"""The paper's claims, checked on this run's tables."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .constants import PAPER_VIEW
from .experiments import ssim_pairs
from .tables import LOWER_IS_BETTER, SHORT_LABELS, _lookup, _num, _value, fraction_label, paper_table

# ============================================================================ the paper's claims

@dataclass(frozen=True)
class Claim:
    """A statement of the paper, checked on this run: holds True / False, or None when it cannot be checked."""

    text: str
    holds: bool | None
    ours: str = ""
    paper: str = ""

    def markdown(self) -> str:
        verdict = {True: "**holds**", False: "**does not hold**", None: "**not checked**"}[self.holds]
        detail = "; ".join(s for s in (f"this run: {self.ours}" if self.ours else "",
                                      f"paper: {self.paper}" if self.paper else "") if s)
        return f"- {self.text}: {verdict}" + (f" ({detail})" if detail else "")


def _better(a, b, lower: bool) -> bool | None:
    a, b = _num(a), _num(b)
    if math.isnan(a) or math.isnan(b):
        return None
    return bool(a < b) if lower else bool(a > b)


def _pair_claim(text, a, b, lower, pa=None, pb=None, digits: int | str = 2) -> Claim:
    spec = digits if isinstance(digits, str) else f".{digits}f"
    fmt = lambda v: "n/a" if math.isnan(_num(v)) else format(_num(v), spec)  # noqa: E731
    return Claim(text, _better(a, b, lower), f"{fmt(a)} vs {fmt(b)}",
                 f"{fmt(pa)} vs {fmt(pb)}" if pa is not None else "")


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~np.isnan(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return math.nan
    return float(np.polyfit(x[ok], y[ok], 1)[0])


def _table1(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Table 1: GF against MD at each stride, FID against the stride, CLIP."""
    out: list[Claim] = []
    paper = paper_table("table1")
    ours = ours.copy()
    ours["frac"] = ours["stride_fraction"] if "stride_fraction" in ours else ours["stride"] / native
    for frac in sorted(ours["frac"].unique()):
        px = int(_value(ours, "stride", frac=frac)) if "stride" in ours else round(frac * native)
        pstride = round(frac * PAPER_VIEW)
        for col in ("fid", "kid_e3", "giqa_qs", "giqa_ds"):
            lower = LOWER_IS_BETTER[col]
            op = "<" if lower else ">"
            out.append(_pair_claim(
                f"GF {op} MD in {SHORT_LABELS[col]} at stride {fraction_label(frac)} "
                f"(paper {pstride} px, here {px} px)",
                _value(ours, col, frac=frac, fusion="GF"), _value(ours, col, frac=frac, fusion="MD"), lower,
                _value(paper, col, stride=pstride, fusion="GF"), _value(paper, col, stride=pstride, fusion="MD"),
                digits=".4g" if col.startswith("giqa") else 2))
    fracs = sorted(ours["frac"].unique())
    if len(fracs) >= 2:
        for fusion in ("MD", "GF"):
            vals = [_value(ours, "fid", frac=f, fusion=fusion) for f in fracs]
            pvals = [_value(paper, "fid", stride=round(f * PAPER_VIEW), fusion=fusion) for f in fracs]
            holds = None if any(math.isnan(v) for v in vals) else all(a > b for a, b in zip(vals, vals[1:]))
            out.append(Claim(f"{fusion}'s FID falls as the stride grows ({' → '.join(map(fraction_label, fracs))} "
                             f"of a view)", holds, " → ".join(f"{v:.2f}" for v in vals),
                             " → ".join("n/a" if math.isnan(v) else f"{v:.2f}" for v in pvals)))
    clip_md = [_value(ours, "clip", frac=f, fusion="MD") for f in fracs]
    clip_gf = [_value(ours, "clip", frac=f, fusion="GF") for f in fracs]
    pairs = [(a, b) for a, b in zip(clip_md, clip_gf) if not (math.isnan(a) or math.isnan(b))]
    out.append(Claim("MD has the better CLIP score (the paper: at 2 of its 3 strides)",
                     None if not pairs else sum(a > b for a, b in pairs) * 2 > len(pairs),
                     "CLIP n/a (no CLIP weights)" if not pairs else
                     f"MD ahead at {sum(a > b for a, b in pairs)} of {len(pairs)} strides", "MD ahead at 2 of 3"))
    return out


def _table2(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Table 2: VCF against the DDIM methods, GF and Style Alignment, the best method."""
    out: list[Claim] = []
    paper = paper_table("table2")
    g = lambda name, col="fid", df=ours: _value(df, col, method=name)  # noqa: E731
    ddim = [m for m in ("MD", "Sync", "GF", "MD+SA0.4", "GF+SA0.4")]
    best_ddim = np.nanmin([g(m) for m in ddim]) if any(not math.isnan(g(m)) for m in ddim) else math.nan
    pbest_ddim = min(g(m, df=paper) for m in ddim)
    out.append(_pair_claim("VCF (DDPM) has a lower FID than every DDIM method", g("VCF"), best_ddim, True,
                           g("VCF", df=paper), pbest_ddim))
    for a, b in (("VCF+GF", "VCF"), ("GF", "MD")):
        for col in ("fid", "kid_e3"):
            out.append(_pair_claim(f"{a} < {b} in {SHORT_LABELS[col]}", g(a, col), g(b, col), True,
                                   g(a, col, paper), g(b, col, paper)))
    for base in ("MD", "GF", "VCF", "VCF+GF"):
        out.append(_pair_claim(f"Style Alignment (alpha 0.4) lowers the FID of {base}", g(f"{base}+SA0.4"),
                               g(base), True, g(f"{base}+SA0.4", df=paper), g(base, df=paper)))
    out.append(_pair_claim("Sync < MD in FID (nearly equal in the paper)", g("Sync"), g("MD"), True,
                           g("Sync", df=paper), g("MD", df=paper)))
    reproduced = [m for m in ours["method"] if m in set(paper["method"]) and not math.isnan(g(m))]
    if reproduced:
        best = min(reproduced, key=g)
        out.append(Claim("VCF+GF+SA0.4 has the best FID of all methods", best == "VCF+GF+SA0.4",
                         f"best: {best} ({g(best):.2f})", "best: VCF+GF+SA0.4 (4.02)"))
    if "DDPM+MD" in set(ours["method"]):
        out.append(_pair_claim("DDPM with plain averaging (not in the paper's table: blurred) is worse in FID "
                               "than DDPM with VCF", g("VCF"), g("DDPM+MD"), True))
    return out


def _table3(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Table 3: runtime ratios to MD."""
    out: list[Claim] = []
    paper = paper_table("table3")
    col = "scaled_mean_s" if "scaled_mean_s" in ours else "runtime_mean_s"
    t = lambda m, df=ours, c=col: _value(df, c, method=m)  # noqa: E731
    p = lambda m: _value(paper, "runtime_mean_s", method=m)  # noqa: E731

    def ratio_claim(text, a, b, test):
        r, pr = t(a) / t(b), p(a) / p(b)
        return Claim(text, None if math.isnan(r) else bool(test(r)), f"{r:.1f}x", f"{pr:.1f}x")

    out.append(ratio_claim("SyncDiffusion is about 10x slower than MD (DDIM)", "Sync", "MD", lambda r: r > 3))
    out.append(ratio_claim("GF costs the same as MD (within 15 %)", "GF", "MD", lambda r: abs(r - 1) <= 0.15))
    out.append(ratio_claim("VCF with DDPM (1000 steps) is about 20x slower than MD with DDIM (50 steps)", "VCF",
                           "MD", lambda r: r > 5))
    if "VCF+GF" in set(ours["method"]):
        out.append(Claim("GVCF costs the same as VCF (within 15 %)",
                         None if math.isnan(t("VCF+GF") / t("VCF")) else abs(t("VCF+GF") / t("VCF") - 1) <= 0.15,
                         f"{t('VCF+GF') / t('VCF'):.2f}x", "not in the paper's table"))
    return out


def _table4(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Table 4: SSIM between SyncDiffusion, Style Alignment and MD."""
    out: list[Claim] = []
    pairs = ssim_pairs(ours) if "row" not in ours else ours
    paper = paper_table("table4")
    def s(a, b, df=pairs):
        rows = pd.concat([_lookup(df, row=a, col=b), _lookup(df, row=b, col=a)])
        return _num(rows["ssim"].iloc[0]) if len(rows) else math.nan

    sa = next((n for n in set(pairs["row"]) | set(pairs["col"]) if n.startswith("MD+SA")), "MD+SA0.1")
    out.append(_pair_claim(f"SA and SyncDiffusion are more alike than SyncDiffusion and MD: SSIM(Sync, {sa}) > "
                           "SSIM(Sync, MD)", s("Sync", sa), s("Sync", "MD"), False,
                           s("Sync", "MD+SA0.1", paper), s("Sync", "MD", paper)))
    out.append(_pair_claim(f"SSIM(Sync, {sa}) > SSIM({sa}, MD)", s("Sync", sa), s(sa, "MD"), False,
                           s("Sync", "MD+SA0.1", paper), s("MD+SA0.1", "MD", paper)))
    return out


def _fig5(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Fig. 5: FID and GIQA-DS against alpha, GF against MD."""
    out: list[Claim] = []
    for name in dict.fromkeys(ours["method"]):
        d = ours[ours["method"] == name].sort_values("alpha")
        for col, word in (("fid", "quality improves: FID falls"), ("giqa_ds", "diversity drops: GIQA-DS falls")):
            slope = _slope(d["alpha"], d[col])
            out.append(Claim(f"{name}: as alpha grows, {word}", None if math.isnan(slope) else slope < 0,
                             f"slope {slope:+.3g} per unit alpha; {d[col].iloc[0]:.3g} at alpha "
                             f"{d['alpha'].iloc[0]:g} → {d[col].iloc[-1]:.3g} at {d['alpha'].iloc[-1]:g}",
                             "trend shown in Fig. 5"))
    if {"MD", "GF"} <= set(ours["method"]):
        for col, lower in (("fid", True), ("giqa_ds", False)):
            alphas = sorted(set(ours["alpha"]))
            wins = [_better(_value(ours, col, method="GF", alpha=a), _value(ours, col, method="MD", alpha=a), lower)
                    for a in alphas]
            known = [w for w in wins if w is not None]
            out.append(Claim(f"GF beats MD in {SHORT_LABELS[col]} at every alpha",
                             None if not known else all(known), f"GF better at {sum(known)} of {len(known)} alphas",
                             "at every alpha"))
    return out


def _seams(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Fig. 4: seam scores of GF and MD at each stride."""
    out: list[Claim] = []
    for stride in sorted(set(ours["stride"])):
        out.append(_pair_claim(f"GF shows weaker seams than MD at stride {stride} px"
                               + (f" ({fraction_label(stride / native)} of a view)" if native else ""),
                               _value(ours, "seam_score", stride=stride, method="GF"),
                               _value(ours, "seam_score", stride=stride, method="MD"), True, digits=".4g"))
    md = ours[ours["method"] == "MD"].sort_values("stride")
    if len(md) >= 3 and native:
        lo = md.loc[md["seam_score"].idxmin(), "stride"]
        hi = md.loc[md["seam_score"].idxmax(), "stride"]
        out.append(Claim("MD's seams are least visible at the smallest stride (the paper's 64 px) and most at 1/2 "
                         "of a view (256 px)", bool(lo == md["stride"].min() and hi == round(native / 2)),
                         f"least at {lo} px, most at {hi} px", "least at 64, most at 256"))
    return out


def _variance(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Eq. 11-14: the fused DDPM noise's variance in the overlaps."""
    out: list[Claim] = []
    r = ours.groupby("method")["ratio"].mean()
    for m in ("vcf", "gvcf"):
        if m in r:
            out.append(Claim(f"{m.upper()} keeps the sampler's variance in the overlaps (Eq. 13-14)",
                             bool(abs(r[m] - 1) < 0.1), f"variance / sigma_t^2 = {r[m]:.2f}", "1 by construction"))
    if "md" in r:
        out.append(Claim("Averaging (MD) shrinks the variance where two views overlap to about sigma_t^2 / 2 "
                         "(Eq. 11)", bool(r["md"] < 0.8), f"{r['md']:.2f}", "1/2"))
    return out


def _fig3(ours: pd.DataFrame, native: int | None) -> list[Claim]:
    """Fig. 3: sharpness of DDPM with averaging against VCF and DDIM."""
    out: list[Claim] = []
    g = lambda name: _value(ours, "sharpness", method=name)  # noqa: E731
    out.append(_pair_claim("DDPM with plain averaging is blurred: less sharp than DDPM with VCF", g("DDPM+MD"),
                           g("VCF"), True))
    out.append(_pair_claim("DDPM with plain averaging is less sharp than DDIM with averaging", g("DDPM+MD"),
                           g("MD"), True))
    return out


CLAIMS = {  # a chapter's kind of result -> the function that checks the paper's claims on it
    "table1": _table1,
    "table2": _table2,
    "table3": _table3,
    "table4": _table4,
    "fig5": _fig5,
    "seams": _seams,
    "variance": _variance,
    "fig3": _fig3,
}


def claims(kind: str, ours: pd.DataFrame, native: int | None = None) -> list[Claim]:
    """The paper's statements about a table or figure, checked on this run's numbers.

    kind: 'table1' (ours: stride, fusion, metrics; native for the strides), 'table2' (method, metrics), 'table3'
    (method, runtime_mean_s, scaled_mean_s), 'table4' (an SSIM matrix or row/col/ssim rows), 'fig5' (alpha,
    method, fid, giqa_ds), 'seams' (stride, method, seam_score), 'variance' (method, ratio), 'fig3' (method,
    sharpness)."""
    if kind not in CLAIMS:
        raise ValueError(f"unknown kind {kind!r}: one of {sorted(CLAIMS)}")
    return CLAIMS[kind](ours, native)


def claims_text(kind: str, ours: pd.DataFrame, native: int | None = None, title: str | None = None) -> str:
    """The checked claims as a markdown list (for IPython.display.Markdown), with a count of those that hold."""
    found = claims(kind, ours, native)
    checked = [c for c in found if c.holds is not None]
    head = (f"**{title}** " if title else "") + (f"{sum(c.holds for c in checked)} of {len(checked)} checked "
                                                 f"claims hold in this run.") + \
        (" Each verdict compares two point estimates, without an interval: read it as this run's ordering, not as a "
         "significant difference.")
    return head + "\n\n" + "\n".join(c.markdown() for c in found)

