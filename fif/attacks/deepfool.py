"""DeepFool: minimal L2 steps to the linearised decision boundary (Moosavi-Dezfooli et al., CVPR 2016)."""

from __future__ import annotations

from typing import Callable

import torch

from ..registry import Param
from ._common import (EOT, check_classes, check_common, check_eps, check_float, check_int, eot_logits,
                      finish, forward_logits, project_linf, seeded, steps_param)

from .params import DEEPFOOL as PARAMS  # noqa: E402  (declared where the binder reads it)


def _class_grads(model: Callable, x: torch.Tensor, cand: torch.Tensor, eot: int):
    """Logits [n, K] and the gradients of the candidate logits [n, m, C, H, W], each averaged over
    `eot` draws, from ONE forward/backward pass over n * m * eot copies of x."""
    n, m = cand.shape
    xr = x.detach().repeat(eot * m, *([1] * (x.dim() - 1))).requires_grad_(True)  # [(e, j, i)]
    sel = cand.t().reshape(1, m * n).expand(eot, -1).reshape(-1, 1)                 # class of copy
    with torch.enable_grad():
        logits = forward_logits(model, xr, eot * m * n, "deepfool")
        chosen = logits.gather(1, sel)
        if chosen.requires_grad:
            (grad,) = torch.autograd.grad(chosen.sum(), xr, allow_unused=True)
        else:
            grad = None
    if grad is None:
        grad = torch.zeros_like(xr)
    grad = grad.view(eot, m, n, *x.shape[1:]).mean(dim=0).transpose(0, 1)  # [n, m, C, H, W]
    logits = logits.detach().view(eot * m, n, -1).mean(dim=0)
    return logits, grad


def deepfool(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float | None = None, *,
             steps: int = 50, overshoot: float = 0.02, num_classes: int | None = 10, eot: int = 1,
             seed: int | None = None) -> torch.Tensor:
    """DeepFool (multi-class, L2): step to the closest boundary of the linearised classifier.

    Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool deep
    neural networks", CVPR 2016. At each iteration, for every candidate class k != y, with
    w_k = grad(z_k - z_y) and f_k = z_k - z_y, the class with the smallest |f_k| / ||w_k||_2 is
    chosen and r = (|f_k| / ||w_k|| + 1e-4) * w_k / ||w_k|| is added to the total r_tot; the
    iterate is x + (1 + overshoot) * r_tot. Steps are minimal in L2.

    Box-aware (a deliberate change from the paper, which ignores the box): gradient components
    that would push a pixel already at 0 or 1 (or at the edge of the eps-ball) further out are
    dropped before the linear step. Otherwise clipping eats part of every step and the iterates
    creep towards the boundary without crossing it (MNIST, with most pixels at 0, needs many
    more iterations and often stalls).

    The label to leave is `y` (not the model's own prediction), so samples misclassified from the
    start are returned unchanged. Batched: every unfinished sample moves in one pass per iteration
    (one forward/backward of n * m * eot images, m candidate classes), and a sample stops moving
    as soon as it is misclassified.

    Budget: with `eps=None` the attack is unbounded (a minimal-L2 attack). With `eps` given, eps is
    an L-inf budget: each iterate is clipped to the L-inf ball of radius eps (and to [0, 1]) and the
    accumulated r_tot is reset to the clipped point, so DeepFool sits in the same L-inf table as
    FGSM/PGD/APGD. The iterates are always clipped to [0, 1].

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels.
        eps: optional L-inf budget, >= 0 (default None: unbounded).
        steps: maximum iterations, >= 1 (default 50).
        overshoot: factor >= 0 applied as (1 + overshoot) to the total perturbation (default 0.02).
        num_classes: candidate classes: the top-`num_classes` classes of the clean logits (y always
            included), >= 2 (default 10, the authors' choice); None uses all K classes. Memory grows
            with N * num_classes * eot.
        eot: draws of the model averaged per gradient (>= 1, default 1).
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, in [0, 1] (and within L-inf eps
        of x when eps is given).

    Example:
        x_adv = fif.attacks.deepfool(model, x, y, steps=50, overshoot=0.02)
        x_adv = fif.attacks.deepfool(model, x, y, eps=0.3)   # clipped to the L-inf ball
    """
    who = "deepfool"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed)
    eps = check_eps(eps, who=who, allow_none=True)
    steps = check_int(steps, who=who, name="steps")
    overshoot = check_float(overshoot, who=who, name="overshoot", low=0.0)
    if num_classes is not None:
        num_classes = check_int(num_classes, who=who, name="num_classes", low=2)

    def place(r_tot: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        x_new = x0 + (1 + overshoot) * r_tot
        return project_linf(x_new, x0, eps) if eps is not None else x_new.clamp(0.0, 1.0)

    with seeded(seed):
        n = x.shape[0]
        logits0 = eot_logits(model, x, eot)
        k = logits0.shape[1]
        check_classes(k, y, "ce", who=who)
        m = k if num_classes is None else min(num_classes, k)
        cand = logits0.topk(m, dim=1).indices
        missing = ~(cand == y[:, None]).any(dim=1)
        cand[missing, -1] = y[missing]

        low = (x - eps).clamp(min=0.0) if eps is not None else torch.zeros_like(x)
        high = (x + eps).clamp(max=1.0) if eps is not None else torch.ones_like(x)
        x_adv = x.clone()
        r_tot = torch.zeros_like(x)
        active = torch.ones(n, dtype=torch.bool, device=x.device)
        rows = torch.arange(n, device=x.device)
        for _ in range(steps):
            idx = active.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            logits, grads = _class_grads(model, x_adv[idx], cand[idx], eot)
            done = logits.argmax(dim=1) != y[idx]
            active[idx[done]] = False
            keep = ~done
            if not bool(keep.any()):
                break
            idx, grads, ca, ya = idx[keep], grads[keep], cand[idx][keep], y[idx][keep]
            logits = logits[keep]
            r = rows[: idx.numel()]
            col_y = (ca == ya[:, None]).int().argmax(dim=1)
            f = logits.gather(1, ca)
            df = f - f[r, col_y][:, None]                                   # [n, m], <= 0 here
            dg = grads - grads[r, col_y][:, None]                           # [n, m, C, H, W]
            # Box-aware: moving along +dg raises z_k - z_y; drop the components that would push
            # a pixel already at a bound (of [0, 1] and of the eps-ball) further out.
            xa, lo, hi = x_adv[idx][:, None], low[idx][:, None], high[idx][:, None]
            dg = dg.masked_fill(((xa <= lo) & (dg < 0)) | ((xa >= hi) & (dg > 0)), 0.0)
            dn = dg.flatten(2).norm(dim=2)                                  # [n, m]
            dist = df.abs() / (dn + 1e-8)
            dist[r, col_y] = float("inf")
            best = dist.argmin(dim=1)
            scale = (dist[r, best] + 1e-4) / (dn[r, best] + 1e-8)
            step = torch.nan_to_num(scale.view(-1, *([1] * (x.dim() - 1))) * dg[r, best],
                                    nan=0.0, posinf=0.0, neginf=0.0)
            r_new = r_tot[idx] + step
            x_new = place(r_new, x[idx])
            x_adv[idx] = x_new
            r_tot[idx] = (x_new - x[idx]) / (1 + overshoot)
    return finish(x_adv, x)
