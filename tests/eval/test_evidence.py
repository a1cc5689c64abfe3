"""gvcf.evidence: bootstrap intervals over panoramas that cover at their nominal rate, verdicts, power."""
import numpy as np
import pytest

from gvcf import evidence

REPS, N, BOOT = 200, 20, 400
POWER_BOOT = 2000   # the default: the 1.6% and 98.4% quantiles of fewer draws scatter, which costs power
# binomial spread of a rate near 0.95 over REPS trials: sd 0.015; the band below is about 3 sd each side (BCa at
# n = 20 undercovers slightly, so the band is centred a little below 0.95)
COVERAGE_BAND = (0.89, 0.99)


@pytest.mark.parametrize("paired", [True, False])
def test_a_a_comparisons_are_inconclusive_about_95_percent_of_the_time(paired):
    rng = np.random.default_rng(1)
    inconclusive = 0
    for r in range(REPS):
        shared = rng.normal(0, 2, N) if paired else 0.0     # per-seed content both methods share
        a, b = shared + rng.normal(0, 1, N), shared + rng.normal(0, 1, N)
        c = evidence.compare(a, b, paired=paired, n_boot=BOOT, seed=r)
        inconclusive += evidence.verdict(c) == "inconclusive"
    assert COVERAGE_BAND[0] <= inconclusive / REPS <= COVERAGE_BAND[1], inconclusive / REPS


def test_a_real_shift_holds_with_the_computed_power():
    effect, sd = -0.5, 1.0
    expected = evidence.power(effect, sd, N)
    assert 0.5 < expected < 0.7                        # a case where power is neither 0 nor 1
    rng = np.random.default_rng(2)
    holds = 0
    for r in range(REPS):
        shared = rng.normal(0, 3, N)
        a = shared + effect + rng.normal(0, sd / 2**0.5, N)
        b = shared + rng.normal(0, sd / 2**0.5, N)
        holds += evidence.verdict(evidence.compare(a, b, n_boot=POWER_BOOT, seed=r), expect="lower") == "holds"
    assert abs(holds / REPS - expected) < 0.12, (holds / REPS, expected)


def test_pairing_removes_the_shared_spread():
    rng = np.random.default_rng(3)
    shared = rng.normal(0, 10, N)
    a, b = shared - 1 + rng.normal(0, 0.3, N), shared + rng.normal(0, 0.3, N)
    paired, unpaired = evidence.compare(a, b), evidence.compare(a, b, paired=False)
    assert evidence.verdict(paired) == "holds" and evidence.verdict(unpaired) == "inconclusive"
    assert paired.high - paired.low < (unpaired.high - unpaired.low) / 5
    assert paired.estimate == pytest.approx(np.mean(a) - np.mean(b)) and paired.n == N


def test_a_statistic_of_arrays_resamples_whole_panoramas():
    """Items may be arrays (a panorama's tile values); the statistic sees whole items."""
    rng = np.random.default_rng(4)
    a = [rng.normal(1.0, 1, (7, 3)) for _ in range(12)]
    b = [rng.normal(0.0, 1, (7, 3)) for _ in range(12)]
    seen = []

    def mean_of_tiles(items):
        seen.append(len(items))
        return float(np.concatenate(items).mean())

    c = evidence.compare(a, b, statistic=mean_of_tiles, paired=False, n_boot=200, method="bca")
    assert set(seen) == {11, 12}   # the bootstrap's 12 and the jackknife's 11 items, never a tile count
    seen.clear()
    evidence.compare(a, b, statistic=mean_of_tiles, paired=False, n_boot=200)
    assert set(seen) == {12}       # the expanded percentile interval needs no jackknife
    assert evidence.verdict(c, expect="higher") == "holds" and evidence.verdict(c, expect="lower") == "reversed"


def test_at_small_n_the_expanded_interval_covers_more_than_bca():
    """A/A at n = 4 (the intervals alone, before verdict's minimum n), on the same draws: measured coverage 0.87
    expanded against 0.79 BCa; neither reaches 0.95 so far below MIN_VERDICT_ITEMS."""
    rng = np.random.default_rng(6)
    covered = dict.fromkeys(("expanded", "bca"), 0)
    for r in range(REPS):
        a, b = rng.normal(0, 1, 4), rng.normal(0, 1, 4)
        for method in covered:
            c = evidence.compare(a, b, n_boot=BOOT, seed=r, method=method)
            covered[method] += c.low <= 0 <= c.high
    rates = {m: k / REPS for m, k in covered.items()}
    assert rates["expanded"] >= rates["bca"] + 0.04 and 0.8 <= rates["expanded"] < 0.95, rates


def test_too_few_items_are_inconclusive_and_bad_methods_refused():
    assert evidence.verdict(evidence.Comparison(-2.0, -3, -1, evidence.MIN_VERDICT_ITEMS - 1, 0.95, True, "x")) == \
        "inconclusive"
    assert evidence.expanded_confidence(5, 0.95) > evidence.expanded_confidence(50, 0.95) > 0.95
    with pytest.raises(ValueError, match="method"):
        evidence.compare([1, 2, 3], [1, 2, 3], method="jackknife")


def test_the_percentile_and_expanded_levels_by_hand():
    """The percentile interval takes the (1 - c) / 2 and (1 + c) / 2 quantiles of the draws; the expanded one takes
    them at 1 - 2 Phi(-sqrt(n / (n - 1)) t_{n-1, (1 + c) / 2}) (Hesterberg 2015): 0.995136 at n = 6, c = 0.95 (t_{5,
    0.975} = 2.570582, by hand)."""
    assert evidence.expanded_confidence(6, 0.95) == pytest.approx(0.995136, abs=2e-6)
    items = list(np.linspace(-1, 1, 41))   # symmetric: the bootstrap mean is ~normal with sd = std / sqrt(n)
    se = np.std(items) / np.sqrt(len(items))
    c = evidence.interval(items, confidence=0.95, n_boot=20000, seed=0, method="percentile")
    assert c.low / se == pytest.approx(-1.96, abs=0.07) and c.high / se == pytest.approx(1.96, abs=0.07)


def test_unpaired_sets_of_different_sizes_each_resample_whole():
    """a and b are resampled each from all of its own items: b's 20 items spread the difference by std(b) / sqrt(20)
    = 1.29 (a is constant), so the 95% percentile interval is about -9.5 +- 2.53."""
    c = evidence.compare([0.0] * 8, list(range(20)), paired=False, n_boot=2000, seed=0, method="percentile")
    assert (c.estimate, c.n) == (-9.5, 8)
    assert c.se == pytest.approx(1.29, abs=0.06)
    assert c.low == pytest.approx(-9.5 - 2.53, abs=0.4) and c.high == pytest.approx(-9.5 + 2.53, abs=0.4)


def test_verdict_on_constructed_intervals():
    def c(low, high):
        return evidence.Comparison((low + high) / 2, low, high, 10, 0.95, True, "BCa")

    assert evidence.verdict(c(-2, -1), "lower") == "holds" and evidence.verdict(c(-2, -1), "higher") == "reversed"
    assert evidence.verdict(c(1, 2), "higher") == "holds" and evidence.verdict(c(1, 2), "lower") == "reversed"
    assert evidence.verdict(c(-1, 1), "lower") == evidence.verdict(c(0, 1), "higher") == "inconclusive"
    assert "95% CI, n = 10 paired" in c(-2, -1).text()


def test_the_bootstrap_standard_error_and_the_n_a_comparison_would_need():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0.3, 1, 40), rng.normal(0, 1, 40)
    c = evidence.compare(a, b, paired=False)
    assert c.se == pytest.approx(np.sqrt(np.var(a, ddof=1) / 40 + np.var(b, ddof=1) / 40), rel=0.15)
    assert c.needed_n() == evidence.needed_n(c.estimate, c.se * np.sqrt(40))
    assert evidence.Comparison(1.0, 0.5, 1.5, 10, 0.95, True, "BCa").needed_n() is None   # no standard error


def test_needed_n_inverts_power():
    n = evidence.needed_n(0.3, 1.0, target=0.8)
    assert evidence.power(0.3, 1.0, n) >= 0.8 > evidence.power(0.3, 1.0, n - 1)
    assert evidence.needed_n(0.0, 1.0) is None


def test_the_same_seed_gives_the_same_interval():
    a, b = np.arange(10.0), np.arange(10.0)[::-1] * 0.9
    assert evidence.compare(a, b, seed=5) == evidence.compare(a, b, seed=5)


@pytest.mark.parametrize("kw,name", [(dict(a=[1.0]), "a"), (dict(b=[1.0, 2.0, 3.0]), "paired"),
                                     (dict(confidence=1.5), "confidence"), (dict(n_boot=0), "n_boot"),
                                     (dict(statistic=3), "statistic"), (dict(paired="yes"), "paired"),
                                     (dict(a="ab"), "a")])
def test_bad_input(kw, name):
    args = dict(a=[1.0, 2.0], b=[1.0, 2.0]) | kw
    with pytest.raises(ValueError, match=name):
        evidence.compare(**args)
    with pytest.raises(ValueError, match="expect"):
        evidence.verdict(evidence.compare([1.0, 2.0], [2.0, 3.0]), expect="smaller")


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("a,b,name", [([1, 2, 3, 4, 5, NAN], [2, 3, 4, 5, 6, 7.5], r"a\[5\]"),
                                      ([1, 2, 3, 4, 5, 6], [2, INF, 4, 5, 6, 7.5], r"b\[1\]"),
                                      ([NAN] * 6, [NAN] * 6, r"a\[0\]"),
                                      ([1, 2, 3, 4, 5, -INF], [2, 3, 4, 5, 6, 7], r"a\[5\]")])
def test_non_finite_items_are_refused_by_name(a, b, name, paired):
    """Issue 27: [1..5, nan] vs [2..7.5] gave estimate nan, interval [-1, -1] and 'holds' (the bootstrap dropped the
    draws holding the NaN); all-NaN raised an IndexError."""
    with pytest.raises(ValueError, match=name):
        evidence.compare(a, b, paired=paired)


def test_non_finite_items_of_arrays_and_interval_are_refused():
    pano = [np.ones((3, 4)) for _ in range(6)]
    pano[2][1, 1] = np.nan
    with pytest.raises(ValueError, match=r"items\[2\]"):
        evidence.interval(pano, lambda ps: float(np.mean([p.mean() for p in ps])))


def test_a_statistic_that_turns_non_finite_is_refused():
    """Items fine, the statistic not (a log of a zero mean): no interval from the finite draws only."""
    with pytest.raises(ValueError, match="statistic must be finite"):
        evidence.compare([0.0, 0.0, 1.0, 2.0, 3.0, 4.0], [1.0] * 6, statistic=lambda x: np.log(np.min(x)))
    with pytest.raises(ValueError, match="statistic must be finite"):
        evidence.interval([1.0, 2.0, 3.0], lambda x: np.log(np.min(x) - 1))


def test_verdict_power_and_needed_n_refuse_non_finite_numbers():
    broken = evidence.Comparison(NAN, -1.0, -1.0, 6, 0.95, True, "percentile")
    with pytest.raises(ValueError, match="comparison"):
        evidence.verdict(broken)
    for kw, name in [(dict(effect=NAN), "effect"), (dict(sd=-1.0), "sd"), (dict(n=0), "n"), (dict(n=1), "n"),
                     (dict(confidence=INF), "confidence"), (dict(sd=INF), "sd")]:
        with pytest.raises(ValueError, match=name):
            evidence.power(**(dict(effect=1.0, sd=1.0, n=10) | kw))
    for kw, name in [(dict(effect=INF), "effect"), (dict(sd=NAN), "sd"), (dict(target=1.0), "target"),
                     (dict(confidence=0), "confidence")]:
        with pytest.raises(ValueError, match=name):
            evidence.needed_n(**(dict(effect=1.0, sd=1.0) | kw))


@pytest.mark.parametrize("seed", [-1, 1.5, NAN, "0", None])
def test_a_bad_seed_is_refused_by_name(seed):
    with pytest.raises(ValueError, match="seed"):
        evidence.compare([1.0, 2.0], [1.0, 3.0], seed=seed)


def test_bca_counts_draws_equal_to_the_estimate_as_half_below():
    """Efron & Tibshirani Eq. 14.14 with mid-rank ties: 2 draws below the estimate, 4 equal, 4 above give
    z0 = Phi^-1((2 + 4/2) / 10); symmetric jackknife values give acceleration 0, so the interval is the
    bootstrap quantiles at Phi(2 z0 +- z_{alpha})."""
    from statistics import NormalDist

    boot = np.array([0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.5, 2.0, 2.5, 3.0])
    low, high, name = evidence._bca(boot, 1.0, [np.array([-1.0, 0.0, 1.0])], 0.9)
    z0, z = NormalDist().inv_cdf(0.4), NormalDist().inv_cdf(0.95)
    expected = np.quantile(boot, [NormalDist().cdf(2 * z0 - z), NormalDist().cdf(2 * z0 + z)])
    assert name == "BCa" and (low, high) == pytest.approx(tuple(expected), abs=1e-12)
