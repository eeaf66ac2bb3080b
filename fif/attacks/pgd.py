"""PGD: projected gradient ascent from a random start, with restarts (Madry et al., ICLR 2018)."""

from __future__ import annotations

from typing import Callable

import torch

from ..registry import Param
from ._common import (EOT, LOSSES, STEP, TARGETED, check_bool, check_common, check_eps, check_float, check_int,
                      check_loss, eot_loss, finish, fooled, loss_grad, loss_param, linf_box,
                      random_linf_start, seeded, steps_param)

from .params import PGD as PARAMS  # noqa: E402  (declared where the binder reads it)


def pgd(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 40,
        step: float | None = None, random_start: bool = True, restarts: int = 1, loss: str = "ce",
        targeted: bool = False, eot: int = 1, seed: int | None = None) -> torch.Tensor:
    """Projected Gradient Descent, L-inf: signed-gradient ascent projected on the eps-ball.

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
    Adversarial Attacks", ICLR 2018. Each step:
    x_adv = clip_[0,1](min(max(x_adv + step * sign(grad loss), x - eps), x + eps)); with
    `random_start` the first iterate is drawn uniformly from the eps-ball (clipped to [0, 1]).

    With `restarts` > 1 the attack runs again on the samples not yet fooled, and keeps per sample
    the first successful example (misclassified; classified as `y` when targeted), else the one
    with the highest loss. Success and loss are judged on the final iterate of each restart, with
    logits and loss averaged over `eot` draws. With restarts=1 the final iterate is returned as is.

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels (target labels when `targeted`).
        eps: L-inf budget, >= 0. eps=0 returns x.
        steps: iterations per restart, >= 1 (default 40).
        step: step size, >= 0. Default 2.5 * eps / steps (Madry et al.: enough to cross the ball
            and come back).
        random_start: start from a uniform draw in the eps-ball (default True).
        restarts: number of runs, >= 1 (default 1).
        loss: "ce" (cross-entropy, default) | "margin" (C&W margin max_{j!=y} z_j - z_y) |
            "dlr" (Croce & Hein's Difference of Logits Ratio, needs K >= 3).
        targeted: move towards class `y` (descend its loss). Default False.
        eot: gradient averaged over this many random draws of the model per step (>= 1, default 1),
            in one forward pass of eot * N images.
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, within eps (L-inf) of x, in [0, 1].

    Example:
        x_adv = fif.attacks.pgd(model, x, y, eps=0.3, steps=40, step=0.01)
    """
    who = "pgd"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed, targeted=targeted)
    eps = check_eps(eps, who=who)
    steps = check_int(steps, who=who, name="steps")
    step = check_float(step, who=who, name="step", low=0.0, allow_none=True)
    restarts = check_int(restarts, who=who, name="restarts")
    random_start = check_bool(random_start, who=who, name="random_start")
    loss = check_loss(loss, who=who, allowed=LOSSES)
    if step is None:
        step = 2.5 * eps / steps

    def run(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        x_adv = random_linf_start(xs, eps) if random_start else xs.clone()
        lo, hi = linf_box(xs, eps)
        for _ in range(steps):
            _, grad, _ = loss_grad(model, x_adv, ys, loss, targeted, eot)
            # = project_box(x_adv + step * grad.sign(), lo, hi), exactly (lo <= hi), in three
            # passes over the images instead of five
            x_adv = torch.add(x_adv, grad.sign(), alpha=step).clamp_(lo, hi)
        return x_adv

    with seeded(seed):
        if restarts == 1:
            return finish(run(x, y), x)
        best = x.clone()
        best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for _ in range(restarts):
            idx = (~done).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            xs, ys = x[idx], y[idx]
            x_adv = run(xs, ys)
            value, logits = eot_loss(model, x_adv, ys, loss, targeted, eot)
            value = value.to(best_loss.dtype)
            success = fooled(logits, ys, targeted)
            take = success | (value > best_loss[idx])
            best[idx[take]] = x_adv[take]
            best_loss[idx] = torch.maximum(best_loss[idx], value)
            done[idx[success]] = True
    return finish(best, x)
