"""The paper's claims (data/paper/claims.yml), checked on a chapter's per-panorama results with gvcf.evidence.

    R = E.results(S, {("GF",): gf_set, ("MD",): md_set}, keys=("method",), reference=ref)
    display(Markdown(claims_text(["Table 2"], R)))      # a tally line, then one line per claim

Each claim states the sign of one effect (KINDS: a difference, a slope, a ratio ...) computed from this run's sets;
check() gives the effect with its bootstrap interval over panoramas (the sets share their seeds, so the panoramas of
seed k are resampled together: a paired design) and one of VERDICTS: holds, reversed, inconclusive, or not checked
(with the reason: no CLIP weights, a set this run did not make, fewer than 2 panoramas). The paper's own value of the
effect comes from its table (data/paper/*.csv) through the same sides, never from a number typed here.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..engine.checks import finite_number
from ..engine.stages import stage
from ..eval import evidence
from ..eval.coherence import COHERENCE_METRICS
from ..eval.metrics import CLIP_UNAVAILABLE
from ..eval.results import SET_METRICS, PanoramaSet, Results
from .constants import PAPER_VIEW
from .tables import LOWER_IS_BETTER, PAPER_DIR, SHORT_LABELS, fraction_label, paper_table

CLAIMS_FILE = PAPER_DIR / "claims.yml"
NOT_CHECKED = "not checked"
VERDICTS = (*evidence.VERDICTS, NOT_CHECKED)
CLAIM_BOOT = 1000          # bootstrap draws per claim: the 2.5% and 97.5% quantiles from 25 draws beyond each
MIN_PANORAMAS = evidence.MIN_ITEMS
# the metrics a claim may name: the set metrics, CLIP, and the per-panorama values the chapters record (seams and
# sharpness, coherence: gvcf.paper.experiments.PER_PANORAMA; SSIM to another method: chapter 5; seconds and ratios
# of the timed runs: gvcf.paper.runtime)
METRICS = frozenset({*SET_METRICS, "clip", "seam_score", "sharpness", *COHERENCE_METRICS, "ssim", "seconds", "ratio"})


# ============================================================================ the claims, as data

@dataclass(frozen=True)
class Claim:
    """One statement of the paper (see data/paper/claims.yml for the fields)."""

    source: str
    text: str
    kind: str
    metric: str
    a: dict
    expect: str
    b: object = None            # a dict, or a tuple of dicts (kind "extreme")
    x: str | None = None
    at: tuple | None = None
    threshold: float | None = None
    margin: float = 0.0
    paper: str | None = None
    note: str = ""

    @property
    def direction(self) -> str:
        """expect with better / worse resolved by the metric's direction (lower, higher or within)."""
        if self.expect in ("better", "worse"):
            lower = LOWER_IS_BETTER[self.metric]
            return "lower" if lower == (self.expect == "better") else "higher"
        return self.expect


def _label(name: str, value) -> str:
    if name == "stride_fraction":
        return fraction_label(float(value))
    if name == "metric":
        return SHORT_LABELS.get(value, value)
    return str(value)


def _fill(template, values: dict):
    """A template with its {name} placeholders filled: a string that is one placeholder becomes the value itself."""
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return tuple(_fill(v, values) for v in template)
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        return template.format(**values) if "{" in template else template
    return template


def _bindings(block) -> list[dict]:
    """A `for` block: a list of {name: value} rows, or {name: [values]} (every combination)."""
    if block is None:
        return [{}]
    if isinstance(block, list) and all(isinstance(row, dict) for row in block):
        return [dict(row) for row in block]
    if not isinstance(block, dict) or not all(isinstance(v, list) for v in block.values()):
        raise ValueError(f"for must be a list of {{name: value}} rows or a {{name: [values]}} mapping, "
                         f"got {block!r:.80}")
    names = list(block)
    return [dict(zip(names, combo)) for combo in itertools.product(*(block[n] for n in names))]


REQUIRED = tuple(name for name, f in Claim.__dataclass_fields__.items() if f.default is dataclasses.MISSING)


def _check_claim(claim: Claim) -> None:
    """ValueError naming the field of a claim (one `for` row filled in) that is not what claims.yml documents."""
    where = f"claim {claim.text!r}"
    if not isinstance(claim.source, str):
        raise ValueError(f"{where}: source must be a string, got {claim.source!r}")
    if claim.kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {sorted(KINDS)}, got {claim.kind!r}")
    if claim.metric not in METRICS:
        raise ValueError(f"{where}: metric must be one of {sorted(METRICS)}, got {claim.metric!r}")
    if claim.expect in ("better", "worse") and claim.metric not in LOWER_IS_BETTER:
        raise ValueError(f"{where}: expect {claim.expect!r} needs a metric with a direction "
                         f"({sorted(LOWER_IS_BETTER)}), got {claim.metric!r}: say lower or higher")
    if claim.direction not in evidence.EXPECT:
        raise ValueError(f"{where}: expect must be one of {evidence.EXPECT} or better / worse, got {claim.expect!r}")
    sides = claim.b if isinstance(claim.b, tuple) else (claim.b,)
    if not isinstance(claim.a, dict) or not all(isinstance(b, dict) for b in sides if b is not None):
        raise ValueError(f"{where}: a and b must be mappings of labels (b: a list of them for extreme), "
                         f"got a={claim.a!r:.60}, b={claim.b!r:.60}")
    if claim.kind in ("difference", "extreme", "all") and claim.b is None:
        raise ValueError(f"{where}: a {claim.kind} claim needs b")
    if claim.kind in ("slope", "all") and not isinstance(claim.x, str):
        raise ValueError(f"{where}: a {claim.kind} claim needs x, the label it runs over, got {claim.x!r}")
    if claim.at is not None:
        for value in claim.at:
            finite_number(value, f"{where}: at")
    if claim.kind in ("ratio", "level") or claim.threshold is not None:
        threshold = finite_number(claim.threshold, f"{where}: threshold")
        if claim.kind == "ratio" and threshold <= 0:   # the effect is log(a / b) - log(threshold)
            raise ValueError(f"{where}: threshold of a ratio must be > 0, got {threshold}")
    finite_number(claim.margin, f"{where}: margin", minimum=0.0)


def parse_claims(entries: list[dict]) -> list[Claim]:
    """The claims of a claims.yml list, every `for` row expanded; bad entries are ValueErrors naming the field."""
    if not isinstance(entries, list):
        raise ValueError(f"claims must be a list of entries, got {type(entries).__name__}")
    fields = set(Claim.__dataclass_fields__)
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"claim {i} must be a mapping of fields, got {entry!r:.80}")
        unknown = set(entry) - fields - {"for"}
        if unknown:
            raise ValueError(f"claim {i} ({entry.get('text', '?')!r}): unknown field(s) {sorted(unknown)}")
        missing = [name for name in REQUIRED if name not in entry]
        if missing:
            raise ValueError(f"claim {i} ({entry.get('text', '?')!r}): missing field(s) {missing}")
        if not isinstance(entry["text"], str):
            raise ValueError(f"claim {i}: text must be a string, got {entry['text']!r:.80}")
        for values in _bindings(entry.get("for")):
            labels = {k: _label(k, v) for k, v in values.items()}
            body = {k: _fill(v, values) for k, v in entry.items() if k not in ("for", "text")}
            try:
                body["text"] = entry["text"].format(**labels)
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(f"claim {i} ({entry['text']!r}): text names {error} that its for block does not "
                                 f"give") from None
            body["at"] = tuple(body["at"]) if isinstance(body.get("at"), (list, tuple)) else body.get("at")
            if body["at"] is not None and not isinstance(body["at"], tuple):
                raise ValueError(f"claim {body['text']!r}: at must be a list of x values, got {body['at']!r}")
            claim = Claim(**body)
            _check_claim(claim)
            out.append(claim)
    return out


@lru_cache(maxsize=None)
def _load(path: str) -> tuple[Claim, ...]:
    import yaml

    return tuple(parse_claims(yaml.safe_load(Path(path).read_text())))


def all_claims(path: str | Path = CLAIMS_FILE) -> list[Claim]:
    """Every claim of the paper, in the order of claims.yml."""
    return list(_load(str(path)))


def claims_of(sources, path: str | Path = CLAIMS_FILE) -> list[Claim]:
    """The claims of some sources ("Table 1", "Fig. 4", ...), in file order."""
    sources = [sources] if isinstance(sources, str) else list(sources)
    found = [c for c in all_claims(path) if c.source in sources]
    unknown = set(sources) - {c.source for c in found}
    if unknown:
        raise ValueError(f"sources {sorted(unknown)} have no claims in {path}")
    return found


# ============================================================================ what each kind of claim measures

@dataclass(frozen=True)
class Kind:
    """How a claim's effect comes from its sides' values, and how it is shown."""

    effect: Callable          # (values, xs, claim) -> the effect whose sign (or size: within) the claim states
    name: str                 # what the shown number is
    show: Callable = lambda e, claim: e   # the effect in the units shown (a ratio, a level)
    margin: Callable = lambda claim: claim.margin   # the margin on the effect's scale (expect "within")


def _slope(values, xs, claim) -> float:
    return float(np.polyfit(np.asarray(xs, float), np.asarray(values, float), 1)[0])


def _worst(values, xs, claim) -> float:
    diffs = [a - b for a, b in zip(values[::2], values[1::2])]
    return max(diffs) if claim.direction == "lower" else min(diffs)


KINDS = {
    "difference": Kind(lambda v, xs, c: v[0] - v[1], "difference"),
    "extreme": Kind(lambda v, xs, c: v[0] - (min if c.direction == "lower" else max)(v[1:]),
                    "difference to the best other"),
    "all": Kind(_worst, "worst difference over x"),
    "slope": Kind(_slope, "slope"),
    "ratio": Kind(lambda v, xs, c: math.log(v[0] / v[1]) - math.log(c.threshold), "ratio",
                  show=lambda e, c: math.exp(e) * c.threshold, margin=lambda c: math.log1p(c.margin)),
    "level": Kind(lambda v, xs, c: v[0] - c.threshold, "value", show=lambda e, c: e + c.threshold),
}


class NotChecked(Exception):
    """Why a claim cannot be checked on this run (its message is shown)."""


def _one(results: Results, where: dict) -> PanoramaSet:
    found = results.select(**where)
    if len(found) != 1:
        raise NotChecked(f"this run has {'no' if not found else len(found)} set(s) {_where(where)}")
    return found[0]


def _where(where: dict) -> str:
    return ", ".join(f"{k} {_label(k, v)}" for k, v in where.items())


def _sides(claim: Claim, results: Results) -> tuple[list[PanoramaSet], list | None]:
    """The sets a claim's effect is computed from, in KINDS' order, and the x values (slope, all)."""
    if claim.kind in ("slope", "all"):
        def by_x(where):
            found = {s.labels[claim.x]: s for s in results.select(**where) if claim.x in s.labels}
            if claim.at is not None:
                found = {x: s for x, s in found.items() if any(np.isclose(x, a) for a in claim.at)}
            return found
        a = by_x(claim.a)
        if claim.kind == "slope":
            xs = sorted(a)
            if len(xs) < 2:
                raise NotChecked(f"needs sets at 2 or more values of {claim.x}, this run has {len(xs)}")
            return [a[x] for x in xs], xs
        b = by_x(claim.b)
        xs = sorted(set(a) & set(b))
        if not xs:
            raise NotChecked(f"this run has no {claim.x} with both {_where(claim.a)} and {_where(claim.b)}")
        return [s for x in xs for s in (a[x], b[x])], xs
    others = [] if claim.b is None else list(claim.b) if isinstance(claim.b, tuple) else [claim.b]
    return [_one(results, claim.a)] + [_one(results, w) for w in others], None


# ============================================================================ checking a claim

@dataclass(frozen=True)
class Checked:
    """A claim on this run: its verdict, the effect with its interval (None when not checked), the paper's value."""

    claim: Claim
    verdict: str
    comparison: evidence.Comparison | None = None
    paper: float | None = None
    reason: str = ""
    unit: str = "panoramas"

    def shown(self, value: float) -> float:
        return KINDS[self.claim.kind].show(value, self.claim)

    def detail(self) -> str:
        """'this run: difference -1.2 [-3.4, 0.8] (95% BCa CI, n = 3 panoramas); paper: -2.96'."""
        c, kind = self.comparison, KINDS[self.claim.kind]
        parts = [self.reason] if self.reason else []
        if c is not None:
            f = lambda v: f"{self.shown(v):.3g}"  # noqa: E731
            parts.append(f"this run: {kind.name} {f(c.estimate)} [{f(c.low)}, {f(c.high)}] "
                         f"({c.confidence:.0%} {c.method} CI, n = {c.n} {self.unit})")
            if c.n < evidence.MIN_VERDICT_ITEMS:
                parts.append(f"no verdict from fewer than {evidence.MIN_VERDICT_ITEMS} {self.unit}")
            need = self.needed_n()
            if self.verdict == "inconclusive" and need is not None:
                parts.append(f"needs about n = {need} to decide an effect this size")
        if self.paper is not None:
            parts.append(f"paper: {self.shown(self.paper):.3g}")
        elif self.claim.note:
            parts.append(f"paper: {self.claim.note}")
        return "; ".join(parts)

    def needed_n(self, target: float = 0.8) -> int | None:
        """The n at which an interval would exclude zero with probability `target`, were the effect this run's
        estimate and its standard error to fall as 1 / sqrt(n) (for FID, whose bias also falls with n, a guide);
        None for equivalence claims (expect within) and claims not checked."""
        if self.comparison is None or self.claim.direction == "within":
            return None
        return self.comparison.needed_n(target)

    def markdown(self) -> str:
        detail = self.detail()
        return f"- {self.claim.text}: **{self.verdict}**" + (f" ({detail})" if detail else "")


def _paper_rows(name: str) -> pd.DataFrame:
    table = paper_table(name)
    if "stride" in table:
        table["stride_fraction"] = table["stride"] / PAPER_VIEW
    return table.rename(columns={"runtime_mean_s": "seconds"})


def paper_value(claim: Claim) -> float | None:
    """The claim's effect on the paper's own numbers (its table, through the claim's sides); None without one."""
    if claim.paper is None:
        return None
    table = _paper_rows(claim.paper)
    sets = [PanoramaSet(dict(row), values={c: np.array([row[c]], float)})
            for row in table.to_dict("records") for c in [claim.metric] if c in row and not pd.isna(row[c])]
    try:
        sides, xs = _sides(claim, Results(sets))
    except NotChecked:
        return None
    return float(KINDS[claim.kind].effect([float(s.values[claim.metric][0]) for s in sides], xs, claim))


@stage("metrics")
def check(claim: Claim, results: Results, confidence: float = evidence.DEFAULT_CONFIDENCE,
          n_boot: int = CLAIM_BOOT, seed: int = 0) -> Checked:
    """The claim on this run: its effect and bootstrap interval over the panoramas its sets share, and the verdict."""
    paper = paper_value(claim)
    try:
        sides, xs = _sides(claim, results)
        missing = [s.labels for s in sides if claim.metric not in s.metrics()]
        if missing:
            raise NotChecked(CLIP_UNAVAILABLE if claim.metric == "clip" else
                             f"this run has no {claim.metric} for {_where(missing[0])}")
        n = min(s.n for s in sides)
        if n < MIN_PANORAMAS:
            raise NotChecked(f"n = {n}: an interval needs at least {MIN_PANORAMAS} {results.unit}")
    except NotChecked as why:
        return Checked(claim, NOT_CHECKED, paper=paper, reason=str(why), unit=results.unit)
    kind = KINDS[claim.kind]

    def effect(ks):
        return kind.effect([results.value(s, claim.metric, ks) for s in sides], xs, claim)

    c = evidence.interval(list(range(n)), effect, confidence=confidence, n_boot=n_boot, seed=seed)
    return Checked(claim, evidence.verdict(c, claim.direction, margin=kind.margin(claim)), c, paper,
                   unit=results.unit)


def check_all(sources, results: Results, **kw) -> list[Checked]:
    return [check(c, results, **kw) for c in claims_of(sources)]


def counts_text(counts: dict, bold: bool = False) -> str:
    """{verdict: n} as '3 hold, 1 reversed, 14 inconclusive, 1 not checked' (every verdict, in VERDICTS' order)."""
    words = {"holds": "hold"}
    n = (lambda v: f"**{v}**") if bold else str
    return ", ".join(f"{n(counts.get(v, 0))} {words.get(v, v)}" for v in VERDICTS)


def tally_text(checked: list[Checked]) -> str:
    """'3 hold, 1 reversed, 14 inconclusive, 1 not checked, of 19 claims'."""
    return counts_text({v: sum(c.verdict == v for c in checked) for v in VERDICTS}) + f", of {len(checked)} claims"


def claims_text(sources, results: Results, title: str | None = None, **kw) -> str:
    """A chapter's claims as markdown: one tally line, then one line per claim (verdict, interval, n, paper)."""
    checked = check_all(sources, results, **kw)
    ns = sorted({c.comparison.n for c in checked if c.comparison is not None})
    head = (f"**{title}** " if title else "") + tally_text(checked) + \
        (f" ({next(c.comparison for c in checked if c.comparison).confidence:.0%} bootstrap intervals over n = {', '.join(map(str, ns))} "
         f"{results.unit}, resampled together across methods)." if ns else ".")
    return head + "\n\n" + "\n".join(c.markdown() for c in checked)


# ============================================================================ a claim line's numbers, for the tally

_NUMBER = r"[-+0-9.eE]+"
DETAIL_EFFECT = re.compile(rf"this run: (?P<name>[a-z ]+?) (?P<estimate>{_NUMBER}) \[(?P<low>{_NUMBER}), "
                           rf"(?P<high>{_NUMBER})\] \((?P<confidence>\d+)% [^)]*? CI, n = (?P<n>\d+) (?P<unit>[^)]+)\)")


def effect_record(text: str, detail: str) -> dict | None:
    """The numbers of a claim line (Checked.detail, in shown units) with what they measure: {"kind", "metric",
    "direction", "estimate", "low", "high", "confidence", "n", "unit", "null" (the effect's zero in shown units: 0, or
    the threshold of a ratio or level), "log" (a ratio: compare on the log scale), "margin" (expect within, on the
    compared scale)}; None for a claim not checked or a text that is no claim of CLAIMS_FILE."""
    m = DETAIL_EFFECT.search(detail or "")
    claim = next((c for c in all_claims() if c.text == text), None)
    if m is None or claim is None:
        return None
    kind = KINDS[claim.kind]
    return {"kind": claim.kind, "metric": claim.metric, "direction": claim.direction,
            **{k: float(m[k]) for k in ("estimate", "low", "high")}, "confidence": int(m["confidence"]) / 100,
            "n": int(m["n"]), "unit": m["unit"], "null": kind.show(0.0, claim), "log": claim.kind == "ratio",
            "margin": kind.margin(claim)}
