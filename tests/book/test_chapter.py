"""gvcf.book.chapter: a chapter's parameters as papermill passes them (lists as text) resolved, and its setup."""
import pytest

from gvcf.book import chapter as B
from gvcf.paper.constants import PAPER_PROMPTS


def test_resolve_prompts():
    assert B.resolve_prompts(None) == list(PAPER_PROMPTS)
    assert B.resolve_prompts(None, first=2) == list(PAPER_PROMPTS[:2])
    assert B.resolve_prompts(None, default=PAPER_PROMPTS[:5]) == list(PAPER_PROMPTS[:5])
    assert B.resolve_prompts("A beach with palm trees") == ["A beach with palm trees"]
    # papermill -p passes lists as text; explicit lists are used in full whatever `first` says
    assert B.resolve_prompts('["A beach with palm trees", "a city"]', first=1) == ["A beach with palm trees", "a city"]
    assert B.resolve_prompts("['a', 'b']") == ["a", "b"]
    assert B.resolve_prompts(("x ",)) == ["x"]
    for bad in ([], "", [""], [3], "[]"):
        with pytest.raises(ValueError, match="prompts"):
            B.resolve_prompts(bad)
    with pytest.raises(ValueError, match="n_prompts"):
        B.resolve_prompts(None, first=0)


def test_resolve_numbers():
    assert B.resolve_numbers(None, [0.0, 1.0], "alphas") == [0.0, 1.0]
    assert B.resolve_numbers("[0, 0.4, 1]", None, "alphas") == [0.0, 0.4, 1.0]
    assert B.resolve_numbers(0.4, None, "alphas") == [0.4]
    assert B.resolve_numbers("[16, 32]", None, "strides", int) == [16, 32]
    with pytest.raises(ValueError, match="strides"):
        B.resolve_numbers([16.5], None, "strides", int)
    with pytest.raises(ValueError, match="alphas"):
        B.resolve_numbers("[a, b", None, "alphas")


def test_chapter_refuses_bad_counts_before_loading_a_model():
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="n_per_prompt"):
            B.chapter(n_per_prompt=bad, model="/no/such/model")


@pytest.mark.parametrize("alphas", [[0, 1.5], "[nan, inf]", [float("nan")], [-1], "[0.4, -0.1]", ["a"], [True],
                                    "0.5x", 3])
def test_chapter_4s_alphas_are_refused_by_name_when_read(alphas):
    """Issue 27 item 5: [0, 1.5], [nan, inf] and [-1] got as far as making the reference and alpha-0 sets."""
    with pytest.raises(ValueError, match="alphas"):
        B.resolve_numbers(alphas, [0.0, 0.4, 1.0], "alphas")


@pytest.mark.parametrize("strides", [[0], [-16], "[16, nan]", [1e400]])
def test_chapter_2s_strides_are_refused_as_strides(strides):
    with pytest.raises(ValueError, match="strides"):
        B.resolve_numbers(strides, None, "strides", int)


@pytest.mark.parametrize("strides", [[128], [12], [0]])
def test_stride_sets_name_strides_in_pixels_before_making_a_set(strides):
    """Issue 27 item 7: chapter 2 reported its `strides` as 'stride' (and in latent units) from deep in a set."""
    from types import SimpleNamespace

    from gvcf.paper.experiments import stride_sets

    S = SimpleNamespace(factor=8, native=64)   # the bundled model's geometry; no set is made before the check
    with pytest.raises(ValueError, match=r"strides must be multiples of the VAE factor 8 from 8 to one view \(64 px\)"):
        stride_sets(S, ["a beach"], 1, strides, strides)


@pytest.mark.parametrize("weight", ["abc", float("nan"), -0.1, None])
def test_chapter_refuses_a_bad_sync_weight_by_name_before_loading_a_model(weight):
    with pytest.raises(ValueError, match="sync_weight"):
        B.chapter(sync_weight=weight, model="/no/such/model")


def test_book_params_of_a_misspelt_chapter_is_an_error_not_defaults(capsys):
    """Issue 27 probing: `python -m gvcf.book params --profile book nosuch` printed defaults for 'nosuch', exit 0."""
    from gvcf.book import runner

    assert runner.main(["params", "--profile", "book", "02_guided_fusin"]) == 1
    assert "no such notebook(s) in notebooks: ['02_guided_fusin']" in capsys.readouterr().err
    assert runner.main(["params", "--profile", "book", "02_guided_fusion"]) == 0


def test_figure_labels_come_from_the_fusion_table():
    """Fig. 1's, the region figure's and Fig. 3's row labels are built from gvcf.engine.fusion.FUSIONS (each fusion
    named once), and read as the published figures do (their PNGs stay byte-identical)."""
    from gvcf.book import figures as F
    from gvcf.engine.fusion import FUSIONS

    assert [F.method_label(n) for n in ("MD", "Sync", "GF", "VCF", "VCF+GF+SA0.4", "Elastic")] == [
        "MultiDiffusion (MD)", "SyncDiffusion (Sync)", "Guided Fusion (GF)", "Variance-Corrected Fusion (VCF)",
        "GVCF + Style Alignment (alpha = 0.4)", "Elastic"]
    assert [FUSIONS[f].label for f in ("md", "gf")] == ["MultiDiffusion (MD)", "Guided Fusion (GF)"]
    assert [F.variance_name(f) for f in FUSIONS] == ["MD (average)", "GF (weighted average)", "VCF", "GVCF (VCF + GF)"]
    assert all(f.abbreviation == key.upper() for key, f in FUSIONS.items())
