"""gvcf.paper.claims and gvcf.eval.results: the paper's claims as data, each checked end to end on tiny per-panorama
result tables (numpy only: seconds, deterministic)."""
import math

import numpy as np
import pytest

from gvcf.eval import metrics
from gvcf.eval.results import PanoramaSet, Reference, Results, mmd2
from gvcf.paper import claims as C

N = 12   # panoramas (seeds) per set


def _by(text):
    return next(c for c in C.all_claims() if c.text == text)


def test_every_claim_parses_and_every_paper_table_claim_gets_the_papers_value():
    found = C.all_claims()
    assert len(found) == len({c.text for c in found}) > 40        # expanded `for` rows, no duplicate line
    for c in found:
        if c.paper is not None and c.metric != "clip":
            assert C.paper_value(c) is not None, c.text
    gf_md = _by("GF beats MD in FID at stride 1/4 of a view")
    assert C.paper_value(gf_md) == pytest.approx(17.64 - 20.60)            # data/paper/table1.csv
    assert gf_md.direction == "lower" and _by("GF beats MD in GIQA-QS at stride 1/4 of a view").direction == "higher"
    sync = _by("SyncDiffusion is about 10x slower than MD (DDIM); here more than 3x")
    assert C.Checked(sync, "holds").shown(C.paper_value(sync)) == pytest.approx(102.31 / 9.70)
    slope = _by("MD's FID falls as the stride grows (1/4, 1/2, 3/4 of a view)")
    assert C.paper_value(slope) < 0


def _seams(gf_shift, rng, n=N, fusion_sd=0.05):
    shared = rng.normal(1.5, 0.3, n)                 # what a seed's content does to both methods
    md = PanoramaSet({"fusion": "MD", "stride_fraction": 0.25}, {"seam_score": shared + rng.normal(0, fusion_sd, n)})
    gf = PanoramaSet({"fusion": "GF", "stride_fraction": 0.25},
                     {"seam_score": shared + gf_shift + rng.normal(0, fusion_sd, n)})
    return Results([md, gf])


def test_a_claim_end_to_end_holds_reverses_or_stays_inconclusive_with_the_data():
    claim = _by("GF shows weaker seams than MD at stride 1/4 of a view")
    rng = np.random.default_rng(0)
    held = C.check(claim, _seams(-0.3, rng))
    assert held.verdict == "holds" and held.comparison.high < 0 and held.comparison.n == N
    assert held.comparison.estimate == pytest.approx(-0.3, abs=0.05)
    assert C.check(claim, _seams(+0.3, rng)).verdict == "reversed"
    unsure = C.check(claim, _seams(0.0, rng, fusion_sd=1.0))
    assert unsure.verdict == "inconclusive" and unsure.needed_n() > N
    assert f"needs about n = {unsure.needed_n()} to decide" in unsure.markdown()
    assert held.needed_n() <= N and "needs about" not in held.markdown()
    line = held.markdown()
    assert line.startswith("- GF shows weaker seams than MD at stride 1/4 of a view: **holds** (this run: difference ")
    assert f"(95% expanded percentile CI, n = {N} panoramas); paper: MD shows seams at every stride" in line
    few = C.check(claim, _seams(-0.3, rng, n=4))
    assert few.verdict == "inconclusive" and "no verdict from fewer than 6 panoramas" in few.markdown()


def test_claims_that_cannot_be_checked_say_why():
    rng = np.random.default_rng(1)
    one = C.check(_by("GF shows weaker seams than MD at stride 1/4 of a view"), _seams(-0.3, rng, n=1))
    assert one.verdict == "not checked" and "n = 1: an interval needs at least 2 panoramas" in one.reason
    missing = C.check(_by("GF shows weaker seams than MD at stride 1/2 of a view"), _seams(-0.3, rng))
    assert missing.verdict == "not checked" and "no set(s) fusion GF, stride_fraction 1/2" in missing.reason
    clip = C.check(_by("MD beats GF in CLIP at stride 1/4 of a view (the paper: at 2 of its 3 strides)"),
                   _seams(-0.3, rng))
    assert clip.verdict == "not checked" and clip.reason == metrics.CLIP_UNAVAILABLE
    assert "paper: 0.06" in clip.markdown()                                  # 31.65 - 31.59


def test_set_metrics_are_statistics_of_the_resampled_panoramas():
    rng = np.random.default_rng(2)
    tiles, dim = 3, 16
    ref = Reference({"clean": rng.normal(0, 1, (30, dim)), "pytorch_fid": np.abs(rng.normal(0, 1, (30, dim)))}, 9)
    feats = {"clean": rng.normal(0.2, 1, (10, tiles, dim)), "pytorch_fid": np.abs(rng.normal(0, 1, (10, tiles, dim)))}
    s = PanoramaSet({"method": "MD"}, features=feats)
    r = Results([s], ref)
    ks = [0, 3, 3, 7]
    chosen = feats["clean"][ks].reshape(-1, dim)
    assert r.value(s, "fid", ks) == pytest.approx(metrics.fid(ref.features["clean"], chosen))
    giqa = feats["pytorch_fid"][ks].reshape(-1, dim)
    assert r.value(s, "giqa_ds", ks) == pytest.approx(metrics.giqa_ds(giqa, ref.features["pytorch_fid"], 9))
    assert r.value(s, "giqa_qs", ks) == pytest.approx(metrics.giqa_qs(giqa, ref.features["pytorch_fid"], 9))
    # all-pairs unbiased MMD^2 = clean-fid's KID when the subsets are the whole (equal-size) sets
    equal = feats["clean"].reshape(-1, dim)[:30]
    assert 1e3 * mmd2(equal, ref) == pytest.approx(1e3 * metrics.kid(ref.features["clean"], equal, num_subsets=3))
    assert r.value(s, "kid_e3", range(10)) == pytest.approx(1e3 * mmd2(feats["clean"].reshape(-1, dim), ref))
    with pytest.raises(ValueError, match="no metric 'sharpness'"):
        r.value(s, "sharpness", ks)


def test_fid_claims_pair_the_panoramas_of_one_seed():
    """A set metric bootstrapped over panoramas: GF's tiles nearer the reference than MD's from the same seeds."""
    rng = np.random.default_rng(3)
    dim, tiles = 8, 4
    ref = Reference({"clean": rng.normal(0, 1, (200, dim))}, 1)
    seed = rng.normal(0, 1, (N, tiles, dim))
    sets = [PanoramaSet({"fusion": f, "stride_fraction": 0.25}, features={"clean": seed * 0.8 + shift})
            for f, shift in (("MD", 1.0), ("GF", 0.2))]
    checked = C.check(_by("GF beats MD in FID at stride 1/4 of a view"), Results(sets, ref))
    assert checked.verdict == "holds"
    assert checked.comparison.estimate == pytest.approx(
        metrics.fid(ref.features["clean"], sets[1].features["clean"].reshape(-1, dim))
        - metrics.fid(ref.features["clean"], sets[0].features["clean"].reshape(-1, dim)))


def test_slopes_extremes_every_x_ratios_and_levels():
    rng = np.random.default_rng(4)
    noise = lambda sd=0.05: rng.normal(0, sd, N)  # noqa: E731
    fig5 = Results([PanoramaSet({"method": m, "alpha": a}, {"fid": 10 - 2 * a + (m == "MD") * (1 + a) + noise(),
                                                            "giqa_ds": 5 + a + noise()})
                    for m in ("MD", "GF") for a in (0.0, 0.5, 1.0)])
    assert C.check(_by("GF: as alpha grows, quality improves: FID falls"), fig5).verdict == "holds"
    assert C.check(_by("GF: as alpha grows, diversity drops: GIQA-DS falls"), fig5).verdict == "reversed"
    every = C.check(_by("GF beats MD in FID at every alpha"), fig5)
    # GF - MD is -1, -1.5, -2 over alpha: "at every alpha" is decided by the worst of them, -1
    assert every.verdict == "holds" and every.comparison.estimate == pytest.approx(-1, abs=0.1)

    md = {0.125: 1.2, 0.25: 1.5, 0.5: 2.5, 0.75: 1.6}
    seams = Results([PanoramaSet({"fusion": "MD", "stride_fraction": f}, {"seam_score": v + noise()})
                     for f, v in md.items()])
    assert C.check(_by("MD's seams are least visible at the smallest stride (1/8 of a view, the paper's 64 px)"),
                   seams).verdict == "holds"
    most = C.check(_by("MD's seams are most visible at 1/2 of a view (the paper's 256 px)"), seams)
    assert most.verdict == "holds" and most.comparison.estimate == pytest.approx(0.9, abs=0.1)

    runs = Results([PanoramaSet({"method": m}, {"seconds": s * np.exp(noise(0.02))})
                    for m, s in (("MD", 1.0), ("GF", 1.03), ("Sync", 9.0), ("VCF", 4.0), ("VCF+GF", 5.0))],
                   unit="runs")
    sync = C.check(_by("SyncDiffusion is about 10x slower than MD (DDIM); here more than 3x"), runs)
    assert sync.verdict == "holds" and sync.shown(sync.comparison.estimate) == pytest.approx(9, rel=0.05)
    assert "this run: ratio 9" in sync.markdown() and "n = 12 runs" in sync.markdown()
    assert C.check(_by("VCF with DDPM (1000 steps) is about 20x slower than MD with DDIM (50 steps); here more "
                       "than 5x"), runs).verdict == "reversed"
    assert C.check(_by("GF costs the same as MD (within 15 %)"), runs).verdict == "holds"
    assert C.check(_by("VCF+GF costs the same as VCF (within 15 %)"), runs).verdict == "reversed"   # 1.25x

    var = Results([PanoramaSet({"method": m}, {"ratio": v + noise(0.02)}) for m, v in
                   (("md", 0.55), ("vcf", 1.0), ("gvcf", 1.3))], unit="steps")
    assert C.check(_by("VCF keeps the sampler's variance in the overlaps (variance / sigma_t^2 within 0.1 of 1)"),
                   var).verdict == "holds"
    assert C.check(_by("GVCF keeps the sampler's variance in the overlaps (variance / sigma_t^2 within 0.1 of 1)"),
                   var).verdict == "reversed"
    assert C.check(_by("Averaging (MD) shrinks the variance where views overlap (variance / sigma_t^2 below 1)"),
                   var).verdict == "holds"


def test_the_tally_of_a_chapter():
    rng = np.random.default_rng(5)
    text = C.claims_text(["Fig. 4"], _seams(-0.3, rng), title="Fig. 4:")
    first, *lines = [line for line in text.splitlines() if line]
    assert first.startswith("**Fig. 4:** 1 hold, 0 reversed, 0 inconclusive, 5 not checked, of 6 claims (95% "
                            f"bootstrap intervals over n = {N} panoramas")
    assert len(lines) == 6 and sum("**holds**" in line for line in lines) == 1


def test_bad_claims_and_sources_are_value_errors():
    with pytest.raises(ValueError, match="unknown field"):
        C.parse_claims([dict(source="x", text="t", kind="difference", metric="fid", a={}, expect="lower", colour=1)])
    with pytest.raises(ValueError, match="kind must be one of"):
        C.parse_claims([dict(source="x", text="t", kind="median", metric="fid", a={}, expect="lower")])
    with pytest.raises(ValueError, match="expect must be one of"):
        C.parse_claims([dict(source="x", text="t", kind="difference", metric="fid", a={}, expect="sideways")])
    with pytest.raises(ValueError, match="Table 9"):
        C.claims_of(["Table 9"])
    assert math.isclose(C.KINDS["ratio"].margin(_by("GF costs the same as MD (within 15 %)")), math.log(1.15))


GOOD = dict(source="x", text="t", kind="difference", metric="fid", a={"m": 1}, b={"m": 2}, expect="lower")


@pytest.mark.parametrize("entries,match", [
    ([{k: v for k, v in GOOD.items() if k != "text"}], r"missing field\(s\) \['text'\]"),   # was a KeyError
    ([{k: v for k, v in GOOD.items() if k != "a"}], r"missing field\(s\) \['a'\]"),         # was a TypeError
    (["not a mapping"], "claim 0 must be a mapping"),                                          # an AttributeError
    ([5], "claim 0 must be a mapping"),
    ({"source": "x"}, "claims must be a list"),
    ([GOOD | dict(metric="fidd")], "metric must be one of"),                  # accepted with expect: lower before
    ([GOOD | dict(metric="fidd", expect="better")], "metric must be one of"),
    ([GOOD | dict(metric="ssim", expect="better")], "needs a metric with a direction"),   # a KeyError later
    ([GOOD | dict(text=5)], "text must be a string"),
    ([GOOD | dict(text="at {stride}")], "text names"),
    ([GOOD | dict(a=[1, 2])], "a and b must be mappings"),
    ([GOOD | dict(b=None)], "needs b"),
    ([GOOD | dict(kind="slope", b=None)], "needs x"),
    ([GOOD | dict(kind="ratio", threshold=float("nan"))], "threshold"),
    ([GOOD | dict(kind="ratio", threshold=0)], "threshold"),
    ([GOOD | dict(kind="level", threshold="3")], "threshold"),
    ([GOOD | dict(kind="level")], "threshold"),
    ([GOOD | dict(margin=-0.1)], "margin"),
    ([GOOD | dict(margin=float("inf"))], "margin"),
    ([GOOD | dict(kind="slope", x="alpha", at=[0, float("nan")])], "at"),
    ([GOOD | dict(kind="slope", x="alpha", at=0.5)], "at must be a list"),
    ([GOOD | {"for": "alpha"}], "for must be"),
    ([GOOD | {"for": {"alpha": 0.5}}], "for must be"),
])
def test_malformed_claims_data_is_a_value_error_naming_the_field(entries, match):
    """Issue 27 item 6: parse_claims promised ValueErrors but gave KeyError, TypeError and AttributeError."""
    with pytest.raises(ValueError, match=match):
        C.parse_claims(entries)


def test_every_metric_a_chapter_records_may_be_named_by_a_claim():
    from gvcf.paper.experiments import PER_PANORAMA

    assert set(PER_PANORAMA) <= C.METRICS and {c.metric for c in C.all_claims()} <= C.METRICS
    assert len(C.parse_claims([GOOD])) == 1
