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
