"""The paper's methods as data: name -> the engine's fusion, sampler, Style Alignment strength and SyncDiffusion."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from ..engine.fusion import FUSIONS
from ..engine.samplers import SAMPLER_RECORDS
from .constants import TABLE2_METHODS

NOT_REPRODUCED = "not reproduced yet"


@dataclass(frozen=True)
class Method:
    """One of the paper's methods: its name, and the engine's fusion, sampler and Style Alignment strength.
    fusion "elastic": ElasticDiffusion (gvcf.engine.elastic.generate_elastic), which fuses no views; None: not
    reproduced here."""

    name: str
    fusion: str | None
    sampler: str
    alpha: float = 0.0
    sync: bool = False

    @property
    def reproduced(self) -> bool:
        return self.fusion is not None

    @property
    def dataset_method(self) -> str:
        """The DatasetConfig method: 'sync' for SyncDiffusion, else the fusion."""
        return "sync" if self.sync else self.fusion

    @property
    def sampler_label(self) -> str:
        return SAMPLER_LABELS[self.sampler]


SAMPLER_LABELS = {name: r.label for name, r in SAMPLER_RECORDS.items()}   # gvcf.engine.samplers' table


_BASES = {  # set of name parts -> (fusion, the paper's sampler, sync): each fusion by its abbreviation (FUSIONS),
    # the paper's DDPM where it corrects the variance (a stochastic sampler's), else DDIM; VCF+GF is GVCF
    **{frozenset({f.abbreviation}): (key, "ddpm" if f.correct_variance else "ddim", False)
       for key, f in FUSIONS.items()},
    frozenset({"VCF", "GF"}): ("gvcf", "ddpm", False),
    frozenset({"Sync"}): ("md", "ddim", True),
    frozenset({"Elastic"}): ("elastic", "ddim", False),
}
_SA = re.compile(r"SA_?\{?(\d*\.?\d+)\}?")


def method(name: str, sampler: str | None = None) -> Method:
    """The paper's method name -> engine settings: MD and GF with DDIM, VCF (MD + variance correction) and VCF+GF
    with DDPM, +SA<alpha> adds one-shot Style Alignment, Sync is MD + SyncDiffusion. `sampler` overrides the
    paper's (e.g. method("MD", "ddpm"): DDPM with plain averaging, the blurred row of Fig. 3)."""
    parts = [p.strip() for p in str(name).split("+") if p.strip()]
    alpha, bases = 0.0, set()
    for part in parts:
        m = _SA.fullmatch(part)
        if m:
            alpha = float(m.group(1))
        else:
            bases.add(part)
    key = frozenset(bases)
    if key not in _BASES:
        raise ValueError(f"unknown method {name!r}: combine MD, GF, VCF, Sync or Elastic with +SA<alpha> "
                         f"(e.g. 'VCF+GF+SA0.4')")
    fusion, paper_sampler, sync = _BASES[key]
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"{name}: alpha must be in [0, 1], got {alpha}")
    if fusion == "elastic" and alpha:
        raise ValueError(f"{name}: ElasticDiffusion has no Style Alignment (alpha must be 0)")
    return Method(str(name), fusion, sampler or paper_sampler, alpha, sync)


def method_grid(names=TABLE2_METHODS) -> pd.DataFrame:
    """The paper's method names beside the engine settings that reproduce them."""
    rows = []
    for name in names:
        m = method(name)
        rows.append(dict(method=m.name, sampler=m.sampler_label,
                         fusion=m.fusion if m.reproduced else "n/a",
                         weights=FUSIONS[m.fusion].weights if m.fusion in FUSIONS else "n/a",
                         variance_corrected=FUSIONS[m.fusion].correct_variance if m.fusion in FUSIONS else "n/a",
                         alpha=m.alpha, syncdiffusion=m.sync, note="" if m.reproduced else NOT_REPRODUCED))
    return pd.DataFrame(rows)



# Beyond the paper: Table 2's fusions under DPM-Solver++ (issue 19), the ODE 2M and its SDE, where VCF applies
OTHER_SAMPLERS = (Method("MD (DPM++ 2M)", "md", "dpmpp_2m"), Method("GF (DPM++ 2M)", "gf", "dpmpp_2m"),
                  Method("MD (DPM++ SDE)", "md", "dpmpp_2m_sde"), Method("VCF (DPM++ SDE)", "vcf", "dpmpp_2m_sde"),
                  Method("VCF+GF (DPM++ SDE)", "gvcf", "dpmpp_2m_sde"))

# Table 3's rows: the benchmark's method keys (a fusion, or "sync") and the paper's names for them
RUNTIME_NAMES = {"md": "MD", "gf": "GF", "sync": "Sync", "vcf": "VCF", "gvcf": "VCF+GF", "elastic": "Elastic"}
METHOD_SAMPLER = {key: method(name).sampler for key, name in RUNTIME_NAMES.items()}   # md: ddim, vcf: ddpm, ...
