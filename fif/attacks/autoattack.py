"""AutoAttack: APGD-CE, APGD-T and Square in turn, each on the samples the others left (Croce &
Hein, ICML 2020), sized for small CPU runs."""

from __future__ import annotations

from typing import Callable

import torch

from ._common import (bad, check_choice, check_classes, check_common, check_eps, check_float, check_int,
                      eot_logits, finish, seeded)
from .apgd import apgd
from .square import square

from .params import AUTOATTACK as PARAMS  # noqa: E402  (declared where the binder reads it)

VERSIONS = ("standard", "rand")


def autoattack(model: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, *, version: str = "standard",
               steps: int = 100, restarts: int = 1, targets: int = 3, queries: int = 1000, p_init: float = 0.8,
               eot: int = 1, seed: int | None = None) -> torch.Tensor:
    """AutoAttack, L-inf: an ensemble of attacks, per sample the first one that succeeds.

    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020; Square from Andriushchenko, Croce, Flammarion & Hein,
    ECCV 2020. As in their `standard` version (RobustBench's), the components run in this order:
    1. APGD-CE: `apgd(loss="ce")`, untargeted, `steps` iterations, `restarts` runs;
    2. APGD-T: `apgd(loss="dlr", targets=k)`, the targeted DLR loss towards each of the k classes
       with the highest other logits at x, in turn (k = min(targets, K - 1); needs K >= 4);
    3. Square: `square(queries, p_init)`, gradient-free, so a masked gradient does not stop it.
    Samples the model misclassifies at x are not attacked (x is returned for them). Each later
    component runs only on the samples every earlier one failed on, judged by one forward pass of
    its result (logits averaged over `eot` draws): a sample counts as robust only if all failed,
    so robust accuracy is the per-sample worst case over the components. A sample that survives
    them all gets the last component's point. `version="rand"` is AutoAttack's for random
    defenses: APGD-CE then untargeted APGD-DLR, averaging gradients over `eot` draws.

    What differs from RobustBench's standard run: FAB-T (the minimum-norm attack, third there) is
    left out, and the defaults are smaller so that 200 MNIST digits run in minutes on 2 CPU cores:
    3 target classes instead of 9, and 1,000 Square queries instead of 5,000 (100 APGD steps and 1
    restart are RobustBench's). Pass targets=9, queries=5000 for its budget.

    Args:
        model: callable, images [B, C, H, W] -> logits [B, K]; put it in eval mode first.
        x: [N, C, H, W] float images in [0, 1].
        y: [N] integer labels.
        eps: L-inf budget, >= 0. eps=0 returns x.
        version: "standard" (default) | "rand".
        steps: APGD iterations per run, >= 1 (default 100).
        restarts: APGD runs per component (per target for APGD-T), >= 1 (default 1).
        targets: APGD-T's number of target classes, >= 0 (default 3; at most K - 1 are used;
            0 leaves APGD-T out).
        queries: Square's queries per sample, >= 0 (default 1000; 0 leaves Square out).
        p_init: Square's first square fraction, in (0, 1] (default 0.8).
        eot: random draws averaged per gradient (APGD) or per query (Square), >= 1 (default 1).
        seed: when given, the attack runs under this torch seed and leaves the caller's RNG alone.

    Returns:
        x_adv [N, C, H, W], detached, same dtype and device as x, within eps (L-inf) of x, in [0, 1].

    Example:
        x_adv = fif.attacks.autoattack(model, x, y, eps=0.3, targets=9, queries=5000)
    """
    who = "autoattack"
    x, y = check_common(model, x, y, who=who, eot=eot, seed=seed)
    eps = check_eps(eps, who=who)
    version = check_choice(version, VERSIONS, who=who, name="version")
    steps = check_int(steps, who=who, name="steps")
    restarts = check_int(restarts, who=who, name="restarts")
    targets = check_int(targets, who=who, name="targets", low=0)
    queries = check_int(queries, who=who, name="queries", low=0)
    p_init = check_float(p_init, who=who, name="p_init", low=0.0, high=1.0, low_open=True)
    if eps == 0:
        return finish(x.clone(), x)

    with seeded(seed):
        clean = eot_logits(model, x, eot)
        check_classes(clean.shape[1], y, "ce", who=who)
        robust = clean.argmax(1) == y
        x_adv = x.clone()
        for run in components(version, clean.shape[1], steps=steps, restarts=restarts, targets=targets,
                              queries=queries, p_init=p_init, eot=eot):
            idx = robust.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            out = run(model, x[idx], y[idx], eps)
            x_adv[idx] = out
            robust[idx[eot_logits(model, out, eot).argmax(1) != y[idx]]] = False
    return finish(x_adv, x)


def components(version: str, classes: int, *, steps: int, restarts: int, targets: int, queries: int,
               p_init: float, eot: int) -> list[Callable]:
    """The attacks `autoattack` runs in turn, each model, x, y, eps -> x_adv (seeded by the caller)."""
    who = "autoattack"
    runs = [lambda m, xs, ys, e: apgd(m, xs, ys, e, steps=steps, restarts=restarts, loss="ce", eot=eot)]
    if version == "rand":
        runs.append(lambda m, xs, ys, e: apgd(m, xs, ys, e, steps=steps, restarts=restarts, loss="dlr", eot=eot))
        return runs
    k = min(targets, classes - 1)
    if k:
        if classes < 4:
            raise bad(f"{who}: APGD-T's targeted DLR loss needs at least 4 classes, the model has {classes}",
                      hint="targets=0 leaves APGD-T out")
        runs.append(lambda m, xs, ys, e: apgd(m, xs, ys, e, steps=steps, restarts=restarts, loss="dlr",
                                              targets=k, eot=eot))
    if queries:
        runs.append(lambda m, xs, ys, e: square(m, xs, ys, e, queries=queries, p_init=p_init, eot=eot))
    return runs
