"""The model card: its classifier and confusion matrix on analytic cases, and a QUICK card of a tiny trained model."""
import json

import numpy as np
import pytest

from gvcf.world import scenes as world
from gvcf.world.modelcard import QUICK, blur, confusion, fit_logistic, nearest_centroid, write_model_card
from gvcf.world.training import TrainConfig, train_embedded


def test_nearest_centroid_and_confusion():
    train = np.array([[0.0, 0], [0, 2], [10, 0], [10, 2]])
    labels = np.array([0, 0, 1, 1])   # centroids (0, 1) and (10, 1): x = 5 is the boundary
    pred = nearest_centroid(train, labels, np.array([[1.0, 1], [9, 1], [4.9, 7], [5.1, -7]]))
    assert pred.tolist() == [0, 1, 0, 1]
    assert confusion(np.array([0, 0, 1, 1]), pred, 2).tolist() == [[1, 1], [1, 1]]
    assert confusion(np.array([0, 1, 1]), np.array([1, 1, 1]), 3).tolist() == [[0, 1, 0], [0, 2, 0], [0, 0, 0]]


def test_blur_keeps_flat_images_and_the_mean_and_smooths_a_checkerboard():
    flat = np.full((2, 8, 8, 3), 77, np.uint8)
    assert (blur(flat, 1.0) == flat).all()
    board = ((np.indices((16, 16)).sum(0) % 2) * 200).astype(np.uint8)[None, :, :, None].repeat(3, -1)
    soft = blur(board, 1.0)
    assert abs(soft.mean() - board.mean()) < 1 and soft.std() < 0.1 * board.std()
    assert (blur(board[:1], 1.0) == soft[:1]).all()   # per view: one view does not leak into another
    with pytest.raises(ValueError, match="sigma"):
        blur(flat, 0)


def test_logistic_regression_analytic_symmetric_case_and_determinism():
    # two classes at x = -1 and x = +1 (symmetric): the optimum puts the boundary at 0, whatever the penalty
    x = np.array([[-1.0], [-1.0], [1.0], [1.0]])
    labels = np.array([3, 3, 7, 7])   # classes keep their own labels
    clf = fit_logistic(x, labels, weight_decay=1e-2)
    assert clf.predict(np.array([[-0.1], [0.1], [-5.0], [5.0]])).tolist() == [3, 7, 3, 7]
    assert abs(clf.bias[0] - clf.bias[1]) < 1e-6
    again = fit_logistic(x, labels, weight_decay=1e-2)
    assert np.array_equal(clf.weight, again.weight) and np.array_equal(clf.bias, again.bias)
    with pytest.raises(ValueError, match="labels"):
        fit_logistic(x, np.zeros(4))
    with pytest.raises(ValueError, match="weight_decay"):
        fit_logistic(x, labels, weight_decay=-1)


def test_logistic_regression_separates_what_a_centroid_confuses():
    # class 0 is wide along x0, class 1 a tight cluster beside it: the nearest centroid misassigns class 0's tails,
    # a linear classifier learns the boundary x1 = 1.5
    rng = np.random.default_rng(0)
    a = np.c_[rng.normal(0, 10, 400), rng.normal(0, 0.3, 400)]
    b = np.c_[rng.normal(12, 0.3, 400), rng.normal(3, 0.3, 400)]
    x, labels = np.r_[a, b], np.repeat([0, 1], 400)
    test_a = np.c_[rng.normal(0, 10, 400), rng.normal(0, 0.3, 400)]
    centroid = (nearest_centroid(x, labels, test_a) == 0).mean()
    linear = (fit_logistic(x, labels).predict(test_a) == 0).mean()
    assert centroid < 0.9 and linear > 0.99


@pytest.mark.slow   # the card measures 10 prompts x 8 views with Inception: ~2 min
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
    assert set(m["classifier_accuracy"]) == {"held_out_real", "held_out_through_vae"}
    assert all(0 <= v <= 1 for v in m["classifier_accuracy"].values())
    assert list(m["adherence_nearest_centroid"]) == list(world.FAMILIES)
    per = m["per_family_reconstruction"]
    assert list(per) == list(world.FAMILIES)
    # an untrained autoencoder: low PSNR, and its reconstructions far from real views, farther than other real views
    assert all(0 < v["psnr_db"] < 28 for v in per.values())
    assert all(v["fid_vae_reconstruction"] > v["fid_real_vs_real"] for v in per.values())
    text = (out / "README.md").read_text()
    assert "linear classifier on Inception features" in text and "the nearest centroid of the unblurred" in text
    assert "Where the autoencoder loses detail" in text and all(f"| {f} |" in text for f in world.FAMILIES)
    assert (out / "samples.png").stat().st_size > 0


@pytest.mark.parametrize("render_only", [True, False])
def test_a_folder_that_is_no_trained_model_is_refused_before_anything_is_written(tmp_path, render_only):
    """Issue 27 item 5: `gvcf model-card --model-dir /no/such --render-only` ended in a FileNotFoundError."""
    with pytest.raises(ValueError, match="model_dir .*no such folder"):
        write_model_card(tmp_path / "no-such", render_only=render_only)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="model_dir .*not a folder"):
        write_model_card(tmp_path / "file", render_only=render_only)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="model_dir .*no training_stats.json"):
        write_model_card(empty, render_only=render_only)
    for name in ("training_stats.json", "train_config.json"):
        (empty / name).write_text("{}")
    with pytest.raises(ValueError, match="no card.json" if render_only else "model_index.json"):
        write_model_card(empty, render_only=render_only)
    (empty / "card.json").write_text("{broken")
    if render_only:
        with pytest.raises(ValueError, match="card.json is unreadable"):
            write_model_card(empty, render_only=True)
    assert sorted(p.name for p in empty.iterdir()) == ["card.json", "train_config.json", "training_stats.json"]
