"""DIR end to end: its losses and stage settings, its threat models, recipes/dir.fif compiling and
training a few steps as a reduced copy, and the `dir` report's checks on made-up numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import fif
from fif.errors import FifError
from fif.recipe import recipe_from_text

ROOT = Path(__file__).resolve().parents[1]
DIR = ROOT / "recipes" / "dir.fif"


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FIF_QUIET", "1")
    yield


def _clf(shape=(1, 8, 8), classes=3):
    from fif.models import build_classifier
    torch.manual_seed(0)
    return build_classifier("smallcnn", shape, classes, width=4).eval().requires_grad_(False)


# ---- losses --------------------------------------------------------------------------------------

def _terms(loss: str, pipeline, clf):
    from fif.train.losses import build_terms
    r = recipe_from_text(f"recipe t {{ defense = id\n train {{ stage s {{ loss = {loss} }} }} }}")
    return build_terms(r.train[0].loss, trains="defense", pipeline=pipeline, classifier=clf)


def test_mse_views_is_the_mean_loss_of_each_view_and_mse_of_an_unmasked_defense():
    from fif.train.losses import Forward, StepData, evaluate
    torch.manual_seed(0)
    p = fif.compile("masks(k=2, patch=2) { vitdenoise(width=8, heads=2, depth=1) } -> clamp", input_shape=(1, 8, 8))
    clean, x = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    f = Forward(StepData(clean, x, torch.zeros(4, dtype=torch.long), torch.zeros(4)), pipeline=p, classifier=None)
    (term,) = _terms("mse(views)", p, None)
    total, parts = evaluate([term], f)
    views = f.views()
    assert views.shape == (2, 4, 1, 8, 8)
    torch.testing.assert_close(total, torch.stack([F.mse_loss(v, clean) for v in views]).mean())
    fused = f.defended("input")                   # the same forward pass, its combined output
    torch.testing.assert_close(fused, views.mean(0).clamp(0, 1))
    q = fif.compile("residual { conv(2) -> conv(out=input) } -> clamp", input_shape=(1, 8, 8))
    g = Forward(StepData(clean, x, torch.zeros(4, dtype=torch.long), torch.zeros(4)), pipeline=q, classifier=None)
    torch.testing.assert_close(evaluate(_terms("mse(views)", q, None), g)[0], F.mse_loss(q(x), clean))


@pytest.mark.parametrize("kl", ["trades", "eq4"])
def test_rep_perturbs_the_restored_image_within_eps_in_the_chosen_direction(kl):
    from fif.train.losses import Forward, StepData, _kl
    torch.manual_seed(0)
    p = fif.compile("residual { conv(2) -> conv(out=input) } -> clamp", input_shape=(1, 8, 8))
    clf = _clf()
    calls = []
    seen = lambda z: (calls.append(z), clf(z))[1]                       # noqa: E731
    clean = torch.rand(5, 1, 8, 8)
    f = Forward(StepData(clean, clean, torch.zeros(5, dtype=torch.long), torch.zeros(5)), pipeline=p, classifier=seen)
    (term,) = _terms(f"rep(eps=0.1, steps=2, kl={kl})", p, clf)
    value, _ = term.value(f)
    xt = f.defended("input")
    perturbed = calls[-1]
    assert perturbed.requires_grad                                     # x~ + stopgrad(delta): gradient to g
    assert float((perturbed - xt).detach().abs().max()) <= 0.1 + 1e-6           # delta inside the eps ball
    a, b = clf(xt), clf(perturbed)
    want = _kl(a, b) if kl == "trades" else _kl(b, a)
    torch.testing.assert_close(value, want.mean())
    with pytest.raises(FifError) as e:
        recipe_from_text("recipe t { defense = id\n train { stage s { loss = rep(kl=tades) } } }")
    assert e.value.code == "E226" and e.value.line == 2


def test_fixed_draws_give_every_call_of_a_step_the_same_masks():
    torch.manual_seed(0)
    p = fif.compile("masks(k=2, patch=2) { vitdenoise(width=8, heads=2, depth=1) }", input_shape=(1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        with p.fixed_draws(11):
            a, b, c = p(x), p(x), p.attack_view()(x)
        d = p(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    assert not torch.equal(a, d)                                       # fresh draws outside the block


# ---- stage selection -------------------------------------------------------------------------------

def _stage_recipe(setting: str, stage_params: str = "defense") -> str:
    return (f"recipe t {{ defense = conv(2) -> conv(out=input) -> clamp\n"
            f" variants {{ a = conv(3) -> conv(out=input) -> clamp }}\n"
            f" train {{ stage s {{ params = {stage_params}; {setting} }} }} }}")


@pytest.mark.parametrize("setting,params,code,column", [
    ("only = [defense, b]", "defense", "E226", 55),       # at b: no such variant
    ("skip = [defense, a]", "defense", "E420", 45),       # at the list: it skips everything
    ("only = [a]; skip = [a]", "defense", "E423", 50),    # at skip: not both
    ("only = [a]; loss = ce", "classifier", "E423", 41),  # at only: a classifier stage
    ("draws = batch", "defense", "E226", 46),
])
def test_stage_only_skip_and_draws_are_checked_when_the_recipe_loads(setting, params, code, column):
    with pytest.raises(FifError) as e:
        recipe_from_text(_stage_recipe(setting, params))
    assert (e.value.code, e.value.line, e.value.column) == (code, 3, column)
    r = recipe_from_text(_stage_recipe("only = [a]; draws = step"))
    assert r.train[0].only == ["a"] and r.train[0].draws == "step" and not r.train[0].selects("defense")


# ---- threat models --------------------------------------------------------------------------------

def test_bpda_passes_the_classifiers_gradient_at_the_defended_image_through_the_defense():
    torch.manual_seed(0)
    model = fif.compile("let defense = residual { conv(2) -> conv(out=input) } -> clamp\n"
                        "defense -> smallcnn(classes=3, width=4)", input_shape=(1, 8, 8)).eval()
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    (g,) = torch.autograd.grad(model.attack_view(identity=("defense",))(x)[:, 0].sum(), x)
    z = model.shared["defense"](x.detach()).detach().requires_grad_(True)
    clf = model.root.stages[1]
    (want,) = torch.autograd.grad(clf(z)[:, 0].sum(), z)
    torch.testing.assert_close(g, want)
    (true,) = torch.autograd.grad(model.attack_view()(x)[:, 0].sum(), x)
    assert not torch.allclose(true, want)                             # the true gradient differs


def test_attack_settings_on_the_command_line_bind_like_a_recipes():
    from fif.evaluate.runner import _select_attacks
    r = fif.load_recipe(DIR)
    spec, = _select_attacks(r, ["pgd(steps=40, step=0.025)"])
    assert (spec.name, spec.params) == ("pgd", {"steps": 40, "step": 0.025})
    assert _select_attacks(r, ["pgd"])[0].params == {"steps": 20, "step": 0.05}   # the recipe's pgd
    with pytest.raises(FifError) as e:
        _select_attacks(r, ["pgd(stepz=3)"])
    assert e.value.code == "E221"


# ---- the recipe -----------------------------------------------------------------------------------

def reduced(text: str) -> str:
    """recipes/dir.fif with tiny data, models, epochs and evaluation; its structure untouched."""
    subs = [(r"mnist5k\(train=\d+, test=\d+", "mnist5k(train=200, test=50"),
            (r"smallcnn\(width=\d+, epochs=\d+", "smallcnn(width=4, epochs=1"),
            (r"vitdenoise\(width=\d+, heads=\d+, depth=\d+", "vitdenoise(width=8, heads=2, depth=1"),
            (r"conv\(\d+, depth=\d+\)", "conv(4, depth=2)"), (r"epochs = \d+", "epochs = 1"),
            (r"limit = \d+", "limit = 8"), (r"batch = \d+", "batch = 4"), (r"steps=20", "steps=1"),
            (r"eot = \d+", "eot = 2"), (r"\bn = \d+", "n = 4")]
    for pattern, replacement in subs:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"recipes/dir.fif no longer has {pattern!r}: update reduced()"
    return text


def test_the_recipe_compiles_with_every_variant():
    from fif.cli import main
    result = CliRunner().invoke(main, ["compile", str(DIR)])
    assert result.exit_code == 0, result.output
    for name in ("defense", "mse_only", "unmasked", "alpha0", "r30", "r70"):
        assert f"{name} (defense, logits[10])" in result.output.replace("\n", "")
    r = fif.load_recipe(DIR)
    assert r.classifier.adversarial.eps == r.eval.eps[0] == 0.2              # one eps everywhere
    assert {s.name: s.draws for s in r.train} == {"pretrain": "call", "dir": "step", "adv_only": "step"}


def test_a_reduced_copy_trains_each_pipeline_through_its_stages_and_evaluates(tmp_path, monkeypatch):
    from fif.evaluate.runner import run_eval
    from fif.train import run_training
    monkeypatch.setenv("FIF_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "dir.fif"
    path.write_text(reduced(DIR.read_text()))
    summary = run_training(fif.load_recipe(path), out=tmp_path / "runs" / "dir" / "train", seed=0)
    trained = [(d["target"], d["stage"]) for d in summary["stages"]]
    assert trained == [("defense", "pretrain"), ("defense", "dir"), ("mse_only", "pretrain"),
                       ("unmasked", "pretrain"), ("unmasked", "dir"), ("alpha0", "pretrain"),
                       ("alpha0", "adv_only"), ("r30", "pretrain"), ("r30", "dir"), ("r70", "pretrain"),
                       ("r70", "dir")]
    log = [json.loads(line) for line in (tmp_path / "runs" / "dir" / "train" / "log.jsonl").read_text().splitlines()]
    dir_step = next(r for r in log if r["stage"] == "dir")
    assert set(dir_step["terms"]) == {"ce", "rep(eps=0.2, steps=3)"}
    assert next(r for r in log if r["stage"] == "pretrain")["terms"].keys() == {"mse(views=True)"}
    results = run_eval(fif.load_recipe(path), runs=tmp_path / "runs", only=["defense"],
                       attacks=["pgd"], threats=["whitebox", "bpda", "known", "representation"], sanity=False)
    got = {(r["defense"], r["threat"]) for r in results["rows"] if r["attack"] != "worst"}
    assert {("defense", t) for t in ("whitebox", "bpda", "known", "representation")} <= got
    assert {r["defense"] for r in results["rows"]} == {"none", "defense"}
    overall = next(r for r in results["rows"] if r["threat"] == "overall" and r["defense"] == "defense")
    assert overall["attacks"] == 2                   # whitebox and bpda; known and representation stay out
    with pytest.raises(FifError) as e:
        run_eval(fif.load_recipe(path), runs=tmp_path / "runs", only=["dfense"])
    assert e.value.code == "E423"


# ---- the report ------------------------------------------------------------------------------------

def _fake_runs(runs: Path, acc: dict) -> None:
    """results.json files where the report expects them, with accuracies from `acc`."""
    from fif.reports.dir_defense import SPEC, STRONGER
    rows = []
    for (d, a, t), v in acc.items():
        rows.append({"defense": d, "attack": a, "eps": 0.0 if a == "none" else 0.2, "threat": t, "accuracy": v, "n": 200})
    rows.append({"defense": "defense", "attack": "pgd(steps=40, step=0.05)", "eps": 1.0, "threat": "adaptive",
                 "accuracy": 0.0, "n": 200, "sanity": True})
    rows.append({"defense": "defense", "attack": STRONGER, "eps": 0.2, "threat": "adaptive",
                 "accuracy": acc[("defense", "pgd(steps=20, step=0.05)", "adaptive")] - 0.01, "n": 200})
    for paths in SPEC.evals(runs).values():
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps({"rows": rows, "n": 200, "eot": 4, "device": "cpu", "versions": {}, "git": "x"}))


def test_the_dir_report_fills_the_papers_tables_and_decides_its_claims(tmp_path):
    from fif.reports import Results, get_report
    from fif.reports.framework import render
    spec = get_report("dir")
    steps = spec.steps(tmp_path)
    assert steps[0].args[:2] == ("train", "recipes/dir.fif") and any("--no-sanity" in s.args for s in steps)
    pgd = "pgd(steps=20, step=0.05)"
    acc = {}
    for d, nat, plain in [("none", 0.97, 0.80), ("mse_only", 0.96, 0.60), ("unmasked", 0.96, 0.78),
                          ("alpha0", 0.96, 0.75), ("defense", 0.965, 0.85), ("r30", 0.97, 0.80), ("r70", 0.98, 0.81)]:
        acc[(d, "none", "clean")] = nat
        for t, drop in [("whitebox", 0.0), ("adaptive", 0.02), ("bpda", 0.03), ("known", 0.01),
                        ("representation", 0.3), ("overall", 0.05)]:
            acc[(d, "worst" if t == "overall" else pgd, t)] = plain - drop
            acc[(d, "apgd(steps=20)", t)] = plain - drop - 0.01
    acc[("alpha0", pgd, "representation")] = 0.3
    _fake_runs(tmp_path, acc)
    md = render(spec, tmp_path, "fif report dir")
    assert "| DIR | 96.5 ± 0.0 | 85.0 ± 0.0 | 84.0 ± 0.0 | - |" in md            # Table 1 shape, plain
    assert "| 30 % | 97.0 ± 0.0 | 80.0 ± 0.0 | 78.0 ± 0.0 | 87.34 | 49.63 |" in md
    verdicts = dict(re.findall(r"\| ([^|]+?) \| [^|]+ \| [^|]+ \| \*\*([^*]+)\*\* \|", md))
    results = Results.load(spec.evals(tmp_path))
    statuses = {c.id: c.check(results).status for c in spec.claims}
    assert statuses["ordering"] == statuses["degradation"] == statuses["stronger"] == "holds"
    assert statuses["ratio_natural"] == "does not hold"                         # 97 / 96.5 / 98
    assert statuses["pretrain"] == "holds" and statuses["unbounded"] == "holds"
    assert len(verdicts) == len(spec.claims)
