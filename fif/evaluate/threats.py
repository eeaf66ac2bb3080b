"""Threat models for randomised and purifying defenses, beside the four of DESIGN section 5.

    fif eval recipes/dir.fif --threat bpda --threat known --threat representation

  bpda            BPDA over the whole defense: its output forward, the identity backward (the
                  classifier's gradient at the defended image), with EOT over its random draws.
                  Athalye, Carlini & Wagner, ICML 2018; DIR's Table 3 (Zhou et al., ICML 2023).
  known           the attacker knows the defense's random draw (DIR Eq. 8, the mask-aware attack):
                  the attack and the final prediction share one seeded draw per batch, so the
                  gradient carries no noise from the randomness.
  representation  the attack perturbs the restored image x~ = defense(x) within eps and the
                  classifier alone judges it (DIR Eq. 9): how robust the restorations are.
`known` and `representation` change what is attacked (a defense whose draw is fixed, the classifier
on x~), so they stay out of the `overall` worst case; `bpda` attacks the deployed model and counts.
"""

from __future__ import annotations

import torch
from torch import nn

from ..runtime import derive_seed

EXTRA_THREATS = ("bpda", "known", "representation")
OUTSIDE_OVERALL = ("known", "representation")


class KnownDraws(nn.Module):
    """`model` (a fif.Pipeline or its attack view) making one fixed random draw at every call:
    what an attacker who knows the defense's masks attacks, and what then classifies."""

    def __init__(self, model: nn.Module, seed: int):
        super().__init__()
        self.model, self.seed = model, int(seed)

    def forward(self, x):
        return self.model(x, generator=torch.Generator().manual_seed(self.seed))


def bpda_view(entry) -> nn.Module:
    """The model with the identity gradient through its `defense` (and BPDA through every
    non-differentiable op, fresh draws per call); a whole model without a `defense` gets the
    plain attack view."""
    model = entry.model
    if "defense" in getattr(model, "shared", {}):
        return model.attack_view(identity=("defense",))
    return model.attack_view()


def known_models(entry, seed, spec_label: str, eps: float) -> tuple[nn.Module, nn.Module]:
    """(what the attacker attacks, what classifies its examples): the attack view and the
    deployed model, sharing one draw."""
    s = derive_seed(seed, "known", spec_label, eps)
    return KnownDraws(entry.model.attack_view(), s), KnownDraws(entry.model, s)


def restored(entry, x: torch.Tensor, batch: int, seed, offset: int = 0) -> torch.Tensor:
    """x~ = defense(x), one seeded draw a batch (by its global position, `offset` + i), clamped to
    [0, 1] (the start of the representation attack)."""
    with torch.no_grad():
        out = torch.cat([entry.defense(x[i:i + batch], generator=torch.Generator().manual_seed(
            derive_seed(seed, "restored", offset + i))) for i in range(0, len(x), batch)])
    return out.clamp(0, 1)
