"""Evaluation metrics of the paper: FID, KID, GIQA-QS/DS, CLIP score, SSIM matrix, seam score.

Protocol (paper "Evaluation Metrics", reference scripts TitorX/GVCFDiffusion ``eval/``):
panoramas are cut into non-overlapping 512x512 tiles (``crop_panorama.py``: ``H // 512`` by
``W // 512`` tiles, remainders dropped); FID and KID are clean-fid's ``compute_fid`` /
``compute_kid`` (reference folder first); GIQA is KNN-GIQA with K = 3500; CLIP score is
torchmetrics' ``CLIPScore("openai/clip-vit-base-patch16")``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from skimage.metrics import structural_similarity

from gvcf.engine.archs import SD2_NATIVE_SIZE
from gvcf.engine.checks import is_int
from gvcf.eval.inception import load_image

KID_SCALE = 1e3  # the paper reports KID x 10^3: the row's kid_e3
METRIC_ROW = ("fid", "kid_e3", "giqa_qs", "giqa_ds", "clip", "clip_note", "n_tiles", "n_reference", "giqa_k")
KID_NUM_SUBSETS = 100  # clean-fid kernel_distance defaults
KID_MAX_SUBSET_SIZE = 1000
# KNN-GIQA as run by the paper's eval/eval_giqa.py (``--K`` default 3500) and eval/GIQA/knn_score.py
GIQA_K = 3500
GIQA_PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance eps: ||x - y + eps||_1
GIQA_CHUNK = 256  # query rows per distance block: memory is GIQA_CHUNK x len(bank) floats
SSIM_DATA_RANGE = 255
TILE_SIZE = SD2_NATIVE_SIZE  # 512: Stable Diffusion 2's native view, the paper's tiles

CLIP_UNAVAILABLE = "CLIP score unavailable: no CLIP weights on this machine"
CLIP_WEIGHTS_ENV = "GVCF_CLIP_WEIGHTS"
CLIP_MODEL = "ViT-B-16"  # = openai/clip-vit-base-patch16 used by the paper's eval_clip_score.py
CLIP_TAG = "openai"
CLIP_QUICK_GELU = True  # OpenAI CLIP weights were trained with QuickGELU
CLIP_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CLIP_SCALE = 100.0
CLIP_BATCH_SIZE = 64


def _features(x, name: str, min_rows: int = 2) -> np.ndarray:
    """x as a finite float64 (rows, dim) array with at least min_rows rows; ValueError naming `name` otherwise."""
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 2-D array of numbers, got {type(x).__name__}") from None
    if x.ndim != 2 or len(x) < min_rows:
        raise ValueError(f"{name} must be a 2-D array with at least {min_rows} row(s), got shape {x.shape}")
    if not np.isfinite(x).all():
        row = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise ValueError(f"{name} must be finite, got NaN or inf in row {row}")
    return x


def _finite_result(value: float, metric: str) -> float:
    """A metric's value, refused if it overflowed (features too large for float64's arithmetic)."""
    if not np.isfinite(value):
        raise ValueError(f"{metric} is not finite ({value}): the features are too large in magnitude")
    return float(value)


def _count(value, name: str, minimum: int) -> int:
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _features(a, "feats_a"), _features(b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    return a, b


def fid(feats_a, feats_b) -> float:
    """Frechet distance |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 tr (S_a S_b)^(1/2) (clean-fid's formula), exactly.

    With A, B the centred features, the non-zero eigenvalues of S_a S_b are the squared singular values of
    A B^T / sqrt((n_a - 1)(n_b - 1)), so the trace term is that matrix's nuclear norm; a set with more rows than
    dimensions is first reduced to its d x d triangular factor (QR), which keeps A B^T's singular values. This replaces
    scipy's sqrtm of a 2048 x 2048 matrix (tens of seconds on a CPU, approximate for singular covariances).
    """
    a, b = _pair(feats_a, feats_b)
    ca, cb = a - a.mean(0), b - b.mean(0)
    trace = (ca * ca).sum() / (len(a) - 1) + (cb * cb).sum() / (len(b) - 1)
    ra = np.linalg.qr(ca, mode="r") if len(ca) > ca.shape[1] else ca
    rb = np.linalg.qr(cb, mode="r") if len(cb) > cb.shape[1] else cb
    cross = np.linalg.svd(ra @ rb.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
    return _finite_result(((a.mean(0) - b.mean(0)) ** 2).sum() + trace - 2 * cross, "fid")


def kid(feats_a, feats_b, seed: int = 0, num_subsets: int = KID_NUM_SUBSETS,
        max_subset_size: int = KID_MAX_SUBSET_SIZE) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets.

    Same estimator and draw order as clean-fid's ``kernel_distance(feats_a, feats_b)``, but the
    subsets come from a local ``np.random.default_rng(seed)`` instead of the global RNG.
    """
    a, b = _pair(feats_a, feats_b)
    _count(num_subsets, "num_subsets", 1), _count(max_subset_size, "max_subset_size", 2), _count(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    dim, m = a.shape[1], min(len(a), len(b), max_subset_size)
    total = 0.0
    for _ in range(num_subsets):
        x = b[rng.choice(len(b), m, replace=False)]
        y = a[rng.choice(len(a), m, replace=False)]
        k_xx, k_yy = (x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        within = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
        total += within / (m - 1) - 2 * k_xy.sum() / m
    return _finite_result(total / num_subsets / m, "kid")


def giqa_scores(query, bank, k: int = GIQA_K, device: str | torch.device = "cpu",
                chunk: int = GIQA_CHUNK) -> np.ndarray:
    """Per query row: sum over its k nearest bank rows (L1) of 1 / distance.

    As eval/GIQA/knn_score.py: float32 features, distance ``F.pairwise_distance(q, r, p=1)``
    (= ``sum |q - r + 1e-6|``), the k smallest distances, score = sum of their reciprocals.
    Computed in blocks of ``chunk`` queries so 35,000 x 35,000 fits in memory.
    """
    q, r = _features(query, "query", 1), _features(bank, "bank", 1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"query and bank must be 2-D with equal widths, got {q.shape}, {r.shape}")
    q, r = torch.as_tensor(q, dtype=torch.float32), torch.as_tensor(r, dtype=torch.float32)
    if not is_int(k) or not 1 <= k <= len(r):
        raise ValueError(f"k must be an int in [1, {len(r)}] (bank size), got {k!r}")
    _count(chunk, "chunk", 1)
    r = r.to(device)
    out = np.empty(len(q), dtype=np.float64)
    for start in range(0, len(q), chunk):
        out[start:start + chunk] = knn_scores(l1_distances(q[start:start + chunk].to(device), r), k)
    _finite_result(out.sum(), "giqa score")   # float32 distances of features beyond its range
    return out


def l1_distances(query: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """GIQA's distance of every query row to every bank row (float32): sum |q - r + 1e-6| (pairwise_distance's)."""
    return torch.cdist(query + GIQA_PAIRWISE_EPS, bank, p=1)


def knn_scores(distances: torch.Tensor, k: int) -> np.ndarray:
    """Per row of a (query, bank) distance matrix: the sum of 1 / distance over its k smallest entries."""
    nearest = distances.topk(k, dim=1, largest=False).values
    return (1.0 / nearest.double()).sum(1).cpu().numpy()


def giqa_qs(gen_feats, ref_feats, k: int = GIQA_K, device: str | torch.device = "cpu") -> float:
    """GIQA-QS (quality): mean over generated images of their KNN score against the references."""
    return float(giqa_scores(gen_feats, ref_feats, k, device).mean())


def giqa_ds(gen_feats, ref_feats, k: int = GIQA_K, device: str | torch.device = "cpu") -> float:
    """GIQA-DS (diversity): roles swapped, mean over reference images against the generated set
    (calculate_scores.sh runs ``eval_giqa.py $gen $ref``; report.py averages the csv column)."""
    return float(giqa_scores(ref_feats, gen_feats, k, device).mean())


def _image(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"{name} must be a uint8 (H, W, 3) image, got {x.dtype} {x.shape}")
    return x


def ssim(a, b) -> float:
    """SSIM of two uint8 RGB images (scikit-image defaults, 7x7 uniform window)."""
    a, b = _image(a, "a"), _image(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b differ in shape: {a.shape} vs {b.shape}")
    return float(structural_similarity(a, b, channel_axis=-1, data_range=SSIM_DATA_RANGE))


def ssim_matrix(groups: dict[str, Sequence]) -> pd.DataFrame:
    """Mean SSIM between image k of group A and image k of group B (paper Table 4).

    Symmetric; the diagonal is 1 (SSIM of an image with itself)."""
    if not isinstance(groups, dict):
        raise ValueError(f"groups must be a dict of name -> images, got {type(groups).__name__}")
    names = list(groups)
    sizes = {len(groups[n]) for n in names}
    if len(names) < 2 or len(sizes) != 1 or 0 in sizes:
        raise ValueError("groups must hold at least 2 non-empty groups of equal length")
    table = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, p in enumerate(names):
        for q in names[i + 1:]:
            value = float(np.mean([ssim(x, y) for x, y in zip(groups[p], groups[q])]))
            table.loc[p, q] = table.loc[q, p] = value
    return table


def seam_score(image, seams: Sequence[int], axis: int = 1, band: int = 1) -> float:
    """Mean |jump| between neighbouring columns at seams / mean |jump| elsewhere (1 = invisible).

    A seam at position s is the boundary between index s-1 and s along ``axis``: jump s-1.
    Jumps closer than ``band`` to it count as seam (band=1: that jump only; band=2: s-2..s).
    Constant images score 1.0."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim not in (2, 3) or axis not in (0, 1):
        raise ValueError(f"image must be (H, W) or (H, W, C) and axis 0 or 1, got {x.shape}, axis={axis}")
    if not np.isfinite(x).all():
        raise ValueError("image must be finite (it has NaN or inf)")
    band = _count(band, "band", 1)
    length = x.shape[axis]
    if isinstance(seams, (str, bytes)) or not hasattr(seams, "__len__") or len(seams) == 0 \
            or any(not is_int(s) or not 0 < s < length for s in seams):
        raise ValueError(f"seams must be a non-empty list of int positions in (0, {length}), got {seams!r}")
    jumps = np.abs(np.diff(x, axis=axis))
    jumps = jumps.mean(axis=tuple(d for d in range(jumps.ndim) if d != axis))
    idx = np.arange(len(jumps))
    at_seam = np.zeros(len(jumps), dtype=bool)
    for s in seams:
        at_seam |= np.abs(idx - (s - 1)) < band
    if at_seam.all():
        raise ValueError("seams and band cover every position: nothing left to compare with")
    seam, rest = jumps[at_seam].mean(), jumps[~at_seam].mean()
    if rest == 0:
        return 1.0 if seam == 0 else float("inf")
    return float(seam / rest)


def crops(panorama, size: int = TILE_SIZE) -> list[np.ndarray]:
    """Non-overlapping size x size tiles, row-major; a remainder narrower than size is dropped
    (as eval/crop_panorama.py: H // size by W // size tiles). 512x3584 -> 7 tiles."""
    x = np.asarray(panorama)
    _count(size, "size", 1)
    if x.ndim < 2:
        raise ValueError(f"panorama must be at least 2-D, got shape {x.shape}")
    rows, cols = x.shape[0] // size, x.shape[1] // size
    return [x[i * size:(i + 1) * size, j * size:(j + 1) * size] for i in range(rows) for j in range(cols)]


def crop_all(images: Sequence, size: int = TILE_SIZE) -> list[np.ndarray]:
    """``crops`` of every image, concatenated in order."""
    return [tile for im in images for tile in crops(im, size)]


def clip_weights_path(model_name: str = CLIP_MODEL, tag: str = CLIP_TAG) -> Path | None:
    """Local CLIP weights: ``$GVCF_CLIP_WEIGHTS`` or open_clip's Hugging Face cache. Never downloads."""
    env = os.environ.get(CLIP_WEIGHTS_ENV)
    if env:
        return Path(env) if Path(env).is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
        from open_clip.pretrained import get_pretrained_cfg
    except ImportError:
        return None
    repo = get_pretrained_cfg(model_name, tag).get("hf_hub", "").strip("/")
    for filename in CLIP_HF_FILES if repo else ():
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def clip_available(model_name: str = CLIP_MODEL) -> bool:
    return clip_weights_path(model_name) is not None


def clip_score(images, prompts, model_name: str = CLIP_MODEL, weights: str | os.PathLike | None = None,
               device: str | torch.device = "cpu", batch_size: int = CLIP_BATCH_SIZE,
               quick_gelu: bool = CLIP_QUICK_GELU) -> float | None:
    """CLIP score as torchmetrics' CLIPScore: max(mean(100 * cos(image, prompt)), 0) (the clamp is
    on the mean). None when no local weights exist; never downloads. Images: arrays, PIL or paths."""
    if not isinstance(prompts, str) and not (isinstance(prompts, (list, tuple))
                                             and all(isinstance(p, str) for p in prompts)):
        raise ValueError(f"prompts must be a string or a list of strings, got {type(prompts).__name__}")
    prompts = [prompts] * len(images) if isinstance(prompts, str) else list(prompts)
    if len(prompts) != len(images) or not prompts:
        raise ValueError(f"prompts must match images in length, got {len(prompts)} vs {len(images)}")
    path = Path(weights) if weights is not None else clip_weights_path(model_name)
    if path is None or not path.is_file():
        return None
    import open_clip
    from PIL import Image
    model, _, transform = open_clip.create_model_and_transforms(
        model_name, pretrained=str(path), device=device, force_quick_gelu=quick_gelu)
    tokenizer = open_clip.get_tokenizer(model_name)
    cosines = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            ims = [Image.fromarray(load_image(im)) for im in images[start:start + batch_size]]
            img = model.encode_image(torch.stack([transform(im) for im in ims]).to(device))
            txt = model.encode_text(tokenizer(prompts[start:start + batch_size]).to(device))
            cosines.append(torch.nn.functional.cosine_similarity(img.float(), txt.float(), dim=-1).cpu())
    return max(float(CLIP_SCALE * torch.cat(cosines).double().mean()), 0.0)


def evaluate(gen_images, ref_images, prompts=None, features: Callable | None = None,
             giqa_k: int | None = None, seed: int = 0, device: str | torch.device = "cpu") -> dict:
    """The metric row (METRIC_ROW: FID, KID x 10^3, GIQA-QS, GIQA-DS, CLIP: None with ``clip_note`` when
    unavailable, and the set sizes) of two lists of images.

    ``features`` is an ``InceptionFeatures`` (built on ``device`` if None): "clean" features for
    FID/KID, "pytorch_fid" features for GIQA as in the paper's scripts; giqa_k None: min(GIQA_K, both sizes)."""
    n_gen, n_ref = len(gen_images), len(ref_images)
    if min(n_gen, n_ref) < 2:
        raise ValueError(f"gen_images and ref_images need >= 2 images each, got {n_gen}, {n_ref}")
    giqa_k = min(GIQA_K, n_gen, n_ref) if giqa_k is None else giqa_k
    if not is_int(giqa_k) or not 1 <= giqa_k <= min(n_gen, n_ref):
        raise ValueError(f"giqa_k must be an int in [1, {min(n_gen, n_ref)}], got {giqa_k!r}")
    if prompts is not None and not isinstance(prompts, str) and \
            (not isinstance(prompts, (list, tuple)) or len(prompts) != n_gen):
        raise ValueError(f"prompts must be one string or a list of one per generated image, got {prompts!r:.80}")
    if features is None:
        from gvcf.eval.inception import InceptionFeatures
        features = InceptionFeatures(device=device)
    result = scores(features(gen_images, mode="clean"), features(ref_images, mode="clean"),
                    features(gen_images, mode="pytorch_fid"), features(ref_images, mode="pytorch_fid"),
                    giqa_k=giqa_k, seed=seed, device=device)
    result["clip"] = clip_score(gen_images, prompts, device=device) if prompts is not None else None
    result["clip_note"] = "" if result["clip"] is not None else \
        CLIP_UNAVAILABLE if prompts is not None else "no prompts given"
    return {k: result[k] for k in METRIC_ROW}


def scores(gen_clean, ref_clean, gen_giqa, ref_giqa, giqa_k: int | None = None, seed: int = 0,
           device: str | torch.device = "cpu") -> dict:
    """The paper's metric row from features, every key of METRIC_ROW but CLIP's: FID and KID x 10^3 on clean-fid
    features (reference first, as the paper's eval_fid_kid.py calls clean-fid), GIQA-QS/DS on pytorch-fid-style
    features (its GIQA scripts) with K = giqa_k (default: min(GIQA_K, both sizes)), and the set sizes. The book
    (gvcf.paper.experiments.metric_row), `gvcf dataset evaluate` and evaluate() all build their rows here."""
    gen_clean, ref_clean = _features(gen_clean, "gen_clean"), _features(ref_clean, "ref_clean")
    gen_giqa, ref_giqa = _features(gen_giqa, "gen_giqa"), _features(ref_giqa, "ref_giqa")
    n_gen, n_ref = len(gen_clean), len(ref_clean)
    k = min(GIQA_K, n_gen, n_ref) if giqa_k is None else giqa_k
    return {"fid": fid(ref_clean, gen_clean), "kid_e3": KID_SCALE * kid(ref_clean, gen_clean, seed=seed),
            "giqa_qs": giqa_qs(gen_giqa, ref_giqa, k, device), "giqa_ds": giqa_ds(gen_giqa, ref_giqa, k, device),
            "n_tiles": n_gen, "n_reference": n_ref, "giqa_k": k}
