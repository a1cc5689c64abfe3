"""The paper's tables (data/paper/*.csv) beside ours: lookup, comparison and display formats."""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .constants import PAPER_VIEW
from .methods import NOT_REPRODUCED

ROOT = Path(__file__).resolve().parents[2]
PAPER_DIR = ROOT / "data" / "paper"
METRICS = ("fid", "kid_e3", "giqa_qs", "giqa_ds", "clip")
METRIC_LABELS = {"fid": "FID↓", "kid_e3": "KID↓ (×10⁻³)", "giqa_qs": "GIQA-QS↑", "giqa_ds": "GIQA-DS↑",
                 "clip": "CLIP↑", "intra_lpips": "Intra-LPIPS↓", "intra_style": "Intra-Style-L↓"}
SHORT_LABELS = {"fid": "FID", "kid_e3": "KID", "giqa_qs": "GIQA-QS", "giqa_ds": "GIQA-DS", "clip": "CLIP",
                "intra_lpips": "Intra-LPIPS", "intra_style": "Intra-Style-L"}
LOWER_IS_BETTER = {"fid": True, "kid_e3": True, "giqa_qs": False, "giqa_ds": False, "clip": False,
                   "intra_lpips": True, "intra_style": True}


def fraction_label(fraction: float) -> str:
    """0.75 -> '3/4' (strides as fractions of a view)."""
    from fractions import Fraction

    f = Fraction(fraction).limit_denominator(64)
    return f"{f.numerator}/{f.denominator}" if f.denominator != 1 else str(f.numerator)


# ============================================================================ the paper's tables

_KEYS = {"table1": ["stride", "fusion"], "table2": ["sampler", "method"], "table3": ["sampler", "method"],
         "table4": ["row", "col"]}


@lru_cache(maxsize=None)
def _paper_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / f"{name}.csv", dtype={"stride": int})


def paper_table(name: str) -> pd.DataFrame:
    """The paper's Table 1-4 as transcribed in data/paper/<name>.csv (numbers as floats)."""
    if name not in _KEYS:
        raise ValueError(f"table must be one of {sorted(_KEYS)}, got {name!r}")
    return _paper_csv(name).copy()


def _value_columns(name: str) -> list[str]:
    return {"table1": list(METRICS), "table2": list(METRICS), "table3": ["runtime_mean_s", "runtime_std_s"],
            "table4": ["ssim"]}[name]


def compare_with_paper(ours: pd.DataFrame, table: str, native: int | None = None) -> pd.DataFrame:
    """This run's numbers beside the paper's, one row per paper row (ours n/a where not reproduced) plus our extra
    rows; columns (quantity, 'ours' | 'paper'). Table 1 rows are matched by stride as a fraction of the view
    (ours needs `stride` and `native`, or `stride_fraction`); Tables 2-3 by (sampler, method); Table 4 by (row, col).
    """
    paper = paper_table(table)
    keys = _KEYS[table]
    ours = ours.copy()
    if table == "table1":
        if "stride_fraction" not in ours:
            if native is None:
                raise ValueError("table1: give native (the view size) or a stride_fraction column")
            ours["stride_fraction"] = ours["stride"] / native
        paper["stride_fraction"] = paper["stride"] / PAPER_VIEW
        paper = paper.rename(columns={"stride": "paper_stride"})
        ours = ours.rename(columns={"stride": "our_stride"})
        keys = ["stride_fraction", "fusion"]
    missing = [k for k in keys if k not in ours]
    if missing:
        raise ValueError(f"{table}: our table lacks the key column(s) {missing}")
    values = [c for c in _value_columns(table) if c in ours or c in paper]
    for c in values:
        ours[c] = pd.to_numeric(ours[c], errors="coerce") if c in ours else np.nan
    ours_k = ours.set_index(keys)
    paper_k = paper.set_index(keys)
    index = list(paper_k.index) + [k for k in ours_k.index if k not in paper_k.index]
    rows = []
    for key in index:
        o = ours_k.loc[key] if key in ours_k.index else None
        p = paper_k.loc[key] if key in paper_k.index else None
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        if table == "table1":
            frac = row.pop("stride_fraction")
            row = {"stride (view)": fraction_label(frac),
                   "stride (paper, px)": int(p["paper_stride"]) if p is not None else round(frac * PAPER_VIEW),
                   "stride (ours, px)": int(o["our_stride"]) if o is not None and "our_stride" in o else
                   (round(frac * native) if native else np.nan)} | row
        for c in values:
            row[(c, "ours")] = float(o[c]) if o is not None and c in o and pd.notna(o[c]) else np.nan
            row[(c, "paper")] = float(p[c]) if p is not None and c in p else np.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    label_cols = [c for c in df.columns if not isinstance(c, tuple)]
    value_cols = [c for c in df.columns if isinstance(c, tuple)]
    df.columns = pd.MultiIndex.from_tuples([(c, "") for c in label_cols] + value_cols)
    return df


GIQA_FORMAT = {"giqa_qs": ".4g", "giqa_ds": ".4g"}   # GIQA's scale depends on K: significant digits, not decimals


# a printed line on a chapter's page: jupyter-book's code output box shows about 80 characters in a 1300 px wide
# window (measured in headless Chromium), so every line the chapters print (describe(), metric notes, hardware lines,
# text tables) is wrapped to this width and none scrolls sideways
LINE_WIDTH = 78
CONTINUATION = "    "   # the indent of a wrapped line's continuation


def wrap(text: str, width: int = LINE_WIDTH) -> str:
    """Every line of `text` wrapped at spaces to at most `width` characters (continuations indented); lines already
    short enough, and blank lines, stay as they are."""
    import textwrap

    out = []
    for line in str(text).split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, width, subsequent_indent=indent + CONTINUATION, break_long_words=True,
                             break_on_hyphens=False)
    return "\n".join(out)


def text_table(df: pd.DataFrame) -> str:
    """A table as a chapter prints it: no index column, columns with no value in any row left out, and split into
    blocks of columns LINE_WIDTH characters wide (pandas' line_width) only when it is wider than that."""
    shown = df[[c for c in df.columns if df[c].astype(str).str.strip().ne("").any()]]
    text = shown.to_string(index=False)
    if max(map(len, text.splitlines())) <= LINE_WIDTH:
        return text
    return shown.to_string(index=False, line_width=LINE_WIDTH)


def page_table(df: pd.DataFrame, digits: int | str | dict | None = 2):
    """A table as a chapter's page shows it: format_table's text (digits as there; None: the values as they are)
    without pandas' integer index column (a Styler with the index hidden; its HTML is the page's table)."""
    shown = df.copy() if digits is None else format_table(df, digits)
    return shown.style.hide(axis="index").set_table_attributes('class="dataframe"')   # styled as pandas' own


def format_table(df: pd.DataFrame, digits: int | str | dict = 2) -> pd.DataFrame:
    """Numbers as text with `digits` decimals, or a format spec such as '.4g' (one for all, or per column name),
    NaN/None as 'n/a' (e.g. CLIP)."""
    out = df.copy().astype(object)
    for col in df.columns:
        name = col[0] if isinstance(col, tuple) else col
        d = digits.get(name, 2) if isinstance(digits, dict) else digits
        if pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            spec = d if isinstance(d, str) else f".{d}f"
            out[col] = [("n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else
                         (format(v, spec) if isinstance(v, (float, np.floating)) else str(v))) for v in df[col]]
        else:
            out[col] = ["n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in df[col]]
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = pd.MultiIndex.from_tuples(
            [(column_label(a), b) for a, b in out.columns])
    else:
        out.columns = [column_label(c) for c in out.columns]
    return out


def column_label(column) -> str:
    """A metric's label for a table's column: 'intra_lpips' -> 'Intra-LPIPS↓', and a statistic of it such as
    standard_errors' 'intra_lpips SE' or 'kid_e3 low' -> 'Intra-LPIPS SE', 'KID low'; other names as they are."""
    metric, _, stat = str(column).rpartition(" ")
    if column in METRIC_LABELS or metric not in SHORT_LABELS:
        return METRIC_LABELS.get(column, column)
    return f"{SHORT_LABELS[metric]} {stat}"


def _num(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def _lookup(df: pd.DataFrame, **where):
    mask = np.ones(len(df), dtype=bool)
    for k, v in where.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def _value(df, col, **where) -> float:
    rows = _lookup(df, **where) if len(df) else df
    return _num(rows[col].iloc[0]) if len(rows) and col in rows else math.nan




def metric_notes(ours: pd.DataFrame) -> str:
    """What a metric table rests on: tiles per set, reference views, GIQA's K, CLIP's absence, methods not run."""
    from ..eval.metrics import CLIP_UNAVAILABLE

    missing = ours["n_tiles"].isna() if "n_tiles" in ours else pd.Series(True, index=ours.index)
    done = ours[~missing]
    lines = [CLIP_UNAVAILABLE] if "clip" in ours and ours["clip"].isna().all() else []
    if len(done):
        first = done.iloc[0]
        lines.append(f"{int(first['n_tiles'])} tiles per set, {int(first['n_reference'])} reference views, "
                     f"GIQA K = {int(first['giqa_k'])}")
        lines.append("FID is biased upwards at small n (by a term that falls as 1 / n; Chong & Forsyth 2020): "
                     "compare FIDs of sets of equal size only, as the claims below do (paired panoramas, the same n "
                     "a side). KID is unbiased, and noisy at this n: a negative KID is its noise around 0. This table's KID "
                     "is clean-fid's (the mean over random subsets, as the paper's); the claims use the all-pairs "
                     "estimate (gvcf.eval.results.mmd2), equal to it in expectation, so the two differ by noise.")
    if missing.any():
        lines.append(f"{NOT_REPRODUCED}: " + ", ".join(ours.loc[missing, "method"]))
    return wrap("\n".join(lines))
