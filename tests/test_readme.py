"""Every command the README shows is run here, as a user copies it, with only its size arguments shrunk.

`readme_commands()` reads them off README.md (its bash blocks and its inline `gvcf ...`, `make ...`,
`python -m ...` and `.venv/bin/...` spans), and RUNS says how each is exercised: the command itself with
fewer steps or images (SHRINK), a check that it fails cleanly where it cannot work here (no GPU, no internet),
or the test or check that covers it elsewhere. A command added to the README without an entry fails
`test_every_readme_command_is_exercised`, so the README cannot show a command that no test runs.

The rest keeps the README's facts tied to the tree: its claim tally equals book/tally.json, its layout names every
module of gvcf/, the module paths that it and book/*.md name exist, and LICENSE, CITATION.cff and pyproject.toml
agree on the licence.
"""
from __future__ import annotations

import os
import re
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
PAPER_DATASET = "gvcf dataset generate --config data/configs/paper-md-ddim.yaml"
BOOK_RERUN = "python -m gvcf.book run --profile book --notebooks 02_guided_fusion --force"
BOOK_PARAMS = "python -m gvcf.book params --profile book 02_guided_fusion"

# how each README command is exercised: "run" (here, shrunk), "fails cleanly" (here), or where else
RUNS = {
    "make book": "by hand before each release (the session notes give its time); `gvcf.book check` tests the build",
    "make test": "CI runs it (.ci/run)",
    "make smoke-book": "nbval runs every notebook at the smoke defaults in `make test`",
    "make book PROFILE=paper": "tests/book/test_profiles.py runs every chapter under the paper profile on a stand-in "
                               "model",
    "make book PROFILE=gpu": "tests/book/test_profiles.py runs every chapter under the gpu profile on a stand-in model "
                             "(on CPU: no GPU is lent to CI)",
    "make clean": "run", "make clean-results": "run",
    GENERATE: "run", "gvcf bench": "run", CHAPTER: "run", SD2_CHAPTER: "fails cleanly",
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


def test_generate(home):
    from PIL import Image

    ok(sh(home, GENERATE + " --steps 3"))   # the literal line (DDPM-1000) is timed in the README
    assert Image.open(home / "pano.png").size == (448, 64)


def test_the_python_example(home):
    from PIL import Image

    block = re.search(r"```python\n(.*?)```", README.read_text(), flags=re.S).group(1)
    assert "seed=0)" in block
    code = block.replace("seed=0)", "seed=0, steps=3)")
    ok(subprocess.run([sys.executable, "-c", code], cwd=home, capture_output=True, text=True, timeout=600,
                      env=dict(os.environ, HF_HUB_OFFLINE="1")))
    assert (home / "pano.png").exists()
    assert Image.open(home / "regions.png").size == (448, 64)


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
    assert row["n_tiles"] == 14 and row["n_reference"] == 4 and row["fid"] > 0 and row["clip"] is None


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


def test_book_params(home):
    import json

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
