"""The attack catalog: each attack's function, norm, paper and recipe parameters (fif.attacks).

    info = get_attack("apgd"); x_adv = info.fn(model, x, y, eps=8/255)
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from ..errors import did_you_mean, error
from ..registry import Param
from ._common import loss_grad, seeded
from .apgd import apgd
from .autoattack import autoattack
from .bim import bim
from .cw import cw
from .deepfool import deepfool
from .fgsm import fgsm
from .mifgsm import mifgsm
from .pgd import pgd
from .square import square

# The attack modules themselves (the package's attribute of the same name is the function).
_apgd, _autoattack, _bim, _cw, _deepfool, _fgsm, _mifgsm, _pgd, _square = (
    sys.modules[f"{__package__}.{name}"]
    for name in ("apgd", "autoattack", "bim", "cw", "deepfool", "fgsm", "mifgsm", "pgd", "square"))



@dataclass(frozen=True)
class AttackInfo:
    """One attack in the catalog.

    `norm` says what `eps` measures for this attack: "linf" or "l2". `defaults` holds the keyword
    parameters (after eps) with their default values, read from the function's signature.
    `params` declares the ones a recipe may set (all but `seed`), typed, with ranges:
    `pgd(steps=40, step=0.01, restarts=2)`.
    """

    name: str
    fn: Callable
    norm: str
    paper: str
    doc: str
    defaults: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    params: tuple[Param, ...] = ()

    def signature(self) -> str:
        return f"{self.name}({', '.join(p.signature() for p in self.params)})"

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def _info(name: str, module, norm: str, paper: str, doc: str) -> AttackInfo:
    fn = getattr(module, name)
    params = inspect.signature(fn).parameters.values()
    defaults = {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
    return AttackInfo(name, fn, norm, paper, doc, MappingProxyType(defaults), tuple(module.PARAMS))


ATTACKS: dict[str, AttackInfo] = {
    info.name: info for info in [
        _info("fgsm", _fgsm, "linf",
              "Goodfellow, Shlens & Szegedy, Explaining and Harnessing Adversarial Examples, ICLR 2015",
              "one signed-gradient step of size eps"),
        _info("bim", _bim, "linf",
              "Kurakin, Goodfellow & Bengio, Adversarial Examples in the Physical World, ICLR-W 2017",
              "iterated FGSM (I-FGSM) clipped to the eps-ball, no random start"),
        _info("pgd", _pgd, "linf",
              "Madry, Makelov, Schmidt, Tsipras & Vladu, Towards Deep Learning Models Resistant to "
              "Adversarial Attacks, ICLR 2018",
              "projected signed-gradient ascent from a random start, with restarts"),
        _info("mifgsm", _mifgsm, "linf",
              "Dong, Liao, Pang, Su, Zhu, Hu & Li, Boosting Adversarial Attacks with Momentum, CVPR 2018",
              "iterated FGSM with momentum of L1-normalised gradients"),
        _info("cw", _cw, "l2",
              "Carlini & Wagner, Towards Evaluating the Robustness of Neural Networks, IEEE S&P 2017",
              "minimal-L2 margin attack, Adam in tanh space, binary search over c; eps is an L2 budget"),
        _info("deepfool", _deepfool, "linf",
              "Moosavi-Dezfooli, Fawzi & Frossard, DeepFool: a simple and accurate method to fool deep "
              "neural networks, CVPR 2016",
              "minimal L2 steps to the linearised boundary; eps, when given, clips to an L-inf ball"),
        _info("apgd", _apgd, "linf",
              "Croce & Hein, Reliable evaluation of adversarial robustness with an ensemble of diverse "
              "parameter-free attacks, ICML 2020",
              "APGD-CE/DLR: momentum PGD with checkpointed step-size halving; targets=k is APGD-T"),
        _info("square", _square, "linf",
              "Andriushchenko, Croce, Flammarion & Hein, Square Attack: a query-efficient black-box "
              "adversarial attack via random search, ECCV 2020",
              "gradient-free random search on the logit margin with squares of shrinking size"),
        _info("autoattack", _autoattack, "linf",
              "Croce & Hein, Reliable evaluation of adversarial robustness with an ensemble of diverse "
              "parameter-free attacks, ICML 2020",
              "APGD-CE, APGD-T (targeted DLR) and Square in turn; per sample the first success"),
    ]
}

# What `attack=...` in a recipe chooses from: `adversarial(attack=pgd(steps=10), eps=0.3)`.
from .params import ATTACK_CATALOG  # noqa: E402,F401  (torch-free, for the recipe binder)

# Other spellings people use for the same attacks (matched after lower-casing and dropping - and _).
_ALIASES = {"ifgsm": "bim", "apgdce": "apgd", "autopgd": "apgd", "cwl2": "cw", "carliniwagner": "cw",
            "mifgsm": "mifgsm", "momentumfgsm": "mifgsm", "squareattack": "square",
            "aa": "autoattack"}


def get_attack(name: str) -> AttackInfo:
    """The catalog entry for `name` ("pgd", "apgd", ...; "I-FGSM", "APGD-CE", "CW-L2" also work).

    Raises FifError E251 with a did-you-mean hint for an unknown name.
    """
    if isinstance(name, str):
        if name in ATTACKS:
            return ATTACKS[name]
        key = name.lower().replace("-", "").replace("_", "")
        key = _ALIASES.get(key, key)
        if key in ATTACKS:
            return ATTACKS[key]
    hint = did_you_mean(str(name), list(ATTACKS)) or f"known attacks: {', '.join(ATTACKS)}"
    raise error("E251", f"unknown attack {name!r}", hint=hint)

# Importing the attack modules bound their names on the package to the modules; the package's
# public names are the functions (fif.attacks.pgd(model, x, y, eps)).
_package = sys.modules[__package__]
for _name, _info in ATTACKS.items():
    setattr(_package, _name, _info.fn)
