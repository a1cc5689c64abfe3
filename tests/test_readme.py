"""Every command the README shows is run here, as a user copies it, with only its size arguments shrunk.

`readme_commands()` reads them off README.md (its bash blocks and its inline `gvcf ...`, `make ...`,
`python -m ...` and `.venv/bin/...` spans), and RUNS says how each is exercised: the command itself with
fewer steps or images (SHRINK), a check that it fails cleanly where it cannot work here (no GPU, no internet),
or the test or check that covers it elsewhere. A command added to the README without an entry fails
`test_every_readme_command_is_exercised`, so the README cannot show a command that no test runs.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
PROGRAMS = ("gvcf ", "make ", "python -m ", ".venv/bin/", "huggingface-cli ")


def readme_commands(text: str | None = None) -> list[str]:
    """Shell commands of the README: lines of ```bash blocks (continuations joined, comments dropped), and inline
    code spans that start with one of PROGRAMS."""
    text = README.read_text() if text is None else text
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    commands += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose) if span.startswith(PROGRAMS)]
    return list(dict.fromkeys(commands))


GENERATE = ('gvcf generate --prompt "A beach with palm trees" --width 448 --fusion gvcf --sampler ddpm --stride 48 '
            '--alpha 0.4 --seed 0 -o pano.png')
CHAPTER = ".venv/bin/papermill notebooks/02_guided_fusion.ipynb out.ipynb -p prompts '[\"A beach with palm trees\"]' -p stride 32"
SD2_CHAPTER = ".venv/bin/papermill notebooks/03_variance_corrected_fusion.ipynb out.ipynb -p model stabilityai/stable-diffusion-2-base -p device cuda"
DATASET = ("gvcf dataset generate --config data/configs/cpu-example.yaml",
           "gvcf dataset crop --src results/datasets/cpu-example --dst results/datasets/cpu-example-tiles --size 64",
           "gvcf dataset generate --config data/configs/cpu-reference.yaml",
           "gvcf dataset evaluate --generated results/datasets/cpu-example-tiles --reference results/datasets/cpu-reference")
TRAIN = ("gvcf train-embedded --out my-model",
         "gvcf train-embedded --out my-model --set decoder_lr=1e-3 --retrain-stale --overwrite")
# --smoke (4 steps a stage) and smaller batches and sets: the sizes of a training run, nothing else
TRAIN_SHRINK = " --smoke" + "".join(f" --set {k}={v}" for k, v in dict(
    n_latents=64, eval_views=4, vae_batch=4, unet_batch=4, decoder_batch=2).items())
PAPER_DATASET = "gvcf dataset generate --config data/configs/paper-md-ddim.yaml"
BOOK_RERUN = "python -m gvcf.book run --profile book --notebooks 02_guided_fusion --force"

# how each README command is exercised: "run" (here, shrunk), "fails cleanly" (here), or where else
RUNS = {
    "make book": "by hand before each release (the session notes give its time); `gvcf.book check` tests the build",
    "make test": "CI runs it (.ci/run)",
    "make smoke-book": "nbval runs every notebook at the smoke defaults in `make test`",
    "make book PROFILE=paper": "tests/test_profiles.py runs every chapter under the paper profile on a stand-in model",
    "make clean": "run", "make clean-results": "run",
    GENERATE: "run", "gvcf bench": "run", CHAPTER: "run", SD2_CHAPTER: "fails cleanly",
    BOOK_RERUN: "run", "python -m gvcf.engine.assets": "run", **{c: "run" for c in DATASET + TRAIN},
    "make venv": "make test runs it first", PAPER_DATASET: "fails cleanly",
    "gvcf train-embedded --overwrite": "the 72-minute retrain of the bundled model itself: by hand only; its refusal "
                                       "without --overwrite is test_the_bundled_model_is_not_overwritten_by_default",
    "gvcf model-card": "tests/test_modelcard.py renders a QUICK card of a tiny model",
    **{name: "names a command run above" for name in ("gvcf train-embedded", "python -m gvcf.book run",
                                                       ".venv/bin/gvcf", ".venv/bin/python -m gvcf.cli")},
    "huggingface-cli download stabilityai/stable-diffusion-2-base --local-dir sd2-base":
        "needs the internet and the SD 2 weights: never here; loading such a folder is tests/test_models.py's",
}


def test_every_readme_command_is_exercised():
    assert set(readme_commands()) == set(RUNS), "README commands without an entry in RUNS, or stale entries"


def test_readme_commands_parser():
    text = "```bash\nmake x   # note\n# comment\ngvcf a \\\n    --b 1\n```\nuse `gvcf y --z`, not `gvcf.fuse`.\n"
    assert readme_commands(text) == ["make x", "gvcf a --b 1", "gvcf y --z"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A working folder laid out like the repository (notebooks, data, profiles), so relative README paths work
    and every output (pano.png, out.ipynb, results/, my-model) lands in it, not in the checkout."""
    home = tmp_path_factory.mktemp("user")
    for name in ("notebooks", "data", "Makefile"):
        (home / name).symlink_to(ROOT / name)
    (home / "book").mkdir()
    (home / "book" / "profiles").symlink_to(ROOT / "book" / "profiles")
    (home / ".venv").symlink_to(BIN.parent)
    return home


def sh(home: Path, command: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a README command in `home` as a user's shell would, `gvcf` and `python` from this environment."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", HF_HUB_OFFLINE="1",
               OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(ROOT))
    return subprocess.run(command, shell=True, cwd=home, env=env, capture_output=True, text=True, timeout=timeout)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def shrunk_config(home: Path, name: str, **counts) -> str:
    """data/configs/<name>.yaml with only its counts changed, written beside it in `home`."""
    data = yaml.safe_load((ROOT / "data" / "configs" / f"{name}.yaml").read_text()) | counts
    path = home / f"{name}-shrunk.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path.relative_to(home))


def test_generate(home):
    from PIL import Image

    ok(sh(home, GENERATE + " --steps 3"))   # the literal line (DDPM-1000) is timed in the README
    assert Image.open(home / "pano.png").size == (448, 64)


def test_the_python_example(home):
    block = re.search(r"```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    assert "seed=0)" in block
    code = block.replace("seed=0)", "seed=0, steps=3)")
    ok(subprocess.run([sys.executable, "-c", code], cwd=home, capture_output=True, text=True, timeout=600,
                      env=dict(os.environ, HF_HUB_OFFLINE="1")))
    assert (home / "pano.png").exists()


def test_bench(home):
    done = ok(sh(home, "gvcf bench --width 1024 --steps 1 --repeats 1"))
    assert "ours/bare_unet" in done.stdout


def test_dataset_generate_crop_reference_evaluate(home):
    import json

    ok(sh(home, DATASET[0].replace("data/configs/cpu-example.yaml",
                                   shrunk_config(home, "cpu-example", n_per_prompt=1, steps=3))))
    ok(sh(home, DATASET[1]))
    assert len(list((home / "results/datasets/cpu-example-tiles").glob("*.png"))) == 2 * 7
    ok(sh(home, DATASET[2].replace("data/configs/cpu-reference.yaml",
                                   shrunk_config(home, "cpu-reference", n_per_prompt=2, steps=3))))
    row = json.loads(ok(sh(home, DATASET[3])).stdout)
    assert row["n_generated"] == 14 and row["n_reference"] == 4 and row["fid"] > 0 and row["clip"] is None


def test_train_embedded_and_retrain_stale(home):
    ok(sh(home, TRAIN[0] + TRAIN_SHRINK))
    assert (home / "my-model" / "model_index.json").exists()
    refused = sh(home, TRAIN[0] + TRAIN_SHRINK)   # the folder exists now: never overwritten without a word
    assert refused.returncode != 0 and "--overwrite" in refused.stderr + refused.stdout
    unet = (home / "my-model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    done = ok(sh(home, TRAIN[1] + TRAIN_SHRINK))
    assert "trained from scratch: decoder" in done.stderr   # the decoder alone: the UNet's bytes are kept
    assert (home / "my-model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == unet


def test_the_bundled_model_is_not_overwritten_by_default(home):
    before = (ROOT / "data/models/gvcf-world-64/training_log.csv").read_bytes()
    done = sh(home, "gvcf train-embedded" + TRAIN_SHRINK, timeout=120)
    assert done.returncode != 0 and "--overwrite" in done.stderr + done.stdout
    assert (ROOT / "data/models/gvcf-world-64/training_log.csv").read_bytes() == before


def test_rerun_one_chapter_with_papermill(home):
    ok(sh(home, CHAPTER.replace("out.ipynb", f"out.ipynb -p results_dir {home / 'results'}")))
    assert (home / "out.ipynb").exists()


def test_stable_diffusion_2_without_a_gpu_or_weights_says_what_to_do(home):
    done = sh(home, SD2_CHAPTER.replace("out.ipynb", "sd2.ipynb"))
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert ("no CUDA device" in said) or ("huggingface-cli download" in said), said[-3000:]


def test_a_paper_dataset_without_the_weights_says_how_to_get_them(home):
    done = sh(home, PAPER_DATASET, timeout=300)
    assert done.returncode == 1 and "huggingface-cli download stabilityai/stable-diffusion-2-base" in done.stderr
    assert "Traceback" not in done.stderr


def test_book_rerun_one_chapter(home):
    out = home / "chapters"
    ok(sh(home, BOOK_RERUN.replace("--profile book", "--profile smoke") + f" --out-dir {out}"))
    assert (out / "02_guided_fusion.ipynb").exists()


def test_assets_and_make_clean(home):
    ok(sh(home, "python -m gvcf.engine.assets"))
    for target in ("clean", "clean-results"):
        assert ok(subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)).stdout
