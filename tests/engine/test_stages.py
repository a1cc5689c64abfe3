"""Stage timing: exclusive seconds per stage, logged only when the environment names a file."""
import itertools

import pytest

from gvcf.engine import stages


@pytest.fixture
def clock(monkeypatch):
    """perf_counter returns 0, 1, 2, ...: each call advances one second."""
    ticks = itertools.count()
    monkeypatch.setattr(stages.time, "perf_counter", lambda: float(next(ticks)))
    return ticks


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


def test_nothing_logged_without_the_environment(tmp_path, monkeypatch, clock):
    """Without STAGE_LOG_ENV a stage neither times (no clock read) nor writes; with it again, only its own stages
    are logged (nothing left over from the unlogged ones)."""
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "stages.jsonl"
    monkeypatch.setenv(stages.STAGE_LOG_ENV, str(log))
    with stages.stage("generation"):              # t = 0 ... 1: logged
        pass
    logged = log.read_bytes()
    monkeypatch.delenv(stages.STAGE_LOG_ENV)
    with stages.stage("features"):
        with stages.stage("plotting"):
            pass
    assert next(clock) == 2                       # the clock was not read
    assert log.read_bytes() == logged and [p.name for p in tmp_path.iterdir()] == [log.name]
    monkeypatch.setenv(stages.STAGE_LOG_ENV, str(log))
    with stages.stage("metrics"):                 # t = 3 ... 4
        pass
    assert stages.read_log(log) == {"generation": 1.0, "features": 0.0, "metrics": 1.0, "plotting": 0.0}
    assert stages.read_log(tmp_path / "absent.jsonl") == dict.fromkeys(stages.STAGES, 0.0)


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="stage"):
        with stages.stage("lunch"):
            pass
