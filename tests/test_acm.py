"""ACM (recipes/acm.fif): its ops' knobs (binarised codes with a BPDA surrogate, the LL path's
width, clipping only at inference), and the recipe compiled, trained a few steps and evaluated
with tiny settings."""

import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fif
from fif.cli import main

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _codes(p):
    return [m for m in p.modules() if type(m).__name__ == "ChannelCompress"]


def test_binarize_codes_are_signs_at_inference_and_tanh_in_training():
    torch.manual_seed(0)
    p = fif.compile("chancompress(code=2, noise=1, binarize=true)", input_shape=(4, 8, 8))
    (m,) = _codes(p)
    x = torch.rand(3, 4, 8, 8)
    p.eval()
    assert set(m.encode(x).unique().tolist()) <= {-1.0, 1.0}
    p.train()
    soft = m.encode(x)
    assert (soft.abs() < 1).all()                              # tanh while training: weights learn
    assert p.plan.flags()["differentiable"] is False
    assert fif.compile("chancompress(code=2)", input_shape=(4, 8, 8)).plan.flags()["differentiable"]


@pytest.mark.parametrize("bpda", ["identity", "tanh"])
def test_binarize_deployed_gradient_is_zero_and_attack_view_passes_the_surrogate(bpda):
    torch.manual_seed(0)
    p = fif.compile(f"chancompress(code=2, binarize=true, bpda={bpda})", input_shape=(4, 8, 8)).eval()
    (m,) = _codes(p)
    x = torch.rand(2, 4, 8, 8, requires_grad=True)
    p(x).sum().backward()
    assert x.grad is None or x.grad.abs().sum() == 0
    x2 = x.detach().clone().requires_grad_(True)
    y = p.attack_view()(x2)
    assert torch.equal(y, p(x2))                               # the true (binary) output forward
    y.sum().backward()
    # backward: restore evaluated at the binary code; d code / d z is 1 or tanh'(z)
    x3 = x.detach().clone().requires_grad_(True)
    z = m.compress(x3)
    soft = z if bpda == "identity" else torch.tanh(z)
    m.restore(soft + (torch.sign(z) - soft).detach()).sum().backward()
    torch.testing.assert_close(x2.grad, x3.grad)
    assert x2.grad.abs().sum() > 0


def test_downup_width_narrows_the_low_resolution_convs():
    wide = fif.compile("downup(2)", input_shape=(16, 14, 14))
    narrow = fif.compile("downup(2, width=4)", input_shape=(16, 14, 14))
    assert sum(t.numel() for t in narrow.parameters()) < sum(t.numel() for t in wide.parameters()) / 3
    assert narrow(torch.rand(2, 16, 14, 14)).shape == (2, 16, 14, 14)
    err = pytest.raises(fif.FifError, fif.compile, "downup(2, depth=0, width=4)", input_shape=(16, 14, 14)).value
    assert (err.code, err.line, err.column) == ("E224", 1, 26)


def test_clamp_train_false_passes_values_while_training_and_clips_at_inference():
    p = fif.compile("conv(out=input) -> clamp(train=false)", input_shape=(1, 8, 8))
    x = torch.rand(2, 1, 8, 8) * 4 - 2
    p.train()
    raw = p(x)
    assert raw.min() < 0 or raw.max() > 1
    p.eval()
    out = p(x)
    assert out.min() >= 0 and out.max() <= 1
    assert p.output_kind.kind == "image"


def test_shipped_acm_recipe_has_every_knob_and_the_paper_rows():
    r = fif.load_recipe(RECIPES / "acm.fif")
    assert {"keep_hh", "keep_hl", "keep_lh", "keep_ll", "keep_high", "plain", "at"} <= set(r.defenses())
    text = r.pipeline_text("defense")
    for knob in ("def features(c=16)", "sigma=20", "ratio=1/6", "binarize=false", "test_noise=false",
                 "def low(width=16)", "dwt(haar)"):
        assert knob in text, knob
    assert r.train[0].inputs.kind == "clean"
    knobs = fif.load_recipe(RECIPES / "acm_knobs.fif")
    assert {"sigma0", "sigma1", "sigma5", "binary", "noisy", "narrow_ll"} <= set(knobs.defenses())
    assert knobs.compile("noisy").random and not knobs.compile("binary").plan.flags()["differentiable"]
    assert fif.load_recipe(RECIPES / "acm400.fif").train[0].limit == 400


def test_fif_compile_shows_the_bands_and_weights():
    res = CliRunner().invoke(main, ["compile", str(RECIPES / "acm.fif"), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    rows = {row["stage"]: row for row in data["stages"]}
    assert rows["1"]["op"] == "dwt" and set(rows["1"]["shape"]) == {"LL", "LH", "HL", "HH"}
    for band in ("HH", "HL", "LH"):
        assert rows[f"2.{band}"]["op"] == "chancompress" and rows[f"2.{band}"]["shape"] == [16, 14, 14]
    assert rows["2.LL"]["op"] == "downup"
    assert sum(row["weights"] for row in data["stages"]) == data["pipeline"]["weights"] > 0


def _tiny_copy(tmp_path) -> Path:
    """recipes/acm.fif with tiny settings: fewer images, one short epoch, two variants, a small eval."""
    text = (RECIPES / "acm.fif").read_text()
    swaps = [("mnist5k(train=4000, test=1000, seed=0)", "mnist5k(train=1500, test=300, seed=0)"),
             ("smallcnn(width=16, epochs=5, lr=0.002, batch=64)", "smallcnn(width=8, epochs=3, lr=0.003, batch=64)"),
             ("def features(c=16)", "def features(c=4)"), ("def low(width=16)", "def low(width=4)"),
             ("epochs = 12", "epochs = 1\n      limit = 64"),
             ("pgd(steps=40, step=0.01), pgd(steps=100, step=0.01, targeted=true)",
              "pgd(steps=3, step=0.1), pgd(steps=3, step=0.1, targeted=true)"),
             ("eps = [0.1, 0.2, 0.3]", "eps = [0.3]"), ("n = 100", "n = 12"),
             ("pgd(eps=0.3, steps=10)", "pgd(eps=0.3, steps=1)")]
    for old, new in swaps:
        assert old in text, old
        text = text.replace(old, new)
    text = re.sub(r"    keep_h[hl] = .*\n|    keep_lh = .*\n|    keep_ll = .*\n", "", text)
    path = tmp_path / "acm.fif"
    path.write_text(text)
    return path


def test_acm_recipe_trains_a_few_steps_and_evaluates(tmp_path):
    path = _tiny_copy(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["train", str(path), "--out", str(tmp_path / "runs/acm/train")])
    assert res.exit_code == 0, res.output
    assert {"defense.safetensors", "keep_high.safetensors", "plain.safetensors"} <= \
        {p.name for p in (tmp_path / "runs/acm/train").iterdir()}
    out = tmp_path / "eval"
    res = runner.invoke(main, ["eval", str(path), "--runs", str(tmp_path / "runs"), "--out", str(out),
                               "--threat", "graybox", "--threat", "adaptive"])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "results.json").read_text())["rows"]
    names = {r["defense"] for r in rows}
    assert names == {"none", "defense", "keep_high", "plain", "at"}
    targeted = [r for r in rows if "targeted=True" in r["attack"]]
    bad = [r for r in targeted if not 0 <= r.get("target_hit", -1) <= 1 - r["accuracy"] + 1e-6]
    assert targeted and not bad, [(r["accuracy"], r.get("target_hit")) for r in bad]
    assert any(r["threat"] == "overall" and r["defense"] == "defense" for r in rows)
    passed = [r for r in rows if r["defense"] == "defense" and "passed" in r]
    assert passed and all(r["passed"] >= 0 for r in passed)
