"""BIM / I-FGSM: iterated FGSM clipped to the eps-ball (Kurakin, Goodfellow & Bengio, 2017)."""

from __future__ import annotations

from typing import Callable

import torch

from ._common import (EOT, STEP, TARGETED, check_common, check_eps, check_float, check_int, finish, loss_grad,
                      linf_box, project_box, seeded, steps_param)

from .params import BIM as PARAMS  # noqa: E402  (declared where the binder reads it)


def bim(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 10,
        step: float | None = None, targeted: bool = False, eot: int = 1,
        seed: int | None = None) -> torch.Tensor:
    """Basic Iterative Method (I-FGSM), L-inf: `steps` signed-gradient steps from x, no random start.

    Kurakin, Goodfellow & Bengio, "Adversarial Examples in the Physical World", ICLR workshop 2017.
    Each step: x_adv = clip_[0,1](clip_eps-ball(x_adv + step * sign(grad CE))).

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels (target labels when `targeted`).
        eps: L-inf budget, >= 0. eps=0 returns x.
        steps: number of iterations, >= 1 (default 10).
        step: step size per iteration, >= 0. Default 1.25 * eps / steps: the total distance the
            iterations can travel is 1.25 eps, the ratio of the paper's schedule (step 1/255 for
            min(255 eps + 4, 1.25 * 255 eps) iterations).
        targeted: descend the cross-entropy of `y` instead of ascending it. Default False.
        eot: gradient averaged over this many random draws of the model per step (>= 1, default 1),
            in one forward pass of eot * N images.
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, within eps (L-inf) of x, in [0, 1].

    Example:
        x_adv = fif.attacks.bim(model, x, y, eps=0.3, steps=10)
    """
    who = "bim"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed, targeted=targeted)
    eps = check_eps(eps, who=who)
    steps = check_int(steps, who=who, name="steps")
    step = check_float(step, who=who, name="step", low=0.0, allow_none=True)
    if step is None:
        step = 1.25 * eps / steps
    with seeded(seed):
        x_adv = x.clone()
        lo, hi = linf_box(x, eps)
        for _ in range(steps):
            _, grad, _ = loss_grad(model, x_adv, y, "ce", targeted, eot)
            x_adv = project_box(x_adv + step * grad.sign(), lo, hi)
    return finish(x_adv, x)
