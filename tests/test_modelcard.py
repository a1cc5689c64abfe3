"""The model card: its classifier and confusion matrix on analytic cases, and a QUICK card of a tiny trained model."""
import json

import numpy as np
import pytest

from gvcf import world
from gvcf.modelcard import QUICK, confusion, nearest_centroid, write_model_card
from gvcf.training import TrainConfig, train_embedded


def test_nearest_centroid_and_confusion():
    train = np.array([[0.0, 0], [0, 2], [10, 0], [10, 2]])
    labels = np.array([0, 0, 1, 1])   # centroids (0, 1) and (10, 1): x = 5 is the boundary
    pred = nearest_centroid(train, labels, np.array([[1.0, 1], [9, 1], [4.9, 7], [5.1, -7]]))
    assert pred.tolist() == [0, 1, 0, 1]
    assert confusion(np.array([0, 0, 1, 1]), pred, 2).tolist() == [[1, 1], [1, 1]]
    assert confusion(np.array([0, 1, 1]), np.array([1, 1, 1]), 3).tolist() == [[0, 1, 0], [0, 2, 0], [0, 0, 0]]


def test_a_quick_card_of_a_tiny_model(tmp_path):
    cfg = TrainConfig(vae_steps=2, unet_steps=2, decoder_steps=0, n_latents=32, eval_views=8, vae_channels=(8, 16, 16),
                      unet_channels=(16, 32, 32), attention_head_dim=8, text_hidden=16)
    out = tmp_path / "tiny"
    train_embedded(out, cfg, progress=False)
    m = write_model_card(out, quick=True)
    assert json.loads((out / "card.json").read_text()) == json.loads(json.dumps(m))
    n = QUICK["adherence_per_prompt"]
    assert np.array(m["confusion"]).sum(1).tolist() == [n] * len(world.FAMILIES)
    assert m["adherence"] == {f: pytest.approx(m["confusion"][i][i] / n) for i, f in enumerate(world.FAMILIES)}
    per = m["per_family_reconstruction"]
    assert list(per) == list(world.FAMILIES)
    # an untrained autoencoder: low PSNR, and its reconstructions far from real views, farther than other real views
    assert all(0 < v["psnr_db"] < 28 for v in per.values())
    assert all(v["fid_vae_reconstruction"] > v["fid_real_vs_real"] for v in per.values())
    text = (out / "README.md").read_text()
    assert "Where the autoencoder loses detail" in text and all(f"| {f} |" in text for f in world.FAMILIES)
    assert (out / "samples.png").stat().st_size > 0
