"""Train the bundled model from scratch on the procedural world, saved in Stable Diffusion's diffusers format.

Stages: tokenizer (built offline) -> VAE (AutoencoderKL, 4x down, 4 channels) -> latent dataset ->
UNet2DConditionModel + CLIPTextModel jointly, with caption dropout for classifier-free guidance and an EMA.
Every stage checkpoints atomically and resumes, so a killed run loses at most `checkpoint_every` steps; the model
folder is written only at the end, in one swap. A rerun under another config retrains only the stages the change
reaches (STAGES, `retrain_stale`).
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import scenes as world
from ..engine.archs import SD2_SCHEDULER   # SD 2's noise schedule, so DDIM-50 and DDPM-1000 run as in the paper
from ..engine.checks import positive_int
from ..engine.tokenizer import build_clip_tokenizer, write_clip_vocab

AUTOCAST_DTYPES = ("float32", "bfloat16")   # the decoder stage's autocast on the CPU ("float32": off)

# The work folder's stages, each a checkpoint file: the stages it starts from, and the TrainConfig fields it reads
# itself. A field read by a stage makes that stage and every stage after it stale; a field no stage reads
# (OUTPUT_FIELDS) only shapes what is saved. tests/test_training.py checks each field has exactly one place.
STAGES = {
    "vae": dict(file="vae.pt", after=(), fields=(
        "seed", "view_size", "vae_channels", "latent_channels", "vae_steps", "vae_batch", "vae_crop", "vae_lr",
        "vae_kl_weight", "vae_logvar_init", "warmup_steps", "checkpoint_every")),   # the last two: every stage
    "latents": dict(file="latents.pt", after=("vae",), fields=("n_latents",)),
    "unet": dict(file="unet.pt", after=("latents",), fields=(
        "unet_channels", "attention_head_dim", "text_hidden", "text_layers", "text_heads", "pooled_text",
        "unet_steps", "unet_batch", "unet_lr", "caption_dropout", "min_snr_gamma", "ema_decay")),
    "decoder": dict(file="decoder.pt", after=("vae",), fields=(   # the encoder is frozen: the UNet is not an input
        "decoder_steps", "decoder_batch", "decoder_lr", "decoder_lpips_weight", "decoder_lpips_net",
        "decoder_autocast")),
}
OUTPUT_FIELDS = ("eval_views", "save_dtype")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (the run is deterministic given this)."""
    seed: int = 0
    view_size: int = 64                 # native view, pixels
    vae_channels: tuple[int, ...] = (32, 64, 64)   # 3 blocks -> 2 downsamplings -> VAE factor 4
    latent_channels: int = 4
    vae_steps: int = 1600
    vae_batch: int = 32
    vae_crop: int = 32                  # the VAE is convolutional: train on crops, 4x cheaper
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-6
    vae_logvar_init: float = -7.0       # initial posterior log-variance (sigma ~ 0.03): early steps see clean latents
    unet_channels: tuple[int, ...] = (48, 96, 144)
    attention_head_dim: int = 24
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    pooled_text: bool = True            # also add attention-pooled text to the time embedding (global conditioning)
    n_latents: int = 60000              # size of the pre-encoded latent dataset
    unet_steps: int = 4600
    unet_batch: int = 32
    unet_lr: float = 1e-3
    caption_dropout: float = 0.1        # -> empty prompt, for classifier-free guidance
    min_snr_gamma: float = 5.0          # Min-SNR loss weighting (Hang et al. 2023)
    ema_decay: float = 0.999
    warmup_steps: int = 200
    checkpoint_every: int = 250
    eval_views: int = 256
    decoder_steps: int = 900            # last, the decoder alone (encoder frozen: latents and UNet stay valid) ...
    decoder_batch: int = 16             # ... on full views with L1 + LPIPS, which restores the detail MSE blurs
    decoder_lr: float = 1.2e-3          # 6e-4: reconstruction FID 79.7 (1,000 views), 1.2e-3: 71.8, PSNR 32.4 -> 32.7
    decoder_lpips_weight: float = 1.0
    decoder_lpips_net: str = "vgg"      # vgg: reconstruction FID 115 after 400 steps, alex 137 (same lr 2e-4)
    decoder_autocast: str = "bfloat16"  # autocast dtype of that stage ("float32": none); 1.3x faster, same PSNR and FID
    save_dtype: str = "float16"         # halves the committed size; loaded back as float32


def save_config(cfg: TrainConfig, path: Path) -> None:
    """train_config.json: the config a model or a work folder was made with."""
    Path(path).write_text(json.dumps(dataclasses.asdict(cfg), indent=1))


def load_config(path: Path) -> TrainConfig:
    """The TrainConfig written by save_config (JSON lists back to tuples)."""
    data = json.loads(Path(path).read_text())
    return TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _checkpoint(work: Path, stage: str) -> Path:
    """The checkpoint file of a STAGES stage in the work folder."""
    return work / STAGES[stage]["file"]


def stale_stages(before: TrainConfig, after: TrainConfig) -> list[str]:
    """The stages whose checkpoints made under `before` are not what `after` would make, in training order."""
    stale: list[str] = []
    for name, stage in STAGES.items():   # in training order, so a stage's inputs are decided before it
        if any(a in stale for a in stage["after"]) or any(
                getattr(before, f) != getattr(after, f) for f in stage["fields"]):
            stale.append(name)
    return stale


def _norm_groups(channels: tuple[int, ...]) -> int:
    return math.gcd(*channels, 16)


def build_vae(cfg: TrainConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=cfg.vae_channels, layers_per_block=1,
        latent_channels=cfg.latent_channels, norm_num_groups=_norm_groups(cfg.vae_channels),
        sample_size=cfg.view_size, mid_block_add_attention=False,
    )


def build_text_encoder(cfg: TrainConfig, vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=cfg.text_hidden, intermediate_size=4 * cfg.text_hidden,
        num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads, max_position_embeddings=77,
        projection_dim=cfg.text_hidden, pad_token_id=0, bos_token_id=49406, eos_token_id=49407,
    ))


def build_unet(cfg: TrainConfig):
    from diffusers import UNet2DConditionModel

    vae_factor = 2 ** (len(cfg.vae_channels) - 1)
    return UNet2DConditionModel(
        sample_size=cfg.view_size // vae_factor, in_channels=cfg.latent_channels, out_channels=cfg.latent_channels,
        layers_per_block=1, block_out_channels=cfg.unet_channels,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cfg.text_hidden, attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=_norm_groups(cfg.unet_channels),
        # diffusers computes this from encoder_hidden_states inside the UNet: SD pipelines run it unchanged
        addition_embed_type="text" if cfg.pooled_text else None, addition_embed_type_num_heads=cfg.text_heads,
    )


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


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warmup, then cosine decay to 1% of base."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p)))


class _Log:
    """Append-only CSV loss log (stage, step, loss, seconds)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, stage: str, step: int, loss: float, seconds: float) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["stage", "step", "loss", "seconds"])
            w.writerow([stage, step, f"{loss:.6f}", f"{seconds:.1f}"])

    def forget(self, stage: str, after: int) -> None:
        """Drop the rows of `stage` past step `after`: a resumed (or retrained) stage logs those steps again."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        keep = rows[:1] + [r for r in rows[1:] if not (r[0] == stage and int(r[1]) > after)]
        if len(keep) < len(rows):
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(keep)
            os.replace(tmp, self.path)


def _descend(opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float) -> None:
    """One optimizer step on loss at learning rate lr."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _resume(stage: str, work: Path, log: _Log, gen: torch.Generator, **parts) -> tuple[int, dict]:
    """Load the stage's checkpoint, if any, into gen and into each named part (part.load_state_dict(state[name])),
    and drop the log rows the stage will write again; the step to go on from, and the checkpoint ({} if none)."""
    ckpt = _checkpoint(work, stage)
    state = torch.load(ckpt, weights_only=False) if ckpt.exists() else {}
    if state:
        gen.set_state(state["gen"])
        for name, part in parts.items():
            part.load_state_dict(state[name])
    start = state.get("step", 0)
    log.forget(stage, start)
    return start, state


def _log_and_save(stage: str, done: int, total: int, loss: float, seconds: float, log: "_Log", every: int,
                  ckpt: Path, state) -> bool:
    """Log every 25 steps; checkpoint state() every `every` steps and at the end. True when it saved."""
    if done % 25 == 0:
        log.write(stage, done, loss, seconds)
    if done % every == 0 or done == total:
        _atomic_save(state(), ckpt)
        return True
    return False


def _rng(cfg: TrainConfig, stream: str) -> np.random.Generator:
    """Independent, named numpy streams derived from the run seed."""
    return np.random.default_rng([cfg.seed, *stream.encode()])


def train_vae(cfg: TrainConfig, work: Path, log: _Log, progress: bool = True):
    vae = build_vae(cfg)
    with torch.no_grad():   # a random encoder's posterior has sigma ~ 1, which buries the signal for many steps
        c = cfg.latent_channels
        vae.quant_conv.weight[c:].zero_()
        vae.quant_conv.bias[c:].fill_(cfg.vae_logvar_init)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    ckpt = _checkpoint(work, "vae")
    gen = torch.Generator().manual_seed(cfg.seed)
    start, _ = _resume("vae", work, log, gen, model=vae, opt=opt)
    rng = _rng(cfg, f"vae-data-{start}")
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
        _descend(opt, loss, _lr(step, cfg.vae_steps, cfg.vae_lr, cfg.warmup_steps))
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if _log_and_save("vae", step + 1, cfg.vae_steps, loss.item(), time.time() - t0, log, cfg.checkpoint_every, ckpt,
                         lambda: dict(model=vae.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), step=step + 1)):
            rng = _rng(cfg, f"vae-data-{step + 1}")  # reseed at checkpoints so a resumed run sees the same data
    return vae.eval()


def train_decoder(vae, cfg: TrainConfig, work: Path, log: _Log, progress: bool = True):
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
    ckpt = _checkpoint(work, "decoder")
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    start, _ = _resume("decoder", work, log, gen, model=vae, opt=opt)
    rng = _rng(cfg, f"decoder-data-{start}")
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
        _descend(opt, loss, _lr(step, cfg.decoder_steps, cfg.decoder_lr, min(cfg.warmup_steps, cfg.decoder_steps // 10)))
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if _log_and_save("decoder", step + 1, cfg.decoder_steps, loss.item(), time.time() - t0, log, cfg.checkpoint_every, ckpt,
                         lambda: dict(model=vae.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), step=step + 1)):
            rng = _rng(cfg, f"decoder-data-{step + 1}")
    for p in params:
        p.requires_grad_(False)
    return vae.eval()


@torch.no_grad()
def evaluate_vae(vae, cfg: TrainConfig) -> float:
    """Reconstruction PSNR (dB) on held-out full views (a data stream never used in training)."""
    images, _, _ = world.sample_views(_rng(cfg, "vae-heldout"), cfg.eval_views, cfg.view_size)
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
    images, _, _ = world.sample_views(_rng(cfg, "latent-moments"), n, cfg.view_size)
    z = torch.cat([vae.encode(b).latent_dist.mean for b in to_unit(images).split(256)])
    return z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3))


@torch.no_grad()
def encode_dataset(vae, tokenizer, cfg: TrainConfig, work: Path, progress: bool = True):
    """Pre-encode n_latents world views: latents (posterior samples, unscaled), token ids, and the latent std."""
    path = _checkpoint(work, "latents")
    if path.exists():
        return torch.load(path, weights_only=False)
    rng = _rng(cfg, "unet-data")
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
    _atomic_save(data, path)
    return data


def train_unet(cfg: TrainConfig, data: dict, tokenizer, work: Path, log: _Log, progress: bool = True):
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
    ckpt = _checkpoint(work, "unet")
    start, state = _resume("unet", work, log, gen, unet=unet, text=text_encoder, opt=opt)
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
            g["lr"] = _lr(step, cfg.unet_steps, cfg.unet_lr, cfg.warmup_steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            for e, p in zip(ema, params):
                e.lerp_(p.detach(), 1 - decay)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        _log_and_save("unet", step + 1, cfg.unet_steps, loss.item(), time.time() - t0, log, cfg.checkpoint_every, ckpt,
                      lambda: dict(unet=unet.state_dict(), text=text_encoder.state_dict(), opt=opt.state_dict(),
                                   ema=ema, gen=gen.get_state(), step=step + 1))
    with torch.no_grad():
        for e, p in zip(ema, params):
            p.copy_(e)
    return unet.eval(), text_encoder.eval()


LOG_FILE = "training_log.csv"   # kept in the work folder while training, copied into the model at the end


def save_pipeline(out: Path, vae, text_encoder, tokenizer, unet, latent_std: float, cfg: TrainConfig) -> None:
    """Write a Stable Diffusion folder (model_index.json, tokenizer, text_encoder, unet, vae, scheduler and
    train_config.json) into `out`, a new folder: replace_folder puts it in place of another."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    vae.register_to_config(scaling_factor=1.0 / latent_std)
    dtype = getattr(torch, cfg.save_dtype)
    pipe = StableDiffusionPipeline(
        vae=vae.to(dtype), text_encoder=text_encoder.to(dtype), tokenizer=tokenizer, unet=unet.to(dtype),
        scheduler=PNDMScheduler.from_config(SD2_SCHEDULER),
        safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out, safe_serialization=True)
    # Ship vocab.json + merges.txt as SD 2 does; tokenizer.json (3.6 MB) is rebuilt from them on load.
    (out / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)
    write_clip_vocab(out / "tokenizer")
    save_config(cfg, out / "train_config.json")


def _sibling(out: Path, suffix: str) -> Path:
    return out.with_name(out.name + suffix)


def recover_folder(out: Path) -> None:
    """Undo what a run killed inside replace_folder left: the previous folder back at `out` if the new one never
    got there, and no temporary siblings."""
    old, new = _sibling(out, ".outgoing"), _sibling(out, ".incoming")
    if old.exists() and not out.exists():
        os.replace(old, out)
    for leftover in (old, new):
        shutil.rmtree(leftover, ignore_errors=True)


def replace_folder(out: Path, write) -> list[str]:
    """Build a folder by write(folder) in a temporary sibling, then swap it in for `out` by two renames, so `out` is
    either the previous folder or the finished new one (killed between the renames: absent, the previous one at
    <out>.outgoing, which recover_folder puts back). Entries of the previous folder that the new one lacks (a model
    card) are copied over; returns their names."""
    recover_folder(out)
    new, old = _sibling(out, ".incoming"), _sibling(out, ".outgoing")
    new.mkdir(parents=True)
    write(new)
    kept = []
    if out.is_dir():
        for item in sorted(out.iterdir()):
            if not (new / item.name).exists():
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, new / item.name)
                kept.append(item.name)
        os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)
    return kept


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse (ValueError naming `out`) to replace a folder that holds anything, unless overwrite."""
    from ..engine.models import EMBEDDED_FOLDER, models_root

    recover_folder(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {out} is a file, not a folder")
    if overwrite or not out.exists() or not any(out.iterdir()):
        return
    names = sorted(p.name for p in out.iterdir())
    what = ("the bundled model" if out.resolve() == (models_root() / EMBEDDED_FOLDER).resolve()
            else "a model" if "model_index.json" in names else "files")
    listing = f" ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
    raise ValueError(f"out: {out} already holds {what}{listing}; pass overwrite=True (--overwrite) to replace it "
                     f"once training has finished, or another out (--out)")


def stage_plan(cfg: TrainConfig, work: Path) -> str:
    """One line: the stages that resume from checkpoints in `work`, and those trained from scratch."""
    stages = [s for s in STAGES if s != "decoder" or cfg.decoder_steps]
    found = [s for s in stages if _checkpoint(work, s).exists()]
    todo = [s for s in stages if s not in found]
    if not found:
        return f"no checkpoints in {work}: every stage is trained from scratch ({', '.join(todo)})"
    return (f"checkpoints in {work}: {', '.join(found)} (resumed where they stopped); "
            + (f"trained from scratch: {', '.join(todo)}" if todo else "no stage is trained from scratch"))


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
    _check_out(out, overwrite)
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
            stale = [s for s in stale_stages(theirs, cfg) if _checkpoint(work, s).exists()]
            if stale and not retrain_stale:
                raise ValueError(f"work: {work} holds checkpoints of another training config (differs in {diff}, "
                                 f"so the stages {stale} are stale); pass retrain_stale=True (--retrain-stale) "
                                 f"to retrain those from the others, delete the folder, or pass another work folder")
            for s in stale:   # delete before restamping: a run killed in between still sees the old stamp
                _checkpoint(work, s).unlink()
        save_config(cfg, stamp)
    log = _Log(work / LOG_FILE)
    if not log.path.exists() and (out / LOG_FILE).exists() and any(_checkpoint(work, s).exists() for s in STAGES):
        shutil.copy2(out / LOG_FILE, log.path)   # a work folder from before the log lived there: go on from the model's
    if progress:
        print(f"train-embedded: {stage_plan(cfg, work)}", file=sys.stderr)
    with torch.random.fork_rng(devices=[]):
        # diffusers and transformers draw initial weights from the default generator: seed it, scoped to this run
        torch.manual_seed(cfg.seed)
        return _train(out, cfg, work, log, progress)


def _train(out: Path, cfg: TrainConfig, work: Path, log: _Log, progress: bool) -> dict:
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
