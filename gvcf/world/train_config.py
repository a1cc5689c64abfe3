"""What a training run is: TrainConfig, the work folder's stages with the fields each reads, which stages a config
change makes stale, and the plan of a run (resumed or from scratch)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

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


def checkpoint_path(work: Path, stage: str) -> Path:
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



def stage_plan(cfg: TrainConfig, work: Path) -> str:
    """One line: the stages that resume from checkpoints in `work`, and those trained from scratch."""
    stages = [s for s in STAGES if s != "decoder" or cfg.decoder_steps]
    found = [s for s in stages if checkpoint_path(work, s).exists()]
    todo = [s for s in stages if s not in found]
    if not found:
        return f"no checkpoints in {work}: every stage is trained from scratch ({', '.join(todo)})"
    return (f"checkpoints in {work}: {', '.join(found)} (resumed where they stopped); "
            + (f"trained from scratch: {', '.join(todo)}" if todo else "no stage is trained from scratch"))

