"""`for` repetition beyond block branches: inside lists (`chain = [for q in [90, 80]: ...]`) and
with several names that take each item apart (`for q, m in [[90, 1], [70, 3]]: ...`)."""

import pytest
import torch

import fif
from fif.syntax.printer import expr


def _error(src, shape=(1, 8, 8)):
    with pytest.raises(fif.FifError) as info:
        fif.compile(src, input_shape=shape)
    return info.value.code, info.value.line, info.value.column


@pytest.mark.parametrize("src,canonical", [
    ("mean{for q,m in [[2,0.1],[4,0.2]]:bitdepth(q)->noise(m)}",
     "mean { for q, m in [[2, 0.1], [4, 0.2]]: bitdepth(q) -> noise(m) }\n"),
    ("let x = blockdct(2, 1, order=[for i in [3,1,2]:i, 0]) -> iblockdct\nx",
     "let x = blockdct(2, 1, order=[for i in [3, 1, 2]: i, 0]) -> iblockdct\nx\n"),
])
def test_format_round_trips(src, canonical):
    assert fif.format(src) == canonical
    assert fif.format(canonical) == canonical
    assert fif.parse(canonical) == fif.parse(fif.format(canonical))


def test_several_names_take_each_item_apart():
    p = fif.compile("mean { for q, s in [[2, 0.0], [4, 0.0]]: bitdepth(q) -> noise(s) }", input_shape=(1, 8, 8))
    assert repr(p).strip() == "mean { for q, s in [[2, 0.0], [4, 0.0]]: bitdepth(q) -> noise(s) }"
    same = fif.compile("mean { bitdepth(2) -> noise(0) | bitdepth(4) -> noise(0) }", input_shape=(1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(p(x), same(x))


def test_for_in_an_op_argument_list_unfolds_to_items():
    p = fif.compile("blockdct(2, 1, order=[for i in [3, 1, 2]: i, 0]) -> iblockdct", input_shape=(1, 4, 4))
    q = fif.compile("blockdct(2, 1, order=[3, 1, 2, 0]) -> iblockdct", input_shape=(1, 4, 4))
    x = torch.rand(2, 1, 4, 4)
    torch.testing.assert_close(p(x), q(x))


def test_a_recipe_chain_written_with_for_has_one_member_per_item():
    text = ("recipe r {\n  defense = id\n  train { stage s { params = classifier\n"
            "    chain = [for q in [90, 80, 70]: jpeg(q) -> noise(0.1), id]\n    loss = ce } }\n}\n")
    r = fif.recipe.recipe_from_text(text)
    assert [expr(c) for c in r.train[0].chain] == [
        "jpeg(90) -> noise(0.1)", "jpeg(80) -> noise(0.1)", "jpeg(70) -> noise(0.1)", "id"]


def test_names_are_local_to_their_for():
    p = fif.compile("mean { for q in [2]: mean { for q, s in [[4, 0.0]]: bitdepth(q) } -> bitdepth(q) }",
                    input_shape=(1, 8, 8))
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(p(x), torch.round(torch.round(x * 3) / 3))


@pytest.mark.parametrize("src,where", [
    ("mean { for q, m in [[2, 1], [4]]: bitdepth(q) }", ("E232", 1, 29)),     # an item of one value
    ("mean { for q, m in [2, 4]: bitdepth(q) }", ("E232", 1, 21)),           # items are not lists
    ("mean { for q, m in []: bitdepth(q) }", ("E232", 1, 20)),
    ("blockdct(2, 1, order=[for i in 3: i]) -> iblockdct", ("E232", 1, 32)),
])
def test_bad_for_is_E232_at_the_item(src, where):
    assert _error(src, (1, 4, 4)) == where


def test_bad_for_in_a_recipe_list_is_positioned():
    text = "recipe r {\n  defense = id\n  eval { eps = [for e in 0.1: e] }\n}\n"
    with pytest.raises(fif.FifError) as info:
        fif.recipe.recipe_from_text(text)
    assert (info.value.code, info.value.line, info.value.column) == ("E232", 3, 26)
