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


def test_recorded_profile_keeps_the_profile_asked_for(tmp_path):
    assert "No chapter has a run record of profile 'book'" in profile.recorded_profile(tmp_path, "book")
    for r, name in zip(RECORDS, ("book", "smoke")):
        (tmp_path / f"{r['notebook']}.run.json").write_text(json.dumps(r | {"profile": name}))
    text = profile.recorded_profile(tmp_path, "book")
    assert "| 01_a | 100 |" in text and "02_b" not in text


def test_this_run_profile_reads_the_runners_folder(tmp_path, monkeypatch):
    from gvcf.engine.stages import STAGE_LOG_ENV

    monkeypatch.delenv(STAGE_LOG_ENV, raising=False)
    assert "outside `python -m gvcf.book run`" in profile.this_run_profile("book")
    (tmp_path / "01_a.run.json").write_text(json.dumps(RECORDS[0] | {"profile": "book"}))
    monkeypatch.setenv(STAGE_LOG_ENV, str(tmp_path / "06_runtime.stages.jsonl"))
    assert "| 01_a | 100 |" in profile.this_run_profile("book")
