"""Table 3's runtime table: each method with its paper sampler, timed by the benchmark's loop, scaled to the paper's
step counts (the chapter's view of it and the comparison with the paper: tests/paper/test_experiments.py)."""
import pytest

from gvcf.paper import runtime as RT
from gvcf.paper.methods import METHOD_SAMPLER

WIDTH, STRIDE = 1024, 384   # 512 x 1024 on the tiny64 model: 3 views of 512 px


def test_runtime_table_scales_ddpm_to_1000_steps(tiny64):
    df = RT.runtime_table(tiny64, "md,vcf", repeats=1, steps=1, ddpm_steps=1, width=WIDTH, stride=STRIDE)
    assert list(df["method"]) == ["md", "vcf"] and list(df["sampler"]) == ["ddim", "ddpm"]
    vcf = df.set_index("method").loc["vcf"]
    assert vcf["scaled"] and vcf["reported_steps"] == 1000
    assert vcf["reported_mean_s"] == pytest.approx(vcf["mean_s"] * 1000)
    assert (df["mean_s"] > 0).all()



def test_runtime_table_interleaves_the_methods(tiny64, monkeypatch):
    """Round i runs every method once (after all warm-ups), so run i of two methods shares the machine's load and
    runtime_results may pair them."""
    calls = []
    monkeypatch.setattr(RT, "generate", lambda model, prompt, steps, seed, **kw: calls.append((kw["fusion"], steps)))
    RT.runtime_table(tiny64, "md,vcf", repeats=3, steps=4, ddpm_steps=6, width=WIDTH, stride=STRIDE)
    warm = RT.WARMUP_STEPS
    timed = calls[-6:]
    assert all(s == warm for _, s in calls[:-6]) and len(calls) > 6
    assert timed == [("md", 4), ("vcf", 6)] * 3

def test_sync_scaling_only_for_a_uniform_schedule():
    from gvcf.engine.sync import SyncConfig

    assert RT._scaled("sync", "ddim", 5, SyncConfig()) == (50, 10.0)
    target, factor = RT._scaled("sync", "ddim", 5, SyncConfig(threshold=10))
    assert target == 50 and factor != factor   # NaN: sync steps are not a fixed share of the steps


def test_methods_are_the_paper_method_table_keys():
    assert set(RT.METHODS) == set(METHOD_SAMPLER)
    assert RT.check_methods("md,,sync") == ["md", "sync"] and RT.check_methods(["gvcf"]) == ["gvcf"]


@pytest.mark.parametrize("call,name", [
    (lambda: RT.runtime_table(None, "md,ddpm"), "methods"), (lambda: RT.check_methods(""), "methods"),
])
def test_bad_input_raises_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_runtime_table_times_elastic_on_the_same_canvas(tiny_pipe):
    """ElasticDiffusion's row: generate_elastic on the table's canvas, DDIM at the table's steps, scaled as MD's."""
    from gvcf.engine.models import Model

    df = RT.runtime_table(Model.from_pipeline(tiny_pipe), "md,elastic", repeats=1, steps=2, width=64, stride=8)
    r = df.set_index("method")
    assert r.loc["elastic", "sampler"] == "ddim" and r.loc["elastic", "steps"] == 2
    assert r.loc["elastic", "reported_mean_s"] == pytest.approx(r.loc["elastic", "mean_s"] * 25)   # to DDIM 50
