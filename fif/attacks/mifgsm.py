"""MI-FGSM: iterated FGSM with a momentum of L1-normalised gradients (Dong et al., CVPR 2018)."""

from __future__ import annotations

from typing import Callable

import torch

from ..registry import Param
from ._common import (EOT, STEP, TARGETED, check_common, check_eps, check_float, check_int, finish, loss_grad,
                      per_sample, linf_box, project_box, seeded, steps_param)

from .params import MIFGSM as PARAMS  # noqa: E402  (declared where the binder reads it)


def mifgsm(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
           step: float | None = None, decay: float = 1.0, targeted: bool = False, eot: int = 1,
           seed: int | None = None) -> torch.Tensor:
    """Momentum Iterative FGSM, L-inf.

    Dong, Liao, Pang, Su, Zhu, Hu & Li, "Boosting Adversarial Attacks with Momentum", CVPR 2018.
    Each step: g = decay * g + grad / ||grad||_1 (L1 norm per sample), then
    x_adv = clip_[0,1](clip_eps-ball(x_adv + step * sign(g))). No random start.

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels (target labels when `targeted`).
        eps: L-inf budget, >= 0. eps=0 returns x.
        steps: iterations, >= 1 (default 10).
        step: step size, >= 0. Default eps / steps (the paper's alpha = eps / T).
        decay: momentum factor mu, >= 0 (default 1.0, the paper's choice; 0 gives I-FGSM).
        targeted: descend the cross-entropy of `y` instead of ascending it. Default False.
        eot: gradient averaged over this many random draws of the model per step (>= 1, default 1),
            in one forward pass of eot * N images.
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, within eps (L-inf) of x, in [0, 1].

    Example:
        x_adv = fif.attacks.mifgsm(model, x, y, eps=0.3, steps=10, decay=1.0)
    """
    who = "mifgsm"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed, targeted=targeted)
    eps = check_eps(eps, who=who)
    steps = check_int(steps, who=who, name="steps")
    step = check_float(step, who=who, name="step", low=0.0, allow_none=True)
    decay = check_float(decay, who=who, name="decay", low=0.0)
    if step is None:
        step = eps / steps
    with seeded(seed):
        x_adv = x.clone()
        momentum = torch.zeros_like(x)
        lo, hi = linf_box(x, eps)
        for _ in range(steps):
            _, grad, _ = loss_grad(model, x_adv, y, "ce", targeted, eot)
            l1 = grad.abs().flatten(1).sum(dim=1).clamp_min(1e-12)
            momentum = decay * momentum + grad / per_sample(l1, grad)
            x_adv = project_box(x_adv + step * momentum.sign(), lo, hi)
    return finish(x_adv, x)
