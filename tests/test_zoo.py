"""The zoo (recipes/zoo/): every recipe compiles and checks, and its report renders from results."""

import json
import re
from pathlib import Path

import pytest

import fif
from fif.recipe_models import check_recipe
from fif.reports import FAILS, HOLDS, get_report
from fif.reports.framework import render
from fif.reports.zoo import BUDGETS, EOT_MORE, EPS, PGD, RECIPES, ZOO, evals, steps

ZOO_DIR = Path(__file__).resolve().parent.parent / "recipes" / "zoo"
FILES = sorted(ZOO_DIR.glob("*.fif"))


def test_every_report_recipe_exists_and_every_zoo_recipe_is_reported():
    assert {f"zoo_{f.stem}" for f in FILES} == set(RECIPES)


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_zoo_recipe_compiles_and_checks(path):
    recipe = fif.load_recipe(path)
    assert recipe.name == f"zoo_{path.stem}"
    main, lines = check_recipe(recipe)
    assert lines and all("logits[10]" in line for line in lines)
    assert "square" in {a.name for a in recipe.eval.attacks}
    assert sorted(recipe.eval.eps) == sorted(BUDGETS)
    text = path.read_text()
    assert text.startswith("#") and re.search(r"(ICLR|ICML|CVPR|KDD|NeurIPS) 20\d\d", text)   # cites its paper


def test_zoo_recipes_are_in_canonical_form():
    for path in FILES:
        assert fif.format(path.read_text()) == path.read_text(), path.name


def test_random_defenses_are_random_and_the_thermometer_model_masks_its_gradient():
    for d in ZOO:
        recipe = fif.load_recipe(ZOO_DIR / f"{d.recipe.removeprefix('zoo_')}.fif")
        from fif.recipe_models import compile_model
        model = compile_model(recipe, d.entry)
        assert bool(model.random) == d.random, d


# ---- the report, from synthetic results ------------------------------------------------------------

def _row(defense, attack, threat, acc, eps=EPS):
    return {"defense": defense, "attack": attack, "eps": eps, "threat": threat, "accuracy": acc, "n": 100}


def _write(path: Path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows, "device": "cpu", "versions": {"torch": "x", "fif": "y"},
                                "git": "abc", "n": 100, "recipe": path.parent.parent.name}))


def _synthetic(runs: Path, overall_of):
    """Every run's results: the undefended model at 0% overall, each entry at overall_of(defense)."""
    for recipe in RECIPES:
        rows = [_row("none", "none", "clean", 0.98, 0.0)] + [_row("none", "worst", "overall", 0.0, e) for e in BUDGETS]
        for d in (d for d in ZOO if d.recipe == recipe):
            rows += [_row(d.entry, "none", "clean", 0.97, 0.0)]
            for e in BUDGETS:
                rows += [_row(d.entry, PGD, "graybox", 0.9, e), _row(d.entry, PGD, "adaptive", 0.2, e),
                         _row(d.entry, "square(queries=300)", "adaptive", 0.1 if e == EPS else 0.6, e),
                         _row(d.entry, "worst", "overall", overall_of(d), e)]
        _write(runs / "zoo" / recipe / "eval" / "results.json", rows)
        if any(d.random for d in ZOO if d.recipe == recipe):
            more = [_row(d.entry, PGD, "adaptive", 0.18, e) for d in ZOO if d.recipe == recipe for e in BUDGETS]
            _write(runs / "zoo" / recipe / f"eot{EOT_MORE}" / "results.json", more)


def test_zoo_report_renders_verdicts_and_eot_check(tmp_path):
    spec = get_report("zoo")
    _synthetic(tmp_path, lambda d: 0.05 if d.broken else 0.6)
    text = render(spec, tmp_path, "fif report zoo --run")
    assert "| 97.0 | 90.0 | 20.0 | 18.0 (enough: -2.0) | 10.0 | **5.0** | 0.0 | broken | broken |" in text
    assert "deterministic" in text                       # bitdepth, jpeg, thermometer: no EOT check
    assert f"{len(ZOO)} hold, 0 do not hold" in text
    assert "Guo et al., ICLR 2018" in text and "ICML 2022" in text
    assert text.index("The zoo at eps 0.3") < text.index("The zoo at eps 0.1")
    # undefended 0%, so "broke it" means 10% or less: at 0.1 BPDA leaves 20% and Square 60% (neither),
    # at 0.3 Square gets down to 10% and BPDA does not
    assert "| 20.0 | 60.0 | neither | 20.0 | 10.0 | Square (BPDA + EOT stays 20 points above) |" in text


def test_zoo_report_says_why_when_fif_disagrees(tmp_path):
    spec = get_report("zoo")
    _synthetic(tmp_path, lambda d: 0.5 if d.entry == "bitdepth" else (0.05 if d.broken else 0.6))
    text = render(spec, tmp_path, "fif report zoo --run")
    assert f"{len(ZOO) - 1} hold, 1 do not hold" in text
    why = [line for line in text.splitlines() if line.startswith("- **bit-depth")]
    assert why and "50 points above the undefended" in why[0] and "Square" in why[0]


def test_zoo_steps_evaluate_every_recipe_and_recheck_eot_on_the_random_ones(tmp_path):
    commands = [s.command for s in steps(tmp_path)]
    assert sum(c.startswith("fif eval recipes/zoo/") for c in commands) == len(commands)
    assert sum(f"--eot {EOT_MORE}" in c for c in commands) == len({d.recipe for d in ZOO if d.random})
    groups = evals(tmp_path)
    assert len(groups["main"]) == len(RECIPES)


def test_a_classifier_on_an_encoding_takes_its_channels_and_refuses_adversarial_training():
    from fif.recipe import recipe_from_text
    from fif.recipe_models import compile_model
    base = ("recipe t {\n  data = mnist5k(train=100, test=50, seed=0)\n  classifier = smallcnn(width=4, epochs=1)\n"
            "  defense = thermometer(4) -> classifier(%s)\n}\n")
    model = compile_model(recipe_from_text(base % "encoded=thermometer(4)", "t.fif"), "defense")
    first = next(m for m in model.modules() if getattr(m, "op", None) == "classifier").inner.features[0]
    assert first.in_channels == 4
    err = pytest.raises(fif.FifError, lambda: check_recipe(recipe_from_text(
        base % "encoded=thermometer(4), adversarial=0.3", "t.fif"))).value
    assert err.code == "E238" and err.line == 4


def test_an_encoding_must_be_a_fixed_transform():
    from fif.data import mnist5k, split
    from fif.recipe import recipe_from_text
    from fif.runtime import encode_data
    recipe = recipe_from_text("recipe t {\n  data = mnist5k(train=100, test=50, seed=0)\n  classifier = smallcnn\n"
                              "  defense = id\n}\n", "t.fif")
    train, test = split(mnist5k(), 100, 50, 0)
    enc_train, enc_test, name = encode_data(recipe, fif.parse("thermometer(3)").statements[0].value, train, test)
    assert enc_train.images.shape == (100, 3, 28, 28) and name == "mnist5k+thermometer(3)"
    err = pytest.raises(fif.FifError, encode_data, recipe, fif.parse("noise(0.1)").statements[0].value,
                        train, test).value
    assert err.code == "E238"
