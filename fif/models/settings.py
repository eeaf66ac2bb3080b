"""What a recipe's `classifier = ARCH(...)` may set, per architecture; bound when the recipe loads.

    classifier = smallcnn(width=16, epochs=5, lr=0.002, batch=64, adversarial=pgd(eps=0.3, steps=10))
    classifier = lenet(epochs=2, adversarial=0.2)     # a bare number is the PGD training eps

Only settings given in the recipe reach the cache key (`fif.models.cache`), so the defaults below
are the ones `ClassifierSpec` and `train_classifier` apply; `width` defaults to the arch's own.
"""

from __future__ import annotations

from ..registry import REQUIRED, Catalog, Param

# PGD adversarial training of the classifier (Madry et al. 2018), see fif.models.training.
ADVERSARIAL_TRAINING: tuple[Param, ...] = (
    Param("eps", "float", REQUIRED, low=0.0, high=1.0, low_open=True, doc="final L-inf budget"),
    Param("steps", "int", 10, low=1, doc="PGD steps per batch"),
    Param("step", "float", None, low=0.0, high=1.0, doc="PGD step size (default: pgd's own)"),
    Param("ramp_epochs", "int", 1, low=0, doc="epochs over which eps grows from 0"),
)
ADVERSARIAL_CATALOG = Catalog("adversarial training method", lambda: {"pgd": ADVERSARIAL_TRAINING})

_COMMON: tuple[Param, ...] = (
    Param("epochs", "int", 5, low=1, doc="training epochs"),
    Param("lr", "float", 1e-3, low=0.0, low_open=True, doc="learning rate"),
    Param("batch", "int", 64, low=1, doc="batch size"),
    Param("optim", "choice", "adam", choices=("adam", "sgd"), doc="optimizer"),
    Param("seed", "int", 0, low=0, doc="initialisation and batch-order seed"),
    Param("adversarial", "call", None, catalog=ADVERSARIAL_CATALOG, shorthand=("pgd", "eps"),
          doc="PGD adversarial training: pgd(eps, steps=10, step, ramp_epochs=1), or just eps"),
)


# arch -> its default width (None: the arch has no width), as fif.models.classifiers.ARCHS says;
# repeated here so recipes bind without importing torch (a test checks the two agree).
WIDTHS: dict[str, int | None] = {"smallcnn": 32, "lenet": None, "resnet18": 64}


def _params(arch: str) -> tuple[Param, ...]:
    width = WIDTHS[arch]
    if width is None:
        return _COMMON
    return (Param("width", "int", width, low=1, doc="channels of the first layer"),) + _COMMON


CLASSIFIERS: dict[str, tuple[Param, ...]] = {arch: _params(arch) for arch in WIDTHS}
CLASSIFIER_CATALOG = Catalog("classifier", lambda: CLASSIFIERS, code="E202")


def meta_classifier(arch: str, width: int | None = None):
    """`arch` built on the meta device (no memory, no training): its module names and weights, so a
    recipe's `freeze` and `feature(layer=...)` are checked when the recipe loads."""
    import torch

    from .classifiers import build_classifier
    with torch.device("meta"):
        return build_classifier(arch, (1, 32, 32), 10, width=width)
