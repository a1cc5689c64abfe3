"""Stable Diffusion components: loading (bundled model, hub id, local folder, or a pipeline),
prompt encoding, the classifier-free-guided noise predictor, and tiled (circular-aware) VAE decoding."""
from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from .stages import stage
from .views import axis_starts

EMBEDDED = "embedded"
EMBEDDED_FOLDER = "gvcf-world-64"   # data/models/<this>: the bundled model
SD2_BASE = "stabilityai/stable-diffusion-2-base"
# Decode the whole canvas at once up to this many native view areas; tile beyond (bounded memory).
WHOLE_DECODE_VIEWS = 8
# The UNet call that ran fastest per latent pixel, as UNet rows (views, doubled by classifier-free guidance) x latent
# pixels per view, by device type. CPU, measured on a 2-core EPYC with 2 threads (medians of 5 interleaved rounds):
# the bundled model (16 x 16 latents) costs 28.8 ms per view at 9 views per call, 23.5 at 18, 21.7 at 36, 22.7 at 72
# and 22.5 at 144, a plateau from ~18k row-pixels on; the budget sits in it (72 views). SD-geometry tiny64 (64 x 64
# latents, 4 views per call under this budget): 1, 2, 4, 8 and 9 views per call all within the run-to-run spread
# (`gvcf bench`). CUDA: not measured (no GPU was lent to this project's sessions); a GPU wants large calls, and the
# bound is 32 Stable Diffusion 2 views (64 rows of 64 x 64) per call. Pass view_batch_size to override.
UNET_CALL_PIXELS = {"cpu": 36_864, "cuda": 262_144}
DEFAULT_CALL_PIXELS = UNET_CALL_PIXELS["cpu"]


def models_root() -> Path:
    """Where bundled models live: $GVCF_MODELS when set (and then only there: a wrong setting is an error, not a
    silent fall-back to another model), else the repository's data/models, else installed package data."""
    env = os.environ.get("GVCF_MODELS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    candidates = [package.parent / "data" / "models", package / "_data" / "models"]
    for c in candidates:
        if (c / EMBEDDED_FOLDER / "model_index.json").exists():
            return c
    return candidates[0]


PIPELINE_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# Stable Diffusion XL: model_index.json's _class_name, and the second text encoder and tokenizer its folder adds
XL_PIPELINES = ("StableDiffusionXLPipeline",)
XL_PARTS = PIPELINE_PARTS + ("text_encoder_2", "tokenizer_2")


def _is_xl_folder(path: Path) -> bool:
    """Whether a pipeline folder's model_index.json names a Stable Diffusion XL pipeline."""
    import json

    try:
        return json.loads((path / "model_index.json").read_text()).get("_class_name") in XL_PIPELINES
    except (OSError, ValueError, AttributeError):
        return False


PART_CONFIGS = {"scheduler": "scheduler_config.json", "tokenizer": None, "tokenizer_2": None}   # else config.json
WEIGHT_SUFFIXES = (".safetensors", ".bin")   # a network's weights (sharded ones have an .index.json beside them)
# a CLIP tokenizer's files: its fast tokenizer.json, or the slow one's vocabulary and merges
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"))


def _json_error(path: Path) -> str | None:
    """Why a JSON file cannot be read as a mapping (None when it can)."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        return f"cannot be read ({err})"
    except ValueError as err:
        return f"is not valid JSON ({err})"
    return None if isinstance(data, dict) and data else "is not a mapping of settings"


def _part_problem(folder: Path, part: str) -> str | None:
    """What is wrong with one component folder of a pipeline (None when nothing is)."""
    if part.startswith("tokenizer"):
        if not any(all((folder / f).is_file() and (folder / f).stat().st_size for f in files)
                   for files in TOKENIZER_FILES):
            return f"{part}/ has no tokenizer files ({' or '.join(' + '.join(f) for f in TOKENIZER_FILES)})"
        return None
    config = folder / PART_CONFIGS.get(part, "config.json")
    why = _json_error(config)
    if why:
        return f"{part}/{config.name} {why}"
    if part != "scheduler" and not any(p.suffix in WEIGHT_SUFFIXES and p.stat().st_size for p in folder.iterdir()):
        return f"{part}/ has no weights (no non-empty {' or '.join(WEIGHT_SUFFIXES)} file)"
    return None


def check_pipeline_folder(path: Path, name: str) -> None:
    """A local diffusers Stable Diffusion (or XL) folder: a readable model_index.json and each component's subfolder
    with its readable config and weights, or its tokenizer files (an XL folder also text_encoder_2 and
    tokenizer_2); ValueError naming model and what is wrong, before anything is loaded."""
    if not (path / "model_index.json").exists():
        raise ValueError(f"model={name!r}: the folder {path} has no model_index.json (not a diffusers pipeline folder)")
    why = _json_error(path / "model_index.json")
    if why:
        raise ValueError(f"model={name!r}: {path / 'model_index.json'} {why}")
    xl = _is_xl_folder(path)
    parts = XL_PARTS if xl else PIPELINE_PARTS
    missing = [part for part in parts
               if not (path / part).is_dir() or (PART_CONFIGS.get(part, "config.json") and
                                                 not (path / part / PART_CONFIGS.get(part, "config.json")).exists())]
    if missing:
        raise ValueError(f"model={name!r}: the folder {path} lacks the component folder(s) {missing} (each with its "
                         f"config); a Stable Diffusion {'XL ' if xl else ''}folder has {list(parts)}")
    problems = [why for part in parts if (why := _part_problem(path / part, part))]
    if problems:
        raise ValueError(f"model={name!r}: the folder {path} is broken: {'; '.join(problems)}")


def _looks_like_a_path(name: str) -> bool:
    """A local path rather than a hub id (owner/name): absolute, ./ ../ ~, not exactly one '/', or existing."""
    return name.startswith(("/", ".", "~")) or os.sep in name.replace("/", "", 1) or name.count("/") != 1 \
        or Path(name).expanduser().exists()


def resolve_device(device: str | None = "auto") -> str:
    """"auto" (or None): cuda if available, else cpu; otherwise "cpu", "cuda", "cuda:N" or "mps", checked to be
    there (ValueError naming `device` otherwise, before any model is loaded)."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(device)
    kind, _, index = text.partition(":")
    if text not in ("cpu", "cuda", "mps") and not (kind == "cuda" and index.isdigit()):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={text!r}: no CUDA device is visible here; use device='auto' or 'cpu'")
    if index and int(index) >= torch.cuda.device_count():
        raise ValueError(f"device={text!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={text!r}: MPS is not available here; use device='auto' or 'cpu'")
    return text


def default_device() -> str:
    return resolve_device("auto")


def auto_view_batch(model: "Model", window, guidance: bool) -> int:
    """Views per UNet call when view_batch_size is None: as many as UNET_CALL_PIXELS allows on the model's device
    for views of `window` latent pixels (rows doubled with classifier-free guidance), at least one."""
    budget = UNET_CALL_PIXELS.get(model.device.type, DEFAULT_CALL_PIXELS)
    rows_per_view = 2 if guidance else 1
    return max(1, budget // (rows_per_view * int(window[0]) * int(window[1])))


@functools.lru_cache(maxsize=64)
def _time_ids(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 6) SDXL time ids (H, W, 0, 0, H, W), made once per size, dtype and device: built at every UNet call on a
    GPU they would be a blocking host-to-device copy, which waits for the queued work each time."""
    return torch.tensor([[h, w, 0, 0, h, w]], dtype=dtype, device=device)


@dataclass(frozen=True)
class PromptEmbeds:
    """Text embeddings (1 or one row per view, L, D); uncond is None when classifier-free guidance is off.

    SDXL adds pooled embeddings (1 or one row per view, D) of its second text encoder, for the prompt (pooled) and
    the negative prompt (uncond_pooled, None without guidance); None for Stable Diffusion 1 / 2. Every field is
    handled alike: per_view and rows treat them as they treat cond."""

    cond: torch.Tensor
    uncond: torch.Tensor | None
    pooled: torch.Tensor | None = None
    uncond_pooled: torch.Tensor | None = None

    @classmethod
    def per_view(cls, texts: list["PromptEmbeds"]) -> "PromptEmbeds":
        """One row per view: view p gets texts[p] (one object: the same embeddings, kept as one broadcast row)."""
        if all(t is texts[0] for t in texts):
            return texts[0]
        def rows(parts):
            return None if parts[0] is None else torch.cat(parts)
        return cls(*(rows([getattr(t, f.name) for t in texts]) for f in fields(cls)))

    def rows(self, start: int, k: int) -> "PromptEmbeds":
        """The embeddings of views start ... start + k (one prompt: expanded to k rows)."""
        def take(e):
            return None if e is None else e.expand(k, *e.shape[1:]) if e.shape[0] == 1 else e[start:start + k]
        return PromptEmbeds(*(take(getattr(self, f.name)) for f in fields(self)))


@dataclass
class Model:
    """The four Stable Diffusion components and the scheduler config they were trained with.

    Stable Diffusion XL adds a second tokenizer and text encoder (a CLIPTextModelWithProjection: its projected
    output is the pooled embedding the UNet takes with the time ids), and force_zeros_for_empty_prompt (its
    pipeline's config): with it, no negative prompt means zero unconditional embeddings."""

    tokenizer: object
    text_encoder: torch.nn.Module
    unet: torch.nn.Module
    vae: torch.nn.Module
    scheduler_config: dict
    name: str = "pipeline"
    tokenizer_2: object = None
    text_encoder_2: torch.nn.Module | None = None
    force_zeros_for_empty_prompt: bool = True

    @classmethod
    def from_pipeline(cls, pipe, name: str = "pipeline") -> "Model":
        """Use a diffusers StableDiffusionPipeline's (or StableDiffusionXLPipeline's) components as they are."""
        zeros = getattr(getattr(pipe, "config", None), "force_zeros_for_empty_prompt", True)
        return cls(pipe.tokenizer, pipe.text_encoder, pipe.unet, pipe.vae, dict(pipe.scheduler.config), name,
                   getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None), bool(zeros))

    @property
    def is_xl(self) -> bool:
        """Stable Diffusion XL: two text encoders, pooled embeddings and time ids."""
        return self.text_encoder_2 is not None

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return self.unet.config.in_channels

    @property
    def latent_size(self) -> int:
        """Side of one view in latent pixels (the UNet's sample size)."""
        size = self.unet.config.sample_size
        return size[0] if isinstance(size, (tuple, list)) else size

    @property
    def native_size(self) -> int:
        """Side of one view in image pixels: UNet sample size x VAE scale factor (512 for SD 2 base)."""
        return self.latent_size * self.vae_scale_factor

    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str = "", guidance: bool = True) -> PromptEmbeds:
        """Text embeddings as diffusers' StableDiffusionPipeline computes them (last hidden state), or for SDXL as
        StableDiffusionXLPipeline does (encode_prompt_xl). negative_prompt "" is no negative prompt."""
        if self.is_xl:
            return self.encode_prompt_xl(prompt, negative_prompt, guidance)

        def encode(text: str) -> torch.Tensor:
            tok = self.tokenizer([text], padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt")
            mask = None
            if getattr(self.text_encoder.config, "use_attention_mask", False):
                mask = tok.attention_mask.to(self.device)
            out = self.text_encoder(tok.input_ids.to(self.device), attention_mask=mask)[0]
            return out.to(self.dtype)

        return PromptEmbeds(encode(prompt), encode(negative_prompt) if guidance else None)

    @torch.no_grad()
    def encode_prompt_xl(self, prompt: str, negative_prompt: str = "", guidance: bool = True) -> PromptEmbeds:
        """SDXL's embeddings as StableDiffusionXLPipeline.encode_prompt computes them (clip_skip None, prompt_2 =
        prompt): each text encoder's penultimate hidden state, concatenated on the last axis, and the second
        encoder's projected output as the pooled embedding. negative_prompt "" (our "no negative prompt", diffusers'
        None) gives zeros for both under force_zeros_for_empty_prompt (SDXL's default), as diffusers does."""

        def encode(text: str) -> tuple[torch.Tensor, torch.Tensor]:
            hidden, pooled = [], None
            for tokenizer, encoder in ((self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)):
                ids = tokenizer([text], padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                                return_tensors="pt").input_ids
                out = encoder(ids.to(self.device), output_hidden_states=True)
                hidden.append(out.hidden_states[-2])
                pooled = out[0]   # the last encoder's (a CLIPTextModelWithProjection: its text_embeds)
            return torch.cat(hidden, dim=-1).to(self.dtype), pooled.to(self.dtype)

        cond, pooled = encode(prompt)
        if not guidance:
            return PromptEmbeds(cond, None, pooled, None)
        if negative_prompt == "" and self.force_zeros_for_empty_prompt:
            return PromptEmbeds(cond, torch.zeros_like(cond), pooled, torch.zeros_like(pooled))
        uncond, uncond_pooled = encode(negative_prompt)
        return PromptEmbeds(cond, uncond, pooled, uncond_pooled)

    def time_ids(self, size) -> torch.Tensor:
        """SDXL's micro-conditioning for views of `size` (h, w) latent pixels, as diffusers' _get_add_time_ids:
        original_size + crops_coords_top_left + target_size = (H, W, 0, 0, H, W), H x W the view in image pixels.

        Every view is conditioned as a whole, uncropped image of its own size, which is what StableDiffusionXLPipeline
        uses at its default (original_size = target_size = (height, width), no crop): one view covering the canvas
        is the pipeline. A view's offset on the canvas as crops_coords_top_left would be far outside the crops SDXL
        was trained with, and would ask every view but the first for the look of a cropped photograph."""
        h, w = (int(s) * self.vae_scale_factor for s in size)
        return _time_ids(h, w, self.dtype, self.device)

    def unet_conditioning(self, text: PromptEmbeds, size) -> dict:
        """The UNet's keyword arguments for the rows of `text` (as PromptEmbeds.rows gives them) on views of `size`
        latent pixels: with classifier-free guidance (uncond not None) the unconditional rows first, then the
        conditional ones, as predict_noise batches the views; SDXL adds its pooled embeddings and time ids."""
        def both(uncond, cond):
            return cond if uncond is None else torch.cat([uncond, cond])
        kwargs = dict(encoder_hidden_states=both(text.uncond, text.cond))
        if text.pooled is not None:
            pooled = both(text.uncond_pooled, text.pooled)
            kwargs["added_cond_kwargs"] = dict(text_embeds=pooled,
                                               time_ids=self.time_ids(size).expand(pooled.shape[0], -1))
        return kwargs

    def predict_noise(self, views: torch.Tensor, t, text: PromptEmbeds, guidance_scale: float,
                      batch_size: int | None = None) -> torch.Tensor:
        """UNet output for (V, C, h, w) views with CFG, in as few UNet calls as batch_size allows."""
        batch_size = batch_size or views.shape[0]
        out = []
        for start in range(0, views.shape[0], batch_size):
            x = views[start:start + batch_size].to(self.dtype)
            conditioning = self.unet_conditioning(text.rows(start, x.shape[0]), x.shape[-2:])
            if text.uncond is None:
                e = self.unet(x, t, **conditioning).sample
            else:
                uncond, cond = self.unet(torch.cat([x, x]), t, **conditioning).sample.chunk(2)
                e = uncond + guidance_scale * (cond - uncond)   # classifier-free guidance
            out.append(e.to(views.dtype))
        return torch.cat(out)

    @torch.no_grad()
    @stage("decoding")
    def decode(self, latents: torch.Tensor, circular: bool = False, tile: int | None = None) -> torch.Tensor:
        """(1, C, H, W) latents -> (1, 3, H*f, W*f) image in [0, 1], in tiles of `tile` latent pixels when wide.

        Tiles overlap by a quarter and are blended with linear ramps; circular canvases are padded with their
        own wrapped columns first, so the left and right edges meet without a seam.
        """
        f = self.vae_scale_factor
        z = self._unscale(latents)
        h, w = z.shape[-2:]
        auto = tile is None
        tile = tile or 2 * self.latent_size
        overlap = max(1, tile // 4)
        pad = min(overlap, w) if circular else 0
        if pad:
            z = torch.cat([z[..., -pad:], z, z[..., :pad]], dim=-1)
        whole = auto and h * z.shape[-1] <= WHOLE_DECODE_VIEWS * self.latent_size**2
        with self._vae_upcast():
            if whole or (h <= tile and z.shape[-1] <= tile):
                image = self._decode(z)
            else:
                image = self._decode_tiled(z, tile, overlap, f)
        if pad:
            image = image[..., pad * f: image.shape[-1] - pad * f]
        return (image / 2 + 0.5).clamp(0, 1)

    def decode_views(self, latents: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) view latents -> images in [0, 1] in one VAE batch, differentiably (SyncDiffusion's x_0-hat):
        decode's path without its tiles: the VAE's scaling and shift, SDXL's float16 upcast."""
        with self._vae_upcast():
            image = self._decode(self._unscale(latents))
        return (image / 2 + 0.5).clamp(0, 1)

    def _unscale(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents in the VAE's own scale: divided by its scaling factor, plus its shift (SD 3, FLUX) if it has one."""
        z = latents / self.vae.config.scaling_factor
        shift = getattr(self.vae.config, "shift_factor", None)
        return z + shift if shift else z

    @contextlib.contextmanager
    def _vae_upcast(self):
        """SDXL's VAE overflows in float16: with force_upcast in its config it decodes in float32 and is cast back
        after, as StableDiffusionXLPipeline does (StableDiffusionPipeline never upcasts, though AutoencoderKL's
        force_upcast defaults to True: Stable Diffusion 1 / 2 models decode in their own dtype, as there)."""
        upcast = self.is_xl and self.vae.dtype == torch.float16 and getattr(self.vae.config, "force_upcast", False)
        if upcast:
            self.vae.to(dtype=torch.float32)
        try:
            yield
        finally:
            if upcast:
                self.vae.to(dtype=torch.float16)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z.to(self.vae.dtype)).sample.float()

    def _decode_tiled(self, z: torch.Tensor, tile: int, overlap: int, f: int) -> torch.Tensor:
        h, w = z.shape[-2:]
        th, tw = min(tile, h), min(tile, w)
        out = torch.zeros(1, 3, h * f, w * f, device=z.device)
        norm = torch.zeros(1, 1, h * f, w * f, device=z.device)
        ramp = overlap * f

        def taper(n: int) -> torch.Tensor:
            i = torch.arange(n, device=z.device, dtype=torch.float32) + 0.5
            return (torch.minimum(i, n - i) / ramp).clamp(1.0 / ramp, 1.0)

        weight = taper(th * f)[:, None] * taper(tw * f)[None, :]
        for top in axis_starts(h, th, max(1, th - overlap)):
            for left in axis_starts(w, tw, max(1, tw - overlap)):
                img = self._decode(z[..., top:top + th, left:left + tw])
                ys, xs = slice(top * f, (top + th) * f), slice(left * f, (left + tw) * f)
                out[..., ys, xs] += img * weight
                norm[..., ys, xs] += weight
        return out / norm


def _not_found(name: str, err: Exception) -> ValueError:
    return ValueError(
        f"model {name!r} could not be loaded ({type(err).__name__}: {err}). "
        f"It is neither a local diffusers folder nor in the Hugging Face cache. On a machine with internet, run "
        f"`huggingface-cli download {name}` (or `hf download {name}`) once, or pass the path of a local folder "
        f"with model_index.json; model='{EMBEDDED}' runs the bundled model offline."
    )


def _load_pipeline(source: str, dtype: torch.dtype, **hub):
    """diffusers' StableDiffusionXLPipeline when the pipeline's model_index.json names an XL pipeline (XL_PIPELINES),
    else its StableDiffusionPipeline, from a folder or a hub id (hub: from_pretrained's local_files_only)."""
    from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

    if DiffusionPipeline.load_config(source, **hub).get("_class_name") in XL_PIPELINES:
        return StableDiffusionXLPipeline.from_pretrained(source, torch_dtype=dtype, add_watermarker=False, **hub)
    return StableDiffusionPipeline.from_pretrained(source, torch_dtype=dtype, safety_checker=None,
                                                   requires_safety_checker=False, feature_extractor=None, **hub)


@stage("model loads")
def load_model(model: str | os.PathLike = EMBEDDED, device: str | None = None, dtype: torch.dtype | None = None,
               compile: bool = False) -> Model:
    """Load a Stable Diffusion (1, 2 or XL) model: 'embedded' (bundled), a local diffusers folder, or a hub id.

    dtype defaults to float16 on CUDA and float32 elsewhere; compile=True wraps the UNet in torch.compile.
    The hub is tried from the local cache first; a download is attempted only when HF_HUB_OFFLINE is not set.
    An SDXL folder or hub id (model_index.json's _class_name StableDiffusionXLPipeline) loads as SDXL.
    """
    name = str(model)
    device = resolve_device(device)
    dtype = dtype or (torch.float16 if str(device).startswith("cuda") else torch.float32)
    if name == EMBEDDED:
        path = models_root() / EMBEDDED_FOLDER
        if not (path / "model_index.json").exists():
            where = f"GVCF_MODELS={os.environ['GVCF_MODELS']!r} has no {EMBEDDED_FOLDER}/ with model_index.json" \
                if os.environ.get("GVCF_MODELS") else f"the bundled model is missing at {path}"
            raise ValueError(f"model={EMBEDDED!r}: {where}; unset GVCF_MODELS to use the repository's "
                             f"data/models, or train one with `gvcf train-embedded --out {path} --overwrite`")
        source = str(path)
    else:
        source = name
    if Path(source).expanduser().is_dir():
        folder = Path(source).expanduser()
        check_pipeline_folder(folder, name)
        try:
            pipe = _load_pipeline(str(folder), dtype)
        except Exception as err:   # diffusers' and transformers' errors for a folder they cannot read
            raise ValueError(f"model={name!r}: the folder {folder} could not be loaded ({type(err).__name__}: "
                             f"{str(err)[:300]})") from None
    elif _looks_like_a_path(source):
        raise ValueError(f"model={name!r}: no such folder. Pass a local diffusers folder (with model_index.json), "
                         f"a Hugging Face id such as {SD2_BASE!r}, or {EMBEDDED!r} for the bundled model")
    else:
        try:
            pipe = _load_pipeline(source, dtype, local_files_only=True)
        except Exception as err:  # not cached: try the hub unless told to stay offline
            if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
                raise _not_found(name, err) from None
            try:
                pipe = _load_pipeline(source, dtype)
            except Exception as err2:
                raise _not_found(name, err2) from None
    pipe = pipe.to(device)
    for m in (pipe.unet, pipe.vae, pipe.text_encoder, getattr(pipe, "text_encoder_2", None)):
        if m is not None:
            m.eval().requires_grad_(False)
    result = Model.from_pipeline(pipe, name=name)
    if compile:
        result.unet = torch.compile(result.unet)
    return result
