"""The bundled model's networks: a diffusers AutoencoderKL and UNet2DConditionModel and a transformers CLIPTextModel,
shaped by a TrainConfig."""
from __future__ import annotations

import math

from .train_config import TrainConfig


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
