"""Adversarial attacks: batched, any device, images in [0, 1], honest about randomness (EOT).

    x_adv = fif.attacks.pgd(model, x, y, eps=0.3, steps=40, step=0.01)
    info = fif.attacks.get_attack("apgd"); x_adv = info.fn(model, x, y, eps=8/255)

Every attack takes (model, x [N,C,H,W] in [0,1], y [N] int64, eps, *, ..., eot=1, seed=None) and
returns a detached x_adv with x's dtype and device, inside [0, 1] and inside the budget (L-inf unless
`ATTACKS[name].norm` says "l2"). `eot` averages gradients (scores, for the gradient-free `square`)
over random draws of the model in one batched forward pass; `seed` makes a run reproducible
without touching the caller's RNG.
Bad arguments raise FifError E250, bad inputs (NaN, outside [0, 1]) E502, unknown names E251.
Each attack declares the parameters a recipe may set (fif.attacks.params, torch-free); recipes bind
them when loaded, `eval { attacks = [pgd(steps=40)] }`, so a typo is an E2xx there. The attacks
themselves (and torch) load on first use.
"""

import sys
import types

from .params import ATTACK_CATALOG, NORMS  # noqa: F401  (torch-free)

__all__ = ["fgsm", "bim", "pgd", "mifgsm", "cw", "deepfool", "apgd", "square", "autoattack", "ATTACKS",
           "AttackInfo", "ATTACK_CATALOG", "NORMS", "get_attack", "loss_grad", "seeded"]

_WHERE = {"fgsm": "fgsm", "bim": "bim", "pgd": "pgd", "mifgsm": "mifgsm", "cw": "cw", "deepfool": "deepfool",
          "apgd": "apgd", "square": "square", "autoattack": "autoattack", "ATTACKS": "catalog",
          "AttackInfo": "catalog", "get_attack": "catalog", "loss_grad": "_common", "seeded": "_common"}


def __getattr__(name):
    if name in _WHERE:
        import importlib
        importlib.import_module(".catalog", __name__)   # binds the attack functions on this package
        if name in globals():
            return globals()[name]
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'fif.attacks' has no attribute {name!r}")


class _Attacks(types.ModuleType):
    """`fif.attacks.pgd` is the attack function even after `fif.attacks.pgd` the module was
    imported (which binds the module's name on the package)."""

    def __getattribute__(self, name):
        value = super().__getattribute__(name)
        if name in _ATTACK_FUNCTIONS and isinstance(value, types.ModuleType):
            return getattr(value, name)
        return value


_ATTACK_FUNCTIONS = frozenset(k for k, v in _WHERE.items() if k == v)
sys.modules[__name__].__class__ = _Attacks
