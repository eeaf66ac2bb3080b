"""APGD-T (targeted DLR over the top-k other classes) and fif.attacks.autoattack: the per-sample
worst case over APGD-CE, APGD-T and Square, each later one run only on what the others left."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import fif.attacks as attacks
from fif.attacks import ATTACKS  # noqa: F401  (first: binds the attack functions on the package)
from fif.attacks._common import per_sample_loss, top_other_classes
from fif.errors import FifError

from attack_models import accuracy, trained_mnist

EPS = 0.1


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
