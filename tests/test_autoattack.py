"""APGD-T (targeted DLR over the top-k other classes) and fif.attacks.autoattack: the per-sample
worst case over APGD-CE, APGD-T and Square, each later one run only on what the others left."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn as nn

import fif.attacks as attacks
from fif.attacks import ATTACKS  # noqa: F401  (first: binds the attack functions on the package)
from fif.attacks._common import per_sample_loss, top_other_classes
from fif.errors import FifError

from attack_models import accuracy, trained_mnist

EPS = 0.1
aa_module = importlib.import_module("fif.attacks.autoattack")   # the module (fif.attacks.autoattack is the function)


@pytest.fixture(scope="module")
def mnist():
    return trained_mnist()


# --- the targeted DLR loss and APGD-T ------------------------------------------------------------


def test_targeted_dlr_is_croce_and_heins():
    z = torch.tensor([[4.0, 1.0, 3.0, -2.0, 0.5], [0.0, 2.0, -1.0, 5.0, 1.0]])
    y, t = torch.tensor([0, 3]), torch.tensor([2, 1])
    # (z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4) / 2): sorted rows [4, 3, 1, 0.5, -2] and [5, 2, 1, 0, -1]
    want = torch.tensor([(3.0 - 4.0) / (4.0 - (1.0 + 0.5) / 2), (2.0 - 5.0) / (5.0 - (1.0 + 0.0) / 2)])
    torch.testing.assert_close(per_sample_loss(z, y, "dlr", False, target=t), want)
    torch.testing.assert_close(per_sample_loss(z, y, "ce", False, target=t),
                               -torch.nn.functional.cross_entropy(z, t, reduction="none"))
    assert top_other_classes(z, y, 2).tolist() == [[2, 1], [1, 4]]


def test_apgd_t_lowers_accuracy_and_stays_in_budget(mnist):
    x, y = mnist["x"][:64], mnist["y"][:64]
    x_adv = attacks.apgd(mnist["model"], x, y, 0.3, steps=10, loss="dlr", targets=3, seed=0)
    assert accuracy(mnist["model"], x_adv, y) <= 0.05
    assert float((x_adv - x).abs().max()) <= 0.3 + 1e-6 and 0 <= float(x_adv.min()) <= float(x_adv.max()) <= 1


def test_apgd_t_bad_arguments(mnist):
    model, x, y = mnist["model"], mnist["x"][:4], mnist["y"][:4]
    three = nn.Sequential(nn.Flatten(), nn.Linear(784, 3))
    for call in (lambda: attacks.apgd(model, x, y, 0.1, targets=10),      # 10 classes: 9 others
                 lambda: attacks.apgd(model, x, y, 0.1, targets=-1),
                 lambda: attacks.apgd(three, x, y % 3, 0.1, loss="dlr", targets=1)):  # needs 4 classes
        with pytest.raises(FifError) as e:
            call()
        assert e.value.code == "E250"


# --- a model each component alone fails on in its own way ------------------------------------------


class Staged(nn.Module):
    """Ten classes, true class 0, on [2, 16, 16] images. Channel 1 holds the sample's kind (0.125,
    0.375, 0.625, 0.875: still readable after any eps = 0.1 change); channel 0 is 0.5 at the clean
    image, d = x - 0.5 its change, `align` = mean(d * checkerboard) / eps in [-1, 1].

    kind 0 (only Square): z_1 = 10 (frac - 0.3) against z_0 = 1, frac = the share of pixels with
        d > eps/2, with no gradient at all; a random start has frac ~0.25, squares of +eps raise it.
    kind 1 (only APGD-T): z_0 = 200, z_2 = 400 align, the rest -100: the cross-entropy saturates
        (its gradient is exactly 0), the targeted DLR towards 2 (the highest other class) does not;
        uniform squares barely change a checkerboard alignment.
    kind 2 (only APGD-CE): z_0 = 5, z_1..8 = 0, z_9 = -10 + 20 align: CE's gradient goes through
        z_9, which is no target, and the targeted DLR towards any of 1..8 is constant.
    kind 3 (none): constant logits.
    """

    def forward(self, x):
        kind = (x[:, 1].mean((1, 2)) * 4).floor().clamp(0, 3).long().detach()
        d = x[:, 0] - 0.5
        board = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2 - 1
        align = (d * board.to(x.dtype)).mean((1, 2)) / EPS
        frac = (d.detach() > EPS / 2).to(x.dtype).mean((1, 2))
        z = torch.zeros(x.shape[0], 10, dtype=x.dtype)
        rows = []
        for k in range(4):
            zk = z.clone()
            if k == 0:
                zk = zk - 5
                zk[:, 0], zk[:, 1] = 1.0, 10 * (frac - 0.3)
            elif k == 1:
                zk = zk - 100
                zk[:, 0], zk[:, 2] = 200.0, 400 * align
            elif k == 2:
                zk[:, 0], zk[:, 9] = 5.0, -10 + 20 * align
            else:
                zk[:, 0] = 5.0
            rows.append(zk)
        return torch.stack(rows)[kind, torch.arange(x.shape[0])]


def staged_inputs(per_kind: int = 2):
    kinds = torch.arange(4).repeat_interleave(per_kind)
    x = torch.full((len(kinds), 2, 16, 16), 0.5)
    x[:, 1] = (0.125 + 0.25 * kinds.float())[:, None, None]
    return x, torch.zeros(len(kinds), dtype=torch.long), kinds


def fooled(model, x_adv, y):
    with torch.no_grad():
        return model(x_adv).argmax(1) != y


COMPONENTS = dict(steps=10, targets=3, queries=50)


def test_each_component_alone_fools_only_its_own_kind():
    model, (x, y, kinds) = Staged(), staged_inputs()
    assert not bool(fooled(model, x, y).any())
    ce = attacks.apgd(model, x, y, EPS, steps=10, loss="ce", seed=0)
    t = attacks.apgd(model, x, y, EPS, steps=10, loss="dlr", targets=3, seed=0)
    sq = attacks.square(model, x, y, EPS, queries=50, seed=0)
    assert kinds[fooled(model, ce, y)].tolist() == [2, 2]
    assert kinds[fooled(model, t, y)].tolist() == [1, 1]
    assert kinds[fooled(model, sq, y)].tolist() == [0, 0]


def test_autoattack_is_the_per_sample_worst_case_of_its_components():
    model, (x, y, kinds) = Staged(), staged_inputs()
    x_adv = attacks.autoattack(model, x, y, EPS, seed=0, **COMPONENTS)
    assert kinds[fooled(model, x_adv, y)].tolist() == [0, 0, 1, 1, 2, 2]
    assert float((x_adv - x).abs().max()) <= EPS + 1e-6
    assert 0 <= float(x_adv.min()) and float(x_adv.max()) <= 1


def test_autoattack_runs_each_component_on_what_the_earlier_ones_left(monkeypatch):
    model, (x, y, kinds) = Staged(), staged_inputs()
    seen = []
    real_apgd, real_square = aa_module.apgd, aa_module.square

    def apgd(m, xs, ys, e, **kw):
        seen.append(("apgd-t" if kw.get("targets") else f"apgd-{kw['loss']}", len(xs)))
        return real_apgd(m, xs, ys, e, **kw)

    def square(m, xs, ys, e, **kw):
        seen.append(("square", len(xs)))
        return real_square(m, xs, ys, e, **kw)

    monkeypatch.setattr(aa_module, "apgd", apgd)
    monkeypatch.setattr(aa_module, "square", square)
    x_adv = attacks.autoattack(model, x, y, EPS, seed=0, **COMPONENTS)
    # APGD-CE on all 8, APGD-T on the 6 it left (not kind 2), Square on kinds 0 and 3.
    assert seen == [("apgd-ce", 8), ("apgd-t", 6), ("square", 4)]
    assert kinds[~fooled(model, x_adv, y)].tolist() == [3, 3]

    seen.clear()
    attacks.autoattack(model, x, y, EPS, seed=0, **{**COMPONENTS, "targets": 0, "queries": 0})
    assert seen == [("apgd-ce", 8)]
    seen.clear()
    attacks.autoattack(model, x, y, EPS, seed=0, version="rand", **COMPONENTS)
    assert seen == [("apgd-ce", 8), ("apgd-dlr", 6)]


def test_autoattack_leaves_misclassified_samples_alone(mnist):
    model, x, y = mnist["model"], mnist["x"][:32], mnist["y"][:32].clone()
    y[:4] = (y[:4] + 1) % 10
    wrong = fooled(model, x, y)
    x_adv = attacks.autoattack(model, x, y, 0.3, steps=5, targets=1, queries=20, seed=0)
    assert torch.equal(x_adv[wrong], x[wrong])
    assert accuracy(model, x_adv, y) <= 0.05


def test_autoattack_seeds_reproduce(mnist):
    model, x, y = mnist["model"], mnist["x"][:16], mnist["y"][:16]
    kw = dict(steps=3, targets=1, queries=10)
    a = attacks.autoattack(model, x, y, 0.05, seed=1, **kw)
    assert torch.equal(a, attacks.autoattack(model, x, y, 0.05, seed=1, **kw))


def test_autoattack_bad_arguments(mnist):
    model, x, y = mnist["model"], mnist["x"][:4], mnist["y"][:4]
    three = nn.Sequential(nn.Flatten(), nn.Linear(784, 3))
    for call in (lambda: attacks.autoattack(model, x, y, 0.1, version="fast"),
                 lambda: attacks.autoattack(model, x, y, 0.1, queries=-1),
                 lambda: attacks.autoattack(model, x, y, 0.1, p_init=0),
                 lambda: attacks.autoattack(three, x, y % 3, 0.1)):           # APGD-T needs 4 classes
        with pytest.raises(FifError) as e:
            call()
        assert e.value.code == "E250"
    x_adv = attacks.autoattack(three, x, y % 3, 0.1, steps=2, targets=0, queries=5, seed=0)
    assert x_adv.shape == x.shape


# --- in a recipe's evaluation ----------------------------------------------------------------------


def test_eval_runs_square_and_autoattack_where_gradients_are_masked(small_recipe_file):
    import fif
    from fif.evaluate.runner import run_eval
    square, auto = "square(queries=100)", "autoattack(steps=5, targets=1, queries=100)"
    res = run_eval(fif.load_recipe(small_recipe_file), n=40, attacks=["fgsm", square, auto], eps=[0.3],
                   threats=["whitebox"], sanity=False)
    acc = {(r["defense"], r["attack"]): r["accuracy"] for r in res["rows"] if r["threat"] == "whitebox"}
    clean = {r["defense"]: r["accuracy"] for r in res["rows"] if r["threat"] == "clean"}
    # bitdepth(4) rounds the whitebox gradient away: FGSM cannot move, Square needs no gradient.
    assert acc[("four_levels", "fgsm")] == clean["four_levels"]
    assert acc[("four_levels", square)] < clean["four_levels"] - 0.5
    assert acc[("four_levels", auto)] <= acc[("four_levels", square)] + 0.1
    assert acc[("four_levels", "worst")] <= min(acc[("four_levels", a)] for a in ("fgsm", square, auto))
