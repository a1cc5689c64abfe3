"""Loading, prompt encoding as diffusers does it, tiled and circular decoding, the offline CLIP tokenizer."""
import pytest
import torch

import gvcf
from gvcf.engine.models import Model


def test_missing_model_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="huggingface-cli download stabilityai/stable-diffusion-2-base"):
        gvcf.load_model("stabilityai/stable-diffusion-2-base", device="cpu")


def test_folder_without_model_index(tmp_path):
    with pytest.raises(ValueError, match="model_index.json"):
        gvcf.load_model(str(tmp_path), device="cpu")


def test_local_folder_loads_like_the_pipeline(tiny_pipe, tmp_path):
    tiny_pipe.save_pretrained(tmp_path)
    model = gvcf.load_model(str(tmp_path), device="cpu")
    assert (model.native_size, model.vae_scale_factor, model.latent_channels) == (16, 2, 4)
    ours = model.encode_prompt("A photo of a city skyline at night", "blurry")
    cond, uncond = tiny_pipe.encode_prompt("A photo of a city skyline at night", "cpu", 1, True, "blurry")
    torch.testing.assert_close(ours.cond, cond)
    torch.testing.assert_close(ours.uncond, uncond)
    assert model.encode_prompt("x", guidance=False).uncond is None


def test_decode_whole_equals_vae_and_tiles_are_bounded(tiny_pipe):
    model = Model.from_pipeline(tiny_pipe)
    z = torch.randn(1, 4, 8, 40, generator=torch.Generator().manual_seed(0))
    full = (tiny_pipe.vae.decode(z / model.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    torch.testing.assert_close(model.decode(z, tile=64), full)        # one tile covers the canvas: exact
    seen = []
    real = model._decode
    model._decode = lambda t: seen.append(tuple(t.shape[-2:])) or real(t)
    tiled = model.decode(z, tile=8)
    assert tiled.shape == (1, 3, 16, 80) and max(w for _, w in seen) <= 8 and len(seen) >= 5
    assert (tiled - full).abs().mean() < 0.1                          # blended tiles stay close to the whole decode


def test_circular_decode_has_no_wrap_seam(tiny_pipe):
    model = Model.from_pipeline(tiny_pipe)
    z = torch.randn(1, 4, 8, 32, generator=torch.Generator().manual_seed(1))
    jump = lambda img: (img[..., 0] - img[..., -1]).abs().mean().item()
    inner = lambda img: (img[..., 1:] - img[..., :-1]).abs().mean().item()
    circ = model.decode(z, circular=True, tile=16)
    assert circ.shape == (1, 3, 16, 64)
    # decoded with its wrapped neighbours, the right edge continues into the left one like any other column pair
    assert jump(circ) < 2 * inner(circ)


def test_tokenizer_matches_open_clip(clip_tokenizer):
    from open_clip.tokenizer import SimpleTokenizer

    tok, ref = clip_tokenizer, SimpleTokenizer()
    for text in ["A photo of a city skyline at night", "Natural landscape in anime style illustration",
                 "An illustration of a beach in La La Land style, 2016's film"]:
        assert tok(text, padding="max_length", max_length=77).input_ids == ref([text])[0].tolist()


def test_folder_without_a_component_names_it(tiny_pipe, tmp_path):
    import shutil

    tiny_pipe.save_pretrained(tmp_path)
    shutil.rmtree(tmp_path / "unet")
    with pytest.raises(ValueError, match=r"lacks the component folder\(s\) \['unet'\]"):
        gvcf.load_model(str(tmp_path), device="cpu")


@pytest.mark.parametrize("path", ["/no/such/sd2-base", "./sd2-base", "sd2-base", "~/models/sd2"])
def test_a_missing_local_path_is_not_sent_to_the_hub(path):
    with pytest.raises(ValueError, match="no such folder") as err:
        gvcf.load_model(path, device="cpu")
    assert "huggingface-cli" not in str(err.value)


def test_gvcf_models_pointing_at_an_empty_folder_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GVCF_MODELS", str(tmp_path))
    with pytest.raises(ValueError, match="GVCF_MODELS"):
        gvcf.load_model("embedded", device="cpu")


def _broken(tmp_path, tiny_pipe, damage):
    tiny_pipe.save_pretrained(tmp_path)
    damage(tmp_path)
    return str(tmp_path)


def _make_xl_with_empty_tokenizer_2(folder):
    import json
    import shutil

    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "StableDiffusionXLPipeline"
    (folder / "model_index.json").write_text(json.dumps(index))
    shutil.copytree(folder / "text_encoder", folder / "text_encoder_2")
    (folder / "tokenizer_2").mkdir()


@pytest.mark.parametrize("damage,message", [
    (lambda p: (p / "model_index.json").write_text("{broken"), r"model_index.json is not valid JSON"),
    (lambda p: (p / "model_index.json").write_text("[]"), r"model_index.json is not a mapping"),
    (lambda p: (p / "unet" / "config.json").write_text("{"), r"unet/config.json is not valid JSON"),
    (lambda p: (p / "scheduler" / "scheduler_config.json").write_text(""), r"scheduler_config.json is not valid"),
    (lambda p: (p / "vae" / "diffusion_pytorch_model.safetensors").unlink(), r"vae/ has no weights"),
    (lambda p: (p / "text_encoder" / "model.safetensors").write_bytes(b""), r"text_encoder/ has no weights"),
    (lambda p: [f.unlink() for f in (p / "tokenizer").iterdir()], r"tokenizer/ has no tokenizer files"),
    (lambda p: (p / "tokenizer" / "tokenizer.json").write_text(""), r"tokenizer/ has no tokenizer files"),
    (_make_xl_with_empty_tokenizer_2, r"tokenizer_2/ has no tokenizer files"),   # an OverflowError in generate
    (lambda p: (p / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors at all"),
     r"could not be loaded"),                                                    # an OSError traceback before
])
def test_a_broken_folder_is_a_value_error_naming_model_and_what_is_broken(tiny_pipe, tmp_path, damage, message):
    """Issue 27 item 5: a broken JSON or missing weights ended in an OSError traceback; an SDXL folder with an empty
    tokenizer_2/ passed the check and failed in generate with 'int too big to convert'."""
    path = _broken(tmp_path, tiny_pipe, damage)
    with pytest.raises(ValueError, match="model=") as err:
        gvcf.load_model(path, device="cpu")
    assert __import__("re").search(message, str(err.value)), str(err.value)
