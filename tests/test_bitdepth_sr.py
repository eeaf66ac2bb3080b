"""recipes/bitdepth_sr.fif (Zhang et al., PeerJ CS 2021: bit depth + EDSR) and its report: the
recipe compiles as shipped; a reduced copy trains a few steps and evaluates end to end, and the
report's tables and claims read that evaluation."""

from pathlib import Path

import pytest

import fif
from fif.recipe import recipe_from_text
from fif.recipe_models import check_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "bitdepth_sr.fif"

# (shipped text, tiny text): each must occur in the recipe, so the reduction follows it.
REDUCE = [
    ("mnist5k(train=4000, test=1000, seed=0)", "mnist5k(train=300, test=100, seed=0)"),
    ("smallcnn(width=16, epochs=5, lr=0.002, batch=64)", "smallcnn(width=4, epochs=1, lr=0.003, batch=64)"),
    ("edsr(16, 4, res_scale=1)", "edsr(4, 1, res_scale=1)"),
    ("epochs = 3", "epochs = 1\n      limit = 64"),
    ("bim(steps=10)", "bim(steps=2)"),
    ("pgd(steps=20)", "pgd(steps=2)"),
    ("deepfool(steps=8, num_classes=2)", "deepfool(steps=2, num_classes=2)"),
    ("cw(c=10, lr=0.1, steps=30, binary_steps=3)", "cw(c=10, lr=0.1, steps=2, binary_steps=1)"),
    ("eps = [0.1, 0.15, 0.2, 0.3]", "eps = [0.1, 0.15, 0.3]"),
    ("n = 200", "n = 12"),
    ("pgd(eps=0.3, steps=10)", "pgd(eps=0.3, steps=1)"),
]


def _tiny_text() -> str:
    text = RECIPE.read_text()
    for old, new in REDUCE:
        assert old in text, f"the recipe no longer has {old!r}: update REDUCE"
        text = text.replace(old, new)
    return text


def test_the_shipped_recipe_compiles_every_entry_and_its_training_is_the_papers():
    recipe = fif.load_recipe(RECIPE)
    _, lines = check_recipe(recipe)
    kinds = dict(line.split(" (", 1)[0:2] for line in lines)
    assert set(kinds) == {"defense", "bitdepth_only", "sr_only", "bits", "lenet", "lenet_defended", "adv_trained"}
    assert all(kinds[k].startswith("model") for k in ("lenet", "lenet_defended", "adv_trained"))
    assert all(kinds[k].startswith("defense") for k in ("defense", "bitdepth_only", "sr_only", "bits"))
    (stage,) = recipe.train
    assert stage.inputs.kind == "adversarial" and [l.name for l in stage.loss] == ["mse"]
    assert tuple(stage.inputs.args["eps"]) == ("uniform", {"low": 0.0, "high": 0.3})
    assert tuple(stage.inputs.args["attack"])[0] == "fgsm"
    assert 0.15 in recipe.eval.eps and {"graybox", "adaptive"} <= set(recipe.eval.threat)
    assert {a.name for a in recipe.eval.attacks} >= {"fgsm", "bim", "pgd", "deepfool", "cw"}


def test_a_reduced_copy_trains_evaluates_and_fills_the_reports_tables(tmp_path):
    from fif.evaluate import run_eval
    from fif.reports import HOLDS, FAILS, Results
    from fif.reports.bitdepth_sr import CLAIMS, ROWS, SPEC
    from fif.train import run_training
    path = tmp_path / "bitdepth_sr.fif"
    path.write_text(_tiny_text())
    recipe = fif.load_recipe(path)
    runs = tmp_path / "runs"
    summary = run_training(recipe, out=runs / recipe.name / "train", seed=0)
    assert sorted(s["target"] for s in summary["stages"]) == ["bits", "defense", "sr_only"]
    assert all(s["steps"] == 2 for s in summary["stages"])          # limit 64, batch 32
    results = run_eval(recipe, runs=runs, seed=0)
    assert set(results["labels"]) == {name for name, _ in ROWS}
    assert results["weights"]["lenet_defended"] == results["weights"]["defense"]
    r = Results([results])
    tables = {t.title.split(":")[0].split(",")[0]: t for t in SPEC.tables(r)}
    for row in tables["Table 1 shape"].rows[:len(ROWS)]:
        assert "-" not in row[:8], row                              # every measured column is filled
    setup = dict(tables["Setup"].rows)
    assert "eps=uniform(0, 0.3)" in setup["training (every learnable entry)"] and "limit = 64" in setup[
        "training (every learnable entry)"]
    assert setup["entry `defense`"] == "`bitdepth(2) -> edsr(4, 1, res_scale=1) -> clamp`"
    assert setup["entry `lenet_defended`"] == ("`let defense = bitdepth(2) -> edsr(4, 1, res_scale=1) -> clamp`; "
                                             "`defense -> classifier(arch=lenet)`")
    psnr = {row[0]: row[1] for row in tables["Restored clean test images against the originals"].rows}
    assert len(psnr) == 4 and all(v.endswith(" dB") for v in psnr.values())
    verdicts = {c.id: c.check(r) for c in CLAIMS}
    measured = [c for c, v in verdicts.items() if c not in ("fmnist-cifar", "resnet-googlenet")]
    assert all(verdicts[c].status in (HOLDS, FAILS) for c in measured), verdicts


def test_the_report_steps_train_where_eval_looks(tmp_path):
    from fif.reports import get_report
    from fif.train.run import default_run_dir
    spec = get_report("bitdepth_sr")
    steps = spec.steps(tmp_path)
    assert [s.args[0] for s in steps] == ["train", "eval", "train", "eval"]
    recipe = recipe_from_text(_tiny_text())
    for train, ev in (steps[0:2], steps[2:4]):
        runs = Path(ev.args[ev.args.index("--runs") + 1])
        assert Path(train.args[train.args.index("--out") + 1]) == default_run_dir(recipe, runs)
        assert train.args[train.args.index("--seed") + 1] == ev.args[ev.args.index("--seed") + 1]
        assert Path(ev.done).parent == Path(ev.args[ev.args.index("--out") + 1])
    assert [str(p) for p in spec.evals(tmp_path)] == [s.done for s in steps[1::2]]
