"""Model architectures without weights: Stable Diffusion 2 base's and SDXL base 1.0's published configs and small
test-size models.

Timing does not depend on the weights, so a randomly initialised model of the right architecture measures what
the paper's Table 3 measures (its UNet: SD 2 base, 865M parameters) without downloading anything.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .models import EMBEDDED_FOLDER, Model, check_pipeline_folder, models_root

# ---- Stable Diffusion 2 base (stabilityai/stable-diffusion-2-base), diffusers format ----
# Checked against the published component config.json files (the 2-1-base mirror jack-op11/stable-diffusion-2-1-base,
# unet/, vae/, text_encoder/, scheduler/; 2.1-base is a fine-tune of 2-base with the same architecture).
# unet/config.json
SD2_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    only_cross_attention=False, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=1024,
    attention_head_dim=(5, 10, 20, 20), dual_cross_attention=False, use_linear_projection=True, num_class_embeds=None,
)
# vae/config.json (sample_size is 768 in the published file, the VAE having been shared with the 768-v model; it is
# not used at inference: the native view is the UNet's 64 latent x VAE factor 8 = 512 px). scaling_factor is not in
# the file: diffusers' default 0.18215, as Stable Diffusion's first-stage scale.
SD2_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, act_fn="silu", block_out_channels=(128, 256, 512, 512),
    layers_per_block=2, norm_num_groups=32, sample_size=768, scaling_factor=0.18215,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
# text_encoder/config.json: OpenCLIP ViT-H/14's text tower without its last layer (23 of 24 layers)
SD2_TEXT = dict(
    vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
    max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.0,
    initializer_factor=1.0, initializer_range=0.02, projection_dim=512, bos_token_id=0, eos_token_id=2,
    pad_token_id=1,
)
# scheduler/scheduler_config.json: every sampler and the bundled model's trainer use this one noise schedule.
# clip_sample=False matters: DDIM and DDPM default to clipping x_0 to [-1, 1], which is right for pixels but
# flattens latents (std 1) into a haze as soon as guidance pushes x_0 past 1.
SD2_SCHEDULER = dict(
    _class_name="PNDMScheduler", num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
    beta_schedule="scaled_linear", trained_betas=None, clip_sample=False, set_alpha_to_one=False,
    skip_prk_steps=True, steps_offset=1, prediction_type="epsilon",
)
SD2_UNET_PARAMETERS = 865_910_724   # the paper's "865 million parameters" (Introduction)
# Stable Diffusion 2's native view in image pixels: its UNet's 64 latent pixels x the VAE's factor 8 = 512
SD2_NATIVE_SIZE = SD2_UNET["sample_size"] * 2 ** (len(SD2_VAE["block_out_channels"]) - 1)

# ---- tiny64: a small random model with SD's geometry (VAE factor 8, 64-latent views, 512 px native) ----
# so diffusers' StableDiffusionPanoramaPipeline (window 64 latent, factor 8) applies to it as it is.
TINY64_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
)
TINY64_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 16, 16), layers_per_block=1,
    norm_num_groups=4, sample_size=512, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, mid_block_add_attention=False,
)
TINY64_TEXT = dict(
    vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
    max_position_embeddings=77, projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=0,
)


# ---- Stable Diffusion XL base 1.0 (stabilityai/stable-diffusion-xl-base-1.0), diffusers format ----
# Checked against copies of the published unet/, vae/, text_encoder/, text_encoder_2/ and scheduler/ config files;
# built from them, the components have SDXL's parameter counts (UNet 2,567,463,684, VAE 83,653,863, text encoders
# 123,060,480 and 694,659,840). unet/config.json: three levels, 10 transformer layers at the lowest; the "text_time"
# added embedding takes the pooled text embedding (1280) and six time ids of 256 each: 2816 = 1280 + 6 x 256.
SDXL_UNET = dict(
    sample_size=128, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), mid_block_type="UNetMidBlock2DCrossAttn",
    only_cross_attention=False, block_out_channels=(320, 640, 1280), layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=2048,
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), dual_cross_attention=False,
    use_linear_projection=True, num_class_embeds=None, addition_embed_type="text_time",
    addition_embed_type_num_heads=64, addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
)
# vae/config.json: Stable Diffusion's 4-block VAE retrained; its latents are scaled by 0.13025 and it overflows in
# float16 (force_upcast: decoded in float32, as diffusers' SDXL pipeline does)
SDXL_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, act_fn="silu", block_out_channels=(128, 256, 512, 512),
    layers_per_block=2, norm_num_groups=32, sample_size=1024, scaling_factor=0.13025, force_upcast=True,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
# text_encoder/config.json: CLIP ViT-L/14's text tower (a CLIPTextModel; its penultimate layer is used)
SDXL_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.0,
    initializer_factor=1.0, initializer_range=0.02, projection_dim=768, bos_token_id=0, eos_token_id=2,
    pad_token_id=1,
)
# text_encoder_2/config.json: OpenCLIP ViT-bigG/14's text tower with its projection (a CLIPTextModelWithProjection:
# penultimate layer for cross-attention, the projected pooled output for the added embedding)
SDXL_TEXT_2 = dict(
    vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
    max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5, attention_dropout=0.0, dropout=0.0,
    initializer_factor=1.0, initializer_range=0.02, projection_dim=1280, bos_token_id=0, eos_token_id=2,
    pad_token_id=1,
)
# scheduler/scheduler_config.json: an EulerDiscreteScheduler on Stable Diffusion's noise schedule (every sampler
# here reads only the schedule from it)
SDXL_SCHEDULER = dict(
    _class_name="EulerDiscreteScheduler", num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
    beta_schedule="scaled_linear", trained_betas=None, clip_sample=False, set_alpha_to_one=False,
    skip_prk_steps=True, steps_offset=1, timestep_spacing="leading", prediction_type="epsilon",
    interpolation_type="linear", sample_max_value=1.0, use_karras_sigmas=False,
)
SDXL_UNET_PARAMETERS = 2_567_463_684   # SDXL base 1.0's UNet ("2.6B")
# SDXL's native view: 128 latent pixels x the VAE's factor 8 = 1024
SDXL_NATIVE_SIZE = SDXL_UNET["sample_size"] * 2 ** (len(SDXL_VAE["block_out_channels"]) - 1)

# ---- tiny-sdxl: SDXL's structure at test size (diffusers' own SDXL pipeline tests' components) ----
# two levels, 64 latent channels of cross-attention (32 + 32 from the two encoders), the "text_time" embedding
# of the pooled 32 and six time ids of 8: 80 = 32 + 6 x 8; VAE factor 2, so a view is 32 latent = 64 px.
TINY_SDXL_UNET = dict(
    sample_size=32, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
    cross_attention_dim=64,
)
TINY_SDXL_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64), sample_size=128,
    down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    scaling_factor=0.13025, force_upcast=True,
)
TINY_SDXL_TEXT = dict(
    vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=5, num_attention_heads=4,
    max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=32, bos_token_id=49406,
    eos_token_id=49407, pad_token_id=0,
)


# ---- the tests' random-weight Stable Diffusion (tests/conftest.py tiny_pipeline): SD's structure at toy size, a
# view of any sample_size latent pixels, a VAE of `blocks` levels (factor 2**(blocks - 1)), a 16-wide text encoder
TEST_UNET = dict(
    block_out_channels=(8, 16), layers_per_block=1, in_channels=4, out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
)
TEST_TEXT = dict(
    hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
    bos_token_id=49406, eos_token_id=49407, pad_token_id=0,
)


def tiny_test_vae(blocks: int = 2) -> dict:
    """The tests' VAE config: `blocks` levels of 8 channels (VAE factor 2**(blocks - 1))."""
    return dict(block_out_channels=(8,) * blocks, in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                down_block_types=("DownEncoderBlock2D",) * blocks, up_block_types=("UpDecoderBlock2D",) * blocks)


def sdxl_configs() -> dict:
    """SDXL base 1.0's component configs (copies): unet, vae, text_encoder, text_encoder_2, scheduler."""
    return dict(unet=dict(SDXL_UNET), vae=dict(SDXL_VAE), text_encoder=dict(SDXL_TEXT),
                text_encoder_2=dict(SDXL_TEXT_2), scheduler=dict(SDXL_SCHEDULER))


def sd2_configs() -> dict:
    """Stable Diffusion 2 base's component configs (copies): unet, vae, text_encoder, scheduler."""
    return dict(unet=dict(SD2_UNET), vae=dict(SD2_VAE), text_encoder=dict(SD2_TEXT), scheduler=dict(SD2_SCHEDULER))


def _tiny_configs() -> dict:
    """The bundled model's architecture: the configs saved in its folder."""
    import json

    folder = models_root() / EMBEDDED_FOLDER
    check_pipeline_folder(folder, "the bundled model (arch 'tiny' is its architecture)")
    read = lambda sub, name="config.json": json.loads((folder / sub / name).read_text())  # noqa: E731
    return dict(unet=read("unet"), vae=read("vae"), text_encoder=read("text_encoder"),
                scheduler=read("scheduler", "scheduler_config.json"))


def _tiny64_configs() -> dict:
    return dict(unet=dict(TINY64_UNET), vae=dict(TINY64_VAE), text_encoder=dict(TINY64_TEXT),
                scheduler=dict(SD2_SCHEDULER))


def _tiny_sdxl_configs() -> dict:
    return dict(unet=dict(TINY_SDXL_UNET), vae=dict(TINY_SDXL_VAE), text_encoder=dict(TINY_SDXL_TEXT),
                text_encoder_2=dict(TINY_SDXL_TEXT), scheduler=dict(SDXL_SCHEDULER))


ARCH_CONFIGS = {   # an architecture -> its component configs (fresh copies); an SDXL one has a text_encoder_2
    "sd2": sd2_configs, "tiny": _tiny_configs, "tiny64": _tiny64_configs,
    "sdxl": sdxl_configs, "tiny-sdxl": _tiny_sdxl_configs,
}
ARCHS = tuple(ARCH_CONFIGS)


def arch_configs(arch: str) -> dict:
    """Component configs of an architecture: 'sd2' (SD 2 base), 'tiny' (the bundled model's), 'tiny64', 'sdxl'
    (SDXL base 1.0) and 'tiny-sdxl'."""
    if arch not in ARCH_CONFIGS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return ARCH_CONFIGS[arch]()


def _public(config: dict) -> dict:
    """A saved config without diffusers' bookkeeping keys (_class_name, _diffusers_version, ...)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def build_unet(arch: str):
    """A randomly initialised UNet2DConditionModel of the architecture (on the current default device)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(_public(arch_configs(arch)["unet"]))


def _clip_text(config: dict, cls):
    """A randomly initialised transformers CLIP text model of class `cls` from a saved text encoder config."""
    from transformers import CLIPTextConfig

    return cls(CLIPTextConfig(**{k: v for k, v in _public(config).items()
                                 if k not in ("architectures", "model_type", "torch_dtype", "transformers_version")}))


def build_random_model(arch: str = "tiny", device: str | torch.device | None = None, dtype: torch.dtype | None = None,
                       tokenizer=None, seed: int = 0) -> Model:
    """A gvcf Model of the architecture with random weights (for timing: nothing is downloaded). An SDXL
    architecture gets its second text encoder (a CLIPTextModelWithProjection) and the same tokenizer twice."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from .models import default_device
    from .tokenizer import build_clip_tokenizer

    configs = arch_configs(arch)
    device = torch.device(device or default_device())
    dtype = dtype or torch.float32
    if tokenizer is None:
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer = build_clip_tokenizer(Path(tmp))
    with torch.random.fork_rng(devices=[]):   # the caller's random stream is not touched
        torch.manual_seed(seed)
        with device:   # initialise where the model will run (SD 2's 1.3B parameters initialise fast on a GPU)
            unet = UNet2DConditionModel.from_config(_public(configs["unet"]))
            vae = AutoencoderKL.from_config(_public(configs["vae"]))
            text_encoder = _clip_text(configs["text_encoder"], CLIPTextModel)
            text_encoder_2 = _clip_text(configs["text_encoder_2"], CLIPTextModelWithProjection) \
                if "text_encoder_2" in configs else None
    for m in (unet, vae, text_encoder, text_encoder_2):
        if m is None:
            continue
        m.eval().requires_grad_(False)
        if dtype != torch.float32:   # built in float32; cast only when asked (diffusers warns on every cast)
            m.to(dtype=dtype)
    scheduler = {k: v for k, v in configs["scheduler"].items() if k != "_class_name"}
    return Model(tokenizer, text_encoder, unet, vae, scheduler, name=f"random-{arch}",
                 tokenizer_2=tokenizer if text_encoder_2 is not None else None, text_encoder_2=text_encoder_2)
