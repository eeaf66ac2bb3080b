"""C&W-L2: minimal-L2 adversarial examples by Adam in tanh space (Carlini & Wagner, S&P 2017)."""

from __future__ import annotations

from typing import Callable

import torch

from ..registry import Param
from ._common import (EOT, TARGETED, check_common, check_eps, check_float, check_int, eot_loss, finish, l2_norm,
                      loss_grad, per_sample, project_l2, seeded, steps_param)

from .params import CW as PARAMS  # noqa: E402  (declared where the binder reads it)

# Keeps atanh finite for pixels at exactly 0 or 1.
_TANH_SCALE = 1 - 1e-6
# An upper bound on c that is still "unbounded" for the binary search.
_C_UNBOUNDED = 1e10
# Adam's usual constants (Kingma & Ba 2015), as in the C&W reference setup.
_BETA1, _BETA2, _ADAM_EPS = 0.9, 0.999, 1e-8


def cw(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float | None = None, *, c: float = 1.0,
       kappa: float = 0.0, steps: int = 100, lr: float = 0.01, binary_steps: int = 5,
       targeted: bool = False, eot: int = 1, seed: int | None = None) -> torch.Tensor:
    """Carlini & Wagner L2 attack: minimise ||x_adv - x||_2^2 + c * f(x_adv), with a search over c.

    Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
    The distance is L2. x_adv = (tanh(w) + 1) / 2 keeps the box [0, 1]; w is optimised by Adam
    (state and w reset at every binary-search step). f is the margin loss
    f = max(z_y - max_{j!=y} z_j, -kappa) (targeted: max(max_{j!=y} z_j - z_y, -kappa)).
    Per sample, c is binary-searched: a round that succeeds makes c an upper bound, one that fails
    a lower bound; c moves to the middle of the bracket, or is multiplied by 10 while no round has
    succeeded yet. Success
    means max_{j!=y} z_j - z_y > kappa (targeted: z_y - max_{j!=y} z_j > kappa).

    The result is, per sample, the successful example with the smallest L2 distance seen over all
    rounds and steps; a sample never fooled is returned unchanged (x itself).

    `eps` is an L2 budget (not L-inf): when given, the final perturbation is scaled onto the L2
    ball of radius eps (then clipped to [0, 1], which keeps it in the ball). That may undo a
    success whose minimal distance exceeds eps, which is what "robust at L2 radius eps" measures.

    Saturated pixels: a pixel at exactly 0 or 1 starts deep in tanh's flat tail (|w| = 7.25), where
    Adam with lr=0.01 moves it by almost nothing within 100 steps. On images with many such pixels
    (MNIST) the paper's small-lr setting therefore needs thousands of steps; with the defaults here
    a plain MNIST CNN keeps about a third of its accuracy. Raise `lr` (0.05-0.1), `steps` or `c`
    for such data.

    With eot > 1 the gradient of f is averaged over eot draws of the model (one forward pass of
    eot * N images); the hinge at -kappa is applied to the averaged margin.

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels (target labels when `targeted`).
        eps: optional L2 budget, >= 0 (default None: unbounded, minimal-distance attack).
        c: initial trade-off constant, > 0 (default 1.0).
        kappa: confidence margin, >= 0 (default 0).
        steps: Adam iterations per binary-search round, >= 1 (default 100).
        lr: Adam learning rate, > 0 (default 0.01).
        binary_steps: rounds of the search over c, >= 1 (default 5).
        targeted: make the model predict `y`. Default False.
        eot: draws of the model averaged per gradient (>= 1, default 1).
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, in [0, 1] (and within L2 eps
        of x when eps is given).

    Example:
        x_adv = fif.attacks.cw(model, x, y, c=1.0, steps=100, lr=0.01)
    """
    who = "cw"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed, targeted=targeted)
    eps = check_eps(eps, who=who, allow_none=True)
    c = check_float(c, who=who, name="c", low=0.0, low_open=True)
    kappa = check_float(kappa, who=who, name="kappa", low=0.0)
    steps = check_int(steps, who=who, name="steps")
    lr = check_float(lr, who=who, name="lr", low=0.0, low_open=True)
    binary_steps = check_int(binary_steps, who=who, name="binary_steps")

    n = x.shape[0]
    dev = x.device
    with seeded(seed):
        # Work in float32 at least: tanh-space Adam is fragile in half precision.
        work = torch.promote_types(x.dtype, torch.float32)
        x0 = x.to(work)
        w0 = torch.atanh((2 * x0 - 1) * _TANH_SCALE)
        const = torch.full((n,), c, dtype=work, device=dev)
        lower = torch.zeros(n, dtype=work, device=dev)
        upper = torch.full((n,), _C_UNBOUNDED, dtype=work, device=dev)
        best_l2 = torch.full((n,), float("inf"), dtype=work, device=dev)
        best = x0.clone()

        for _ in range(binary_steps):
            # Adam on w, state reset every round (written out: a few elementwise lines, and
            # no optimizer object to set up per round).
            w = w0.clone()
            m1 = torch.zeros_like(w)
            m2 = torch.zeros_like(w)
            round_success = torch.zeros(n, dtype=torch.bool, device=dev)
            for t in range(1, steps + 1):
                th = torch.tanh(w)
                x_adv = (th + 1) / 2
                # margin = max_{j!=y} z_j - z_y (negated for targeted); f = max(-margin, -kappa).
                margin, g_margin, _ = loss_grad(model, x_adv.to(x.dtype), y, "margin", targeted, eot)
                margin = margin.to(work)
                delta = x_adv - x0
                l2 = l2_norm(delta)
                success = margin > kappa
                better = success & (l2 < best_l2)
                best_l2 = torch.where(better, l2, best_l2)
                best[better] = x_adv[better]
                round_success |= success
                # d/dx [||x - x0||^2 + c * f]: f's gradient is -grad(margin) where the hinge is active.
                active = per_sample((margin < kappa).to(work), x0)
                g_x = 2 * delta - per_sample(const, x0) * active * g_margin.to(work)
                # chain rule through x = (tanh(w) + 1) / 2
                g_w = g_x * (1 - th * th) / 2
                m1.mul_(_BETA1).add_(g_w, alpha=1 - _BETA1)
                m2.mul_(_BETA2).addcmul_(g_w, g_w, value=1 - _BETA2)
                m1_hat = m1 / (1 - _BETA1 ** t)
                m2_hat = m2 / (1 - _BETA2 ** t)
                w = w - lr * m1_hat / (m2_hat.sqrt() + _ADAM_EPS)
            # binary search on c, per sample
            upper = torch.where(round_success, torch.minimum(upper, const), upper)
            lower = torch.where(round_success, lower, torch.maximum(lower, const))
            bounded = upper < _C_UNBOUNDED / 10
            const = torch.where(bounded, (lower + upper) / 2,
                                torch.where(round_success, const, const * 10))
        # The last iterate of the last round is never checked above; check it too.
        x_adv = (torch.tanh(w) + 1) / 2
        margin, _ = eot_loss(model, x_adv.to(x.dtype), y, "margin", targeted, eot)
        l2 = l2_norm(x_adv - x0)
        better = (margin.to(work) > kappa) & (l2 < best_l2)
        best[better] = x_adv[better]

        best = best.to(x.dtype)
        if eps is not None:
            best = project_l2(best, x, eps)
    return finish(best, x)
