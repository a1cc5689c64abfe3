"""gvcf.paper.experiments: parameter resolution, the method names, the paper's tables and claims, fused-noise variance, the
fast FID, SSIM and seam tables, and a chapter's image sets on a tiny random model (cached, never regenerated)."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from gvcf.engine.archs import SD2_SCHEDULER
from gvcf.paper import experiments as E
from gvcf.paper import claims as C
from gvcf.paper import constants as K
from gvcf.paper import methods as M
from gvcf.paper import runtime as RT
from gvcf.paper import tables as T
from gvcf.eval import metrics
from gvcf.engine.views import ViewLayout, stride_pixels


# ----------------------------------------------------------------------------- parameters

def test_steps_device_paths(tmp_path):
    assert E.steps_for("ddim", None, 10, 20) == 10 and E.steps_for("ddpm", None, 10, 20) == 20
    assert E.steps_for("ddpm", 7, 10, 20) == 7
    with pytest.raises(ValueError, match="steps"):
        E.steps_for("ddim", 0, 10, 20)
    assert E.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert E.resolve_device("cpu") == "cpu" and E.resolve_device(None) == E.resolve_device("auto")
    for bad in ("tpu", "cuda:x", "cuda:-1", "CPU", "", 0):
        with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"):
            E.resolve_device(bad)
    if torch.cuda.is_available():
        assert E.resolve_device("cuda:0") == "cuda:0"
        with pytest.raises(ValueError, match="device='cuda:99': only"):
            E.resolve_device("cuda:99")
    else:
        for name in ("cuda", "cuda:0"):
            with pytest.raises(ValueError, match=rf"device='{name}': no CUDA device is visible"):
                E.resolve_device(name)
    assert E.resolve_path(tmp_path) == tmp_path
    assert E.resolve_path("../results") == T.ROOT / "results"   # relative to notebooks/, whatever the cwd
    assert T.fraction_label(0.75) == "3/4" and T.fraction_label(0.125) == "1/8" and stride_pixels(487, 4, 0.1) == 48


def test_method_names():
    assert M.method("MD") == M.Method("MD", "md", "ddim")
    assert M.method("VCF+GF+SA0.4") == M.Method("VCF+GF+SA0.4", "gvcf", "ddpm", 0.4)
    assert M.method("GF+VCF").fusion == "gvcf"
    sync = M.method("Sync")
    assert sync.sync and sync.dataset_method == "sync" and sync.sampler == "ddim"
    assert M.method("MD", "ddpm").sampler == "ddpm" and M.method("MD+SA0.1").alpha == 0.1
    elastic = M.method("Elastic")
    assert elastic.reproduced and elastic.dataset_method == "elastic" and elastic.sampler == "ddim"
    with pytest.raises(ValueError, match="Style Alignment"):
        M.method("Elastic+SA0.4")
    with pytest.raises(ValueError, match="unknown method"):
        M.method("XD")
    grid = M.method_grid()
    assert list(grid["method"]) == list(K.TABLE2_METHODS)
    assert set(grid["method"]) == set(T.paper_table("table2")["method"])
    elastic = grid.set_index("method").loc["Elastic"]
    assert elastic["note"] == "" and elastic["fusion"] == "elastic" and elastic["weights"] == "n/a"
    assert (grid.set_index("method").loc[["VCF", "VCF+GF", "VCF+SA0.4", "VCF+GF+SA0.4"], "sampler"] == "DDPM").all()


# ----------------------------------------------------------------------------- the paper's tables

def _table1(md=10.0, gf=9.0):
    return pd.DataFrame([dict(stride=s, fusion=f, fid=(md if f == "MD" else gf) - s / 16, kid_e3=1.0,
                              giqa_qs=0.5 if f == "GF" else 0.4, giqa_ds=0.3, clip=None)
                         for s in (16, 32, 48) for f in ("MD", "GF")])


def test_compare_with_paper_shapes():
    t1 = T.compare_with_paper(_table1(), "table1", native=64)
    assert len(t1) == 6 and list(t1[("stride (paper, px)", "")]) == [128, 128, 256, 256, 384, 384]
    assert list(t1[("stride (ours, px)", "")]) == [16, 16, 32, 32, 48, 48]
    assert ("fid", "ours") in t1.columns and ("fid", "paper") in t1.columns and ("clip", "paper") in t1.columns
    assert t1[("fid", "paper")].iloc[-1] == 14.88 and math.isnan(t1[("clip", "ours")].iloc[0])
    ours2 = pd.DataFrame([dict(sampler="DDIM", method="MD", fid=5.0, kid_e3=1.0, giqa_qs=1, giqa_ds=1, clip=None),
                          dict(sampler="DDPM", method="DDPM+MD", fid=50.0, kid_e3=9.0, giqa_qs=1, giqa_ds=1, clip=None)])
    t2 = T.compare_with_paper(ours2, "table2")
    assert len(t2) == 11   # the paper's ten rows (ours n/a where missing) + our extra row
    assert list(t2[("method", "")])[:3] == ["MD", "Sync", "Elastic"] and t2[("method", "")].iloc[-1] == "DDPM+MD"
    assert t2[("fid", "ours")].iloc[0] == 5.0 and math.isnan(t2[("fid", "ours")].iloc[2])
    t3 = T.compare_with_paper(pd.DataFrame([dict(sampler="DDIM", method="MD", runtime_mean_s=1.0, runtime_std_s=0.1)]),
                              "table3")
    assert len(t3) == 5 and t3[("runtime_mean_s", "paper")].iloc[0] == 9.70
    m = pd.DataFrame(np.eye(3), index=["MD", "MD+SA0.1", "Sync"], columns=["MD", "MD+SA0.1", "Sync"])
    m.loc["Sync", "MD+SA0.1"] = m.loc["MD+SA0.1", "Sync"] = 0.8
    t4 = T.compare_with_paper(E.ssim_pairs(m), "table4")
    assert len(t4) == 3 and t4[("ssim", "ours")].iloc[2] == 0.8 and t4[("ssim", "paper")].iloc[2] == 0.74
    shown = T.format_table(t1)
    assert shown.iloc[0][("CLIP↑", "ours")] == "n/a" and shown.iloc[0][("FID↓", "paper")] == "20.60"
    # standard_errors' statistics of a metric are labelled by the metric's short name; other names stay as they are
    errors = pd.DataFrame([{"method": "MD", "intra_lpips": 0.4, "intra_lpips SE": 0.01, "kid_e3 low": 1.0, "n": 6,
                            "stride (view)": "1/4"}])
    assert list(T.format_table(errors).columns) == ["method", "Intra-LPIPS↓", "Intra-LPIPS SE", "KID low", "n",
                                                    "stride (view)"]


# ----------------------------------------------------------------------------- measurements without a UNet

DDPM_CONFIG = SD2_SCHEDULER


def test_fused_noise_variance_ratios():
    layout = ViewLayout.create(16, 112, 16, 12)     # the bundled model's canvas at stride 3/4 (latent pixels)
    table = E.fused_noise_variance("ddpm", DDPM_CONFIG, 10, layout, draws=2)
    assert set(table["method"]) == {"md", "gf", "vcf", "gvcf"} and table["step"].nunique() == 10
    ratio = table.groupby("method")["ratio"].mean()
    assert abs(ratio["vcf"] - 1) < 0.08 and abs(ratio["gvcf"] - 1) < 0.08
    assert ratio["md"] < 0.8 and abs(ratio["md"] - E.expected_md_ratio(layout)) < 0.05
    assert E.expected_md_ratio(layout) == pytest.approx(0.5)
    assert (table.groupby("method")["ratio_single"].mean().sub(1).abs() < 0.1).all()   # one view: untouched
    checked = C.check_all(["Eq. 11-14"], E.variance_results(table))
    assert [c.verdict for c in checked] == ["holds"] * 3 and all(c.comparison.n == 10 for c in checked)
    with pytest.raises(ValueError, match="deterministic"):
        E.fused_noise_variance("ddim", DDPM_CONFIG, 5, layout)
    with pytest.raises(ValueError, match="overlap"):
        E.fused_noise_variance("ddpm", DDPM_CONFIG, 5, ViewLayout.create(16, 32, 16, 16))


def test_ssim_seams_sharpness_profile():
    rng = np.random.default_rng(1)
    sets = {n: [rng.integers(0, 256, (16, 48, 3), dtype=np.uint8) for _ in range(2)] for n in ("a", "b", "c")}
    sets["c"] = sets["a"]
    table = E.ssim_table(sets)
    pd.testing.assert_frame_equal(table, metrics.ssim_matrix(sets))
    assert table.loc["a", "c"] == pytest.approx(1.0)
    per = E.ssim_results(sets)
    (ab,) = per.select(row="a", col="b")
    assert ab.n == 2 and ab.values["ssim"][1] == pytest.approx(metrics.ssim(sets["a"][1], sets["b"][1]))
    assert len(per.sets) == 6 and per.select(row="b", col="a")[0].values["ssim"].tolist() == ab.values["ssim"].tolist()
    smooth = np.tile(np.linspace(0, 255, 48).astype(np.uint8)[None, :, None], (16, 1, 3))
    seamed = smooth.copy()
    seamed[:, 24:] = np.clip(seamed[:, 24:].astype(int) + 60, 0, 255).astype(np.uint8)
    seam = E.seam_table({("x", "MD"): ([seamed], [24]), ("x", "GF"): ([smooth], [24])})
    assert seam.set_index("method").loc["MD", "seam_score"] > 2 > seam.set_index("method").loc["GF", "seam_score"]
    blurred = np.full((16, 16, 3), 128, np.uint8)
    assert E.sharpness(blurred) == 0 < E.sharpness(sets["a"][0])
    share = E.guided_profile(ViewLayout.create(16, 112, 16, 12), "gf")
    np.testing.assert_allclose(share.sum(0), 1.0, atol=1e-5)
    md = E.guided_profile(ViewLayout.create(16, 112, 16, 12), "md")
    assert md.max() == 1.0 and md[md > 0].min() == pytest.approx(0.5)


# ----------------------------------------------------------------------------- a chapter on a tiny model

@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, tiny_pipe):
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_pipe.save_pretrained(path)
    return path


def test_setup_datasets_are_cached_and_share_noise(tiny_folder, tmp_path, capsys):
    S = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path), ddim_steps=2, ddpm_steps=3,
                width_views=3, stride=None)
    assert (S.native, S.factor, S.stride, S.width) == (16, 2, 12, 48)
    assert len(S.layout()) == 4 and S.seams() == [12, 16, 24, 28, 32, 40]
    assert "stride 12 px = 3/4 of a view (the paper's 384 px): 4 views" in S.describe()
    prompts = ["a beach with palm trees"]
    md = S.panoramas("MD", prompts, 2)
    assert len(md) == 2 and md[0].shape == (16, 48, 3) and md[0].dtype == np.uint8
    assert "MD (ddim, stride 12, alpha 0.0): made 2 image(s)" in capsys.readouterr().out
    again = S.panoramas("MD", prompts, 1)      # a subset of a finished set: nothing generated
    assert capsys.readouterr().out == "" and np.array_equal(again[0], md[0])
    cfg = S.config("VCF+GF+SA0.4", prompts, 1)
    assert (cfg.method, cfg.sampler, cfg.steps, cfg.alpha, cfg.stride) == ("gvcf", "ddpm", 3, 0.4, 12)
    assert cfg.output.startswith(str(tmp_path))
    assert S.config("MD", prompts, 1, sampler="ddpm").sampler == "ddpm"
    elastic = S.config("Elastic", prompts, 1)   # ElasticDiffusion: DDIM, no stride or Style Alignment
    assert (elastic.method, elastic.sampler, elastic.steps, elastic.alpha, elastic.stride) == ("elastic", "ddim", 2, 0.0,
                                                                                               None)
    # the same initial noise for every method: image k of a prompt has one seed whatever the method
    seeds = {S.config(m, prompts, 1).items()[0]["image_seed"] for m in ("MD", "GF", "VCF", "Sync")}
    assert len(seeds) == 1
    ref = S.reference(prompts, 3)
    assert len(E.images(ref)) == 3 and E.images(ref)[0].shape == (16, 16, 3)
    # a set made elsewhere (dataset_dir) is found by its images' keys, whatever its folder's name
    other = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path / "elsewhere"), ddim_steps=2,
                    ddpm_steps=3, width_views=3, dataset_dir=str(tmp_path))
    assert other.config("MD", prompts, 2).output == S.config("MD", prompts, 2).output
    assert other.config("GF", prompts, 1).output.startswith(str(tmp_path / "elsewhere"))


@pytest.mark.slow
def test_metric_row_on_sets_and_arrays(tiny_folder, tmp_path):
    S = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path), ddim_steps=2, ddpm_steps=2,
                width_views=2, stride=8, verbose=False)
    prompts = ["a beach with palm trees"]
    gen, ref = S.dataset("GF", prompts, 1), S.reference(prompts, 3)
    row = S.metric_row(gen, ref)
    assert (row["n_tiles"], row["n_reference"], row["giqa_k"]) == (2, 3, 2)
    assert row["clip"] is None and row["clip_note"] == metrics.CLIP_UNAVAILABLE
    assert all(np.isfinite(row[k]) for k in ("fid", "kid_e3", "giqa_qs", "giqa_ds"))
    assert list((tmp_path).glob("gf-*/features-tiles16-clean.npz"))
    cached = S.metric_row(gen, ref)
    arrays = S.metric_row(E.images(gen), E.images(ref))
    for k in ("fid", "kid_e3", "giqa_qs", "giqa_ds"):
        assert cached[k] == row[k] and arrays[k] == pytest.approx(row[k], rel=1e-4, abs=1e-4)


@pytest.mark.slow
def test_results_are_the_metric_rows_numbers_per_panorama(tiny_folder, tmp_path):
    """The claims' per-panorama results come from the metric rows' feature cache, and on all the panoramas give the
    metric row's FID and GIQA (one metric row, one cache)."""
    S = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path), ddim_steps=2, ddpm_steps=2,
                width_views=2, stride=8, verbose=False)
    prompts = ["a beach with palm trees"]
    gen, ref = S.dataset("GF", prompts, 3), S.reference(prompts, 4)
    row = S.metric_row(gen, ref)
    R = E.results(S, {("GF",): gen}, ("method",), ref, values=("seam_score", "sharpness"))
    (s,) = R.select(method="GF")
    assert s.n == 3 and s.features["clean"].shape == (3, 2, 2048) and R.reference.giqa_k == row["giqa_k"]
    for k in ("fid", "giqa_qs", "giqa_ds"):
        assert R.value(s, k, range(3)) == pytest.approx(row[k], rel=1e-9), k
    assert np.isfinite(R.value(s, "kid_e3", [0, 0, 2]))
    assert s.values["sharpness"][1] == pytest.approx(E.sharpness(E.image_paths(gen)[1]))
    with pytest.raises(ValueError, match="values must be among"):
        E.results(S, {("GF",): gen}, ("method",), values=("colour",))


def test_runtime_table_beside_the_paper(tiny_folder, tmp_path):
    S = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path), ddim_steps=2, ddpm_steps=3,
                width_views=2, stride=8, verbose=False)
    R = RT.runtime(S, "a beach with palm trees", repeats=2, methods=("md", "gf", "vcf"))
    assert list(R["method"]) == ["MD", "GF", "VCF"] and list(R["sampler"]) == ["DDIM", "DDIM", "DDPM"]
    assert list(R["steps"]) == [2, 2, 3] and list(R["paper_steps"]) == [50, 50, 1000]
    assert (R["scaled_mean_s"] > R["runtime_mean_s"]).all() and "device_name" in R.attrs
    runs = RT.runtime_results(R)
    assert runs.unit == "timed runs" and [s.n for s in runs.sets] == [2, 2, 2]
    assert np.mean(runs.select(method="VCF")[0].values["seconds"]) == pytest.approx(R["scaled_mean_s"].iloc[2])
    shown = RT.runtime_comparison(R).set_index("method")
    assert list(shown.index) == ["MD", "Sync", "Elastic", "GF", "VCF"]
    assert shown.loc["Elastic", "ours, s"] == M.NOT_REPRODUCED and shown.loc["Sync", "paper ÷ MD"] == "10.5"
    assert shown.loc["MD", "ours ÷ MD"] == "1.0" and "±" in shown.loc["VCF", "ours, s"]
    assert "caveat" not in S.caveat() and "not comparable" in S.caveat()


def test_model_tag_follows_everything_that_defines_the_bundled_model(tmp_path, monkeypatch):
    import gvcf.engine.models
    from gvcf.paper.experiments import model_tag

    folder = tmp_path / gvcf.engine.models.EMBEDDED_FOLDER
    for rel, text in {"model_index.json": "{}", "unet/diffusion_pytorch_model.safetensors": "w",
                      "scheduler/scheduler_config.json": '{"clip_sample": true}', "README.md": "card"}.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    monkeypatch.setattr(gvcf.engine.models, "models_root", lambda: tmp_path)
    tag = model_tag("embedded")
    assert tag.startswith("embedded@") and model_tag("some/hub-id") == "some/hub-id"
    (folder / "README.md").write_text("a re-measured card")        # documentation: the same model
    assert model_tag("embedded") == tag
    (folder / "scheduler/scheduler_config.json").write_text('{"clip_sample": false}')   # another sampler: not
    assert model_tag("embedded") != tag


def test_calibration_value_interpolates_the_first_crossing():
    assert E.calibration_value([0.0, 0.5, 1.0], [1.0, 0.6, 0.2], 0.3) == (pytest.approx(0.875), True)
    assert E.calibration_value([1.0, 0.0], [0.2, 1.0], 0.6) == (pytest.approx(0.5), True)     # any order
    assert E.calibration_value([0.0, 0.5, 1.0], [1.0, 0.9, 0.8], 0.3) == (1.0, False)          # never reached


@pytest.mark.slow
def test_calibrate_sweeps_a_knob_against_md(tiny_folder, tmp_path):
    S = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path), ddim_steps=2, width_views=2,
                stride=8, verbose=False)
    prompts = ["a beach with palm trees"]
    with pytest.raises(ValueError, match="knob"):
        E.calibrate(S, "guidance", [0, 1], prompts, 1)
    with pytest.raises(ValueError, match="values"):
        E.calibrate(S, "alpha", [0.5], prompts, 1)
    assert not list(tmp_path.iterdir())                       # refused before any image was made
    c = E.calibrate(S, "alpha", [0.0, 1.0], prompts, 2)
    assert c.ssim[0] == pytest.approx(1.0) and c.ssim[1] < 1.0   # alpha 0 is MD itself
    assert c.target == 0.30 and c.n == 2 and c.values == (0.0, 1.0)   # the paper's SSIM(MD+SA0.1, MD)
    s0, s1 = c.ssim   # SSIM to MD at alpha 0 and 1: the crossing of 0.30 on the segment, else the nearer end
    expected = (s0 - 0.30) / (s0 - s1) if s1 <= 0.30 else (1.0 if abs(s1 - 0.30) < abs(s0 - 0.30) else 0.0)
    assert abs(c.value - expected) <= 0.005 + 1e-12   # c.value is rounded to 2 decimals
    sets = E.calibrated_sets(S, {"alpha": c}, prompts, 2)
    assert list(sets) == ["MD", "MD+SA0.1"] and sets["MD+SA0.1"].alpha == c.value
    assert "SSIM to MD against alpha (0: 1.00" in c.text()


def test_coherence_per_panorama_and_its_intervals(tiny_folder, tmp_path):
    """Intra-LPIPS / Intra-Style-L per panorama are gvcf.eval.coherence's on the image file, and standard_errors
    gives each set's mean with its interval (NaN spread for a single panorama)."""
    from gvcf.eval.coherence import COHERENCE_METRICS, coherence
    from gvcf.eval.inception import load_image

    S = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path), ddim_steps=2, ddpm_steps=2,
                width_views=3, stride=8, verbose=False)
    prompts = ["a beach with palm trees", "a photo of a city skyline at night"]
    sets = {("MD",): S.dataset("MD", prompts, 2), ("GF",): S.dataset("GF", prompts[:1], 1)}
    R = E.results(S, sets, ("method",), values=COHERENCE_METRICS)
    md = R.select(method="MD")[0]
    first = coherence(load_image(E.image_paths(sets[("MD",)])[0]), S.native)
    assert md.values["intra_lpips"][0] == pytest.approx(first["intra_lpips"], rel=1e-6)
    assert md.values["intra_style"][0] == pytest.approx(first["intra_style"], rel=1e-6)
    table = E.standard_errors(R, COHERENCE_METRICS, limits=True).set_index("method")
    for m in COHERENCE_METRICS:
        assert table.loc["MD", m] == pytest.approx(md.values[m].mean())
        assert table.loc["MD", f"{m} low"] <= table.loc["MD", m] <= table.loc["MD", f"{m} high"]
        assert np.isnan(table.loc["GF", f"{m} SE"]) and np.isnan(table.loc["GF", f"{m} low"])
    assert list(table["n"]) == [4, 1]


def test_coherence_cache_sees_a_regenerated_image(tmp_path, monkeypatch):
    """The per-panorama coherence cache is keyed by the file's contents' stamp, not its path alone: an image rewritten
    in the same kernel (a set regenerated) is measured again."""
    import os

    import numpy as np
    from PIL import Image

    from gvcf.paper import per_panorama

    monkeypatch.setattr(per_panorama, "_lpips_vgg", lambda device: None)
    monkeypatch.setattr(per_panorama.coherence, "coherence",
                        lambda image, size, net, device: {"intra_lpips": float(np.asarray(image).mean())})
    per_panorama._file_coherence.cache_clear()
    path = tmp_path / "pano.png"
    Image.fromarray(np.zeros((8, 16, 3), np.uint8)).save(path)
    assert per_panorama._coherence(str(path), 8, "cpu")["intra_lpips"] == 0.0
    Image.fromarray(np.full((8, 16, 3), 200, np.uint8)).save(path)
    os.utime(path, ns=(1, 10**18))   # a distinct modification time even on a coarse clock
    assert per_panorama._coherence(str(path), 8, "cpu")["intra_lpips"] == 200.0
    per_panorama._file_coherence.cache_clear()
