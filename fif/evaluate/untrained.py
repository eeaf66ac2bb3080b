"""A model no better than guessing on clean inputs did not learn: every attack number for it is
meaningless, and a report that compares it would decide claims on a broken model.

    fif eval recipes/pafilt.fif      # warns "filt_img: clean accuracy 9.5% is at chance ..."
"""

from __future__ import annotations

import torch

MARGIN = 0.05   # clean accuracy within this of always answering the commonest label counts as chance


def chance_level(labels: torch.Tensor) -> float:
    """The accuracy of always answering the commonest test label."""
    return float(labels.bincount().max()) / max(1, len(labels))


def untrained_warnings(rows: list[dict], labels: torch.Tensor) -> list[str]:
    """One line per entry whose clean accuracy is at chance on these test images."""
    chance = chance_level(labels)
    return [f"{r['defense']}: clean accuracy {r['accuracy']:.1%} is at chance (always answering the commonest "
            f"label scores {chance:.1%} here): the model did not learn, so none of its numbers mean anything; "
            f"check its training log (a loss that never fell) and retrain it"
            for r in rows if r["threat"] == "clean" and r["attack"] == "none" and r["accuracy"] <= chance + MARGIN]
