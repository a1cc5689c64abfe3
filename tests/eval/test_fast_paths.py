"""gvcf bench --fast-paths: every part on every path, eager's own rows exact, bfloat16 within its rounding, the
compiled UNet equal to eager up to float32 reordering (slow: it compiles)."""
import math

import pytest
import torch

from gvcf.eval import fast_paths
from gvcf.eval.timing import StandInUNet

STEPS = 2
BF16_EPS = 2.0**-8   # bfloat16 keeps 8 significant bits: one rounding is up to half of this, relative


@pytest.fixture(scope="module")
def model(tiny_pipe):
    from gvcf.engine.models import Model

    return Model.from_pipeline(tiny_pipe)   # 8-latent views, VAE factor 2: a 16 x 64 px canvas is 4 views


@pytest.fixture(scope="module")
def table(model):
    return fast_paths.fast_path_table(model, width=64, stride=8, steps=STEPS, repeats=1, paths=("bf16",))


def test_every_part_is_timed_eager_and_on_each_chosen_path(table):
    assert list(zip(table.part, table.path)) == [(part, path) for part in fast_paths.PART_NAMES
                                                 for path in ("eager", "bf16")]
    assert (table.first_s > 0).all() and (table.median_s > 0).all() and (table.min_s <= table.median_s).all()
    eager = table[table.path == "eager"]
    assert (eager.speedup == 1.0).all() and eager.payback_calls.isna().all()
    assert (eager.max_rel_diff == 0.0).all()   # eager against itself: deterministic in one process
    r = table.set_index(["part", "path"])
    assert r.loc[("generate", "bf16"), "speedup"] == pytest.approx(r.loc[("generate", "eager"), "median_s"]
                                                                  / r.loc[("generate", "bf16"), "median_s"])
    bare = r.loc[("unet_batch", "bf16"), "median_s"] * STEPS
    assert r.loc[("generate", "bf16"), "over_bare_unet"] == pytest.approx(r.loc[("generate", "bf16"), "median_s"]
                                                                          / bare)
    assert table[table.part != "generate"].over_bare_unet.isna().all()


def test_bfloat16_differs_from_eager_by_its_rounding(table):
    """One UNet call or VAE decode under bfloat16 autocast: above float32's rounding, within a few of bfloat16's
    (measured 4e-3 to 5e-3 on the bundled model); a whole generate compounds it over the steps."""
    one_call = table[(table.path == "bf16") & (table.part != "generate")].max_rel_diff
    assert ((one_call > 1e-5) & (one_call < 8 * BF16_EPS)).all(), one_call.tolist()
    assert 0 < table.set_index(["part", "path"]).loc[("generate", "bf16"), "max_rel_diff"] < 1.0


def test_unknown_paths_and_parts_are_refused_first(model):
    with pytest.raises(ValueError, match="paths must be among eager, compile, bf16; got fp8"):
        fast_paths.fast_path_table(model, paths=("fp8",))
    with pytest.raises(ValueError, match="parts"):
        fast_paths.fast_path_table(model, parts=("text_encoder",))
    with pytest.raises(ValueError, match="steps"):
        fast_paths.fast_path_table(model, steps=0)


def test_the_stand_in_unet_runs_its_function_or_nothing(model):
    x = torch.randn(2, 4, 8, 8)
    text = torch.zeros(2, 77, 32)
    assert StandInUNet(model.unet)(x, 1, text).sample is x
    seen = StandInUNet(model.unet, lambda s, t, e, kw: s * 0 + t + len(kw))(x, 3, text, extra=1)
    assert torch.equal(seen.sample, torch.full_like(x, 4.0))


def test_the_printed_table_names_every_part_and_path(table):
    printed = fast_paths.format_fast_paths(table)
    assert all(name in printed for name in fast_paths.PART_NAMES + ("eager", "bf16"))
    assert "bf16 flags" in printed and "n/a" in printed


@pytest.mark.slow
def test_the_compiled_unet_equals_eager_up_to_float32_reordering(model):
    """torch.compile (inductor) fuses and reorders the UNet's float32 arithmetic: equal to eager within 1e-5 of its
    largest value (measured 5e-7 to 9e-7 on the bundled model), and its first call pays for the compilation."""
    df = fast_paths.fast_path_table(model, width=64, stride=8, steps=STEPS, repeats=1, paths=("compile",),
                                    parts=("unet_1_view",))
    r = df.set_index("path")
    assert r.loc["compile", "max_rel_diff"] < 1e-5
    assert r.loc["compile", "first_s"] > r.loc["compile", "median_s"]
    assert r.loc["compile", "payback_calls"] >= 0 or math.isinf(r.loc["compile", "payback_calls"])
