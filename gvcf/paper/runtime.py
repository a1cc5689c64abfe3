"""Table 3: seconds per panorama per method, beside the paper's."""
from __future__ import annotations

import math

import pandas as pd

from .experiments import Setup, _positive_int
from .methods import NOT_REPRODUCED, RUNTIME_NAMES
from .tables import _lookup, _num, _value, paper_table

# ============================================================================ runtime (Table 3)



def runtime(S: Setup, prompt: str, repeats: int = 1, methods=("md", "sync", "gf", "vcf", "gvcf")) -> pd.DataFrame:
    """Seconds per panorama (mean and std over `repeats`, after a warm-up) per method with the paper's sampler, by
    gvcf.eval.bench.runtime_table on this chapter's canvas; also scaled linearly to the paper's step counts (DDIM 50,
    DDPM 1000). Hardware in df.attrs (device name, torch version, dtype, threads)."""
    from ..eval.bench import runtime_table

    repeats = _positive_int(repeats, "repeats")
    df = runtime_table(S.model, methods=list(methods), repeats=repeats, steps=S.steps_for("ddim"),
                       ddpm_steps=S.steps_for("ddpm"), height=S.height, width=S.width, stride=S.stride, prompt=prompt)
    out = pd.DataFrame(dict(
        sampler=df["sampler"].str.upper(), method=df["method"].map(RUNTIME_NAMES), steps=df["steps"],
        repeats=df["repeats"],
        runtime_mean_s=df["mean_s"], runtime_std_s=df["std_s"], paper_steps=df["reported_steps"],
        scaled_mean_s=df["reported_mean_s"], scaled_std_s=df["reported_std_s"]))
    out.attrs.update(df.attrs)
    return out


def runtime_comparison(ours: pd.DataFrame) -> pd.DataFrame:
    """Table 3 for display: the paper's rows (plus ours not in it), our seconds per panorama as run and scaled to the
    paper's step counts, the paper's, and both relative to MD (the comparable part across machines)."""
    paper = paper_table("table3")
    keys = list(zip(paper["sampler"], paper["method"]))
    keys += [k for k in zip(ours["sampler"], ours["method"]) if k not in keys]
    md_o = _value(ours, "scaled_mean_s", method="MD")
    md_p = _value(paper, "runtime_mean_s", method="MD")
    def fmt(m, s, runs=2):
        if math.isnan(m):
            return "n/a"
        return f"{m:.2f} ± {s:.2f}" if runs > 1 else f"{m:.2f} (1 run)"

    rows = []
    for sampler, name in keys:
        o = _lookup(ours, sampler=sampler, method=name)
        p = _lookup(paper, sampler=sampler, method=name)
        om = _num(o["runtime_mean_s"].iloc[0]) if len(o) else math.nan
        osd = _num(o["runtime_std_s"].iloc[0]) if len(o) else math.nan
        sm = _num(o["scaled_mean_s"].iloc[0]) if len(o) else math.nan
        ssd = _num(o["scaled_std_s"].iloc[0]) if len(o) else math.nan
        runs = int(o["repeats"].iloc[0]) if len(o) and "repeats" in o else 2
        pm = _num(p["runtime_mean_s"].iloc[0]) if len(p) else math.nan
        psd = _num(p["runtime_std_s"].iloc[0]) if len(p) else math.nan
        rows.append({"sampler": sampler, "method": name,
                     "steps (ours)": int(o["steps"].iloc[0]) if len(o) else "n/a",
                     "ours, s": fmt(om, osd, runs) if len(o) else NOT_REPRODUCED,
                     "ours at the paper's steps, s": fmt(sm, ssd, runs) if len(o) else "n/a",
                     "paper, s": fmt(pm, psd),
                     "ours ÷ MD": "n/a" if math.isnan(sm / md_o) else f"{sm / md_o:.1f}",
                     "paper ÷ MD": "n/a" if math.isnan(pm / md_p) else f"{pm / md_p:.1f}"})
    return pd.DataFrame(rows)


def hardware_text(attrs: dict) -> str:
    a = attrs
    return (f"{a.get('device_name', '?')} ({a.get('device', '?')}, {a.get('cpu_threads', '?')} CPU threads), "
            f"torch {a.get('torch', '?')}, diffusers {a.get('diffusers', '?')}, {a.get('dtype', '?')}")

