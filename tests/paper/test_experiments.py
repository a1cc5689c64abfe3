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
    assert not M.method("Elastic").reproduced
    with pytest.raises(ValueError, match="unknown method"):
        M.method("XD")
    grid = M.method_grid()
    assert list(grid["method"]) == list(K.TABLE2_METHODS)
    assert set(grid["method"]) == set(T.paper_table("table2")["method"])
    elastic = grid.set_index("method").loc["Elastic"]
    assert elastic["note"] == M.NOT_REPRODUCED and elastic["fusion"] == "n/a"
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


def _verdicts(kind, ours, **kw):
    return {c.text: c.holds for c in C.claims(kind, ours, **kw)}


def test_claims_follow_the_numbers():
    good = _verdicts("table1", _table1(md=10, gf=9), native=64)
    assert good["GF < MD in FID at stride 1/4 (paper 128 px, here 16 px)"] is True
    assert good["GF > MD in GIQA-QS at stride 3/4 (paper 384 px, here 48 px)"] is True
    assert good["GF < MD in KID at stride 1/2 (paper 256 px, here 32 px)"] is False   # a tie does not hold
    assert good["MD's FID falls as the stride grows (1/4 → 1/2 → 3/4 of a view)"] is True
    assert good["MD has the better CLIP score (the paper: at 2 of its 3 strides)"] is None
    bad = _verdicts("table1", _table1(md=9, gf=10), native=64)
    assert bad["GF < MD in FID at stride 1/4 (paper 128 px, here 16 px)"] is False
    text = C.claims_text("table1", _table1(md=9, gf=10), native=64)
    assert "**does not hold** (this run: 9.00 vs 8.00; paper: 17.64 vs 20.60)" in text
    assert "**not checked**" in text and "checked claims hold" in text

    t2 = pd.DataFrame([dict(method=m, fid=f, kid_e3=f / 10) for m, f in
                       [("MD", 12), ("Sync", 13), ("GF", 11), ("MD+SA0.4", 11.5), ("GF+SA0.4", 10.5), ("VCF", 6),
                        ("VCF+GF", 5), ("VCF+SA0.4", 7), ("VCF+GF+SA0.4", 4), ("DDPM+MD", 30)]])
    v2 = _verdicts("table2", t2)
    assert v2["VCF (DDPM) has a lower FID than every DDIM method"] is True
    assert v2["Style Alignment (alpha 0.4) lowers the FID of VCF"] is False
    assert v2["Style Alignment (alpha 0.4) lowers the FID of GF"] is True
    assert v2["Sync < MD in FID (nearly equal in the paper)"] is False
    assert v2["VCF+GF+SA0.4 has the best FID of all methods"] is True

    t3 = pd.DataFrame([dict(method=m, runtime_mean_s=s) for m, s in [("MD", 1.0), ("GF", 1.05), ("Sync", 1.5),
                                                                    ("VCF", 40.0), ("VCF+GF", 41.0)]])
    v3 = _verdicts("table3", t3)
    assert v3["SyncDiffusion is about 10x slower than MD (DDIM)"] is False
    assert v3["GF costs the same as MD (within 15 %)"] is True

    m = pd.DataFrame([[1, .3, .3], [.3, 1, .7], [.3, .7, 1]], index=["MD", "MD+SA0.1", "Sync"],
                     columns=["MD", "MD+SA0.1", "Sync"])
    assert all(_verdicts("table4", m).values())
    m.loc["Sync", "MD+SA0.1"] = m.loc["MD+SA0.1", "Sync"] = 0.2
    assert not any(_verdicts("table4", m).values())

    fig5 = pd.DataFrame([dict(method=f, alpha=a, fid=(10 if f == "MD" else 9) - a, giqa_ds=1 + a)
                         for f in ("MD", "GF") for a in (0, 0.5, 1)])
    v5 = _verdicts("fig5", fig5)
    assert v5["GF: as alpha grows, quality improves: FID falls"] is True
    assert v5["GF: as alpha grows, diversity drops: GIQA-DS falls"] is False
    assert v5["GF beats MD in FID at every alpha"] is True and v5["GF beats MD in GIQA-DS at every alpha"] is False

    md_seams = {8: 1.2, 16: 1.5, 32: 2.5, 48: 1.6}
    seams = pd.DataFrame([dict(stride=s, method=m, seam_score=1.1 if m == "GF" else md_seams[s])
                          for s in md_seams for m in ("MD", "GF")])
    least_most = ("MD's seams are least visible at the smallest stride (the paper's 64 px) and most at 1/2 of a view "
                  "(256 px)")
    vs = _verdicts("seams", seams, native=64)
    assert vs["GF shows weaker seams than MD at stride 8 px (1/8 of a view)"] is True and vs[least_most] is True
    seams.loc[(seams["stride"] == 48) & (seams["method"] == "MD"), "seam_score"] = 3.0
    assert _verdicts("seams", seams, native=64)[least_most] is False
    with pytest.raises(ValueError, match="kind"):
        C.claims("table9", seams)


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
    assert all(C.claims("variance", table)[i].holds for i in range(3))
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
    with pytest.raises(ValueError, match="not reproduced"):
        S.config("Elastic", prompts, 1)
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


def test_runtime_table_beside_the_paper(tiny_folder, tmp_path):
    S = E.setup(model=str(tiny_folder), device="cpu", results_dir=str(tmp_path), ddim_steps=2, ddpm_steps=3,
                width_views=2, stride=8, verbose=False)
    R = RT.runtime(S, "a beach with palm trees", repeats=2, methods=("md", "gf", "vcf"))
    assert list(R["method"]) == ["MD", "GF", "VCF"] and list(R["sampler"]) == ["DDIM", "DDIM", "DDPM"]
    assert list(R["steps"]) == [2, 2, 3] and list(R["paper_steps"]) == [50, 50, 1000]
    assert (R["scaled_mean_s"] > R["runtime_mean_s"]).all() and "device_name" in R.attrs
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
