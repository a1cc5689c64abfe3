"""Train the bundled model from scratch on the procedural world, saved in Stable Diffusion's diffusers format.

Stages: tokenizer (built offline) -> VAE (AutoencoderKL, 4x down, 4 channels) -> latent dataset ->
UNet2DConditionModel + CLIPTextModel jointly, with caption dropout for classifier-free guidance and an EMA.
Every stage checkpoints atomically and resumes, so a killed run loses at most `checkpoint_every` steps; the model
folder is written only at the end, in one swap. A rerun under another config retrains only the stages the change
reaches (STAGES, `retrain_stale`).

Here: the stages' training and the run. Its config and stages are train_config's, the networks networks', what every
stage's loop shares (log, checkpoints, resuming) stage_loop's, and writing the model folder model_folder's.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import scenes as world
from ..engine.archs import SD2_SCHEDULER   # SD 2's noise schedule, so DDIM-50 and DDPM-1000 run as in the paper
from ..engine.checks import positive_int
from ..engine.tokenizer import build_clip_tokenizer
from .model_folder import check_out_folder, replace_folder, save_pipeline
from .networks import build_text_encoder, build_unet, build_vae
from .stage_loop import LOG_FILE, LossLog, atomic_save, data_stream, descend, learning_rate, log_and_save, resume_stage
from .train_config import (AUTOCAST_DTYPES, STAGES, TrainConfig, checkpoint_path, load_config, save_config, stage_plan,
                           stale_stages)


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def from_unit(x: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3); the inverse of to_unit."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.clamp(-1, 1), b.clamp(-1, 1)).item()
    return 10 * math.log10(4.0 / mse)


def train_vae(cfg: TrainConfig, work: Path, log: LossLog, progress: bool = True):
    vae = build_vae(cfg)
    with torch.no_grad():   # a random encoder's posterior has sigma ~ 1, which buries the signal for many steps
        c = cfg.latent_channels
        vae.quant_conv.weight[c:].zero_()
        vae.quant_conv.bias[c:].fill_(cfg.vae_logvar_init)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    ckpt = checkpoint_path(work, "vae")
    gen = torch.Generator().manual_seed(cfg.seed)
    start, _ = resume_stage("vae", work, log, gen, model=vae, opt=opt)
    rng = data_stream(cfg, f"vae-data-{start}")
    t0 = time.time()
    bar = tqdm(range(start, cfg.vae_steps), desc="VAE", disable=not progress, initial=start, total=cfg.vae_steps)
    for step in bar:
        images, _, _ = world.sample_views(rng, cfg.vae_batch, cfg.view_size)
        x = to_unit(images)
        i, j = rng.integers(0, cfg.view_size - cfg.vae_crop + 1, size=2)
        x = x[:, :, i:i + cfg.vae_crop, j:j + cfg.vae_crop]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        rec = vae.decode(z).sample
        loss = F.mse_loss(rec, x) + F.l1_loss(rec, x) + cfg.vae_kl_weight * post.kl().mean()
        descend(opt, loss, learning_rate(step, cfg.vae_steps, cfg.vae_lr, cfg.warmup_steps))
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if log_and_save("vae", step + 1, cfg.vae_steps, loss.item(), time.time() - t0, log, cfg.checkpoint_every, ckpt,
                        lambda: dict(model=vae.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), step=step + 1)):
            rng = data_stream(cfg, f"vae-data-{step + 1}")  # reseed at checkpoints so a resumed run sees the same data
    return vae.eval()


def train_decoder(vae, cfg: TrainConfig, work: Path, log: LossLog, progress: bool = True):
    """Fine-tune post_quant_conv + decoder with L1 + LPIPS(alex) on full views; the encoder is frozen, so the latent
    space (and any UNet trained on it) is unchanged, as in Stable Diffusion's decoder-only fine-tunes."""
    from ..engine.perceptual import load_lpips

    params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    for p in vae.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    lpips = load_lpips(cfg.decoder_lpips_net)
    autocast = torch.autocast("cpu", dtype=getattr(torch, cfg.decoder_autocast),
                              enabled=cfg.decoder_autocast != "float32")
    opt = torch.optim.AdamW(params, lr=cfg.decoder_lr, weight_decay=0.0)
    ckpt = checkpoint_path(work, "decoder")
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    start, _ = resume_stage("decoder", work, log, gen, model=vae, opt=opt)
    rng = data_stream(cfg, f"decoder-data-{start}")
    t0 = time.time()
    bar = tqdm(range(start, cfg.decoder_steps), desc="decoder", disable=not progress, initial=start,
               total=cfg.decoder_steps)
    for step in bar:
        images, _, _ = world.sample_views(rng, cfg.decoder_batch, cfg.view_size)
        x = to_unit(images)
        with torch.no_grad(), autocast:
            post = vae.encode(x).latent_dist
            z = (post.mean + post.std * torch.randn(post.mean.shape, generator=gen)).float()
        with autocast:
            rec = vae.decode(z).sample
            loss = F.l1_loss(rec.float(), x) + cfg.decoder_lpips_weight * lpips(rec, x).float().mean()
        warmup = min(cfg.warmup_steps, cfg.decoder_steps // 10)
        descend(opt, loss, learning_rate(step, cfg.decoder_steps, cfg.decoder_lr, warmup))
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if log_and_save("decoder", step + 1, cfg.decoder_steps, loss.item(), time.time() - t0, log,
                        cfg.checkpoint_every, ckpt,
                        lambda: dict(model=vae.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), step=step + 1)):
            rng = data_stream(cfg, f"decoder-data-{step + 1}")
    for p in params:
        p.requires_grad_(False)
    return vae.eval()


@torch.no_grad()
def evaluate_vae(vae, cfg: TrainConfig) -> float:
    """Reconstruction PSNR (dB) on held-out full views (a data stream never used in training)."""
    images, _, _ = world.sample_views(data_stream(cfg, "vae-heldout"), cfg.eval_views, cfg.view_size)
    x = to_unit(images)
    return psnr(reconstruct(vae, x), x)


@torch.no_grad()
def reconstruct(vae, x: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """x (N, 3, H, W) in [-1, 1] encoded (posterior mode) and decoded by the VAE, in batches."""
    return torch.cat([vae.decode(vae.encode(b).latent_dist.mode()).sample for b in x.split(batch)])


@torch.no_grad()
def whiten_latents(vae, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Fold z' = (z - mean) / std (per latent channel) into the VAE's 1x1 quant convs, in place.

    The encoder's posterior becomes N((mu - mean) / std, (sigma / std)^2) and the decoder undoes the map, so
    reconstructions are unchanged while every latent channel has zero mean and unit variance over the data:
    the diffusion model then sees signal in all channels at the SNR its noise schedule assumes. Exact, and
    still a plain AutoencoderKL (diffusers' pipelines only know a scalar scaling_factor).
    """
    c = vae.config.latent_channels
    q, pq = vae.quant_conv, vae.post_quant_conv
    q.weight[:c] /= std.view(-1, 1, 1, 1)
    q.bias[:c] = (q.bias[:c] - mean) / std
    q.bias[c:] -= 2 * torch.log(std)                        # log-variance rows: sigma -> sigma / std
    pq.bias += (pq.weight[:, :, 0, 0] @ mean)               # decoder input z = std * z' + mean
    pq.weight *= std.view(1, -1, 1, 1)


@torch.no_grad()
def latent_moments(vae, cfg: TrainConfig, n: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of posterior means over n training-distribution views."""
    images, _, _ = world.sample_views(data_stream(cfg, "latent-moments"), n, cfg.view_size)
    z = torch.cat([vae.encode(b).latent_dist.mean for b in to_unit(images).split(256)])
    return z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3))


@torch.no_grad()
def encode_dataset(vae, tokenizer, cfg: TrainConfig, work: Path, progress: bool = True):
    """Pre-encode n_latents world views: latents (posterior samples, unscaled), token ids, and the latent std."""
    path = checkpoint_path(work, "latents")
    if path.exists():
        return torch.load(path, weights_only=False)
    rng = data_stream(cfg, "unet-data")
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    lat, ids, fams = [], [], []
    chunk = 250
    for first in tqdm(range(0, cfg.n_latents, chunk), desc="encode", disable=not progress):
        images, captions, fam = world.sample_views(rng, min(chunk, cfg.n_latents - first), cfg.view_size)
        post = vae.encode(to_unit(images)).latent_dist
        lat.append((post.mean + post.std * torch.randn(post.mean.shape, generator=gen)).half())
        ids.append(tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.int())
        fams.append(torch.from_numpy(np.asarray(fam)))
    data = dict(latents=torch.cat(lat), ids=torch.cat(ids), families=torch.cat(fams))
    data["std"] = data["latents"].float().std().item()
    atomic_save(data, path)
    return data


def train_unet(cfg: TrainConfig, data: dict, tokenizer, work: Path, log: LossLog, progress: bool = True):
    from diffusers import DDPMScheduler

    unet, text_encoder = build_unet(cfg), build_text_encoder(cfg, len(tokenizer))
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=0.0)
    ema = [p.detach().clone() for p in params]
    sched = DDPMScheduler.from_config(SD2_SCHEDULER)
    alphas = sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    ckpt = checkpoint_path(work, "unet")
    start, state = resume_stage("unet", work, log, gen, unet=unet, text=text_encoder, opt=opt)
    for e, s in zip(ema, state.get("ema", ())):
        e.copy_(s)
    del state
    scale = 1.0 / data["std"]
    n = data["latents"].shape[0]
    t0 = time.time()
    bar = tqdm(range(start, cfg.unet_steps), desc="UNet+text", disable=not progress, initial=start, total=cfg.unet_steps)
    for step in bar:
        idx = torch.randint(0, n, (cfg.unet_batch,), generator=gen)
        z0 = data["latents"][idx].float() * scale
        ids = data["ids"][idx].long()
        drop = torch.rand(cfg.unet_batch, generator=gen) < cfg.caption_dropout
        ids[drop] = empty
        t = torch.randint(0, sched.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
        eps = torch.randn(z0.shape, generator=gen)
        zt = sched.add_noise(z0, eps, t)
        pred = unet(zt, t, text_encoder(ids)[0]).sample
        weight = torch.clamp(snr[t], max=cfg.min_snr_gamma) / snr[t]   # Min-SNR-gamma for epsilon prediction
        loss = (weight * ((pred - eps) ** 2).mean(dim=(1, 2, 3))).mean()
        for g in opt.param_groups:
            g["lr"] = learning_rate(step, cfg.unet_steps, cfg.unet_lr, cfg.warmup_steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            for e, p in zip(ema, params):
                e.lerp_(p.detach(), 1 - decay)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        log_and_save("unet", step + 1, cfg.unet_steps, loss.item(), time.time() - t0, log, cfg.checkpoint_every, ckpt,
                     lambda: dict(unet=unet.state_dict(), text=text_encoder.state_dict(), opt=opt.state_dict(),
                                  ema=ema, gen=gen.get_state(), step=step + 1))
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    return unet.eval(), text_encoder.eval()



def train_embedded(out: str | Path, cfg: TrainConfig = TrainConfig(), work: str | Path | None = None,
                   progress: bool = True, retrain_stale: bool = False, overwrite: bool = False) -> dict:
    """Train the bundled model into `out` (a diffusers folder). Returns measured numbers (PSNR, times).

    `out` is written once, at the end, as a whole (replace_folder): a killed run leaves it as it was. A folder that
    already holds files is refused unless overwrite. The checkpoints and the loss log live in `work` (default
    `<out>.work`), and a rerun resumes from them. If they were made under another config, the run is refused,
    unless retrain_stale: then the checkpoints of the stages that config change reaches (see STAGES) are deleted
    and retrained from the others, e.g. a new decoder recipe retrains the decoder alone; with no checkpoints at all
    (a fresh clone) every stage is trained. progress: tqdm bars, and that plan (stage_plan), on stderr.
    """
    out = Path(out)
    check_out_folder(out, overwrite)
    for name in ("vae_steps", "unet_steps", "n_latents"):
        positive_int(getattr(cfg, name), name)
    if cfg.decoder_steps < 0:
        raise ValueError(f"decoder_steps must be >= 0 (0 skips the decoder fine-tune), got {cfg.decoder_steps}")
    from ..engine.perceptual import NETS
    if cfg.decoder_lpips_net not in NETS:
        raise ValueError(f"decoder_lpips_net must be one of {NETS}, got {cfg.decoder_lpips_net!r}")
    if cfg.decoder_autocast not in AUTOCAST_DTYPES:
        raise ValueError(f"decoder_autocast must be one of {AUTOCAST_DTYPES}, got {cfg.decoder_autocast!r}")
    work = Path(work) if work else out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    # checkpoints only resume the run that made them: a work folder of another config is refused, not mixed in
    stamp = work / "train_config.json"
    theirs = load_config(stamp) if stamp.exists() else None
    if theirs != cfg:
        if theirs is not None:
            diff = [f.name for f in dataclasses.fields(cfg) if getattr(theirs, f.name) != getattr(cfg, f.name)]
            stale = [s for s in stale_stages(theirs, cfg) if checkpoint_path(work, s).exists()]
            if stale and not retrain_stale:
                raise ValueError(f"work: {work} holds checkpoints of another training config (differs in {diff}, "
                                 f"so the stages {stale} are stale); pass retrain_stale=True (--retrain-stale) "
                                 f"to retrain those from the others, delete the folder, or pass another work folder")
            for s in stale:   # delete before restamping: a run killed in between still sees the old stamp
                checkpoint_path(work, s).unlink()
        save_config(cfg, stamp)
    log = LossLog(work / LOG_FILE)
    if not log.path.exists() and (out / LOG_FILE).exists() and any(checkpoint_path(work, s).exists() for s in STAGES):
        shutil.copy2(out / LOG_FILE, log.path)   # a work folder from before the log lived there: go on from the model's
    if progress:
        print(f"train-embedded: {stage_plan(cfg, work)}", file=sys.stderr)
    with torch.random.fork_rng(devices=[]):
        # diffusers and transformers draw initial weights from the default generator: seed it, scoped to this run
        torch.manual_seed(cfg.seed)
        return _train(out, cfg, work, log, progress)


def _train(out: Path, cfg: TrainConfig, work: Path, log: LossLog, progress: bool) -> dict:
    t0 = time.time()
    tokenizer = build_clip_tokenizer(work / "tokenizer")
    vae = train_vae(cfg, work, log, progress)
    for p in vae.parameters():
        p.requires_grad_(False)
    whiten_latents(vae, *latent_moments(vae, cfg))
    t_vae = time.time() - t0
    data = encode_dataset(vae, tokenizer, cfg, work, progress)
    unet, text_encoder = train_unet(cfg, data, tokenizer, work, log, progress)
    t1 = time.time()
    if cfg.decoder_steps:   # the encoder is frozen: the latents above and the UNet trained on them stay valid
        vae = train_decoder(vae, cfg, work, log, progress)
    t_decoder = time.time() - t1
    vae_psnr = evaluate_vae(vae, cfg)
    stats = dict(vae_psnr_db=vae_psnr, latent_std=data["std"], seconds_total=time.time() - t0, seconds_vae=t_vae,
                 seconds_decoder=t_decoder)

    def write(folder: Path) -> None:
        save_pipeline(folder, vae, text_encoder, tokenizer, unet, data["std"], cfg)
        if log.path.exists():
            shutil.copy2(log.path, folder / LOG_FILE)
        (folder / "training_stats.json").write_text(json.dumps(stats, indent=1))

    kept = replace_folder(out, write)
    if kept and progress:
        print(f"train-embedded: kept {', '.join(kept)} of the previous {out}; they describe the previous weights "
              f"(a model card: rerun `gvcf model-card`)", file=sys.stderr)
    return stats
