"""gvcf.evidence: bootstrap intervals over panoramas that cover at their nominal rate, verdicts, power."""
import numpy as np
import pytest

from gvcf import evidence

REPS, N, BOOT = 200, 20, 400
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
        holds += evidence.verdict(evidence.compare(a, b, n_boot=BOOT, seed=r), expect="lower") == "holds"
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

    c = evidence.compare(a, b, statistic=mean_of_tiles, paired=False, n_boot=200)
    assert set(seen) == {11, 12}   # the bootstrap's 12 and the jackknife's 11 items, never a tile count
    assert evidence.verdict(c, expect="higher") == "holds" and evidence.verdict(c, expect="lower") == "reversed"


def test_verdict_on_constructed_intervals():
    def c(low, high):
        return evidence.Comparison((low + high) / 2, low, high, 10, 0.95, True, "BCa")

    assert evidence.verdict(c(-2, -1), "lower") == "holds" and evidence.verdict(c(-2, -1), "higher") == "reversed"
    assert evidence.verdict(c(1, 2), "higher") == "holds" and evidence.verdict(c(1, 2), "lower") == "reversed"
    assert evidence.verdict(c(-1, 1), "lower") == evidence.verdict(c(0, 1), "higher") == "inconclusive"
    assert "95% CI, n = 10 paired" in c(-2, -1).text()


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
