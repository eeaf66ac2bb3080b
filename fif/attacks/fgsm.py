"""FGSM: one signed-gradient step of size eps (Goodfellow, Shlens & Szegedy, ICLR 2015)."""

from __future__ import annotations

from typing import Callable

import torch

from ._common import EOT, TARGETED, check_common, check_eps, finish, loss_grad, project_linf, seeded

from .params import FGSM as PARAMS  # noqa: E402  (declared where the binder reads it)


def fgsm(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, *, targeted: bool = False,
         eot: int = 1, seed: int | None = None) -> torch.Tensor:
    """Fast Gradient Sign Method, L-inf: x_adv = clip(x + eps * sign(grad_x CE(model(x), y)), 0, 1).

    Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015.

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels (target labels when `targeted`).
        eps: L-inf budget, >= 0 (e.g. 0.3 on MNIST, 8/255 on CIFAR). eps=0 returns x.
        targeted: step down the cross-entropy of `y` instead of up. Default False.
        eot: gradient averaged over this many random draws of the model (>= 1, default 1),
            computed in one forward pass of eot * N images.
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, with |x_adv - x|_inf <= eps
        and values in [0, 1].

    Example:
        x_adv = fif.attacks.fgsm(model, x, y, eps=0.3)
    """
    who = "fgsm"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed, targeted=targeted)
    eps = check_eps(eps, who=who)
    with seeded(seed):
        _, grad, _ = loss_grad(model, x, y, "ce", targeted, eot)
        x_adv = project_linf(x + eps * grad.sign(), x, eps)
    return finish(x_adv, x)
