"""Shared fixtures: tiny random-weight Stable Diffusion pipelines built from configs (as diffusers' tests do)."""
import os
import types
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def clip_tokenizer(tmp_path_factory):
    """A real CLIP tokenizer, built offline from open_clip's BPE file."""
    from gvcf.engine.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def tiny_pipeline(tokenizer, sample_size=8, vae_blocks=2, scheduler="ddim", seed=0):
    """A StableDiffusionPipeline with tiny random weights: VAE factor 2**(vae_blocks-1), UNet view sample_size."""
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    from gvcf.engine.archs import SD2_SCHEDULER

    g = torch.random.fork_rng(devices=[])
    with g:
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16), layers_per_block=1, sample_size=sample_size, in_channels=4, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4)
        vae = AutoencoderKL(
            block_out_channels=(8,) * vae_blocks, in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
            down_block_types=("DownEncoderBlock2D",) * vae_blocks, up_block_types=("UpDecoderBlock2D",) * vae_blocks)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=0))
    sched = DDIMScheduler.from_config(SD2_SCHEDULER)   # Stable Diffusion 2's noise schedule
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def tiny_pipe(clip_tokenizer):
    """View 16 px (8 latent), VAE factor 2."""
    return tiny_pipeline(clip_tokenizer)


@pytest.fixture(scope="session")
def tiny64(clip_tokenizer):
    """A random-weight model with Stable Diffusion's geometry (64-latent views, VAE factor 8), one per test run."""
    from gvcf.engine import archs

    return archs.build_random_model("tiny64", device="cpu", tokenizer=clip_tokenizer)


@pytest.fixture(scope="session")
def lpips_net():
    """LPIPS-VGG with its calibrated heads and a random backbone: differentiable, nothing downloaded."""
    import lpips

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    return net.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def real_lpips():
    """real_lpips("vgg" | "alex"): LPIPS with its offline weights (gvcf.engine.assets), built once per test run."""
    from gvcf.engine import assets
    from gvcf.engine.perceptual import load_lpips

    built = {}

    def get(net):
        if net not in built:
            assets.lpips_checkpoint_path(net, fetch=True)
            built[net] = load_lpips(net)
        return built[net]

    return get


class ZeroUNet(torch.nn.Module):
    """A noise predictor that always says 'no noise': isolates what fusion does to the sampler's noise."""

    def __init__(self, sample_size=8, channels=4):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.config = types.SimpleNamespace(in_channels=channels, sample_size=sample_size)

    @property
    def device(self):
        return self.anchor.device

    @property
    def dtype(self):
        return self.anchor.dtype

    def forward(self, x, t, encoder_hidden_states=None):
        return types.SimpleNamespace(sample=torch.zeros_like(x))


@pytest.fixture
def zero_model(tiny_pipe):
    """tiny_pipe's model (view 8 latent px, VAE factor 2) with the ZeroUNet: eps = 0 whatever the prompt."""
    from gvcf.engine.models import Model

    model = Model.from_pipeline(tiny_pipe)
    model.unet = ZeroUNet()
    return model
