"""Stage timing: exclusive seconds per stage, logged only when the environment names a file."""
import itertools

import pytest

from gvcf.engine import stages


@pytest.fixture
def clock(monkeypatch):
    """perf_counter returns 0, 1, 2, ...: each call advances one second."""
    ticks = itertools.count()
    monkeypatch.setattr(stages.time, "perf_counter", lambda: float(next(ticks)))


def test_nested_stages_are_exclusive(tmp_path, monkeypatch, clock):
    log = tmp_path / "stages.jsonl"
    monkeypatch.setenv(stages.STAGE_LOG_ENV, str(log))
    with stages.stage("metrics"):                 # t = 0
        with stages.stage("features"):            # t = 1 ... 2: 1 s
            pass
        with stages.stage("features"):            # t = 3 ... 4: 1 s
            pass
    # metrics ends at t = 5: 5 s in all, 2 of them in features
    assert stages.read_log(log) == {"generation": 0.0, "features": 2.0, "metrics": 3.0, "plotting": 0.0}


def test_decorator_and_sum_over_outermost_stages(tmp_path, monkeypatch, clock):
    log = tmp_path / "stages.jsonl"
    monkeypatch.setenv(stages.STAGE_LOG_ENV, str(log))

    @stages.stage("plotting")
    def draw():
        return 7

    assert draw() == 7 and draw() == 7
    assert stages.read_log(log)["plotting"] == 2.0


def test_nothing_logged_without_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(stages.STAGE_LOG_ENV, raising=False)
    with stages.stage("generation"):
        pass
    assert stages.read_log(tmp_path / "absent.jsonl") == dict.fromkeys(stages.STAGES, 0.0)


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="stage"):
        with stages.stage("lunch"):
            pass
