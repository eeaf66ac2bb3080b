"""`fif train`: staged, resumable, reproducible training (fif.train).

Everything runs on CPU with one intra-op thread (results on CPU are bit-identical for a fixed
thread count; the subprocesses get OMP_NUM_THREADS=1 to match), small data (`limit`) and a
per-module classifier cache.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import fif
from fif.errors import FifError
from fif.recipe import recipe_from_text
from fif.train import run_training, trained_weights
from fif.train.checkpoint import Checkpoint
from fif.train.command import train_cmd
from fif.train.record import fingerprint

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "tiny.fif"
BITDEPTH = ROOT / "recipes" / "bitdepth.fif"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fif-cache")


@pytest.fixture(autouse=True)
def _env(cache_dir, monkeypatch):
    monkeypatch.setenv("FIF_CACHE", str(cache_dir))
    monkeypatch.setenv("FIF_QUIET", "1")
    yield


def _subprocess_env(cache_dir):
    env = dict(os.environ, FIF_CACHE=str(cache_dir), FIF_QUIET="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


# ---- reproducibility -------------------------------------------------------------------------

def test_tiny_twice_gives_identical_bytes_and_the_files_the_issue_names(tmp_path, cache_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    res = CliRunner().invoke(train_cmd, [str(TINY), "--seed", "0", "--out", str(a)])
    assert res.exit_code == 0, res.output
    assert "final loss" in res.output and "defense.safetensors" in res.output
    proc = subprocess.run([sys.executable, "-m", "fif", "train", str(TINY), "--seed", "0", "--out", str(b)],
                          cwd=tmp_path, env=_subprocess_env(cache_dir), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (a / "defense.safetensors").read_bytes() == (b / "defense.safetensors").read_bytes()

    defense = fif.load(a / "defense.safetensors")
    x = torch.rand(3, 1, 28, 28)
    assert defense(x).shape == x.shape
    assert fif.load(a / "defense.safetensors").state_dict().keys() == defense.state_dict().keys()

    rows = _log(a / "log.jsonl")
    assert len(rows) == 2 * 16  # limit 1000, batch 64, 2 epochs
    for r in rows:
        assert {"stage", "epoch", "step", "loss", "terms", "lr", "seconds"} <= set(r)
    assert rows[0]["stage"] == "denoise" and rows[-1]["epoch"] == 2 and rows[-1]["step"] == 16
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert _without_time(rows) == _without_time(_log(b / "log.jsonl"))
    m = json.loads((a / "manifest.json").read_text())
    assert m["recipe_text"] == TINY.read_text() and m["seed"] == 0 and m["device"] == "cpu"
    assert set(m["versions"]) == {"python", "torch", "fif", "numpy"}
    assert "git_commit" in m and m["command"]


def test_another_seed_gives_other_weights(tmp_path):
    a = run_training(fif.load_recipe(TINY), out=tmp_path / "a", seed=0)
    b = run_training(fif.load_recipe(TINY), out=tmp_path / "b", seed=1)
    assert Path(a["files"][0]).read_bytes() != Path(b["files"][0]).read_bytes()
    assert a["stages"][0]["steps"] == 32 and a["stages"][0]["loss"] < 0.1


KILL = """
recipe kill {
  data = mnist5k(train=4000, test=1000, seed=0)
  defense = residual { conv(8, depth=2) -> conv(out=input) } -> clamp
  train {
    stage a { inputs = noisy(sigma=[0.1, 0.3]); loss = l1 + 0.5 * mse; epochs = 2; batch = 16; limit = 2400
              optim = sgd(lr=0.05, momentum=0.9, nesterov=true); schedule = cosine(warmup=10) }
    stage b { inputs = bitdepth(4) -> noise(0.1); loss = mse; epochs = 2; batch = 32; limit = 320
              optim = adamw(lr=1e-3, betas=[0.5, 0.999]); schedule = multistep(milestones=[1], gamma=0.5, per=epoch) }
  }
}
"""


def test_sigkill_then_resume_ends_bit_identical(tmp_path, cache_dir):
    recipe_path = _write(tmp_path, "kill.fif", KILL)
    ref = run_training(fif.load_recipe(recipe_path), out=tmp_path / "ref", seed=0, checkpoint_every=5)
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "fif", "train", str(recipe_path), "--out", str(run),
                             "--checkpoint-every", "5"], cwd=tmp_path, env=_subprocess_env(cache_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log, ckpt, deadline = run / "log.jsonl", run / "checkpoint.safetensors", time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and log.exists() and log.read_text().count("\n") >= 40:
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail(f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "defense.safetensors").exists()
    killed_at = Checkpoint(ckpt).info
    assert killed_at["state"]["t"] < 300

    res = CliRunner().invoke(train_cmd, [str(recipe_path), "--out", str(run), "--checkpoint-every", "5", "--resume"])
    assert res.exit_code == 0, res.output
    assert "resumed" in res.output
    assert (run / "defense.safetensors").read_bytes() == Path(ref["files"][0]).read_bytes()
    assert _without_time(_log(log)) == _without_time(_log(tmp_path / "ref" / "log.jsonl"))
    manifest = json.loads((run / "manifest.json").read_text())
    assert len(manifest["resumes"]) == 1

    # resuming a finished run rewrites the same final files
    again = run_training(fif.load_recipe(recipe_path), out=run, resume=True)
    assert again["resumed"] and (run / "defense.safetensors").read_bytes() == Path(ref["files"][0]).read_bytes()


def test_resume_refuses_what_it_cannot_continue(tmp_path):
    with pytest.raises(FifError) as e:
        run_training(fif.load_recipe(TINY), out=tmp_path / "none", resume=True)
    assert e.value.code == "E424" and "no checkpoint" in e.value.message
    run_training(fif.load_recipe(TINY), out=tmp_path / "r", seed=0)
    with pytest.raises(FifError) as e:
        run_training(fif.load_recipe(TINY), out=tmp_path / "r", seed=5, resume=True)
    assert e.value.code == "E424" and "--seed 0" in e.value.message
    changed = _write(tmp_path, "tiny.fif", TINY.read_text().replace("epochs = 2", "epochs = 3"))
    with pytest.raises(FifError) as e:
        run_training(fif.load_recipe(changed), out=tmp_path / "r", seed=0, resume=True)
    assert e.value.code == "E424" and "epochs = 3" in e.value.message and "line" in e.value.message


# ---- guards --------------------------------------------------------------------------------------

def test_nan_in_the_data_is_caught_before_training(tmp_path, monkeypatch):
    import fif.data as data
    real = data.load_dataset

    def poisoned(name, base=None):
        ds = real(name, base=base)
        images = ds.images.clone()
        images[7, 0, 3, 3] = float("nan")
        return type(ds)(images, ds.labels, ds.classes, ds.name, ds.source)

    monkeypatch.setattr(data, "load_dataset", poisoned)
    with pytest.raises(FifError) as e:
        run_training(fif.load_recipe(TINY), out=tmp_path / "r")
    assert e.value.code == "E404" and "mnist5k" in e.value.message and "image 7" in e.value.message
    assert not (tmp_path / "r" / "checkpoint.safetensors").exists()


def test_nan_in_an_npz_dataset_is_an_e404(tmp_path):
    images = np.random.default_rng(0).random((20, 8, 8), dtype=np.float32)
    images[3, 2, 2] = np.nan
    np.savez(tmp_path / "digits.npz", images=images, labels=np.arange(20) % 2)
    recipe = _write(tmp_path, "r.fif", """recipe r {
      data = "digits.npz"
      defense = conv(out=input) -> clamp
      train { stage s { loss = l1 } } }""")
    res = CliRunner().invoke(train_cmd, [str(recipe), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "E404" in res.output and "digits.npz" in res.output


NAN_LOSS = """recipe boom {
  data = mnist5k(train=500, test=100, seed=0)
  defense = residual { conv(8, depth=2) -> conv(out=input) } -> clamp
  train {
    stage blowup { inputs = noisy(sigma=0.3); loss = l1; epochs = 1; batch = 16; limit = 160; optim = sgd(lr=1e30) }
  }
}
"""


def test_an_exploding_learning_rate_stops_with_e510_and_keeps_the_checkpoint(tmp_path):
    recipe = _write(tmp_path, "boom.fif", NAN_LOSS)
    res = CliRunner().invoke(train_cmd, [str(recipe), "--out", str(tmp_path / "o"), "--checkpoint-every", "1"])
    assert res.exit_code == 1
    out = res.output
    assert "E510" in out and "stage 'blowup'" in out and "epoch 1" in out and "step " in out and "'l1'" in out
    assert "boom.fif:5:" in out  # points into the recipe
    ck = Checkpoint(tmp_path / "o" / "checkpoint.safetensors")
    assert all(bool(torch.isfinite(t).all()) for k, t in ck.tensors.items() if k.startswith("model."))
    assert not (tmp_path / "o" / "defense.safetensors").exists()


def test_a_nan_loss_term_names_stage_epoch_step_and_term(tmp_path, monkeypatch):
    import fif.train.losses as losses
    calls = {"n": 0}
    real = losses.FUNCTIONS["l1"]

    def flaky(f, a):
        calls["n"] += 1
        v = real(f, a)
        return v * float("nan") if calls["n"] == 4 else v

    monkeypatch.setitem(losses.FUNCTIONS, "l1", flaky)
    recipe = _write(tmp_path, "r.fif", NAN_LOSS.replace("lr=1e30", "lr=0.01").replace("loss = l1", "loss = mse + l1"))
    with pytest.raises(FifError) as e:
        run_training(fif.load_recipe(recipe), out=tmp_path / "o", checkpoint_every=2)
    msg = e.value.message
    assert e.value.code == "E510"
    assert "stage 'blowup', epoch 1, step 4: loss term 'l1' is nan" in msg and "epoch 1, step 2" in msg
    ck = Checkpoint(tmp_path / "o" / "checkpoint.safetensors")
    assert ck.info["state"]["t"] == 2 and ck.info["state"]["step"] == 2
    assert len(_log(tmp_path / "o" / "log.jsonl")) == 3


def test_nan_weights_are_never_checkpointed(tmp_path, monkeypatch):
    import fif.train.loop as loop
    real = loop.make_optimizer

    def poisoned(spec, params):
        opt = real(spec, params)
        step, count = opt.step, {"n": 0}

        def bad_step(*a, **k):
            out = step(*a, **k)
            count["n"] += 1
            if count["n"] == 3:
                with torch.no_grad():
                    opt.param_groups[0]["params"][0].fill_(float("inf"))
            return out

        opt.step = bad_step
        return opt

    monkeypatch.setattr(loop, "make_optimizer", poisoned)
    recipe = _write(tmp_path, "r.fif", NAN_LOSS.replace("lr=1e30", "lr=0.01"))
    with pytest.raises(FifError) as e:
        run_training(fif.load_recipe(recipe), out=tmp_path / "o", checkpoint_every=1)
    assert e.value.code == "E510" and "weights became NaN or infinite" in e.value.message
    assert "stage 'blowup', epoch 1, step 3" in e.value.message
    ck = Checkpoint(tmp_path / "o" / "checkpoint.safetensors")
    assert ck.info["state"]["t"] == 2
    assert all(bool(torch.isfinite(t).all()) for k, t in ck.tensors.items() if k.startswith("model."))


def test_a_recipe_that_trains_nothing_says_so(tmp_path):
    res = CliRunner().invoke(train_cmd, [str(BITDEPTH), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "E420" in res.output and "no train section" in res.output
    assert "hint" in res.output
    recipe = _write(tmp_path, "r.fif", """recipe r {
      data = mnist5k(train=100, test=100)
      let q = bitdepth(4)
      defense = q -> conv(out=input) -> clamp
      train { stage s { params = q; loss = l1 } } }""")
    with pytest.raises(FifError) as e:
        run_training(fif.load_recipe(recipe), out=tmp_path / "o")
    assert e.value.code == "E420" and "`let q` has no learnable weights" in e.value.message
    assert e.value.line == 5  # the stage's params


def test_command_line_errors(tmp_path):
    res = CliRunner().invoke(train_cmd, [str(tmp_path / "missing.fif")])
    assert res.exit_code == 1 and "E401" in res.output
    if not torch.cuda.is_available():
        res = CliRunner().invoke(train_cmd, [str(TINY), "--device", "cuda", "--out", str(tmp_path / "o")])
        assert res.exit_code == 1 and "E520" in res.output and "hint" in res.output
    res = CliRunner().invoke(train_cmd, [str(TINY), "--only", "nope", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "E423" in res.output
    bad = _write(tmp_path, "bad.fif", TINY.read_text().replace("adam(lr=0.002)", "adam(lr=0.002, momentun=0.9)"))
    res = CliRunner().invoke(train_cmd, [str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "bad.fif:13:30: error[E221]" in res.output  # bound when the recipe loads


# ---- losses, optimizers, schedules on toy problems -----------------------------------------------

LOSSES = ["l1", "mse", "l1(sl)", "ce", "ce(clean)", "ce(target=clean_pred)", "ce(target=clean_soft)",
          "feature", 'feature(layer="features.0")', "rep(eps=0.1, steps=3)", "0.9 * ce(clean) + 0.1 * ce(input)",
          "ce + 2 * rep(eps=0.05)", "l1 + mse(min_eps=0.1)"]


def _toy(loss: str):
    from fif.models import build_classifier
    from fif.train.losses import build_terms
    r = recipe_from_text(f"recipe t {{ let sl = id\n defense = sl\n"
                         f" train {{ stage s {{ inputs = adversarial(eps=[0.05, 0.2]); loss = {loss} }} }} }}")
    torch.manual_seed(0)
    p = fif.compile("let sl = residual { conv(4) -> conv(out=input) } -> clamp\n"
                    "sl -> residual { conv(4) -> conv(out=input) } -> clamp", input_shape=(1, 8, 8))
    clf = build_classifier("smallcnn", (1, 8, 8), 3, width=4).eval().requires_grad_(False)
    clf.head[-1].weight.data *= 30  # confident predictions, so soft targets are not uniform
    terms = build_terms(r.train[0].loss, trains="defense", pipeline=p, classifier=clf, eps_values=[0.05, 0.2])
    g = torch.Generator().manual_seed(1)
    clean = torch.rand(32, 1, 8, 8, generator=g)
    y = torch.randint(3, (32,), generator=g)
    x = (clean + 0.2 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    return p, clf, terms, clean, x, y, torch.tensor([0.05, 0.2] * 16)


@pytest.mark.parametrize("loss", LOSSES)
def test_each_loss_steps_and_goes_down(loss):
    from fif.train.losses import Forward, StepData, evaluate
    p, clf, terms, clean, x, y, eps = _toy(loss)
    opt = torch.optim.Adam(p.parameters(), lr=1e-2)
    values = []
    for i in range(25):
        torch.manual_seed(i)
        opt.zero_grad()
        total, parts = evaluate(terms, Forward(StepData(clean, x, y, eps), pipeline=p, classifier=clf))
        values.append(float(total.detach()))
        total.backward()
        opt.step()
    assert all(np.isfinite(values)) and values[-1] < values[0] - 1e-4, values


def test_min_eps_routes_samples_by_their_eps():
    from fif.train.losses import Forward, StepData
    p, clf, terms, clean, x, y, eps = _toy("l1 + l1(min_eps=0.1)")
    f = Forward(StepData(clean, x, y, eps), pipeline=p, classifier=clf)
    per = (p(x) - clean).abs().flatten(1).mean(1)
    all_, n_all = terms[0].value(f)
    big, n_big = terms[1].value(f)
    assert n_all == 32 and n_big == 16
    assert torch.allclose(all_, per.mean()) and torch.allclose(big, per[eps >= 0.1].mean())
    with pytest.raises(FifError) as e:  # caught when the recipe loads...
        recipe_from_text("recipe t { defense = id\n train { stage s { loss = l1(min_eps=0.1) } } }")
    assert (e.value.code, e.value.line, e.value.column) == ("E423", 2, 38)  # at the 0.1
    with pytest.raises(Exception, match="not adversarial"):  # ...and still refused by build_terms
        from fif.train.losses import build_terms
        r = recipe_from_text("recipe t { defense = id\n train { stage s { inputs = adversarial(eps=0.2)\n"
                             " loss = l1(min_eps=0.1) } } }")
        build_terms(r.train[0].loss, trains="defense", pipeline=p, classifier=clf, eps_values=None)


OPTIMS = [{"name": "sgd", "lr": 0.05},
          {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
          {"name": "adam", "lr": 0.05, "betas": [0.5, 0.999]},
          {"name": "adamw", "lr": 0.05, "weight_decay": 0.01, "eps": 1e-7}]
SCHEDULES = [None, {"name": "step", "every": 10, "gamma": 0.5}, {"name": "multistep", "milestones": [10, 20]},
             {"name": "exp", "gamma": 0.9, "per": "epoch"}, {"name": "cosine", "min_lr": 1e-4},
             {"name": "linear", "start": 1, "per": "epoch"}, {"name": "warmup", "steps": 5},
             {"name": "cosine", "warmup": 5}]


@pytest.mark.parametrize("schedule", SCHEDULES,
                         ids=lambda s: "none" if s is None else s["name"] + ("+warmup" if "warmup" in s else ""))
@pytest.mark.parametrize("optim", OPTIMS, ids=lambda o: "-".join(str(v) for v in o.values())[:30])
def test_each_optimizer_and_schedule_lowers_a_toy_loss(optim, schedule):
    from fif.train.optim import make_optimizer, make_schedule
    g = torch.Generator().manual_seed(0)
    a, w_true = torch.randn(64, 5, generator=g), torch.randn(5, 1, generator=g)
    b = a @ w_true
    w = torch.zeros(5, 1, requires_grad=True)
    opt = make_optimizer(optim, [w])
    sched = make_schedule(schedule, optim["lr"], steps_per_epoch=10, epochs=3)
    losses = []
    for t in range(30):
        sched.apply(opt, t)
        opt.zero_grad()
        loss = ((a @ w - b) ** 2).mean()
        losses.append(float(loss.detach()))
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


def test_schedule_values():
    from fif.train.optim import make_schedule
    s = make_schedule({"name": "step", "every": 10, "gamma": 0.5}, 1.0, 100, 2)
    assert (s(0), s(9), s(10), s(25)) == (1.0, 1.0, 0.5, 0.25)
    s = make_schedule({"name": "multistep", "milestones": [1, 3], "gamma": 0.1, "per": "epoch"}, 1.0, 10, 5)
    assert (s(9), s(10), s(29), s(30)) == (1.0, 0.1, 0.1, pytest.approx(0.01))
    s = make_schedule({"name": "exp", "gamma": 0.94, "per": "epoch"}, 0.005, 10, 14)
    assert (s(0), s(9), s(10), s(20)) == (0.005, 0.005, 0.005 * 0.94, pytest.approx(0.005 * 0.94 ** 2))
    s = make_schedule({"name": "cosine", "min_lr": 0.1, "warmup": 10}, 1.0, 10, 11)
    assert s(0) == pytest.approx(0.1) and s(9) == 1.0 and s(10) == 1.0 and s(109) == pytest.approx(0.1, abs=1e-3)
    s = make_schedule({"name": "linear", "start": 1, "per": "epoch"}, 1.0, 10, 3)
    assert (s(5), s(10), s(20)) == (1.0, 1.0, 0.5)
    s = make_schedule({"name": "warmup", "steps": 4}, 2.0, 10, 1)
    assert [s(t) for t in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]


# ---- inputs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("against", ["classifier", "defense"])
def test_adversarial_pairs_stay_inside_their_eps(against):
    from fif.models import build_classifier
    from fif.train.inputs import Adversarial
    torch.manual_seed(0)
    clf = build_classifier("smallcnn", (1, 28, 28), 10, width=8).eval()
    defense = fif.compile("bitdepth(4) -> residual { conv(4) -> conv(out=input) } -> clamp", input_shape=(1, 28, 28))
    maker = Adversarial({"attack": ("pgd", {"steps": 3}), "eps": [0.05, 0.1, 0.3], "step": 0.05, "against": against},
                        classifier=lambda: clf, defense=lambda: defense)
    clean, y = torch.rand(24, 1, 28, 28), torch.randint(10, (24,))
    x, eps = maker.make(clean, y, torch.Generator().manual_seed(3), seed=11)
    gap = (x - clean).abs().flatten(1).max(1).values
    assert set(eps.tolist()) <= {0.05, 0.1, 0.3} and len(set(eps.tolist())) > 1
    assert bool((gap <= eps + 1e-6).all()) and bool((gap > 0.5 * eps).all())
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    again, _ = maker.make(clean, y, torch.Generator().manual_seed(3), seed=11)
    assert torch.equal(x, again)


def test_uniform_eps_is_drawn_per_sample_and_bounds_each_pair():
    """eps=uniform(low, high): every sample its own eps in [low, high] (Zhang et al. 2021: FGSM
    with eps ~ U[0, eps_max]); FGSM then moves each pixel by exactly its eps, where not clipped."""
    from fif.models import build_classifier
    from fif.train.inputs import Adversarial
    torch.manual_seed(0)
    clf = build_classifier("smallcnn", (1, 28, 28), 10, width=8).eval()
    maker = Adversarial({"attack": ("fgsm", {}), "eps": ("uniform", {"low": 0.05, "high": 0.3})},
                        classifier=lambda: clf, defense=lambda: None)
    assert maker.eps_values == [0.05, 0.3]
    clean, y = 0.35 + 0.3 * torch.rand(40, 1, 28, 28), torch.randint(10, (40,))   # no pixel is clipped
    x, eps = maker.make(clean, y, torch.Generator().manual_seed(3), seed=11)
    assert eps.dtype == torch.float64 and len(set(eps.tolist())) == 40
    assert float(eps.min()) >= 0.05 and float(eps.max()) <= 0.3 and float(eps.std()) > 0.03
    gap = (x - clean).abs().flatten(1).max(1).values.double()
    torch.testing.assert_close(gap, eps, atol=1e-6, rtol=0)
    again, eps2 = maker.make(clean, y, torch.Generator().manual_seed(3), seed=11)
    assert torch.equal(x, again) and torch.equal(eps, eps2)
    with pytest.raises(Exception, match="low is above high"):
        Adversarial({"attack": "fgsm", "eps": ("uniform", {"low": 0.3, "high": 0.1})},
                    classifier=lambda: clf, defense=lambda: None)


def test_stage_syntax_reaches_the_recipe_model():
    r = recipe_from_text("""recipe t {
      let sl = id
      defense = sl
      train {
        stage a { inputs = noisy(0.3); loss = l1 }
        stage b { inputs = bitdepth(4) -> noise(0.1); loss = mse }
        stage c { inputs = adversarial(attack=pgd(steps=5), eps=[0.1, 0.2], against=defense)
                  loss = l1(sl, min_eps=0.1) }
        stage d { params = classifier; chain = [noise(0.1), bitdepth(4)]; loss = 0.9 * ce(clean) + 0.1 * ce(input) }
      } }""")
    (e,) = recipe_from_text("""recipe t { defense = id
      train { stage e { params = classifier; chain = 3; loss = ce; schedule = cosine(warmup=100) } } }""").train
    a, b, c, d = r.train
    assert a.inputs.kind == "noisy" and a.inputs.args == {"sigma": [0.3]}
    assert b.inputs.kind == "pipeline"
    assert c.inputs.args["eps"] == [0.1, 0.2] and c.inputs.args["attack"] == ("pgd", {"steps": 5})
    assert c.loss[0].args["min_eps"] == 0.1
    assert len(d.chain) == 2 and e.chain == 3 and [t.weight for t in d.loss] == [0.9, 0.1]


# ---- stages, chains, variants --------------------------------------------------------------------

CHAIN = """
let enc = conv(4)
recipe chain {
  data = mnist5k(train=500, test=100, seed=0)
  classifier = smallcnn(epochs=1)
  let sl = enc -> conv(out=input) -> clamp
  let m = enc -> conv(out=input) -> clamp
  let fusion = conv(4) -> conv(out=input)
  defense = mean { sl | m } -> residual { fusion } -> clamp
  train {
    stage y { freeze = [fusion]; inputs = adversarial(attack=pgd(steps=2), eps=[0.05, 0.2], against=classifier)
              loss = l1(sl) + l1(m, min_eps=0.1); epochs = 1; batch = 32; limit = 64 }
    stage fuse { params = fusion; inputs = adversarial(attack=fgsm, eps=0.1, against=defense)
                 loss = ce(target=clean_pred) + feature(layer="features.3") + 0.5 * rep(eps=0.05, steps=2)
                 epochs = 1; batch = 32; limit = 64 }
    stage ladder { params = classifier; chain = [noise(0.1), bitdepth(4) -> noise(0.05), noise(0.2)]
                   loss = 0.9 * ce(clean) + 0.1 * ce(input); epochs = 1; batch = 32; limit = 64
                   optim = sgd(lr=0.01, momentum=0.9); schedule = exp(gamma=0.94, per=epoch) }
  }
}
"""


def test_classifier_chain_and_adversarial_stages(tmp_path):
    from fif.models import read_weights
    recipe = _write(tmp_path, "chain.fif", CHAIN)
    s = run_training(fif.load_recipe(recipe), out=tmp_path / "o", seed=0)
    assert [d["stage"] for d in s["stages"]] == ["y", "fuse", "ladder", "ladder", "ladder"]
    assert [d["member"] for d in s["stages"][2:]] == [1, 2, 3]
    members = [read_weights(tmp_path / "o" / f"classifier_{i}.safetensors")[0] for i in range(4)]
    prints = [fingerprint(m) for m in members]
    assert len(set(prints)) == 4  # the base and three distinct fine-tuned members
    chain = s["stages"][2:]
    assert chain[0]["init"] == prints[0]
    for i in range(1, 3):
        assert chain[i]["init"] == chain[i - 1]["final"] == prints[i]  # each starts where the previous ended
    assert chain[2]["final"] == prints[3]
    rows = _log(tmp_path / "o" / "log.jsonl")
    y_rows = [r for r in rows if r["stage"] == "y"]
    assert set(y_rows[0]["terms"]) == {"l1(sl)", "l1(m, min_eps=0.1)"}
    assert {"ce(target=clean_pred)", "feature(layer=features.3)", "rep(eps=0.05, steps=2)"} == \
        set(next(r for r in rows if r["stage"] == "fuse")["terms"])
    defense = fif.load(tmp_path / "o" / "defense.safetensors")
    assert defense(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


def test_freeze_and_let_params_pick_the_right_weights():
    from fif.train.stages import defense_params
    r = recipe_from_text(CHAIN)
    p = r.compile("defense", input_shape=(1, 28, 28))
    y, fuse = r.train[0], r.train[1]
    ids = lambda ps: {id(q) for q in ps}  # noqa: E731
    params, why = defense_params(p, y, ["enc", "sl", "m", "fusion"])
    assert why is None and ids(params) == ids(p.parameters()) - ids(p.shared["fusion"].parameters())
    params, why = defense_params(p, fuse, ["enc", "sl", "m", "fusion"])
    assert ids(params) == ids(p.shared["fusion"].parameters())


VARIANTS = """recipe v {
  data = mnist5k(train=500, test=100, seed=0)
  defense = residual { conv(4) -> conv(out=input) } -> clamp
  variants { wide = residual { conv(8) -> conv(out=input) } -> clamp
             fixed = bitdepth(4) }
  train { stage s { inputs = clean; loss = l1; epochs = 1; batch = 16; limit = 32 } }
}
"""


def test_variants_are_trained_and_only_picks_one(tmp_path):
    recipe = _write(tmp_path, "v.fif", VARIANTS)
    s = run_training(fif.load_recipe(recipe), out=tmp_path / "all")
    assert sorted(Path(f).name for f in s["files"]) == ["defense.safetensors", "wide.safetensors"]
    wide = fif.load(tmp_path / "all" / "wide.safetensors")
    assert "conv(8)" in wide.source
    s = run_training(fif.load_recipe(recipe), out=tmp_path / "one", only="wide")
    assert [Path(f).name for f in s["files"]] == ["wide.safetensors"]
    wide_bytes = (tmp_path / "all" / "wide.safetensors").read_bytes()
    assert (tmp_path / "one" / "wide.safetensors").read_bytes() == wide_bytes
    runs = tmp_path / "runs"
    run_training(fif.load_recipe(recipe), out=runs / "v" / "train", only="defense")
    assert trained_weights(fif.load_recipe(recipe), runs=runs) == runs / "v" / "train" / "defense.safetensors"
    assert trained_weights(fif.load_recipe(recipe), "wide", runs=runs) is None
