"""A report's commands run in dependency order, independent ones side by side (`--jobs`), and a
second `fif report --run` on the same runs folder takes other steps instead of repeating one."""

import json
import os
import threading
import time

import pytest

import fif
from fif.reports import steps as steps_mod
from fif.reports.framework import ReportSpec, Step
from fif.reports.steps import run_steps


def _spec(tmp_path, steps):
    return ReportSpec(name="demo", title="Demo", paper="-", steps=lambda runs: steps,
                      evals=lambda runs: [], tables=lambda r: [], claims=[])


def _fake_run(log, seconds=0.2):
    """Stands in for a command: logs start and end, then leaves the step's file."""
    lock = threading.Lock()

    def run(step):
        with lock:
            log.append(("start", step.label, time.monotonic()))
        time.sleep(seconds)
        with lock:
            log.append(("end", step.label, time.monotonic()))
        os.makedirs(os.path.dirname(step.done), exist_ok=True)
        open(step.done, "w").close()
        return {"seconds": seconds, "cpu_seconds": 0.0, "at": "now"}
    return run


def _seeds(tmp_path):
    made = {k: str(tmp_path / f"{k}.done") for k in ("train0", "eval0", "train1", "eval1")}
    return [Step(("train", "0"), made["train0"], "train0", needs=()),
            Step(("eval", "0"), made["eval0"], "eval0", needs=(made["train0"],)),
            Step(("train", "1"), made["train1"], "train1", needs=()),
            Step(("eval", "1"), made["eval1"], "eval1", needs=(made["train1"],))]


def _span(log, label):
    return next(t for kind, l, t in log if kind == "start" and l == label), \
        next(t for kind, l, t in log if kind == "end" and l == label)


def test_two_jobs_run_independent_steps_side_by_side_and_wait_for_what_they_need(tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(steps_mod, "_run", _fake_run(log))
    run_steps(_spec(tmp_path, _seeds(tmp_path)), tmp_path / "runs", jobs=2, echo=lambda s: None, poll=0.01)
    t0, t1 = _span(log, "train0"), _span(log, "train1")
    assert t1[0] < t0[1]                              # the two trainings overlapped
    assert _span(log, "eval0")[0] >= t0[1] and _span(log, "eval1")[0] >= t1[1]
    recorded = json.loads((tmp_path / "runs" / "demo" / "steps.json").read_text())
    assert set(recorded) == {"fif train 0", "fif eval 0", "fif train 1", "fif eval 1"}


def test_without_needs_a_spec_runs_in_order_even_with_jobs(tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(steps_mod, "_run", _fake_run(log, 0.05))
    plain = [Step((f"s{i}",), str(tmp_path / f"{i}.done"), f"s{i}") for i in range(3)]
    run_steps(_spec(tmp_path, plain), tmp_path / "runs", jobs=3, echo=lambda s: None, poll=0.01)
    assert [label for kind, label, _ in log if kind == "start"] == ["s0", "s1", "s2"]
    assert _span(log, "s1")[0] >= _span(log, "s0")[1] and _span(log, "s2")[0] >= _span(log, "s1")[1]


def test_finished_steps_are_skipped_and_force_reruns_them(tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(steps_mod, "_run", _fake_run(log, 0.0))
    spec, runs = _spec(tmp_path, _seeds(tmp_path)), tmp_path / "runs"
    run_steps(spec, runs, echo=lambda s: None, poll=0.01)
    log.clear()
    said = []
    run_steps(spec, runs, echo=said.append, poll=0.01)
    assert log == [] and sum(s.startswith("done already") for s in said) == 4
    run_steps(spec, runs, force=True, jobs=2, echo=lambda s: None, poll=0.01)
    assert sorted(label for kind, label, _ in log if kind == "start") == ["eval0", "eval1", "train0", "train1"]


def test_a_step_another_live_process_holds_is_left_to_it(tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(steps_mod, "_run", _fake_run(log, 0.0))
    steps = _seeds(tmp_path)
    spec, runs = _spec(tmp_path, steps), tmp_path / "runs"
    assert steps_mod._lock(runs / "demo", steps[0])           # "another process" (this one) holds train0
    done = threading.Event()

    def finish_it():  # the holder finishes train0 and lets go, as a second `fif report --run` would
        time.sleep(0.3)
        open(steps[0].done, "w").close()
        steps_mod._record(runs / "demo" / "steps.json", steps[0].command, {"seconds": 1.0})
        steps_mod._unlock(runs / "demo", steps[0])
        done.set()
    threading.Thread(target=finish_it).start()
    run_steps(spec, runs, jobs=1, echo=lambda s: None, poll=0.01)
    assert done.is_set()
    assert [label for kind, label, _ in log if kind == "start"] == ["train1", "eval1", "eval0"]


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, monkeypatch):
    log = []
    monkeypatch.setattr(steps_mod, "_run", _fake_run(log, 0.0))
    steps = _seeds(tmp_path)[:2]
    path = steps_mod._lock_path(tmp_path / "runs" / "demo", steps[0])
    path.parent.mkdir(parents=True)
    dead = 2 ** 22 + 12345   # above Linux's default pid_max: no such process
    path.write_text(json.dumps({"pid": dead, "host": steps_mod.socket.gethostname(), "command": "x"}))
    run_steps(_spec(tmp_path, steps), tmp_path / "runs", echo=lambda s: None, poll=0.01)
    assert [label for kind, label, _ in log if kind == "start"] == ["train0", "eval0"]
    assert not path.exists()


def test_a_failed_step_stops_the_others_from_starting_and_is_a_clean_error(tmp_path, monkeypatch):
    def boom(step):
        raise fif.FifError(steps_mod_error(step))
    log = []
    ok = _fake_run(log, 0.0)
    monkeypatch.setattr(steps_mod, "_run", lambda step: boom(step) if step.label == "train0" else ok(step))
    with pytest.raises(fif.FifError) as e:
        run_steps(_spec(tmp_path, _seeds(tmp_path)[:2]), tmp_path / "runs", echo=lambda s: None, poll=0.01)
    assert e.value.code == "E431"
    assert log == []                                          # eval0 never started


def test_a_step_whose_needs_nothing_makes_is_an_error_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setattr(steps_mod, "_run", _fake_run([], 0.0))
    orphan = [Step(("eval",), str(tmp_path / "e.done"), "eval", needs=(str(tmp_path / "never.done"),))]
    with pytest.raises(fif.FifError) as e:
        run_steps(_spec(tmp_path, orphan), tmp_path / "runs", echo=lambda s: None, poll=0.01)
    assert e.value.code == "E431" and "never.done" in str(e.value)


def steps_mod_error(step):
    from fif.errors import diagnostic
    return diagnostic("E431", f"the report's command failed (exit 1): {step.command}")


def test_an_interrupted_training_step_resumes_from_its_checkpoint(tmp_path):
    from fif.train.run import CHECKPOINT
    assert steps_mod.TRAIN_CHECKPOINT == CHECKPOINT
    args = ("train", "r.fif", "--seed", "1", "--out", str(tmp_path))
    assert steps_mod.resumed_args(args) == args
    (tmp_path / CHECKPOINT).write_bytes(b"")
    assert steps_mod.resumed_args(args) == (*args, "--resume")
    assert steps_mod.resumed_args(("eval", "r.fif", "--out", str(tmp_path))) == ("eval", "r.fif", "--out", str(tmp_path))
