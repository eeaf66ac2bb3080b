"""APGD: step-size-free PGD with momentum and checkpointed step halving (Croce & Hein, ICML 2020);
APGD-T, its targeted-DLR form over the top-k other classes, with `targets=k`."""

from __future__ import annotations

from typing import Callable

import torch

from ..registry import Param
from ._common import (EOT, bad, check_classes, check_common, check_eps, check_float, check_int, check_loss,
                      eot_logits, finish, fooled, loss_grad, loss_param, per_sample, project_linf,
                      random_linf_start, seeded, steps_param, top_other_classes)

from .params import APGD as PARAMS  # noqa: E402  (declared where the binder reads it)


def apgd_checkpoints(steps: int) -> list[int]:
    """The iterations w_1 < w_2 < ... <= steps where APGD may halve its step size.

    w_j = ceil(p_j * steps) with p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06),
    kept while p_j <= 1 (computed in hundredths, so no float rounding). For 100 steps:
    [22, 41, 57, 70, 80, 87, 93, 99].
    """
    prev, cur = 0, 22
    out: list[int] = []
    while cur <= 100:
        w = -(-cur * steps // 100)
        if w >= 1 and (not out or w > out[-1]):
            out.append(w)
        prev, cur = cur, cur + max(cur - prev - 3, 6)
    return out


def apgd(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, *, steps: int = 100,
         restarts: int = 1, loss: str = "ce", targets: int = 0, rho: float = 0.75, alpha: float = 0.75,
         eot: int = 1, seed: int | None = None) -> torch.Tensor:
    """Auto-PGD (APGD-CE / APGD-DLR, and APGD-T with `targets`), L-inf; success is misclassification.

    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020 (the first attack of AutoAttack). From a uniform random
    start x_0 in the eps-ball, with per-sample step size eta = 2 * eps:
        z_{k+1} = P(x_k + eta * sign(grad f(x_k)))
        x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1}))   (x_1 = z_1)
    where P projects on the eps-ball and [0, 1]. At the checkpoints w_j (`apgd_checkpoints`) a
    sample halves its eta and restarts from its best point when (1) fewer than rho * (w_j - w_{j-1})
    of the steps since w_{j-1} increased its loss, or (2) neither its eta nor its best loss changed
    since w_{j-1}. Each sample keeps its best-loss point.

    Returned per sample: the highest-loss point the model misclassified, if any iterate was
    misclassified (judged on the logits of the gradient pass, averaged over `eot` draws), else the
    highest-loss point. With `restarts` > 1 the attack is run again, from a new random start, on
    the samples not yet misclassified, keeping the highest-loss point across runs. Each run costs
    steps + 1 gradient evaluations.

    APGD-T (`targets` = k >= 1, AutoAttack's targeted APGD): the k classes other than y with the
    highest logits at x (averaged over `eot` draws) are the targets, and in turn, best first, each
    gets `restarts` runs on the samples still classified correctly, maximising the targeted loss
    towards it while y stays the true label: with loss="dlr" the targeted DLR
    (z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4) / 2), which needs K >= 4 classes; with loss="ce",
    -CE(t). Success is still any misclassification, as in AutoAttack. Costs k * restarts runs.

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels.
        eps: L-inf budget, >= 0. eps=0 returns x.
        steps: iterations per run, >= 1 (default 100, the paper's N_iter).
        restarts: number of runs, >= 1 (default 1).
        loss: "ce" (cross-entropy, APGD-CE, default) | "dlr" (Difference of Logits Ratio,
            APGD-DLR; needs K >= 3).
        targets: 0 (default) for the untargeted attack; k in [1, K - 1] for APGD-T over the k
            highest other classes (loss="dlr" is AutoAttack's APGD-T).
        rho: condition-1 threshold in [0, 1] (default 0.75).
        alpha: momentum weight in (0, 1] (default 0.75; 1 disables momentum).
        eot: gradient averaged over this many random draws of the model per step (>= 1, default 1),
            in one forward pass of eot * N images.
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, within eps (L-inf) of x, in [0, 1].

    Example:
        x_adv = fif.attacks.apgd(model, x, y, eps=0.3, steps=100, loss="ce")
    """
    who = "apgd"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed)
    eps = check_eps(eps, who=who)
    steps = check_int(steps, who=who, name="steps")
    restarts = check_int(restarts, who=who, name="restarts")
    loss = check_loss(loss, who=who, allowed=("ce", "dlr"))
    targets = check_int(targets, who=who, name="targets", low=0)
    rho = check_float(rho, who=who, name="rho", low=0.0, high=1.0)
    alpha = check_float(alpha, who=who, name="alpha", low=0.0, high=1.0, low_open=True)
    checkpoints = apgd_checkpoints(steps)

    def run(xs: torch.Tensor, ys: torch.Tensor, ts: torch.Tensor | None):
        def grad_at(xk, yk):
            return loss_grad(model, xk, yk, loss, False, eot, target=ts)

        n = xs.shape[0]
        cur = random_linf_start(xs, eps)
        f, g, logits = grad_at(cur, ys)
        prev = cur
        x_max, f_max, g_max = cur.clone(), f.clone(), g.clone()
        ok = fooled(logits, ys)
        ever = ok.clone()
        x_fool = cur.clone()
        f_fool = torch.where(ok, f, torch.full_like(f, float("-inf")))
        eta = torch.full((n,), 2 * eps, dtype=xs.dtype, device=xs.device)
        increases = torch.zeros(n, dtype=torch.long, device=xs.device)
        reduced_last = torch.zeros(n, dtype=torch.bool, device=xs.device)
        f_max_last = f_max.clone()
        last_w, j = 0, 0
        for k in range(steps):
            z = project_linf(cur + per_sample(eta, xs) * g.sign(), xs, eps)
            if k == 0:
                new = z
            else:
                new = project_linf(cur + alpha * (z - cur) + (1 - alpha) * (cur - prev), xs, eps)
            f_new, g_new, logits = grad_at(new, ys)
            increases += (f_new > f).long()
            ok = fooled(logits, ys)
            better_fool = ok & (f_new > f_fool)
            x_fool[better_fool] = new[better_fool]
            f_fool = torch.where(better_fool, f_new, f_fool)
            ever |= ok
            better = f_new > f_max
            x_max[better], g_max[better] = new[better], g_new[better]
            f_max = torch.where(better, f_new, f_max)
            prev, cur, f, g = cur, new, f_new, g_new

            if j < len(checkpoints) and k + 1 == checkpoints[j]:
                window = checkpoints[j] - last_w
                cond1 = increases.float() < rho * window
                cond2 = ~reduced_last & (f_max <= f_max_last)
                reduce = cond1 | cond2
                eta = torch.where(reduce, eta / 2, eta)
                r = per_sample(reduce, xs)
                cur = torch.where(r, x_max, cur)
                prev = torch.where(r, x_max, prev)      # no momentum right after a restart
                g = torch.where(r, g_max, g)
                f = torch.where(reduce, f_max, f)
                reduced_last, f_max_last = reduce, f_max.clone()
                increases.zero_()
                last_w, j = checkpoints[j], j + 1
        out = torch.where(per_sample(ever, xs), x_fool, x_max)
        return out, ever, f_max

    with seeded(seed):
        order = _targets(model, x, y, targets, loss, eot, who) if targets else None
        best = x.clone()
        best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for i in range(max(targets, 1)):
            for _ in range(restarts):
                idx = (~done).nonzero().squeeze(1)
                if idx.numel() == 0:
                    break
                out, ever, f_max = run(x[idx], y[idx], None if order is None else order[idx, i])
                f_max = f_max.to(best_loss.dtype)
                take = ever | (f_max > best_loss[idx])
                best[idx[take]] = out[take]
                best_loss[idx] = torch.maximum(best_loss[idx], f_max)
                done[idx[ever]] = True
    return finish(best, x)


def _targets(model, x, y, k: int, loss: str, eot: int, who: str) -> torch.Tensor:
    """APGD-T's targets: the k highest other classes at the clean input, [N, k]."""
    logits = eot_logits(model, x, eot)
    classes = logits.shape[1]
    check_classes(classes, y, loss, who=who, targeted_dlr=True)
    if k > classes - 1:
        raise bad(f"{who}: targets={k} but a model with {classes} classes has only {classes - 1} other "
                  f"classes", hint=f"use targets={classes - 1} or fewer")
    return top_other_classes(logits, y, k)
