"""Square Attack: score-based random search, no gradients (Andriushchenko et al., ECCV 2020)."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._common import (check_common, check_eps, check_float, check_int, eot_loss, finish, per_sample, seeded)

from .params import SQUARE as PARAMS  # noqa: E402  (declared where the binder reads it)

# Iterations (of a 10,000-query run) after which the square's area fraction p halves once more.
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def square_fraction(p_init: float, i: int, queries: int) -> float:
    """The fraction p of the image a square covers at random-search step i (0-based) of a budget.

    The paper's schedule for 10,000 queries: p_init, halved after steps 10, 50, 200, 500, 1000,
    2000, 4000, 6000 and 8000; other budgets scale the step to i * 10000 / queries first.
    """
    scaled = int(i / queries * 10000)
    return p_init / 2 ** sum(scaled > b for b in HALVINGS)


def square_side(p: float, h: int, w: int) -> int:
    """The side of a square covering a fraction p of an h x w image: round(sqrt(p * h * w)),
    at least 1 and (as in the paper, so the square never covers the whole image) at most
    min(h, w) - 1 when the image is larger than one pixel."""
    side = int(round(math.sqrt(p * h * w)))
    return max(1, min(side, min(h, w) - 1))


def square(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, *, queries: int = 1000,
           p_init: float = 0.8, eot: int = 1, seed: int | None = None) -> torch.Tensor:
    """Square Attack, L-inf: random search on the model's scores, with no gradient at all.

    Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
    adversarial attack via random search", ECCV 2020. The attacker only sees the logits of the
    model as deployed, so non-differentiable stages (rounding, quantisation) and masked gradients
    do not stop it: where PGD's gradient is zero, Square still moves.

    The score is the margin max_{j!=y} z_j - z_y on the logits (the paper's margin loss, negated
    so that higher is better); a sample is fooled when it is positive. The search, per sample:
    - start from vertical stripes: every column of every channel moves by +eps or -eps (chosen
      uniformly), clipped to [0, 1]; that is the first query;
    - then, for each of the remaining queries - 1 steps, draw a square of side
      `square_side(square_fraction(p_init, i, queries), H, W)` at a uniform position and a colour
      of +eps or -eps per channel; the candidate is the current best with that square set to
      x +- eps (clipped to [0, 1]), so it stays in the eps-ball. A square that would change nothing
      (the window already has that colour) takes one of the other colours, uniformly, as the
      paper's implementation does by redrawing;
    - the candidate replaces the sample's current best only if its score is strictly higher;
    - a sample stops (it is neither queried nor changed) once its best is misclassified.
    All of this is batched over the samples, each with its own square; only the queries loop.

    Random models: each query is a fresh draw of the model's randomness (the model as deployed),
    so a score is noisy. A candidate can then be accepted on a lucky draw, the best score keeps that
    lucky value (so later, truly better candidates may be refused), and a sample stops at a draw
    that misclassified it, which a fresh draw at evaluation may not repeat. `eot` = N averages the
    score over N draws per query, in one batched forward of N copies (like the gradient attacks'
    eot): less noise, N times the cost of a query.

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; only called forward, under no_grad.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels.
        eps: L-inf budget, >= 0. eps=0 returns x.
        queries: the budget per sample, >= 1, counting the stripes (default 1000; the paper uses
            10,000). Samples fooled earlier use fewer.
        p_init: the first square's fraction of the image, in (0, 1] (default 0.8: the authors'
            choice on MNIST, and AutoAttack's; they use 0.05 for L-inf on ImageNet).
        eot: model draws the score is averaged over per query (>= 1, default 1).
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, within eps (L-inf) of x, in [0, 1].

    Example:
        x_adv = fif.attacks.square(model, x, y, eps=0.3, queries=1000)
    """
    who = "square"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed)
    eps = check_eps(eps, who=who)
    queries = check_int(queries, who=who, name="queries")
    p_init = check_float(p_init, who=who, name="p_init", low=0.0, high=1.0, low_open=True)
    if eps == 0:
        return finish(x.clone(), x)
    n, c, h, w = x.shape
    dev = x.device

    def score(xs, ys):
        return eot_loss(model, xs, ys, "margin", False, eot)[0]

    def signs(*shape):
        return torch.randint(0, 2, shape, device=dev).to(x.dtype).mul_(2).sub_(1)

    with seeded(seed), torch.no_grad():
        best = (x + eps * signs(n, c, 1, w)).clamp_(0.0, 1.0)
        best_score = score(best, y)
        rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
        for i in range(queries - 1):
            active = (best_score <= 0).nonzero().squeeze(1)
            if active.numel() == 0:
                break
            m, side = active.numel(), square_side(square_fraction(p_init, i, queries), h, w)
            top = torch.randint(0, h - side + 1, (m,), device=dev)
            left = torch.randint(0, w - side + 1, (m,), device=dev)
            colour = signs(m, c, 1, 1)
            other = _other_colour(colour, torch.randint(1, 2 ** min(c, 62), (m,), device=dev))
            inside = (_span(rows, top, side)[:, None, :, None] & _span(cols, left, side)[:, None, None, :])
            xs, cur = x[active], best[active]
            cand = torch.where(inside, (xs + eps * colour).clamp(0.0, 1.0), cur)
            same = (cand == cur).flatten(1).all(1)
            if bool(same.any()):
                colour = torch.where(per_sample(same, colour), other, colour)
                cand = torch.where(inside, (xs + eps * colour).clamp(0.0, 1.0), cur)
            new = score(cand, y[active])
            better = new > best_score[active]
            best[active[better]] = cand[better]
            best_score[active[better]] = new[better].to(best_score.dtype)
    return finish(best, x)


def _span(positions: torch.Tensor, start: torch.Tensor, side: int) -> torch.Tensor:
    """[m, L] bool: positions start .. start + side - 1 of each of m samples."""
    return (positions >= start[:, None]) & (positions < start[:, None] + side)


def _other_colour(colour: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """colour [m, C, 1, 1] of +-1 with the channels whose bit is set in flips [m] (in [1, 2^C))
    negated: a uniform draw of flips is a uniform draw among the other 2^C - 1 colours. (Beyond
    62 channels the bits cover only the first 62; images have far fewer.)"""
    c = colour.shape[1]
    bits = (flips[:, None] >> torch.arange(c, device=colour.device).clamp(max=62)) & 1
    bits = bits * (torch.arange(c, device=colour.device) < 62)
    return colour * (1 - 2 * bits).to(colour.dtype)[:, :, None, None]
