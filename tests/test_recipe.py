"""Recipes: the shipped ones load and compile; bad recipes give positioned E4xx errors."""

from pathlib import Path

import pytest

import fif
from fif.recipe import recipe_from_text
from fif.recipe_models import check_recipe, compile_entry, is_model

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.fif"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_load_compile_and_are_canonical(path):
    text = path.read_text()
    assert fif.format(text) == text, f"run: fif fmt {path}"
    from fif.recipe_models import compile_entry, is_model
    r = fif.load_recipe(path)
    from fif.recipe_models import check_recipe, compile_entry, is_model
    check_recipe(r)                       # every entry and the model it is evaluated as
    for which in r.defenses():            # a variant is a defense (image -> image) or a whole model
        p = compile_entry(r, which)
        assert is_model(p) or p.output_shape == p.input_shape


def test_recipe_fields_are_read():
    r = recipe_from_text("""recipe r {
  data = npz("digits.npz", train=100, test=20, seed=3)
  classifier = lenet(epochs=2, adversarial=0.2)
  defense = bitdepth(2)
  train { stage s { inputs = noisy(sigma=0.1); loss = l1 + 0.5 * mse; epochs = 2; optim = adamw(lr=0.001) } }
  eval { attacks = [pgd(steps=5), apgd]; eps = 0.1; threat = adaptive; l2_eps = [1.5]; eot = 4 }
  variants { b4 = bitdepth(4) }
}""")
    assert (r.data.name, r.data.train, r.data.test, r.data.seed) == ("digits.npz", 100, 20, 3)
    assert r.classifier.arch == "lenet" and r.classifier.adversarial.eps == 0.2
    assert [a.label() for a in r.eval.attacks] == ["pgd(steps=5)", "apgd"]
    assert r.eval.eps == [0.1] and r.eval.threat == ["adaptive"] and r.eval.eot == 4
    (stage,) = r.train
    assert stage.inputs.kind == "noisy" and [(t.name, t.weight) for t in stage.loss] == [("l1", 1.0), ("mse", 0.5)]
    assert list(r.variants) == ["b4"]


BAD = [
    ("recipe r { defense = conv(4) }", "E322", 1, 22),
    ("recipe r {\n  data = mnist5k\n}", "E419", 1, 8),
    ("recipe r {\n  defens = id\n}", "E416", 2, 3),
    ("recipe r {\n  defense = id\n  evaluate { n = 3 }\n}", "E416", 3, 3),
    ("recipe r {\n  defense = id\n  eval { eps = [2] }\n}", "E224", 3, 17),
    ("recipe r {\n  defense = id\n  eval { attack = [fgsm] }\n}", "E221", 3, 10),
    ("recipe r {\n  defense = id\n  eval { attacks = [pgdd] }\n}", "E251", 3, 21),
    ("recipe r {\n  defense = id\n  eval { threat = [blackbox] }\n}", "E226", 3, 20),
    ("recipe r {\n  defense = id\n  classifier = smallcn\n}", "E202", 3, 16),
    ("recipe r {\n  defense = id\n  classifier = smallcnn(epochs=0)\n}", "E224", 3, 32),
    ("recipe r {\n  defense = id\n  defense = id\n}", "E414", 3, 3),
    ("recipe r {\n  defense = dwt -> <XX: id> -> idwt\n}", "E311", 2, 21),
    ("recipe r {\n  data = npz(3)\n  defense = id\n}", "E223", 2, 14),
    ("recipe r {\n  defense = id\n  variants { let a = id }\n}", "E417", 3, 14),
    ("recipe a { defense = id }\nrecipe b { defense = id }", "E413", 2, 1),
    ("# no recipe here\nlet a = id\n", "E413", 2, 1),
    ("", "E413", 1, 1),
]


@pytest.mark.parametrize("text,code,line,col", BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)])
def test_bad_recipes_are_positioned(text, code, line, col):
    with pytest.raises(fif.FifError) as e:
        r = recipe_from_text(text, "r.fif")
        for which in r.defenses():
            r.compile(which, input_shape=(1, 28, 28))
    assert (e.value.code, e.value.line, e.value.column) == (code, line, col), e.value.render()
    assert e.value.render().startswith(f"r.fif:{line}:{col}: error[{code}]")


def test_missing_recipe_file_suggests_neighbours(tmp_path):
    (tmp_path / "bitdepth.fif").write_text("recipe b { defense = id }\n")
    with pytest.raises(fif.FifError) as e:
        fif.load_recipe(tmp_path / "bitdeph.fif")
    assert e.value.code == "E401" and "bitdepth.fif" in e.value.hint


def test_compile_cli_uses_the_recipe_data_shape(tmp_path):
    from click.testing import CliRunner
    from fif.cli import main
    res = CliRunner().invoke(main, ["compile", str(RECIPES[0]), "--json"])
    assert res.exit_code == 0, res.output
    assert '"input": "image[1,28,28]"' in res.output


def test_compiling_again_does_not_reload_the_data_but_a_changed_file_is_read_again(tmp_path, monkeypatch):
    """Recipe.compile needs its data's image shape: remembered per source, so compiling a recipe on
    the shipped digits again loads nothing (that reload was 23 of the 24 ms a second compile took,
    benchmarks/comparisons/startup.py), while a data file that changed is read again."""
    import numpy as np

    import fif.data
    recipe = fif.load_recipe(RECIPES[0].parent / "tiny.fif")
    first = recipe.compile()

    def boom(*args, **kwargs):
        raise AssertionError("the data was loaded again")
    with monkeypatch.context() as m:
        m.setattr(fif.data, "load_dataset", boom)
        again = recipe.compile()
    assert again.input_shape == first.input_shape == (1, 28, 28) and repr(again) == repr(first)

    labels = np.repeat(np.arange(2), 5)
    np.savez(tmp_path / "d.npz", images=np.zeros((10, 8, 8), np.uint8), labels=labels)
    text = 'recipe r {\n  data = npz("d.npz", train=6, test=4)\n  defense = id\n}\n'
    assert recipe_from_text(text, str(tmp_path / "r.fif")).compile().input_shape == (1, 8, 8)
    np.savez(tmp_path / "d.npz", images=np.zeros((10, 12, 12), np.uint8), labels=labels)
    assert recipe_from_text(text, str(tmp_path / "r.fif")).compile().input_shape == (1, 12, 12)
