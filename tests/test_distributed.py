"""fif train and fif eval under torchrun: 2 gloo processes on the CPU give ranks with identical
weights and the same evaluation report as one process; the helpers and their errors.

    fif train recipes/tiny.fif --nproc 2 && fif eval recipes/tiny.fif --nproc 2
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from fif import distributed as dist
from fif.cli import main
from fif.errors import FifError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _tiny(tmp_path) -> pathlib.Path:
    """recipes/tiny.fif made small enough for a test, with a random stage so that per-batch seeds matter."""
    text = (ROOT / "recipes" / "tiny.fif").read_text()
    for old, new in [("mnist5k(train=4000, test=1000, seed=0)", "mnist5k(train=400, test=100, seed=0)"),
                     ("smallcnn(epochs=2)", "smallcnn(width=8, epochs=1)"),
                     ("conv(out=input) } -> clamp", "conv(out=input) } -> noise(0.05) -> clamp"),
                     ("epochs = 2", "epochs = 1"), ("batch = 64", "batch = 32"), ("limit = 1000", "limit = 96"),
                     ("pgd(steps=10, step=0.05)", "pgd(steps=3, step=0.05)"), ("n = 200", "n = 40\n    batch = 16")]:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "tiny.fif"
    path.write_text(text)
    return path


def _fif(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FIF_QUIET": "1", "PYTHONPATH": str(ROOT)}
    env.pop("RANK", None), env.pop("WORLD_SIZE", None)
    done = subprocess.run([sys.executable, "-m", "fif", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _rows(folder):
    rows = json.loads((folder / "results.json").read_text())["rows"]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_two_gloo_processes_train_identical_ranks_and_evaluate_like_one(tmp_path):
    recipe = _tiny(tmp_path)
    _fif("train", str(recipe), "--out", "runs/tiny/train", "--nproc", "2", cwd=tmp_path)
    train = tmp_path / "runs" / "tiny" / "train"
    manifest = json.loads((train / "manifest.json").read_text())
    assert manifest["processes"] == 2
    assert len(manifest["rank_weights"]) == 2 and len(set(manifest["rank_weights"])) == 1
    assert len((train / "log.jsonl").read_text().splitlines()) == 3   # 96 images, global batches of 32
    _fif("eval", str(recipe), "--out", "one", cwd=tmp_path)
    out = _fif("eval", str(recipe), "--out", "two", "--nproc", "2", cwd=tmp_path)
    assert out.count("rows in") == 1                                     # rank 0 alone prints
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert len(one) > 10 and one == two
    assert json.loads((tmp_path / "two" / "results.json").read_text())["processes"] == 2
    logged = [json.loads(line) for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert logged and all("accuracy" in r for r in logged)


@pytest.mark.parametrize("n, batch, world", [(40, 16, 2), (100, 10, 3), (7, 3, 2), (64, 64, 1), (5, 10, 1)])
def test_batch_ranges_cover_every_sample_once_in_order_with_whole_batches(monkeypatch, n, batch, world):
    monkeypatch.setenv("WORLD_SIZE", str(world))
    ranges = []
    for r in range(world):
        monkeypatch.setenv("RANK", str(r))
        ranges.append(dist.batch_range(n, batch))
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert all(lo % batch == 0 for lo, _ in ranges)


def test_one_process_helpers_change_nothing():
    t = torch.arange(5)
    assert dist.gather_cat(t) is t and dist.all_reduce_sum(t) is t
    assert dist.setup("cpu") == "cpu" and not dist.active()
    with dist.main_first():
        pass


def test_nproc_below_one_and_nested_launches_are_e521(monkeypatch, tmp_path):
    with pytest.raises(FifError) as e:
        dist.check_nproc(0)
    assert e.value.code == "E521"
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(FifError) as e:
        dist.check_nproc(2)
    assert e.value.code == "E521"
    monkeypatch.delenv("WORLD_SIZE")
    result = CliRunner().invoke(main, ["train", str(ROOT / "recipes" / "tiny.fif"), "--nproc", "0"])
    assert result.exit_code == 1 and "E521" in result.output
    result = CliRunner().invoke(main, ["eval", str(ROOT / "recipes" / "tiny.fif"), "--nproc", "-1"])
    assert result.exit_code == 1 and "E521" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without GPUs")
def test_nccl_without_gpus_is_e521(monkeypatch):
    monkeypatch.setenv("FIF_DIST_BACKEND", "nccl")
    with pytest.raises(FifError) as e:
        dist.backend_for("cpu")
    assert e.value.code == "E521"
    monkeypatch.setenv("FIF_DIST_BACKEND", "mpi")
    with pytest.raises(FifError) as e:
        dist.backend_for("cpu")
    assert e.value.code == "E521"
    monkeypatch.delenv("FIF_DIST_BACKEND")
    assert dist.backend_for("cpu") == "gloo"


def test_strip_nproc_keeps_everything_else():
    assert dist.strip_nproc(["train", "r.fif", "--nproc", "2", "--seed", "3"]) == ["train", "r.fif", "--seed", "3"]
    assert dist.strip_nproc(["--debug", "eval", "--nproc=4", "r.fif"]) == ["--debug", "eval", "r.fif"]


def test_progress_bars_only_on_rank_zero(monkeypatch):
    from fif import progress
    monkeypatch.setenv("FIF_QUIET", "0")
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("RANK", "1")
    assert not progress.enabled()
    monkeypatch.setenv("RANK", "0")
    assert progress.enabled()
