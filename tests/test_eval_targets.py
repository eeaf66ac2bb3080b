"""`fif eval` additions: targeted attacks aim at a random other class (the ACM paper's full-access
protocol) and are still scored against the true label; `--only` evaluates some entries; an
attack name selects every setting of it the recipe lists; how much perturbation gets through."""

import pytest
import torch

import fif
from fif.evaluate import run_eval
from fif.evaluate.metrics import transmission
from fif.evaluate.runner import random_targets
from fif.reports import Results


def test_random_targets_differ_from_the_label_cover_the_classes_and_are_seeded():
    y = torch.arange(10).repeat(50)
    t = random_targets(y, 10, seed=3)
    assert (t != y).all() and ((t >= 0) & (t < 10)).all()
    assert set(t[y == 0].tolist()) == set(range(1, 10))           # uniform over the other classes
    assert torch.equal(t, random_targets(y, 10, seed=3))
    assert not torch.equal(t, random_targets(y, 10, seed=4))
    with pytest.raises(fif.FifError):
        random_targets(torch.zeros(3, dtype=torch.long), 1, seed=0)


def test_transmission_is_the_share_of_the_perturbation_that_passes():
    x = torch.rand(4, 1, 8, 8)
    x_adv = x + 0.1 * torch.randn_like(x)
    assert torch.allclose(transmission(x_adv, x, x_adv, x), torch.ones(4))
    assert torch.allclose(transmission(0.5 * x_adv, 0.5 * x, x_adv, x), torch.full((4,), 0.5))
    assert torch.isnan(transmission(x, x, x, x)).all()             # no perturbation: undefined


@pytest.fixture(scope="module")
def targeted_results(small_recipe_file, tmp_path_factory):
    text = small_recipe_file.read_text().replace(
        "attacks = [fgsm, pgd(steps=20, step=0.02)]", "attacks = [pgd(steps=20, step=0.02), pgd(steps=20, step=0.02, targeted=true)]")
    path = tmp_path_factory.mktemp("targeted") / "small.fif"
    path.write_text(text)
    return run_eval(fif.load_recipe(path), n=40, attacks=["pgd"], threats=["graybox", "adaptive"],
                    only=["four_levels"])


def test_targeted_rows_are_scored_against_the_label_and_report_target_hits(targeted_results):
    rows = [r for r in targeted_results["rows"] if r["attack"] == "pgd(steps=20, step=0.02, targeted=True)"]
    assert {r["defense"] for r in rows} == {"none", "four_levels"}     # --only, plus the baseline
    none = next(r for r in rows if r["defense"] == "none" and r["eps"] == 0.3 and r["threat"] == "graybox")
    assert none["target_hit"] > 0.5                  # the undefended classifier goes where it is sent
    assert none["accuracy"] + none["target_hit"] <= 1 + 1e-6
    untargeted = {r["attack"] for r in targeted_results["rows"] if r["attack"].startswith("pgd") and not r.get("sanity")}
    assert untargeted == {"pgd(steps=20, step=0.02)", "pgd(steps=20, step=0.02, targeted=True)"}


def test_only_names_must_exist(small_recipe_file):
    with pytest.raises(fif.FifError) as e:
        run_eval(fif.load_recipe(small_recipe_file), n=5, only=["four_level"])
    assert e.value.code == "E423" and "four_levels" in (e.value.diagnostics[0].hint or "")


def test_report_results_pick_exact_labels_and_split_by_recipe(targeted_results):
    other = dict(targeted_results, recipe="other", rows=[dict(r, accuracy=0.0) for r in targeted_results["rows"]])
    both = Results([targeted_results, other])
    assert both.runs == 2 and both.of("small").runs == 1 and both.of("other").runs == 1
    r = both.of("small")
    exact = r.values("none", "pgd(steps=20, step=0.02, targeted=True)", 0.3, "graybox")
    plain = r.values("none", "pgd(steps=20, step=0.02)", 0.3, "graybox")
    assert len(exact) == 1 and len(plain) == 1 and exact != plain
    assert len(r.values("none", "pgd", 0.3, "graybox")) == 2         # a bare name matches every setting


def test_table_cells_split_variant_names_not_part_maps():
    from fif.evaluate.report import _cell
    assert _cell("dwt -> <HH: zero> -> idwt") == "`dwt -> <HH: zero> -> idwt`"
    assert _cell("keep_hh: dwt -> <HL: zero> -> idwt") == "keep_hh: `dwt -> <HL: zero> -> idwt`"
