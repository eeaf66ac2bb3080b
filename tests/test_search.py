"""The table search (Zhang & Gao's Algorithm 1): the choice rule on constructed grids, the recipe's
`search { ... }` section, and `fif search` on a tiny recipe."""

import json

import pytest
import torch
from click.testing import CliRunner

import fif
from fif.cli import main
from fif.search import algorithm as alg
from fif.search.run import run_search


def _p(split, of, af, benign, adversarial):
    return {"split": split, "of": of, "af": af, "benign": benign, "adversarial": adversarial}


def test_grid_order_is_split_then_of_then_af():
    g = alg.grid([3, 5], [16], [10, 50])
    assert [(p["split"], p["of"], p["af"]) for p in g] == [(3, 16, 10), (3, 16, 50), (5, 16, 10), (5, 16, 50)]


def test_choose_takes_the_best_adversarial_accuracy_within_the_benign_drop():
    base = 0.980                                   # 980 of 1000 benign images without the codec
    points = [_p(1, 16, 1, 0.980, 0.50),
              _p(3, 16, 50, 0.975, 0.70),          # drop 0.5 point: qualifies
              _p(5, 16, 90, 0.970, 0.90),          # drop exactly 1 point: does not qualify ("less than 1%")
              _p(5, 16, 120, 0.900, 0.95),         # best adversarial, far too lossy
              _p(9, 8, 30, 0.972, 0.72)]           # drop 0.8 point, the best that qualifies
    best = alg.choose(points, base, 0.01)
    assert (best["split"], best["of"], best["af"]) == (9, 8, 30)
    assert [alg.qualifies(p, base, 0.01) for p in points] == [True, True, False, False, True]
    assert alg.choose(points, base, 0.02)["af"] == 90      # a looser rule admits the 1-point drop
    assert alg.choose(points, base, 0.0) is None            # nothing may drop at all, and all do but one...
    assert alg.choose([_p(1, 1, 1, 0.99, 0.1)], base, 0.0)["split"] == 1   # ...unless it gains


def test_choose_breaks_ties_by_benign_accuracy_then_grid_order():
    points = [_p(2, 16, 10, 0.975, 0.8), _p(3, 16, 10, 0.978, 0.8), _p(4, 16, 10, 0.978, 0.8)]
    assert alg.choose(points, 0.98, 0.01)["split"] == 3


def test_score_runs_the_codec_of_the_point_before_the_classifier():
    seen = []

    def classify(x):
        seen.append(x.clone())
        return torch.nn.functional.one_hot((x.flatten(1).mean(1) > 0.5).long(), 10).float()

    x = torch.rand(6, 1, 8, 8)
    y = (x.flatten(1).mean(1) > 0.5).long()
    p = alg.score({"split": 2, "of": 200, "af": 200}, classify, x, y, x, y, list(range(64)))
    codec = alg.codec_for({"split": 2, "of": 200, "af": 200}, list(range(64)))
    torch.testing.assert_close(seen[0], codec(x))
    assert set(p) == {"split", "of", "af", "benign", "adversarial"} and 0 <= p["benign"] <= 1


TINY = """
recipe tiny_search {
  data = mnist5k(train=600, test=200, seed=0)
  classifier = smallcnn(width=8, epochs=2, lr=0.003, batch=64)
  defense = nnjpeg(50, table=search)
  search { eps = 0.1; images = 150; adversarial = 40; split = [2, 5]; of = [8, 16]; af = [20, 80] }
  eval { attacks = [fgsm]; eps = [0.1]; threat = [graybox]; n = 10 }
}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    path = folder / "tiny_search.fif"
    path.write_text(TINY)
    return folder, path


def test_fif_search_writes_the_grid_and_the_chosen_table(tiny):
    folder, path = tiny
    result = CliRunner().invoke(main, ["search", str(path), "--runs", str(folder / "runs")])
    assert result.exit_code == 0, result.output
    rec = json.loads((folder / "runs" / "tiny_search" / "search" / "table.json").read_text())
    correct = round(rec["data"]["benign_accuracy"] * 150)
    assert rec["data"]["benign"] == 150 and rec["data"]["adversarial"] == min(40, correct) > 20
    assert rec["data"]["source"] == "the held-out images"
    assert len(rec["points"]) == 8 and rec["grid"] == {"split": [2, 5], "of": [8, 16], "af": [20, 80]}
    base = rec["data"]["benign_accuracy"]
    assert rec["chosen"] == alg.choose(rec["points"], base, 0.01) | {"drop": rec["chosen"]["drop"],
                                                                     "qualifies": True}
    assert rec["table"] == {k: rec["chosen"][k] for k in ("split", "of", "af")} | {"order": rec["order"]}
    assert sorted(rec["order"]) == list(range(64)) and len(rec["delta"]["ratio"]) == 64
    # the order is the delta' order of these images: increasing ratio
    ratio = [float("inf") if r is None else r for r in rec["delta"]["ratio"]]
    assert [ratio[p] for p in rec["order"]] == sorted(ratio)
    # and eval reads it: the defense's codec has the chosen table, and the results record it
    from fif.evaluate import run_eval
    results = run_eval(fif.load_recipe(path), runs=folder / "runs")
    assert results["search"]["table"] == rec["table"]


def test_the_search_uses_held_out_images_only(tiny):
    from fif.data import holdout, mnist5k, split
    ds = mnist5k()
    train, test = split(ds, 600, 200, 0)
    rest = holdout(ds, 600, 200, 0)
    assert len(rest) == 5000 - 800
    key = lambda images: {bytes(im.numpy().tobytes()) for im in images}  # noqa: E731
    assert not key(rest.images[:150]) & (key(train.images) | key(test.images))


def test_no_qualifying_table_is_E427(tiny, tmp_path):
    _, path = tiny
    bad = tmp_path / "tiny_search.fif"
    bad.write_text(TINY.replace("split = [2, 5]; of = [8, 16]; af = [20, 80]",
                                "split = [1]; of = [255]; af = [255]; max_drop = 0"))
    with pytest.raises(fif.FifError) as e:
        run_search(fif.load_recipe(bad), runs=tmp_path / "runs")
    assert e.value.code == "E427" and e.value.line == 6


def test_too_few_held_out_images_is_E405_at_images(tmp_path):
    path = tmp_path / "r.fif"
    path.write_text(TINY.replace("images = 150", "images = 4300"))
    with pytest.raises(fif.FifError) as e:
        run_search(fif.load_recipe(path), runs=tmp_path / "runs")
    assert (e.value.code, e.value.line) == ("E405", 6)


@pytest.mark.parametrize("field,code,column", [
    ("attack = cw", "E226", 21),
    ("splits = [1, 2]", "E221", 12),
    ("split = [15]", "E224", 21),
    ("order = zigzag", "E226", 20),
    ("images = 10; adversarial = 20", "E415", 39),
])
def test_search_section_is_bound_when_the_recipe_loads(field, code, column):
    text = f"recipe r {{\n  defense = id\n  search {{ {field} }}\n}}\n"
    with pytest.raises(fif.FifError) as e:
        fif.recipe.recipe_from_text(text)
    assert (e.value.code, e.value.line, e.value.column) == (code, 3, column)


def test_search_settings_and_defaults():
    r = fif.recipe.recipe_from_text("recipe r {\n  defense = id\n  search { eps = 0.2; of = [16] }\n}\n")
    assert r.search.eps == 0.2 and r.search.of == [16]
    assert r.search.split == list(range(1, 15)) and r.search.af == list(range(1, 121, 5))
    assert r.search.attack.name == "fgsm" and r.search.max_drop == 0.01


def test_train_refuses_to_start_before_the_search(tmp_path):
    path = tmp_path / "r.fif"
    path.write_text(TINY.replace("  eval {", "  train { stage s { params = classifier; chain = [for q in [90, 50]: "
                                 "nnjpeg(q, table=search)]; loss = ce; limit = 64 } }\n  eval {"))
    from fif.train import run_training
    with pytest.raises(fif.FifError) as e:
        run_training(fif.load_recipe(path), out=tmp_path / "runs" / "tiny_search" / "train")
    assert e.value.code == "E426"
