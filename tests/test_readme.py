"""Every command the README shows is run here, as a user copies it, with only its size arguments shrunk.

`readme_commands()` reads them off README.md (its bash blocks and its inline `gvcf ...`, `make ...`,
`python -m ...` and `.venv/bin/...` spans), and RUNS says how each is exercised: the command itself with
fewer steps or images, a check that it fails cleanly where it cannot work here (no GPU, no internet),
or the test or check that covers it elsewhere. A command added to the README without an entry fails
`test_every_readme_command_is_exercised`, so the README cannot show a command that no test runs.

Two tiers (`make test`, `make test-all`): the fast tier calls each command's entry point in this process
(`gvcf.cli.main`, `gvcf.book.runner.main`, the Python example under exec) with the README's own arguments split
as a shell would; the slow tier runs the same lines in a shell as a user types them (a subprocess each, importing
torch again), and the `generate` line as it is printed, DDPM at 1000 steps.

The rest keeps the README's facts tied to the tree: its claim tally equals book/tally.json, its layout names every
module of gvcf/, the module paths that it and book/*.md name exist, and LICENSE, CITATION.cff and pyproject.toml
agree on the licence.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gvcf.paper import claims as C

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
# the fast tier's: narrower networks too (tests/world/test_training.py's SMOKE widths), 2 steps a stage
TRAIN_TINY = TRAIN_SHRINK + "".join(f" --set {k}={v}" for k, v in dict(
    vae_steps=2, unet_steps=2, decoder_steps=2, n_latents=16, vae_channels="8,16,16", unet_channels="16,32,32",
    attention_head_dim=8, text_hidden=16).items())
PAPER_DATASET = "gvcf dataset generate --config data/configs/paper-md-ddim.yaml"
FAST_PATHS = "gvcf bench --arch embedded --fast-paths"
BOOK_RERUN = "python -m gvcf.book run --profile book --notebooks 02_guided_fusion --force"
BOOK_PARAMS = "python -m gvcf.book params --profile book 02_guided_fusion"

# how each README command is exercised: "run" (here, shrunk), "fails cleanly" (here), or where else
RUNS = {
    "make book": "by hand before each release (the session notes give its time); `gvcf.book check` tests the build",
    "make test": "every push (.github/workflows/tests.yml; tests/book/test_workflows.py checks it names it)",
    "make test-all": "CI runs it (.ci/run) and nightly (.github/workflows/tests.yml)",
    "make smoke-book": "nbval runs every notebook at the smoke defaults in `make test`",
    "make book PROFILE=paper": "tests/book/test_profiles.py runs every chapter under the paper profile on a stand-in "
                               "model",
    "make book PROFILE=gpu": "tests/book/test_profiles.py runs every chapter under the gpu profile on a stand-in model "
                             "(on CPU: no GPU is lent to CI)",
    "make clean": "run", "make clean-results": "run",
    GENERATE: "run", "gvcf bench": "run", FAST_PATHS: "run",
    "gvcf generate --method elastic": "run at test size in tests/test_cli.py", CHAPTER: "run", SD2_CHAPTER: "fails cleanly",
    BOOK_RERUN: "run", BOOK_PARAMS: "run", "python -m gvcf.engine.assets": "run",
    **{c: "run" for c in DATASET + TRAIN},
    PAPER_DATASET: "fails cleanly",
    **{name: "names a command run above" for name in (".venv/bin/gvcf", ".venv/bin/python -m gvcf.cli")},
    "gvcf bench --arch sdxl": "SDXL base's 2.6 B-parameter UNet in float32: by hand (the README gives its time and "
                              "memory); its configs are checked and the bench runs at test size (tiny-sdxl) in "
                              "tests/engine/test_sdxl.py",
    "gvcf bench --arch sdxl --width 1024 --steps 1 --repeats 1 --no-sweep --guidance-scale 1.0":
        "by hand, 2026-12-02: 16 min, 15.8 GB peak; too slow for the suite",
    "huggingface-cli download stabilityai/stable-diffusion-2-base --local-dir sd2-base":
        "needs the internet and the SD 2 weights: never here; loading such a folder is tests/engine/test_models.py's",
}


def test_every_readme_command_is_exercised():
    assert set(readme_commands()) == set(RUNS), "README commands without an entry in RUNS, or stale entries"
    named = {path for how in RUNS.values() for path in re.findall(r"tests/[\w/]+\.py", how)}
    assert named and all((ROOT / path).exists() for path in named), sorted(named)


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


def without_datasets(home: Path) -> Path:
    """`home` with no results/datasets: the in-process and the shell dataset tests share `home` and each makes
    the README's datasets afresh (a dataset folder refuses another config's steps)."""
    shutil.rmtree(home / "results" / "datasets", ignore_errors=True)
    return home


def argv(command: str) -> list[str]:
    """A README command's arguments after the program (`gvcf ...`, `python -m gvcf.book ...`), split as a shell
    would."""
    words = shlex.split(command)
    return words[3:] if words[:2] == ["python", "-m"] else words[1:]


@pytest.fixture
def in_home(home, monkeypatch):
    """Run in-process commands from `home`, as the shell tests do."""
    monkeypatch.chdir(home)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


# ----------------------------------------------------------------------------- fast tier: entry points in-process

def test_generate_in_process(in_home):
    from PIL import Image

    from gvcf import cli

    (in_home / "pano.png").unlink(missing_ok=True)
    cli.main(argv(GENERATE) + ["--steps", "3"])
    assert Image.open(in_home / "pano.png").size == (448, 64)


def _python_example(steps: int = 3) -> str:
    block = re.search(r"```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    assert block.count("seed=0)") == 1 and "steps=25)" in block
    return block.replace("seed=0)", f"seed=0, steps={steps})").replace("steps=25)", f"steps={steps})")


def test_the_python_example_in_process(in_home):
    from PIL import Image

    for name in ("pano.png", "regions.png"):
        (in_home / name).unlink(missing_ok=True)
    exec(compile(_python_example(), "README.md", "exec"), {"__name__": "readme_example"})
    assert Image.open(in_home / "pano.png").size == Image.open(in_home / "regions.png").size == (448, 64)


def test_dataset_commands_in_process(in_home, capsys):
    import json

    from gvcf import cli

    without_datasets(in_home)
    cli.main(argv(DATASET[0].replace("data/configs/cpu-example.yaml",
                                     shrunk_config(in_home, "cpu-example", n_per_prompt=1, steps=2))))
    cli.main(argv(DATASET[1]))
    assert len(list((in_home / "results/datasets/cpu-example-tiles").glob("*.png"))) == 2 * 7
    cli.main(argv(DATASET[2].replace("data/configs/cpu-reference.yaml",
                                     shrunk_config(in_home, "cpu-reference", n_per_prompt=2, steps=2))))
    capsys.readouterr()
    cli.main(argv(DATASET[3]))
    row = json.loads(capsys.readouterr().out)
    assert row["n_tiles"] == 14 and row["n_reference"] == 4 and row["fid"] > 0 and row["clip"] is None


def test_train_embedded_in_process(in_home, capsys):
    """The README's two training lines, each with TRAIN_TINY's sizes: a model folder, a refusal to overwrite it,
    and --retrain-stale retraining only the decoder (the UNet's bytes kept)."""
    from gvcf import cli

    out = in_home / "my-model-inproc"
    first, second = (argv(c.replace("my-model", out.name) + TRAIN_TINY) for c in TRAIN)
    cli.main(first)
    assert (out / "model_index.json").exists()
    with pytest.raises(SystemExit) as refused:
        cli.main(first)
    assert "--overwrite" in str(refused.value.code)
    unet = (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    capsys.readouterr()
    cli.main(second)
    assert "trained from scratch: decoder" in capsys.readouterr().err
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == unet


def test_the_bundled_model_is_not_overwritten_by_default_in_process(in_home):
    from gvcf import cli

    before = (ROOT / "data/models/gvcf-world-64/training_log.csv").read_bytes()
    with pytest.raises(SystemExit) as refused:
        cli.main(argv("gvcf train-embedded" + TRAIN_SHRINK))
    assert "--overwrite" in str(refused.value.code)
    assert (ROOT / "data/models/gvcf-world-64/training_log.csv").read_bytes() == before


def test_the_chapter_rerun_passes_only_declared_parameters():
    """The papermill lines pass parameters the notebooks declare (papermill would only warn about others); that
    chapter 02 runs at all is nbval's (and the slow tier's, with these very arguments)."""
    from gvcf.book.runner import declared_parameters

    for command in (CHAPTER, SD2_CHAPTER):
        words = shlex.split(command)
        notebook = ROOT / words[1]
        passed = {words[i + 1] for i, w in enumerate(words) if w == "-p"}
        assert passed and passed <= declared_parameters(notebook), (command, passed)


def test_stable_diffusion_2_without_a_gpu_or_weights_says_what_to_do_in_process(monkeypatch):
    import gvcf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    words = shlex.split(SD2_CHAPTER)
    params = dict(zip(words[4::3], words[5::3]))
    assert words[3::3] == ["-p", "-p"] and set(params) == {"model", "device"}
    with pytest.raises(ValueError) as err:
        gvcf.load_model(params["model"], device=params["device"])
    assert ("no CUDA device" in str(err.value)) or ("huggingface-cli download" in str(err.value)), str(err.value)


def test_a_paper_dataset_without_the_weights_says_how_to_get_them_in_process(in_home):
    from gvcf import cli

    with pytest.raises(SystemExit) as done:
        cli.main(argv(PAPER_DATASET))
    assert "huggingface-cli download stabilityai/stable-diffusion-2-base" in str(done.value.code)


STANDIN_CHAPTER = 'print(f"ran {profile}: n_per_prompt={n_per_prompt}, ddim_steps={ddim_steps}")'


def test_book_rerun_one_chapter_in_process(tmp_path, monkeypatch, capsys):
    """`python -m gvcf.book run ... --force` through its entry point, on a stand-in chapter 02 (the real parameters
    cell, then one print): the profile's parameters reach the kernel, --force reruns an up-to-date chapter. The real
    chapter 02 runs under nbval and, with this line, in the slow tier."""
    import nbformat

    from gvcf.book import runner

    stem = "02_guided_fusion"
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "profiles").symlink_to(ROOT / "book" / "profiles")
    nb = nbformat.read(str(ROOT / "notebooks" / f"{stem}.ipynb"), as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    nb.cells = params + [nbformat.v4.new_code_cell(STANDIN_CHAPTER)]
    nbformat.write(nb, str(tmp_path / "notebooks" / f"{stem}.ipynb"))
    monkeypatch.chdir(tmp_path)
    words = argv(BOOK_RERUN.replace("--profile book", "--profile smoke")) + ["--out-dir", "chapters", "--quiet"]
    for _ in range(2):   # the second run is up to date: --force reruns it
        assert runner.main(words) == 0
        assert f"{stem}: ran" in capsys.readouterr().out
    text = json.dumps(nbformat.read(str(tmp_path / "chapters" / f"{stem}.ipynb"), as_version=4).cells[-1].outputs)
    assert "ran smoke: n_per_prompt=1, ddim_steps=4" in text   # the notebook's own default: smoke sets nothing


def test_assets_in_process(capsys):
    """`python -m gvcf.engine.assets` as python -m runs it: every asset verified by its SHA-256 and named."""
    import runpy

    runpy.run_module(shlex.split("python -m gvcf.engine.assets")[2], run_name="__main__")
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert {"inception", "lpips-vgg", "lpips-alex"} <= set(printed) and all(Path(p).is_file() for p in printed.values())


def test_make_clean_and_clean_results(tmp_path):
    """`make clean` removes the build products (and __pycache__ outside .venv), keeps results/; `make
    clean-results` also removes results/. Run for real, on a copy of the Makefile in a stand-in tree."""
    import shutil

    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    made = ["_build/html/index.html", "book/chapters/01_overview.ipynb", "results/cache/x.png",
            "gvcf/__pycache__/a.pyc", ".venv/lib/__pycache__/kept.pyc", "book/profiles/smoke.yml", "notebooks/a.ipynb"]
    for name in made:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    exists = lambda: {name for name in made if (tmp_path / name).exists()}   # noqa: E731
    ok(subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True))
    assert exists() == {"results/cache/x.png", ".venv/lib/__pycache__/kept.pyc", "book/profiles/smoke.yml",
                        "notebooks/a.ipynb"}
    assert not (tmp_path / "_build").exists() and not (tmp_path / "gvcf" / "__pycache__").exists()
    ok(subprocess.run(["make", "clean-results"], cwd=tmp_path, capture_output=True, text=True))
    assert exists() == {".venv/lib/__pycache__/kept.pyc", "book/profiles/smoke.yml", "notebooks/a.ipynb"}


def test_book_params_in_process(monkeypatch, capsys):
    from gvcf.book import runner

    monkeypatch.chdir(ROOT)
    assert runner.main(argv(BOOK_PARAMS)) == 0
    params = json.loads(capsys.readouterr().out)["02_guided_fusion"]
    assert params["profile"] == "book" and params["n_prompts"] == 3 and params["ddpm_steps"] == 100


# ----------------------------------------------------------------------------- slow tier: as a user's shell runs them

@pytest.mark.slow
def test_generate_literal_line(home):
    """The README's line as printed: the paper's method at its defaults, DDPM at 1000 steps (224 s on 2 cores)."""
    from PIL import Image

    ok(sh(home, GENERATE, timeout=3600))
    assert Image.open(home / "pano.png").size == (448, 64)


@pytest.mark.slow
def test_generate(home):
    from PIL import Image

    ok(sh(home, GENERATE + " --steps 3"))
    assert Image.open(home / "pano.png").size == (448, 64)


@pytest.mark.slow
def test_the_python_example(home):
    from PIL import Image

    for name in ("pano.png", "regions.png"):
        (home / name).unlink(missing_ok=True)
    ok(subprocess.run([sys.executable, "-c", _python_example()], cwd=home, capture_output=True, text=True,
                      timeout=600, env=dict(os.environ, HF_HUB_OFFLINE="1")))
    assert Image.open(home / "pano.png").size == Image.open(home / "regions.png").size == (448, 64)


@pytest.mark.slow
def test_bench(home):
    done = ok(sh(home, "gvcf bench --width 1024 --steps 1 --repeats 1"))
    assert "ours/bare_unet" in done.stdout


@pytest.mark.slow
def test_bench_fast_paths(home):
    """The fast-path table on the bundled model at its defaults but for one step and one timed run: every part eager,
    compiled and under bfloat16, written to CSV."""
    done = ok(sh(home, f"{FAST_PATHS} --steps 1 --repeats 1 --no-diffusers --no-sweep --csv bench.csv"))
    assert "payback_calls" in done.stdout and "unet_1_view" in done.stdout
    import pandas as pd

    table = pd.read_csv(home / "bench_fast_paths.csv")
    assert set(table.path) == {"eager", "compile", "bf16"} and len(table) == 3 * 4
    assert (table[table.path == "compile"].max_rel_diff < 1e-4).all()   # float32 reordered: measured <= 1e-5


@pytest.mark.slow
def test_dataset_generate_crop_reference_evaluate(home):
    without_datasets(home)
    ok(sh(home, DATASET[0].replace("data/configs/cpu-example.yaml",
                                   shrunk_config(home, "cpu-example", n_per_prompt=1, steps=3))))
    ok(sh(home, DATASET[1]))
    assert len(list((home / "results/datasets/cpu-example-tiles").glob("*.png"))) == 2 * 7
    ok(sh(home, DATASET[2].replace("data/configs/cpu-reference.yaml",
                                   shrunk_config(home, "cpu-reference", n_per_prompt=2, steps=3))))
    row = json.loads(ok(sh(home, DATASET[3])).stdout)
    assert row["n_tiles"] == 14 and row["n_reference"] == 4 and row["fid"] > 0 and row["clip"] is None


@pytest.mark.slow
def test_train_embedded_and_retrain_stale(home):
    ok(sh(home, TRAIN[0] + TRAIN_SHRINK))
    assert (home / "my-model" / "model_index.json").exists()
    refused = sh(home, TRAIN[0] + TRAIN_SHRINK)   # the folder exists now: never overwritten without a word
    assert refused.returncode != 0 and "--overwrite" in refused.stderr + refused.stdout
    unet = (home / "my-model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    done = ok(sh(home, TRAIN[1] + TRAIN_SHRINK))
    assert "trained from scratch: decoder" in done.stderr   # the decoder alone: the UNet's bytes are kept
    assert (home / "my-model" / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == unet


@pytest.mark.slow
def test_the_bundled_model_is_not_overwritten_by_default(home):
    before = (ROOT / "data/models/gvcf-world-64/training_log.csv").read_bytes()
    done = sh(home, "gvcf train-embedded" + TRAIN_SHRINK, timeout=120)
    assert done.returncode != 0 and "--overwrite" in done.stderr + done.stdout
    assert (ROOT / "data/models/gvcf-world-64/training_log.csv").read_bytes() == before


@pytest.mark.slow
def test_rerun_one_chapter_with_papermill(home):
    ok(sh(home, CHAPTER.replace("out.ipynb", f"out.ipynb -p results_dir {home / 'results'}")))
    assert (home / "out.ipynb").exists()


@pytest.mark.slow
def test_stable_diffusion_2_without_a_gpu_or_weights_says_what_to_do(home):
    done = sh(home, SD2_CHAPTER.replace("out.ipynb", "sd2.ipynb"))
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert ("no CUDA device" in said) or ("huggingface-cli download" in said), said[-3000:]


@pytest.mark.slow
def test_a_paper_dataset_without_the_weights_says_how_to_get_them(home):
    done = sh(home, PAPER_DATASET, timeout=300)
    assert done.returncode == 1 and "huggingface-cli download stabilityai/stable-diffusion-2-base" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_book_rerun_one_chapter(home):
    out = home / "chapters"
    ok(sh(home, BOOK_RERUN.replace("--profile book", "--profile smoke") + f" --out-dir {out}"))
    assert (out / "02_guided_fusion.ipynb").exists()


@pytest.mark.slow
def test_assets_and_book_params_as_typed(home):
    ok(sh(home, "python -m gvcf.engine.assets"))
    params = json.loads(ok(sh(home, BOOK_PARAMS, timeout=120)).stdout)["02_guided_fusion"]
    assert params["profile"] == "book" and params["n_prompts"] == 3 and params["ddpm_steps"] == 100


# ----------------------------------------------------------------------------- facts the README states

TALLY = ROOT / "book" / "tally.json"
VERDICTS = C.VERDICTS
TALLY_SENTENCE = re.compile(r"Of the paper's \*\*(\d+)\*\* claims .*?\*\*(\d+) holds?\*\*, \*\*(\d+) reversed\*\*, "
                            r"\*\*(\d+) inconclusive\*\* and\s+\*\*(\d+) (?:is|are) not\s+checked\*\*", flags=re.S)


def test_the_readme_tally_is_book_tally_json():
    """The README's one sentence on how many of the paper's claims hold is the book's own count (book/tally.json,
    written by `python -m gvcf.book run --profile book`, with the intro's table of every claim, book/claims.md)."""
    import json

    from gvcf.book import render

    tally = json.loads(TALLY.read_text())
    assert tally["profile"] == "book"
    per = tally["chapters"]
    assert per and set(per) <= {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}, sorted(per)
    for verdict in VERDICTS:
        assert tally[verdict] == sum(c[verdict] for c in per.values()), verdict
    assert tally["total"] == sum(tally[v] for v in VERDICTS) == len(tally["claims"])
    assert (ROOT / "book" / "claims.md").read_text() == render.claims_table(tally)
    found = TALLY_SENTENCE.findall(README.read_text())
    assert len(found) == 1, ("the README states the tally once, as 'Of the paper's **N** claims ... **H hold**, "
                             "**R reversed**, **I inconclusive** and **C are not checked**'")
    assert tuple(map(int, found[0])) == (tally["total"], *(tally[v] for v in VERDICTS))


def _layout_modules() -> set[str]:
    block = re.search(r"## Layout\n.*?```text\n(.*?)```", README.read_text(), flags=re.S).group(1)
    return {line.split()[0] for line in block.splitlines() if re.match(r"gvcf/\w+/\w+\.py\s", line)}


def test_the_readme_layout_names_every_module():
    package = ROOT / "gvcf"
    modules = {p.relative_to(ROOT).as_posix() for p in package.glob("*/*.py")
               if p.name not in ("__init__.py", "__main__.py")}
    assert _layout_modules() == modules, "README's Layout: one line per module of gvcf/<layer>/"


def _code_spans(text: str) -> list[str]:
    return re.findall(r"```.*?```|`[^`\n]+`", text, flags=re.S)


DOCS = [README, *sorted((ROOT / "book").glob("*.md"))]   # not CHANGELOG.md: it names the old paths on purpose


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_docs_name_only_paths_that_exist(doc):
    """Every gvcf.<module>[.<name>] and every gvcf/... or tests/... file a document names in code exists."""
    import importlib

    code = "\n".join(_code_spans(doc.read_text()))
    missing = []
    for dotted in sorted(set(re.findall(r"(?<![\w/.-])gvcf(?:\.[A-Za-z_]\w*)+", code))):
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):     # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:n]))
            except ImportError:
                continue
            try:
                for name in parts[n:]:
                    obj = getattr(obj, name)
            except AttributeError:
                missing.append(dotted)
            break
        else:
            missing.append(dotted)
    for path, test in sorted(set(re.findall(r"(?<![\w.-])((?:gvcf|tests)/[\w/]+\.py)(?:::(\w+))?", code))):
        if not (ROOT / path).exists() or (test and f"def {test}(" not in (ROOT / path).read_text()):
            missing.append(f"{path}::{test}" if test else path)
    assert not missing, f"{doc.name} names what the tree does not have: {missing}"


def test_license_citation_and_pyproject_agree():
    try:
        import tomllib
    except ModuleNotFoundError:          # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    license_text = (ROOT / "LICENSE").read_text()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert project["license"] == {"text": "MIT"}
    assert license_text.startswith("MIT License\n") and "Copyright (c) 2026 The gvcf authors" in license_text
    assert "Permission is hereby granted, free of charge" in license_text
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT" and cff["message"]
    assert cff["title"] == project["name"] and cff["version"] == project["version"]
    paper = cff["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2025 and "AAAI-25" in paper["conference"]["name"]
    assert [a["family-names"] for a in paper["authors"]] == ["Sun", "Xian", "Yao", "Xu", "Capriotti"]
    assert paper["title"] in README.read_text().replace("\n", " ").replace("*", "")
    assert paper in cff.get("references", [paper])
