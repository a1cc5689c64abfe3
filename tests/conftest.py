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

    from gvcf.engine import archs
    from gvcf.engine.archs import SD2_SCHEDULER

    g = torch.random.fork_rng(devices=[])
    with g:
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**archs.TEST_UNET, sample_size=sample_size)
        vae = AutoencoderKL(**archs.tiny_test_vae(vae_blocks))
        text_encoder = CLIPTextModel(CLIPTextConfig(**archs.TEST_TEXT, vocab_size=len(tokenizer)))
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
