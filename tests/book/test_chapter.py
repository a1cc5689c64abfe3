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


# ----------------------------------------------------------------------------- parameters declared once (issue 28)

def _namespace(**changes) -> dict:
    """A notebook's globals() after its parameters cell (the smoke defaults), with `changes`; None drops a name."""
    names = dict(model="/no/such/model", device="cpu", prompts=None, n_prompts=1, n_per_prompt=1, steps=None,
                 ddim_steps=4, ddpm_steps=6, seed=0, width_views=4, stride=None, results_dir="../results",
                 dataset_dir=None, profile="smoke", In=[], display=print)
    names.update(changes)
    return {k: v for k, v in names.items() if v is not None or k not in changes}


def test_chapter_reads_its_parameters_from_the_namespace():
    assert set(B.chapter_parameters()) == set(B.OWN_PARAMETERS) | {
        "model", "device", "results_dir", "seed", "steps", "ddim_steps", "ddpm_steps", "width_views", "stride",
        "dataset_dir", "sync_weight"}
    got = B.parameters_from(_namespace(alphas=[0.4]))
    assert got["ddim_steps"] == 4 and got["profile"] == "smoke" and "In" not in got and "alphas" not in got
    assert "sync_weight" not in got                       # optional: only chapter 5 declares it
    assert B.parameters_from(_namespace(sync_weight=0.1))["sync_weight"] == 0.1


def test_a_misspelt_parameter_in_a_parameters_cell_is_named():
    """`ddim_step = 4` in a parameters cell: chapter() names the parameter it lacks and the name that looks like it
    (before, the 14-argument call failed with a NameError on ddim_steps)."""
    with pytest.raises(ValueError, match=r"must assign \['ddim_steps'\].*did you mean to assign it as 'ddim_step'"):
        B.chapter(_namespace(ddim_steps=None, ddim_step=4))
    with pytest.raises(ValueError, match=r"must assign \['n_prompts', 'profile'\]"):
        B.chapter(_namespace(n_prompts=None, profile=None))


def test_chapter_checks_namespace_values_as_before_and_keywords_win():
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="n_per_prompt"):
            B.chapter(_namespace(n_per_prompt=bad))
    with pytest.raises(ValueError, match="sync_weight"):
        B.chapter(_namespace(sync_weight=float("nan")))
    with pytest.raises(ValueError, match="n_per_prompt"):     # a keyword replaces the namespace's value
        B.chapter(_namespace(), n_per_prompt=0)


def test_a_misspelt_parameter_from_a_profile_is_still_refused_before_anything_runs():
    """The runner checks a profile's keys against the names the notebooks' parameters cells assign (unchanged)."""
    from gvcf.book import runner

    declared = {stem: runner.declared_parameters(runner.NOTEBOOKS_DIR / f"{stem}.ipynb") for stem in runner.discover()}
    for stem, names in declared.items():   # every chapter declares what chapter() needs
        assert set(B.chapter_parameters()) - set(B.OPTIONAL_PARAMETERS) <= names, stem
    with pytest.raises(ValueError, match=r"common parameter\(s\) \['ddim_step'\] are declared by no notebook"):
        runner.check_parameters({"common": {"ddim_step": 4}}, declared)
    with pytest.raises(ValueError, match=r"section '01_overview' sets \['sync_weight'\]"):
        runner.check_parameters({"01_overview": {"sync_weight": 4}}, declared)


def test_chapter_with_a_namespace_is_chapter_with_keywords(capsys):
    params = dict(model="embedded", device="cpu", ddim_steps=4, ddpm_steps=6, width_views=7, stride=8)
    by_namespace, prompts = B.chapter(_namespace(**params), default_prompts=5)
    by_keywords, same = B.chapter(**params, n_prompts=1, default_prompts=5, profile="smoke")
    assert prompts == same == list(PAPER_PROMPTS[:1])
    assert by_namespace == by_keywords and not by_namespace.verbose   # no generation lines on the page
    assert capsys.readouterr().out.splitlines()[:2] == [
        "profile smoke: model embedded on cpu", "1 prompt(s) x 1 panorama(s); DDIM 4 steps, DDPM 6 steps"]
    # no printed line scrolls sideways: the longest geometry (stride 8 px on 7 views) wraps at the page's width
    from gvcf.paper.tables import LINE_WIDTH

    text = by_namespace.describe([8, 16, 32, 48])
    assert max(map(len, text.splitlines())) <= LINE_WIDTH < len(text.replace("\n    ", " ").splitlines()[2])
    joined = text.replace("\n    ", " ").splitlines()   # the continuations put back: the same text as before
    assert joined[:2] == ["model embedded: views of 64 px (16 latent px, VAE factor 4)",
                          "canvas 64 x 448 px = 7 views wide (the paper: 512 x 3584)"]
    assert joined[2] == f"stride 8 px = 1/8 of a view (the paper's 64 px): 49 views, seams at {by_namespace.seams(8)}"


def test_printed_lines_and_tables_fit_the_page():
    """wrap() breaks a line at spaces to LINE_WIDTH (continuations indented, the words kept); metric_notes' long
    FID sentence is wrapped; page_table shows no pandas integer index column."""
    import pandas as pd

    from gvcf.paper import tables

    long = "seams at [" + ", ".join(str(8 * k) for k in range(1, 60)) + "]"
    wrapped = tables.wrap(f"short\n{long}\n\n  indented {long}")
    assert max(map(len, wrapped.splitlines())) <= tables.LINE_WIDTH
    unwrapped = wrapped.replace("\n  " + tables.CONTINUATION, " ").replace("\n" + tables.CONTINUATION, " ")
    assert unwrapped.splitlines() == ["short", long, "", f"  indented {long}"]   # an indented line keeps its indent
    assert tables.wrap("x" * 200, width=50).splitlines()[1].startswith(tables.CONTINUATION)
    notes = tables.metric_notes(pd.DataFrame({"method": ["MD"], "n_tiles": [7], "n_reference": [4], "giqa_k": [4],
                                              "clip": [float("nan")]}))
    assert "FID is biased upwards" in notes and max(map(len, notes.splitlines())) <= tables.LINE_WIDTH
    html = tables.page_table(pd.DataFrame({"stride": [16, 32], "fid": [1.234, None]}), {"fid": 2}).to_html()
    assert "1.23" in html and "n/a" in html and "FID↓" in html
    assert 'class="dataframe"' in html and "row_heading" not in html and ">0</th>" not in html



def test_text_table_leaves_out_empty_columns_and_fits_the_page():
    """text_table: no index column, a column with no value in any row left out; a table wider than LINE_WIDTH is
    split into column blocks each within it (the method grid's empty note column made it 82 wide)."""
    import pandas as pd

    from gvcf.paper import methods, tables

    grid = tables.text_table(methods.method_grid())
    lines = grid.splitlines()
    assert lines[0].split() == [c for c in methods.method_grid().columns if c != "note"]
    assert len(lines) == len(methods.method_grid()) + 1 and max(map(len, lines)) <= tables.LINE_WIDTH
    assert lines[1].split()[0] == "MD" and not lines[1].startswith("0")   # no index
    wide = pd.DataFrame({f"column_{k}": [k * 1000.5, k] for k in range(12)})
    blocks = tables.text_table(wide)
    assert max(map(len, blocks.splitlines())) <= tables.LINE_WIDTH and "column_11" in blocks
    assert wide.to_string(index=False).count("\n") < blocks.count("\n")   # split into blocks, nothing dropped

def test_the_runner_sums_generation_per_method_for_its_stage_summary():
    """The generation lines the chapters printed ("GF (ddim, ...): made 6 image(s) in 318.9 s") are the runner's
    stage summary now: generation's seconds per method and sampler over the chapters that ran."""
    from gvcf.book import profile

    records = [{"status": "ran", "stages": {"generation": 30.0, "generation: gf ddim": 20.0,
                                            "generation: md ddim": 10.0}},
               {"status": "ran", "stages": {"generation": 5.0, "generation: md ddim": 5.0}},
               {"status": "skipped", "stages": {"generation: vcf ddpm": 99.0}}]
    assert profile.generation_line(records) == "gf ddim 20 s, md ddim 15 s"
    assert profile.generation_line(records[2:]) == ""
