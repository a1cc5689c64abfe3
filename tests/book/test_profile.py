"""The book's profile tables: seconds per chapter and stage, generation per method, from the run records."""
import json

import pytest

from gvcf.book import profile
from gvcf.engine.stages import STAGES


def record(stem, seconds, **stages):
    return {"notebook": stem, "seconds": seconds, "stages": dict.fromkeys(STAGES, 0.0) | stages}


RECORDS = [record("01_a", 100.0, generation=60.0, decoding=5.0, **{"generation: md ddim": 20.0,
                                                                     "generation: sync ddim": 40.0}),
           record("02_b", 50.0, generation=10.0, features=30.0, **{"generation: md ddim": 10.0})]


def test_stage_rows_add_up_to_the_wall_time():
    head, rows = profile.stage_rows(RECORDS)
    assert head == ["chapter", "total", *STAGES, "other"]
    first = dict(zip(head, rows[0]))
    assert first["other"] == 35.0 and sum(rows[0][2:]) == rows[0][1]
    assert rows[-1][0] == "all" and rows[-1][1] == 150.0 and dict(zip(head, rows[-1]))["features"] == 30.0


def test_generation_by_method_sums_the_chapters_largest_first():
    head, rows = profile.generation_rows(RECORDS)
    assert rows == [["sync ddim", 40.0, "57%"], ["md ddim", 30.0, "43%"]]


def test_markdown_and_command(tmp_path, capsys):
    for r in RECORDS:
        (tmp_path / f"{r['notebook']}.run.json").write_text(json.dumps(r))
    assert profile.main(["--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out == profile.profile_markdown(RECORDS)
    assert "| all | 150 | " in out and "| sync ddim | 40 | 57% |" in out


def test_a_folder_without_records_is_named(tmp_path):
    with pytest.raises(ValueError, match="holds no chapter run records"):
        profile.read_records(tmp_path)
    with pytest.raises(SystemExit):
        profile.main(["--out-dir", str(tmp_path)])


def test_recorded_records_keep_the_profile_asked_for(tmp_path):
    assert profile.recorded_records(tmp_path, "book") == []
    for r, name in zip(RECORDS, ("book", "smoke")):
        (tmp_path / f"{r['notebook']}.run.json").write_text(json.dumps(r | {"profile": name}))
    assert [r["notebook"] for r in profile.recorded_records(tmp_path, "book")] == ["01_a"]


def test_a_generation_table_without_labels_is_left_out():
    unlabelled = [record("01_a", 10.0, generation=4.0)]
    assert [head[0] for head, _ in profile.profile_parts(unlabelled)] == ["chapter"]
    assert "method and sampler" not in profile.profile_markdown(unlabelled)
    assert [head[0] for head, _ in profile.profile_parts(RECORDS)] == ["chapter", "method and sampler"]


def test_this_run_tables_are_html_tables_of_the_runners_folder(tmp_path, monkeypatch):
    """The runtime chapter's tables are HTML without an index column: myst-nb renders a Markdown output as
    CommonMark, where a pipe table is a paragraph of text (the smoke book showed it so)."""
    from gvcf.engine.stages import STAGE_LOG_ENV

    monkeypatch.delenv(STAGE_LOG_ENV, raising=False)
    (outside,) = profile.this_run_tables("book")
    assert "outside `python -m gvcf.book run`" in outside.data
    (tmp_path / "01_a.run.json").write_text(json.dumps(RECORDS[0] | {"profile": "smoke"}))
    monkeypatch.setenv(STAGE_LOG_ENV, str(tmp_path / "06_runtime.stages.jsonl"))
    (none_yet,) = profile.this_run_tables("book")
    assert "No chapter has a run record of profile 'book'" in none_yet.data
    (tmp_path / "01_a.run.json").write_text(json.dumps(RECORDS[0] | {"profile": "book"}))
    stages, generation = (table.to_html() for table in profile.this_run_tables("book"))
    assert "<table" in stages and ">01_a<" in stages and ">100<" in stages and "row_heading" not in stages
    assert ">stage<" in stages and ">decoding<" in stages and ">5<" in stages   # stages as rows
    assert ">sync ddim<" in generation and ">67%<" in generation and "|" not in stages + generation
    (tmp_path / "02_guided_fusion.run.json").write_text(json.dumps(RECORDS[1] | {"notebook": "02_guided_fusion",
                                                                             "profile": "book"}))
    stages = profile.this_run_tables("book")[0].to_html()
    assert ">2<" in stages and "02_guided_fusion" not in stages and ">01_a<" in stages and ">150<" in stages
    own = RECORDS[1] | {"notebook": "06_runtime", "profile": "book"}
    (tmp_path / "06_runtime.run.json").write_text(json.dumps(own))
    frame = profile.this_run_tables("book")[0].data   # not the runtime chapter's own record of an earlier run
    assert list(frame.columns) == ["stage", "01_a", "2", "all"] and list(frame["stage"]) == ["total", *STAGES, "other"]
