"""The command line refuses bad output paths and options before loading a model or benchmarking; `gvcf bench`'s
options."""
import argparse

import pytest

import gvcf
from gvcf import cli
from gvcf.eval import bench


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model or running the bench fails the test: the check must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(gvcf, "load_model", refuse)
    monkeypatch.setattr(bench, "bench_model", refuse)


@pytest.mark.parametrize("output,why", [("/proc/x.png", "cannot write"), (".", "is a directory"),
                                        ("pano.jpgx", "no image extension"), ("pano", "no image extension")])
def test_generate_checks_the_output_path_first(no_model, output, why, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["generate", "--prompt", "a beach", "-o", output])
    assert why in str(done.value.code) and "output" in str(done.value.code)


@pytest.mark.parametrize("stride", ["48,48,48", "a", "48,"])
def test_generate_stride_takes_one_or_two_ints(no_model, stride, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["generate", "--prompt", "a beach", "--stride", stride])
    assert done.value.code == 2 and "--stride" in capsys.readouterr().err


def test_bench_checks_methods_before_benchmarking(no_model):
    with pytest.raises(SystemExit) as done:
        cli.main(["bench", "--methods", "xx"])
    assert "methods" in str(done.value.code)


def test_generate_writes_the_image_atomically(tmp_path, tiny_pipe, monkeypatch):
    monkeypatch.setattr(gvcf, "load_model", lambda *a, **k: tiny_pipe)
    out = tmp_path / "sub" / "pano.png"
    cli.main(["generate", "--prompt", "a beach", "--height", "16", "--width", "48", "--stride", "8",
              "--sampler", "ddim", "--steps", "2", "-o", str(out)])
    from PIL import Image

    assert Image.open(out).size == (48, 16) and [p.name for p in out.parent.iterdir()] == ["pano.png"]


def test_generate_method_elastic_is_generate_elastics_image(tmp_path, tiny_pipe, monkeypatch):
    import numpy as np
    from PIL import Image

    monkeypatch.setattr(gvcf, "load_model", lambda *a, **k: tiny_pipe)
    out = tmp_path / "elastic.png"
    cli.main(["generate", "--method", "elastic", "--prompt", "a beach", "--height", "16", "--width", "48",
              "--steps", "2", "--seed", "3", "-o", str(out)])
    want = gvcf.generate_elastic(tiny_pipe, "a beach", height=16, width=48, steps=2, seed=3, progress=False).image
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(want))


@pytest.mark.parametrize("flag", [["--stride", "8"], ["--alpha", "0.4"], ["--sampler", "ddpm"]])
def test_generate_method_elastic_refuses_fusion_flags_first(no_model, flag):
    with pytest.raises(SystemExit) as done:
        cli.main(["generate", "--method", "elastic", "--prompt", "a beach", *flag])
    assert flag[0] in str(done.value.code)


def test_bench_cli_options():
    args = cli.add_bench_arguments(argparse.ArgumentParser()).parse_args(
        ["--arch", "sd2", "--dtype", "bfloat16", "--compile", "--methods", "md,sync", "--ddpm-steps", "20",
         "--csv", "out.csv", "--repeats", "2"])
    assert (args.arch, args.dtype, args.compile, args.methods, args.ddpm_steps, args.repeats) == \
        ("sd2", "bfloat16", True, "md,sync", 20, 2)
    assert cli.add_bench_arguments(argparse.ArgumentParser()).parse_args([]).arch == "tiny64"


@pytest.mark.parametrize("flags,name", [(["--alpha", "nan"], "alpha"), (["--alpha", "1.5"], "alpha"),
                                        (["--guidance-scale", "inf"], "guidance_scale"), (["--seed", "-1"], "seed"),
                                        (["--steps", "0"], "steps"), (["--eta", "2", "--sampler", "ddim"], "eta"),
                                        (["--view-batch-size", "0"], "view_batch_size"), (["--width", "-64"], "width"),
                                        (["--eta", "0.5"], "eta")])   # eta with the default sampler, ddpm
def test_generate_checks_its_numbers_before_loading_a_model(no_model, tmp_path, flags, name):
    """Issue 27 probing: these were refused only after the model had loaded (minutes for Stable Diffusion 2)."""
    with pytest.raises(SystemExit) as done:
        cli.main(["generate", "--prompt", "a beach", "-o", str(tmp_path / "x.png"), *flags])
    assert str(done.value.code).startswith("gvcf: error: ") and name in str(done.value.code)


def _clean_exit(argv) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert isinstance(done.value.code, str) and done.value.code.startswith("gvcf: error: ")
    return done.value.code


def test_broken_folders_and_missing_paths_are_clean_errors_not_tracebacks(tmp_path):
    """Issue 27 items 5 and 7: a broken model folder ended in an OSError traceback, model-card on a missing folder
    in a FileNotFoundError, dataset evaluate on one in 'feats_a must be a 2-D array ... (0, 2048)'."""
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{not json")
    assert "model_index.json is not valid JSON" in _clean_exit(
        ["generate", "--prompt", "a", "--model", str(broken), "-o", str(tmp_path / "x.png")])
    assert "model_dir /no/such: no such folder" in _clean_exit(["model-card", "--model-dir", "/no/such",
                                                               "--render-only"])
    assert "generated /no/such: no such folder" in _clean_exit(["dataset", "evaluate", "--generated", "/no/such",
                                                               "--reference", str(tmp_path)])


def test_a_non_finite_training_setting_and_bench_steps_are_refused_first(no_model, tmp_path):
    assert "--set unet_lr: expected a finite float, got 'nan'" in _clean_exit(
        ["train-embedded", "--out", str(tmp_path / "t"), "--set", "unet_lr=nan"])
    assert "--ddpm-steps" in _clean_exit(["bench", "--ddpm-steps", "0"])


def test_bench_refuses_fast_paths_with_compile_before_benchmarking(no_model):
    """--fast-paths times torch.compile beside eager itself: with --compile its 'eager' rows would be compiled."""
    with pytest.raises(SystemExit) as done:
        cli.main(["bench", "--fast-paths", "--compile"])
    assert "--fast-paths" in str(done.value.code) and "--compile" in str(done.value.code)
