"""Set metrics over bootstrap draws: each set's tiles measured against the reference once (Results._draws) give
what the direct formulas give on the concatenated tiles of the draw."""
import numpy as np
import pytest

from gvcf.eval.results import SET_METRICS, PanoramaSet, Reference, Results

# float64 sums taken in another order: measured worst 2e-16 (FID) and 6e-12 (KID, whose value is a small difference
# of large terms) relative on 2048-dimensional features; 1e-9 leaves room for other BLAS builds. GIQA is exact.
RTOL = {"fid": 1e-9, "kid_e3": 1e-9, "giqa_qs": 0.0, "giqa_ds": 0.0}


def make(rng, n=6, tiles=7, dim=64, n_ref=48, giqa_k=20):
    feats = {"clean": rng.normal(0.3, 1, (n, tiles, dim)), "pytorch_fid": np.abs(rng.normal(0, 1, (n, tiles, dim)))}
    ref = Reference({"clean": rng.normal(0, 1, (n_ref, dim)), "pytorch_fid": np.abs(rng.normal(0, 1, (n_ref, dim)))},
                    giqa_k)
    s = PanoramaSet({"method": "MD"}, features=feats)
    return s, Results([s], ref)


@pytest.mark.parametrize("shape", [dict(), dict(dim=16, n_ref=40), dict(dim=8, tiles=3, n=5, n_ref=6, giqa_k=4)],
                         ids=["wide", "more reference rows than dimensions", "more drawn tiles than dimensions"])
def test_prepared_draws_equal_the_direct_formula(shape):
    rng = np.random.default_rng(0)
    s, results = make(rng, **shape)
    for metric, (mode, direct, _) in SET_METRICS.items():
        for _ in range(25):
            ks = rng.integers(0, s.n, rng.integers(2, s.n + 1))
            chosen = s.features[mode][ks].reshape(-1, s.features[mode].shape[-1])
            expected = direct(chosen, results.reference)
            assert results.value(s, metric, ks) == pytest.approx(expected, rel=RTOL[metric], abs=0), (metric, ks)


def test_each_set_keeps_its_own_prepared_draws():
    rng = np.random.default_rng(1)
    a, results = make(rng)
    b = PanoramaSet({"method": "GF"}, features={k: v + 1.0 for k, v in a.features.items()})
    results.sets.append(b)
    for metric in SET_METRICS:
        assert results.value(a, metric, range(6)) != results.value(b, metric, range(6)), metric
        assert results.value(a, metric, [0, 1]) == results.value(a, metric, [0, 1])


@pytest.mark.parametrize("metric", ["fid", "kid_e3"])
def test_a_draw_of_one_tile_is_refused_not_nan(metric):
    rng = np.random.default_rng(2)
    s, results = make(rng, tiles=1)
    with pytest.raises(ValueError, match=metric.split("_")[0]):
        results.value(s, metric, [3])


def test_non_finite_features_are_refused_by_name():
    rng = np.random.default_rng(3)
    s, results = make(rng)
    s.features["clean"][2, 1, 5] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        results.value(s, "fid", [0, 1, 2])
