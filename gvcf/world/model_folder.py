"""The trained model's folder: saved in Stable Diffusion's diffusers format, and swapped in whole when training has
finished (a killed run leaves the previous folder), refusing to replace one that holds files unless asked."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from ..engine.archs import SD2_SCHEDULER   # SD 2's noise schedule, so DDIM-50 and DDPM-1000 run as in the paper
from ..engine.tokenizer import write_clip_vocab
from .train_config import TrainConfig, save_config


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


def check_out_folder(out: Path, overwrite: bool) -> None:
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

