"""The table search of Zhang & Gao (ICCVW 2021), Algorithm 1, as pure functions: the grid, one
grid point's score, and the choice rule. fif.search.run feeds them the recipe's data.

    points = [score(p, classify, benign, labels, adversarial, adv_labels, order) for p in grid(splits, ofs, afs)]
    best = choose(points, base_accuracy=0.99, max_drop=0.01)

The rule (Alg. 1 line 17): among the tables whose benign accuracy drops by less than `max_drop`
(absolute; the paper's 1%), take the one with the best accuracy on the adversarial examples; ties
go to the higher benign accuracy, then to the earlier point in grid order (split, then OF step,
then AF step, each in the order listed).
"""

from __future__ import annotations

from typing import Callable

import torch

TOLERANCE = 1e-9   # accuracies are counts / n: a drop of exactly max_drop does not qualify


def grid(splits, ofs, afs) -> list[dict]:
    """Every (split, of, af) in grid order: split outermost, AF step innermost."""
    return [{"split": int(k), "of": int(o), "af": int(a)} for k in splits for o in ofs for a in afs]


def codec_for(point: dict, order, *, ycbcr: bool = False):
    """The nnjpeg codec of a grid point at quality 50 (the unscaled table), 8-bit like real JPEG."""
    from ..ops.nnjpeg import NNJPEG
    base = {"split": point["split"], "of": point["of"], "af": point["af"], "order": tuple(order)}
    return NNJPEG(50, base, ycbcr, False, True, 128.0, "identity")


def accuracy(classify: Callable, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    with torch.no_grad():
        pred = torch.cat([classify(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).double().mean())


def score(point: dict, classify: Callable, benign, labels, adversarial, adv_labels, order, *,
          ycbcr: bool = False, batch: int = 500) -> dict:
    """The point with its benign and adversarial accuracy after the codec."""
    codec = codec_for(point, order, ycbcr=ycbcr)
    with torch.no_grad():
        b = accuracy(lambda z: classify(codec(z)), benign, labels, batch)
        a = accuracy(lambda z: classify(codec(z)), adversarial, adv_labels, batch)
    return {**point, "benign": b, "adversarial": a}


def qualifies(point: dict, base_accuracy: float, max_drop: float) -> bool:
    return base_accuracy - point["benign"] < max_drop - TOLERANCE


def choose(points: list[dict], base_accuracy: float, max_drop: float) -> dict | None:
    """The chosen point (see the module docstring), or None when no point qualifies."""
    best, key = None, None
    for i, p in enumerate(points):
        if not qualifies(p, base_accuracy, max_drop):
            continue
        k = (p["adversarial"], p["benign"], -i)
        if key is None or k > key:
            best, key = p, k
    return best
