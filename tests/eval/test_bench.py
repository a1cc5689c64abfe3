"""gvcf bench: the comparison's rows and counted work, and SD 2 base's architecture (the runtime table:
tests/paper/test_runtime.py; the command line's options: tests/test_cli.py)."""
import pytest
import torch

from gvcf.engine import archs
from gvcf.engine.views import canvas
from gvcf.eval import bench, timing

STEPS = 1   # every count below is per step; each UNet call on tiny64's 64-latent views costs ~0.5 s (attention)
WIDTH, STRIDE = 1024, 384   # 512 x 1024 on the tiny64 model: 3 views of 512 px


@pytest.fixture(scope="module")
def table(tiny64):
    return bench.run_bench("tiny64", steps=STEPS, repeats=1, width=WIDTH, stride=STRIDE, model=tiny64,
                           canvas_batch=CANVASES)


CANVASES = 2   # the throughput rows denoise two panoramas per run


def test_run_bench_rows_columns_and_times(table):
    assert list(table["row"]) == list(bench.ROWS) + ["bare_vb1", "bare_vb2", "bare_vb3"]
    for column in ("median_s", "min_s", "max_s", "unet_calls", "unet_rows", "ours_over", "device_name", "torch",
                   "panoramas_per_s"):
        assert column in table.columns
    assert (table["median_s"] > 0).all()
    assert set(table.attrs["ratios"]) == {"ours/bare_unet", "ours/bare_unet from loop cost", "ours/diffusers_all",
                                          "ours/diffusers_vb1", "ours/fastest bare_unet schedule",
                                          "ours/best diffusers", "batch speed-up over loop", "batch/bare_batch"}
    assert table.attrs["ratios"]["ours/bare_unet from loop cost"] >= 1.0   # the loop costs something, not much
    r = table.set_index("row")
    assert r.loc["batch", "panoramas_per_s"] == pytest.approx(CANVASES / r.loc["batch", "median_s"])
    assert table.attrs["ratios"]["batch speed-up over loop"] == pytest.approx(r.loc["loop", "median_s"]
                                                                               / r.loc["batch", "median_s"])
    printed = bench.format_bench(table)
    assert "ours/fastest bare_unet schedule" in printed and "(goal <= 1.02)" in printed and "batch" in printed


def test_every_row_does_the_same_unet_work(table):
    """views x steps view evaluations (x panoramas), x2 rows for the CFG batch; one call per step (all views fit one
    auto-sized call here), per view (vb 1) or per batch of the sweep."""
    views = table.attrs["views"]
    auto = table.attrs["auto_view_batch"]
    assert views == 3 and auto >= views
    r = table.set_index("row")
    assert (r["unet_rows"] == views * STEPS * bench.CFG_ROWS * r["panoramas"]).all()
    assert set(r.loc[["batch", "loop", "bare_batch"], "panoramas"]) == {CANVASES}
    calls = r["unet_calls"]
    assert calls["bare_unet"] == calls["ours"] == calls["diffusers_all"] == calls["ours_noop_unet"] == STEPS
    assert calls["diffusers_vb1"] == calls["bare_vb1"] == views * STEPS and calls["bare_vb2"] == 2 * STEPS
    per_step = -(-CANVASES * views // auto)   # generate_batch's calls: all panoramas' views in auto-sized batches
    assert calls["batch"] == calls["bare_batch"] == per_step * STEPS and calls["loop"] == CANVASES * STEPS


def test_bare_unet_without_cfg_counts_one_row_per_view(tiny64):
    layout = canvas(tiny64, None, WIDTH, STRIDE).layout
    run = bench.bare_unet(tiny64, "a lake", layout, STEPS, guidance_scale=1.0, view_batch_size=2)
    with timing.UNetCounter(tiny64.unet) as counter:
        run()
    assert (counter.calls, counter.rows) == (STEPS * 2, len(layout) * STEPS)   # batches of 2 + 1 views


def test_diffusers_pipeline_denoises_the_same_views(tiny64):
    """Same x_T, same views, same DDIM steps: diffusers' MultiDiffusion loop and gvcf.generate (md) agree."""
    import gvcf

    layout = canvas(tiny64, None, WIDTH, STRIDE).layout
    pipe = bench.panorama_pipeline(tiny64, layout)
    theirs = pipe("a lake", height=512, width=WIDTH, num_inference_steps=STEPS, view_batch_size=3,
                  output_type="latent", generator=torch.Generator("cpu").manual_seed(4)).images
    ours = gvcf.generate(tiny64, "a lake", height=512, width=WIDTH, stride=STRIDE, fusion="md", sampler="ddim",
                         steps=STEPS, seed=4, output_type="latent", progress=False).latents
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_sd2_unet_has_865m_parameters():
    """The paper's UNet (SD 2 base): 865,910,724 parameters, built on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        unet = archs.build_unet("sd2")
    assert sum(p.numel() for p in unet.parameters()) == archs.SD2_UNET_PARAMETERS == 865_910_724
    assert 2 ** (len(archs.SD2_VAE["block_out_channels"]) - 1) == 8
    assert archs.SD2_UNET["sample_size"] * 8 == 512   # native size


def test_tiny64_geometry(tiny64):
    assert tiny64.vae_scale_factor == 8 and tiny64.latent_size == 64 and tiny64.native_size == 512


@pytest.mark.parametrize("call,name", [
    (lambda: bench.run_bench(steps=0), "steps"), (lambda: bench.run_bench(repeats=0), "repeats"),
    (lambda: bench.bench_model("sd3"), "arch"), (lambda: bench.resolve_dtype("float8", "cpu"), "dtype"),
    (lambda: archs.arch_configs("big"), "arch"),
])
def test_bad_input_raises_value_error_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_time_runs_warms_up_counts_then_interleaves():
    calls = []
    t = timing.time_runs({"a": lambda i: calls.append(("a", i)), "b": lambda i: calls.append(("b", i))}, "cpu", 3,
                        warmups={"b": lambda: calls.append(("b", "warm-up"))})
    assert calls == [("a", 0), ("b", "warm-up"), ("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert len(t["a"].seconds) == 3 and (t["a"].unet_calls, t["a"].unet_rows) == (0, 0)
    assert t["a"].std >= 0 and min(t["a"].seconds) <= t["a"].median <= max(t["a"].seconds)
    assert timing.Timing((2.0,)).std == 0.0 and timing.Timing((1.0, 3.0)).mean == 2.0


def test_rows_are_a_table():
    assert bench.ROWS == ("ours", "diffusers_vb1", "diffusers_all", "bare_unet", "ours_noop_unet", "bare_noop_unet",
                          "batch", "loop", "bare_batch")
    assert bench.sweep_batches(9) == [1, 2, 4, 8, 9] and bench.sweep_batches(1) == [1] and bench.sweep_batches(4) == [1, 2, 4]
    assert all(row.runs in bench.RUNNERS for row in bench.BENCH_ROWS)
    assert list(timing.hardware_columns("cpu")) == list(timing.HARDWARE_COLUMNS)


def test_elastic_rows_do_the_unet_work_of_generate_elastic(tiny_pipe):
    """--elastic: generate_elastic against the bare calls it makes: the same calls and rows, counted."""
    from gvcf.engine.elastic import ELASTIC_DEFAULTS, ElasticPlan
    from gvcf.engine.models import Model

    model = Model.from_pipeline(tiny_pipe)   # 8-latent views, VAE factor 2: a 16 x 64 px canvas is 4 views
    df = bench.run_bench("tiny", steps=STEPS, repeats=1, width=64, stride=8, model=model, diffusers=False,
                         sweep=False, canvas_batch=1, elastic=True)
    r = df.set_index("row")
    plan = ElasticPlan.create(model, 16, 64)
    rows = sum(map(sum, plan.step_rows(STEPS, ELASTIC_DEFAULTS["resampling_steps"], ELASTIC_DEFAULTS["repaint"])))
    for name in ("elastic", "bare_elastic", "elastic_noop_unet", "bare_elastic_noop_unet"):
        assert r.loc[name, "unet_rows"] == rows
    assert r.loc["elastic", "unet_calls"] == r.loc["bare_elastic", "unet_calls"]
    assert {"elastic/bare_elastic", "elastic/ours (MD)"} <= set(df.attrs["ratios"])
    assert "elastic/bare_elastic" in bench.format_bench(df)


def test_sync_rows_time_both_gradient_batchings(tiny_pipe):
    """--sync: SyncDiffusion with its views differentiated together and one at a time, the same UNet forward work."""
    from gvcf.engine.models import Model

    model = Model.from_pipeline(tiny_pipe)
    df = bench.run_bench("tiny", steps=STEPS, repeats=1, width=64, stride=8, model=model, diffusers=False,
                         sweep=False, canvas_batch=1, sync=True)
    r = df.set_index("row")
    assert r.loc["sync", "unet_rows"] == r.loc["sync_grad1", "unet_rows"] > r.loc["ours", "unet_rows"]
    assert r.loc["sync", "unet_calls"] < r.loc["sync_grad1", "unet_calls"]
    assert {"sync one view at a time / together", "sync/ours (MD)"} <= set(df.attrs["ratios"])
