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
    assert stages.read_log(log) == dict.fromkeys(stages.STAGES, 0.0) | {"features": 2.0, "metrics": 3.0}


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
    assert stages.read_log(log) == dict.fromkeys(stages.STAGES, 0.0) | {"generation": 1.0, "metrics": 1.0}
    assert stages.read_log(tmp_path / "absent.jsonl") == dict.fromkeys(stages.STAGES, 0.0)


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="stage"):
        with stages.stage("lunch"):
            pass


def test_labels_split_a_stage_and_the_innermost_wins(tmp_path, monkeypatch, clock):
    log = tmp_path / "stages.jsonl"
    monkeypatch.setenv(stages.STAGE_LOG_ENV, str(log))
    with stages.labelled("md ddim"):
        with stages.stage("generation"):          # t = 0 ... 3: 3 s, 1 of them decoding
            with stages.stage("decoding"):        # t = 1 ... 2
                pass
        with stages.labelled("sync ddim"), stages.stage("generation"):   # t = 4 ... 5
            pass
    with stages.stage("generation"):              # t = 6 ... 7: no label
        pass
    totals = stages.read_log(log)
    assert totals["generation"] == 4.0 and totals["decoding"] == 1.0
    assert stages.by_label(totals, "generation") == {"md ddim": 2.0, "sync ddim": 1.0}
    assert list(stages.by_label(totals, "generation")) == ["md ddim", "sync ddim"]   # largest first
    assert stages.by_label(totals, "decoding") == {"md ddim": 1.0}


@pytest.mark.parametrize("label", ["", "a: b", None])
def test_a_bad_label_is_refused(label):
    with pytest.raises(ValueError, match="label"):
        with stages.labelled(label):
            pass


def test_the_engine_names_its_stages(tmp_path, monkeypatch, tiny_pipe, lpips_net):
    """A labelled SyncDiffusion panorama decoded to an image, and a bootstrap interval, each land in their stage:
    the gradient step in "sync gradient", the VAE in "decoding", the resampling in "bootstrap"."""
    from gvcf.engine.sync import SyncConfig, generate_sync
    from gvcf.eval import evidence

    log = tmp_path / "stages.jsonl"
    monkeypatch.setenv(stages.STAGE_LOG_ENV, str(log))
    with stages.labelled("sync ddim"):
        generate_sync(tiny_pipe, "a beach", SyncConfig(weight=10.0, threshold=2), lpips=lpips_net, height=16,
                      width=48, stride=8, steps=4, progress=False)
    evidence.interval([1.0, 2.0, 4.0, 3.0], n_boot=200)
    totals = stages.read_log(log)
    for name in ("generation", "sync gradient", "decoding", "bootstrap"):
        assert totals[name] > 0, name
    assert set(stages.by_label(totals, "sync gradient")) == {"sync ddim"}
    assert "sync ddim" not in stages.by_label(totals, "bootstrap")
