"""Every profile the README offers runs end to end on a stand-in model (issue "First contact").

`paper`: every chapter under the paper profile's own settings (Stable Diffusion 2's geometry: 512 px views, VAE
factor 8, 64-latent UNet; a 512 x 3584 canvas at stride 384, Table 1's strides 128/256/384, Fig. 5's eleven alphas)
on a tiny random-weight model with SD 2's geometry and scheduler, with only the counts shrunk (prompts,
n_per_prompt, n_reference, DDIM/DDPM steps, repeats). Part of its input is made beforehand with
`gvcf dataset generate --config`, as the profile prescribes, and the chapters must evaluate those sets from
`dataset_dir` instead of regenerating them.

`book`: every chapter at the book profile's settings on a tiny random model with the bundled model's geometry
(64 px views, VAE factor 4, 16-latent UNet), counts shrunk. (`smoke` is what nbval runs in `make test`.)

The chapters run through the real runner (gvcf.book.run: papermill, one kernel per chapter) from a temporary
root holding the repository's notebooks and a profile derived from the repository's. Inside the kernels, LPIPS
(paper profile) and Inception are stand-in networks unless TEST_PROFILES_REAL_NETWORKS=1 (see STANDIN_LPIPS).
About 7 minutes on 2 busy shared cores (4.5 of them the paper profile).
"""
import copy
import json
import os
from pathlib import Path

import nbformat
import pytest
import torch
import yaml
from PIL import Image

from gvcf.book import render, runner as book

REPO = Path(__file__).resolve().parents[2]
PROMPT = "A photo of a city skyline at night"   # any prompt works; the paper's prompts are checked elsewhere
COUNTS = dict(n_per_prompt=1, n_reference=2, ddim_steps=2, ddpm_steps=2, repeats=1)
# what a derived profile may change besides the counts: where the model, the device and the files are
PLACES = ("model", "device", "prompts", "results_dir", "dataset_dir")

# The model is a stand-in; so are, in the chapter kernels, the two fixed networks whose cost does not shrink with the
# counts, unless TEST_PROFILES_REAL_NETWORKS=1 (then expect an hour or more for the paper profile):
# - LPIPS (VGG16), which SyncDiffusion backpropagates through on every view at every step: ~23 s per 512 px view on two
#   CPU cores, so the paper profile's Sync rows (chapters 1, 3, 5, 6) alone would take most of an hour. Only on the
#   paper profile: the book profile's 64 px views run the real network.
# - Inception-v3 (FID, KID, GIQA): ~0.3-0.6 s per tile whatever the tile size (every tile is resized to 299 px), 14
#   passes per panorama, ~450 per profile (Fig. 5's 22 sets alone: 300).
# Everything around them runs as it is: the sync hook and its gradient through the UNet and the VAE decoder on 512 px
# views; the tiling of 512 x 3584 panoramas into 512 px tiles and both preprocessings to 299 px; the feature caches
# and the metrics on the features. The stand-ins are installed by an IPython startup file, which every papermill
# kernel runs before the notebook.
STANDIN_LPIPS = '''
import torch
import gvcf.eval.bench
import gvcf.engine.perceptual


class Pooled(torch.nn.Module):
    """A stand-in backbone: one 'layer', the 8 x 8-pooled image."""

    def forward(self, x):
        return [torch.nn.functional.avg_pool2d(x, 8)]


class StandInLPIPS(torch.nn.Module):
    """LPIPS's interface (images in [-1, 1], a (N, 1, 1, 1) distance), a pooled squared difference for a network;
    with the parts gvcf.engine.perceptual reads (scaling_layer, net's feature maps, lins) in the same roles."""

    def __init__(self):
        super().__init__()
        self.scaling_layer, self.net = torch.nn.Identity(), Pooled()
        self.lins = torch.nn.ModuleList([torch.nn.Conv2d(3, 1, 1, bias=False)])
        torch.nn.init.constant_(self.lins[0].weight, 1.0 / 3)

    def forward(self, a, b, normalize=False):
        return torch.nn.functional.avg_pool2d(a - b, 8).pow(2).mean(dim=(1, 2, 3), keepdim=True)


def stand_in_lpips(net="vgg", device="cpu"):
    return StandInLPIPS().to(device).eval().requires_grad_(False)


gvcf.engine.perceptual.load_lpips = stand_in_lpips   # the sync hook looks it up when it first runs
gvcf.eval.bench.random_lpips = stand_in_lpips      # runtime_table's Sync row
with open(MARKER, "a") as fh:
    fh.write("LPIPS stand-in\\n")
'''
STANDIN_INCEPTION = '''
import torch
import gvcf.eval.inception


def stand_in_inception(device="cpu"):
    """Inception's interface ((N, 3, 299, 299) in [-1, 1] -> (N, 2048) non-negative features): a fixed random
    projection of 8 x 8-pooled pixels."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten(), torch.nn.Linear(192, 2048),
                                  torch.nn.ReLU())
    return net.to(device).eval()


gvcf.eval.inception.load_inception = stand_in_inception   # InceptionFeatures looks it up when built
with open(MARKER, "a") as fh:
    fh.write("Inception stand-in\\n")
'''
REAL_NETWORKS = os.environ.get("TEST_PROFILES_REAL_NETWORKS", "") not in ("", "0")


# ----------------------------------------------------------------------------- stand-in models

def _save_pipeline(folder: Path, tokenizer, unet: dict, vae: dict, scheduler: dict, seed: int = 0) -> Path:
    """A StableDiffusionPipeline with random weights, saved as a local diffusers folder (model=<folder>)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = StableDiffusionPipeline(
            unet=UNet2DConditionModel(in_channels=4, out_channels=4, layers_per_block=1, cross_attention_dim=16,
                                      attention_head_dim=2, **unet),
            vae=AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, mid_block_add_attention=False, **vae),
            text_encoder=CLIPTextModel(CLIPTextConfig(
                vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
                pad_token_id=0)),
            tokenizer=tokenizer, scheduler=PNDMScheduler.from_config(scheduler), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def sd2_standin(tmp_path_factory, clip_tokenizer):
    """Stable Diffusion 2's geometry and scheduler with tiny random weights: a 64-latent UNet with four levels
    (as SD 2's, attention only at the lowest), a VAE with four blocks (factor 8) of 4 channels: 512 px views."""
    from gvcf.engine.archs import SD2_SCHEDULER

    blocks = ("DownBlock2D",) * 3 + ("CrossAttnDownBlock2D",)
    return _save_pipeline(
        tmp_path_factory.mktemp("models") / "sd2-standin", clip_tokenizer,
        unet=dict(sample_size=64, block_out_channels=(4, 4, 4, 8), norm_num_groups=4, down_block_types=blocks,
                  up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * 3),
        vae=dict(block_out_channels=(4,) * 4, layers_per_block=0, norm_num_groups=2, sample_size=512,
                 down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4),
        scheduler=SD2_SCHEDULER)


@pytest.fixture(scope="module")
def bundled_standin(tmp_path_factory, clip_tokenizer):
    """The bundled model's geometry (data/models/gvcf-world-64: 16-latent UNet, VAE factor 4: 64 px views) and its
    scheduler config, with tiny random weights."""
    scheduler = json.loads((REPO / "data" / "models" / "gvcf-world-64" / "scheduler" / "scheduler_config.json")
                           .read_text())
    return _save_pipeline(
        tmp_path_factory.mktemp("models") / "bundled-standin", clip_tokenizer,
        unet=dict(sample_size=16, block_out_channels=(8, 16), norm_num_groups=4,
                  down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D")),
        vae=dict(block_out_channels=(8,) * 3, layers_per_block=1, norm_num_groups=4, sample_size=64,
                 down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3),
        scheduler=scheduler)


@pytest.mark.slow   # the stand-ins serve only the slow profile runs below; building them costs ~11 s
def test_standins_have_the_geometry(sd2_standin, bundled_standin):
    from gvcf.engine.archs import SD2_SCHEDULER
    from gvcf.engine.models import load_model

    sd2 = load_model(str(sd2_standin), device="cpu")
    assert (sd2.native_size, sd2.vae_scale_factor, sd2.latent_size) == (512, 8, 64)
    assert {k: sd2.scheduler_config[k] for k in SD2_SCHEDULER if not k.startswith("_")} == \
        {k: v for k, v in SD2_SCHEDULER.items() if not k.startswith("_")}
    assert sd2.scheduler_config["timestep_spacing"] == "leading"
    small = load_model(str(bundled_standin), device="cpu")
    assert (small.native_size, small.vae_scale_factor, small.latent_size) == (64, 4, 16)


# ----------------------------------------------------------------------------- the smoke sizes stay the notebooks'

# The sizes a notebook's parameters cell sets to its smoke defaults (what nbval runs). Every other profile sets each
# of them itself, so that shrinking the smoke run never changes what the book, gpu or paper profile computes.
SIZES = ("ddim_steps", "ddpm_steps", "n_reference", "width_views", "n_per_prompt", "alphas", "calibration_alphas",
         "calibration_weights", "calibration_prompts", "repeats", "strides", "n_prompts")


@pytest.mark.parametrize("name", ["book", "gpu", "paper"])
def test_profiles_set_every_size_the_smoke_defaults_shrink(name):
    data = book.load_profile(name, REPO)
    for stem in book.CHAPTERS:
        declared = book.declared_parameters(REPO / "notebooks" / f"{stem}.ipynb")
        params = book.merge_params(data, stem, name, declared)
        missing = sorted(k for k in SIZES if k in declared and k not in params)
        assert not missing, f"profile {name} leaves {missing} of {stem} at the notebook's smoke default"


# ----------------------------------------------------------------------------- running a profile

def derive_profile(name: str, **places) -> dict:
    """The repository's profile `name` with only the counts shrunk (every section that sets a count) and the places
    (model, device, prompts, results_dir, dataset_dir) set for this machine."""
    data = copy.deepcopy(book.load_profile(name, REPO))
    common = data.setdefault("common", {}) or {}
    data["common"] = common
    common.update(COUNTS)
    common.update(places)
    for stem, section in data.items():
        if stem != "common" and section:
            section.update({k: v for k, v in COUNTS.items() if k in section})
    return data


def _changed_keys(name: str, derived: dict) -> set:
    original = book.load_profile(name, REPO)
    out = set()
    for stem, section in derived.items():
        old = original.get(stem) or {}
        out |= {k for k, v in (section or {}).items() if old.get(k, "<absent>") != v}
    return out


def run_profile(tmp_path: Path, name: str, data: dict, monkeypatch, startup: str | None = None) -> tuple[list, Path]:
    """gvcf.book.run under `data`, saved as profile `name` in a temporary root beside the repository's notebooks."""
    root = tmp_path / "root"
    (root / "book" / "profiles").mkdir(parents=True)
    (root / "notebooks").symlink_to(REPO / "notebooks", target_is_directory=True)
    (root / "book" / "profiles" / f"{name}.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")     # as `make` sets it: spinning OpenMP threads slow shared cores
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    ipython = tmp_path / "ipython"
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    if startup:
        marker = tmp_path / "startup.log"
        (ipython / "profile_default" / "startup" / "00-test-profiles.py").write_text(
            f"MARKER = {str(marker)!r}\n" + startup)
    monkeypatch.setenv("IPYTHONDIR", str(ipython))     # the kernels run these startup files (and not the user's)
    out = tmp_path / "chapters"
    records = book.run(name, root=root, out_dir=out, log_output=False)
    return records, out


def outputs(notebook: Path) -> str:
    """Every text a notebook's cells printed or displayed (stream, plain text and markdown)."""
    nb = nbformat.read(str(notebook), as_version=4)
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
            elif o.get("output_type") in ("execute_result", "display_data"):
                data = o.get("data", {})
                parts.append(data.get("text/markdown", "") or data.get("text/plain", ""))
            elif o.get("output_type") == "error":
                parts.append("\n".join(o.get("traceback", [])))
    return "\n".join(parts)


def _unwrapped(text: str) -> str:
    """A chapter's printed text with the lines wrapped to the page (gvcf.paper.tables.wrap) put back together."""
    from gvcf.paper.tables import CONTINUATION

    return text.replace("\n" + CONTINUATION, " ")


def _check_ran(records, out: Path, profile: str) -> dict[str, str]:
    stems = [r["notebook"] for r in records]
    assert stems == list(book.CHAPTERS)
    assert [r["status"] for r in records] == ["ran"] * len(book.CHAPTERS), records
    assert not list(out.glob(f"*{book.PARTIAL_SUFFIX}"))
    texts = {}
    for stem in stems:
        nb = out / f"{stem}.ipynb"
        assert nb.exists() and (out / f"{stem}{book.RECORD_SUFFIX}").exists()
        assert json.loads((out / f"{stem}{book.RECORD_SUFFIX}").read_text())["profile"] == profile
        texts[stem] = outputs(nb)
        assert f"profile {profile}: model" in texts[stem]
        # prepared for the page (gvcf.book.render): one settings table, code folded, parameters cells left off
        cells = nbformat.read(str(nb), as_version=4).cells
        tags = [c.metadata.get("tags", []) for c in cells]
        assert sum("gvcf-settings" in t for t in tags) == 1, stem
        expected = lambda t: ("remove-cell" if {"parameters", "injected-parameters"} & set(t)   # noqa: E731
                              else render.SHOW_INPUT if render.SHOW_INPUT in t else "hide-input")
        assert all(expected(t) in t and not (render.SHOW_INPUT in t and "hide-input" in t)
                   for c, t in zip(cells, tags) if c.cell_type == "code"), stem
    return texts


def _panorama_sizes(results: Path) -> set:
    sizes = set()
    for folder in results.iterdir():
        if folder.is_dir() and not folder.name.startswith("reference-"):
            for png in folder.glob("*.png"):
                with Image.open(png) as im:
                    sizes.add(im.size)
    return sizes


# ----------------------------------------------------------------------------- the paper profile

def _dataset_config(path: Path, **fields) -> Path:
    path.write_text(yaml.safe_dump(fields, sort_keys=False))
    return path


@pytest.mark.slow
def test_paper_profile_on_an_sd2_standin(tmp_path, monkeypatch, sd2_standin):
    from gvcf import cli
    from gvcf.eval import datasets

    data = derive_profile("paper", model=str(sd2_standin), device="cpu", prompts=[PROMPT],
                          results_dir=str(tmp_path / "results"), dataset_dir=str(tmp_path / "datasets"))
    assert _changed_keys("paper", data) <= set(COUNTS) | set(PLACES)
    common = data["common"]
    assert (common["width_views"], common["stride"]) == (7, 384)
    assert data["02_guided_fusion"]["strides"] == [128, 256, 384]
    assert data["04_style_alignment"]["alphas"] == [round(0.1 * i, 1) for i in range(11)]

    # the profile's input, made beforehand as it prescribes (`gvcf dataset generate --config`): the reference set of
    # chapters 2-4 and chapter 1's and Table 2's GVCF + SA panoramas
    pregenerated = {
        "reference": dict(method="reference", model=str(sd2_standin), sampler="ddpm", steps=common["ddpm_steps"],
                          prompts=[PROMPT], n_per_prompt=common["n_reference"], seed=common["seed"], device="cpu",
                          output=str(tmp_path / "datasets" / "reference-sd2")),
        "gvcf": dict(method="gvcf", model=str(sd2_standin), sampler="ddpm", steps=common["ddpm_steps"],
                     stride=common["stride"], alpha=0.4, prompts=[PROMPT], n_per_prompt=common["n_per_prompt"],
                     seed=common["seed"], width_views=common["width_views"], device="cpu",
                     output=str(tmp_path / "datasets" / "vcf-gf-sa0.4")),
    }
    for name, fields in pregenerated.items():
        cli.main(["dataset", "generate", "--config", str(_dataset_config(tmp_path / f"{name}.yaml", **fields))])
    made = {name: {p: p.stat().st_mtime_ns for p in Path(f["output"]).glob("*.png")}
            for name, f in pregenerated.items()}
    assert [len(v) for v in made.values()] == [2, 1]

    standins = [] if REAL_NETWORKS else [STANDIN_LPIPS, STANDIN_INCEPTION]
    records, out = run_profile(tmp_path, "paper", data, monkeypatch, startup="".join(standins))
    texts = _check_ran(records, out, "paper")
    if standins:   # every kernel ran with them
        assert (tmp_path / "startup.log").read_text().splitlines() == \
            ["LPIPS stand-in", "Inception stand-in"] * len(book.CHAPTERS)

    # the paper's geometry, as each chapter printed it
    canvas = ("views of 512 px (64 latent px, VAE factor 8)", "canvas 512 x 3584 px = 7 views wide")
    for stem, text in texts.items():
        assert all(line in _unwrapped(text) for line in canvas), stem
        assert "DDIM 2 steps, DDPM 2 steps" in text, stem
    for s in (128, 256, 384):
        assert f"stride {s} px = {book_fraction(s)} of a view (the paper's {s} px)" in texts["02_guided_fusion"]
    assert "stride 384 px = 3/4 of a view (the paper's 384 px): 9 views" in texts["01_overview"]
    assert "alphas: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]" in texts["04_style_alignment"]
    assert "canvas 512 x 3584 px, stride 384 px, 1 timed run(s) per method" in _unwrapped(texts["06_runtime"])
    for stem in book.CHAPTERS[:5]:   # the caveat: SD 2's geometry, not "a small model"; but not SD 2 base either
        assert "comparable with the paper's only if it is Stable Diffusion 2 base" in texts[stem], stem
    assert _panorama_sizes(tmp_path / "results") == {(3584, 512)}

    # the sets under dataset_dir were used as they are: not regenerated, not copied, evaluated where they lie
    for name, files in made.items():
        assert {p: p.stat().st_mtime_ns for p in files} == files
    for fields in pregenerated.values():   # where a chapter would have made them
        cfg = datasets.DatasetConfig.from_dict({k: v for k, v in fields.items() if k != "output"})
        assert not Path(datasets.in_results(cfg, tmp_path / "results").output).exists()
    # (the chapters print no generation lines since issue 28: the two checks above are what says nothing was made)
    assert (tmp_path / "datasets" / "reference-sd2" / "features-tiles512-clean.npz").exists()
    assert (tmp_path / "datasets" / "vcf-gf-sa0.4" / "features-tiles512-clean.npz").exists()


def book_fraction(stride: int) -> str:
    from gvcf.paper.experiments import fraction_label

    return fraction_label(stride / 512)


# ----------------------------------------------------------------------------- the book and gpu profiles

def run_bundled_profile(name: str, run_as: str, tmp_path, monkeypatch, bundled_standin) -> dict[str, str]:
    """Profile `name` (counts shrunk) on the bundled-geometry stand-in, saved as `run_as`: each chapter's texts."""
    data = derive_profile(name, model=str(bundled_standin), device="cpu", prompts=[PROMPT],
                          results_dir=str(tmp_path / "results"))
    assert _changed_keys(name, data) <= set(COUNTS) | set(PLACES)
    standins = [] if REAL_NETWORKS else [STANDIN_INCEPTION]
    records, out = run_profile(tmp_path, run_as, data, monkeypatch, startup="".join(standins))
    texts = _check_ran(records, out, run_as)
    if standins:
        assert (tmp_path / "startup.log").read_text().splitlines() == ["Inception stand-in"] * len(book.CHAPTERS)
    for stem, text in texts.items():
        assert "views of 64 px (16 latent px, VAE factor 4)\ncanvas 64 x 448 px = 7 views wide" in _unwrapped(text), stem
    assert _panorama_sizes(tmp_path / "results") == {(448, 64)}
    return texts


@pytest.mark.slow
def test_book_profile_on_a_bundled_geometry_standin(tmp_path, monkeypatch, bundled_standin):
    # named apart from "book": a run under profile "book" publishes book/tally.json, claims.md and figures/ (the
    # README's picture, copied from chapter 1's under results_dir)
    texts = run_bundled_profile("book", "book-standin", tmp_path, monkeypatch, bundled_standin)
    assert "stride 48 px = 3/4 of a view (the paper's 384 px)" in texts["01_overview"]
    assert "alphas: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]" in texts["04_style_alignment"]


@pytest.mark.slow
def test_gpu_profile_on_a_bundled_geometry_standin(tmp_path, monkeypatch, bundled_standin):
    """The gpu profile (the bundled model on CUDA with the counts the power calculation asks for) runs every chapter
    at its own settings on CPU, with only the counts shrunk."""
    original = book.load_profile("gpu", REPO)
    assert original["common"]["model"] == "embedded" and original["common"]["device"] == "cuda"
    ours, theirs = original["common"], book.load_profile("book", REPO)["common"]
    assert ours["n_per_prompt"] > theirs["n_per_prompt"] and ours["n_reference"] >= theirs["n_reference"]
    run_bundled_profile("gpu", "gpu", tmp_path, monkeypatch, bundled_standin)
