"""Training and scoring classifiers: plain, or PGD adversarial training (Madry et al. 2018).

    metrics = train_classifier(model, train_ds, epochs=3, lr=1e-3)
    metrics = train_classifier(model, train_ds, epochs=10, lr=1e-3,
                               adversarial=dict(eps=0.3, steps=10, ramp_epochs=3))
    accuracy(model, test_ds)  # -> 0.98

Adversarial training replaces each batch by PGD examples made against the model being trained.
Epsilon (and an explicit step size with it) grows linearly, batch by batch, from 0 to its final
value over the first `ramp_epochs` epochs: starting at full strength often leaves the model stuck at
chance level on MNIST-sized problems.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset, batches
from ..errors import error
from ..progress import bar

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}
_ADV_KEYS = {"eps", "steps", "step", "ramp_epochs", "random_start"}


def _adversarial_settings(adv: dict, epochs: int) -> dict:
    unknown = set(adv) - _ADV_KEYS
    if unknown:
        raise error("E221", f"unknown adversarial-training setting(s): {', '.join(sorted(unknown))}",
                    hint=f"the settings are {', '.join(sorted(_ADV_KEYS))}")
    if "eps" not in adv:
        raise error("E222", "adversarial training needs 'eps'", hint="e.g. adversarial=dict(eps=0.3)")
    out = {"eps": float(adv["eps"]), "steps": int(adv.get("steps", 10)),
           "step": None if adv.get("step") is None else float(adv["step"]),
           "ramp_epochs": float(adv.get("ramp_epochs", 1 if epochs > 1 else 0)),
           "random_start": bool(adv.get("random_start", True))}
    if out["eps"] < 0 or out["steps"] < 1 or out["ramp_epochs"] < 0:
        raise error("E224", f"adversarial training needs eps >= 0, steps >= 1 and ramp_epochs >= 0, got {adv}")
    return out


def train_classifier(model: nn.Module, train_ds: Dataset, *, epochs: int, batch: int = 128,
                     lr: float | None = None, optim: str = "adam", seed: int = 0,
                     adversarial: dict | None = None, device="cpu", weight_decay: float | None = None,
                     schedule: str = "cosine") -> dict:
    """Train `model` in place with cross-entropy; returns metrics. The model ends in eval mode.

    epochs >= 1; batch: batch size; lr: learning rate (default 1e-3 for adam, 0.05 for sgd);
    optim: 'adam' | 'sgd' (momentum 0.9, weight decay 5e-4 unless given); schedule: 'cosine'
    (per batch, down to 0) | 'constant'; seed fixes the batch order and the attack's random starts.
    adversarial: None, or dict(eps, steps=10, step=None, ramp_epochs=1, random_start=True) for PGD
    training with `fif.attacks.pgd` (step None: the attack's own default for the current eps).
    Metrics: epochs, steps, loss and train_accuracy of the last epoch, losses per epoch, seconds,
    adversarial, final_eps.
    """
    if optim not in OPTIMIZERS:
        raise error("E226", f"unknown optimizer '{optim}'", hint=f"use one of {', '.join(OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        raise error("E226", f"unknown schedule '{schedule}'", hint=f"use one of {', '.join(SCHEDULES)}")
    if int(epochs) < 1 or int(batch) < 1:
        raise error("E224", f"epochs and batch must be >= 1, got epochs={epochs}, batch={batch}")
    if len(train_ds) == 0:
        raise error("E405", f"dataset '{train_ds.name}' is empty", file=train_ds.source)
    epochs, batch = int(epochs), int(batch)
    lr = DEFAULT_LR[optim] if lr is None else float(lr)
    adv = _adversarial_settings(adversarial, epochs) if adversarial else None
    pgd = None
    if adv is not None:
        from fif.attacks import pgd  # imported late: attacks import models, not the other way round
        pgd = getattr(pgd, "pgd", pgd)  # the function, also when only the module is exported

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if optim == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay or 0.0)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9,
                              weight_decay=5e-4 if weight_decay is None else weight_decay)
    gen = torch.Generator().manual_seed(int(seed))
    loader = batches(train_ds, batch, shuffle=True, generator=gen, device=device)
    per_epoch = len(loader)
    total = epochs * per_epoch
    ramp_steps = adv["ramp_epochs"] * per_epoch if adv else 0.0

    losses: list[float] = []
    start, global_step, eps_now = time.perf_counter(), 0, 0.0
    loss_sum = correct = seen = 0
    for epoch in range(epochs):
        loss_sum, correct, seen = 0.0, 0, 0
        with bar(f"epoch {epoch + 1}/{epochs}", per_epoch) as step_bar:
            for x, y in loader:
                if schedule == "cosine":
                    for g in opt.param_groups:
                        g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * global_step / total))
                if adv is not None:
                    frac = 1.0 if ramp_steps <= 0 else min(1.0, (global_step + 1) / ramp_steps)
                    eps_now = adv["eps"] * frac
                    if eps_now > 0:
                        model.eval()
                        x = pgd(model, x, y, eps_now, steps=adv["steps"],
                                step=None if adv["step"] is None else adv["step"] * frac,
                                random_start=adv["random_start"],
                                seed=int(seed) * 1_000_003 + global_step).detach()
                model.train()
                opt.zero_grad(set_to_none=True)
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                loss.backward()
                opt.step()
                global_step += 1
                n = y.shape[0]
                loss_sum += float(loss.detach()) * n
                correct += int((logits.detach().argmax(1) == y).sum())
                seen += n
                step_bar(loss=loss_sum / seen, acc=correct / seen)
        losses.append(loss_sum / max(seen, 1))
    model.eval()
    return {"epochs": epochs, "steps": global_step, "loss": losses[-1],
            "train_accuracy": correct / max(seen, 1), "losses": losses,
            "seconds": time.perf_counter() - start, "adversarial": adv is not None,
            "final_eps": eps_now if adv else 0.0}


@torch.no_grad()
def accuracy(model: nn.Module, ds: Dataset, batch: int = 512, device="cpu") -> float:
    """Top-1 accuracy of `model` on `ds` in eval mode (the model's mode is restored afterwards)."""
    if len(ds) == 0:
        raise error("E405", f"dataset '{ds.name}' is empty", file=ds.source)
    was_training = model.training
    model.eval()
    try:
        correct = 0
        for x, y in batches(ds, batch, device=device):
            correct += int((model(x).argmax(1) == y).sum())
    finally:
        model.train(was_training)
    return correct / len(ds)
