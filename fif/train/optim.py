"""Optimizers and learning-rate schedules of a training stage.

    optim = adam(lr=2e-4, betas=[0.5, 0.999])
    optim = sgd(lr=0.01, momentum=0.9, weight_decay=2e-4, nesterov=true)
    schedule = multistep(milestones=[75, 90], gamma=0.1, per=epoch)
    schedule = cosine(min_lr=0, warmup=100)

Optimizers: `sgd(lr, momentum=0, weight_decay=0, nesterov=false, dampening=0)`,
`adam(lr=1e-3, betas=[0.9, 0.999], eps=1e-8, weight_decay=0, amsgrad=false)`,
`adamw(lr=1e-3, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.01, amsgrad=false)`.

Schedules set the learning rate before every optimizer step, as a pure function of the number of
steps t taken so far in the stage (so a resumed run gets the same rates). Counts (`every`,
`milestones`, `start`, `warmup`) are in optimizer steps, or in epochs with `per=epoch`:
  constant                        the base rate
  step(every, gamma=0.1)          times gamma every `every` steps (or epochs)
  multistep(milestones, gamma=0.1) times gamma at each milestone
  exp(gamma)                      times gamma each step (per=epoch: each epoch, a staircase)
  cosine(min_lr=0)                half a cosine from the base rate down to min_lr at the stage's end
  linear(min_lr=0, start=0)       constant until `start`, then a straight line to min_lr at the end
  warmup(steps)                   a linear warm-up, then constant
Every schedule takes `warmup=W`: the rate climbs linearly from base/W to the base over the first W
steps (epochs), then the schedule runs on the remaining steps, as if the stage began there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch



from .params import (OPTIMIZER_CATALOG, OPTIMIZER_PARAMS, SCHEDULE_CATALOG,  # noqa: E402,F401  (torch-free)
                     SCHEDULE_PARAMS)

OPTIMIZERS: dict[str, dict] = {k: {p.name: p.default for p in ps} for k, ps in OPTIMIZER_PARAMS.items()}
# None marks a required setting.
SCHEDULES: dict[str, dict] = {k: {p.name: None if p.required else p.default for p in ps}
                              for k, ps in SCHEDULE_PARAMS.items()}


class SettingError(ValueError):
    """A bad optimizer or schedule setting; `run` turns it into a positioned FifError (E423)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


def _suggest(word, names):
    from ..errors import did_you_mean
    return did_you_mean(word, names) or f"choose one of {', '.join(names)}"


def _number(name, v, *, low=None, low_open=False, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SettingError(f"{name} must be a number, got {v!r}")
    if low is not None and (v <= low if low_open else v < low):
        raise SettingError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {v:g}")
    if integer and int(v) != v:
        raise SettingError(f"{name} must be a whole number, got {v:g}")
    return int(v) if integer else float(v)


def optimizer_settings(spec: dict) -> tuple[str, dict]:
    """Validate `optim = NAME(...)`: (name, torch keyword arguments)."""
    spec = dict(spec)
    name = spec.pop("name", "adam")
    if name not in OPTIMIZERS:
        raise SettingError(f"unknown optimizer '{name}'", _suggest(name, OPTIMIZERS))
    defaults = OPTIMIZERS[name]
    for k in spec:
        if k not in defaults:
            raise SettingError(f"{name} has no setting '{k}'", _suggest(k, defaults))
    kw = {**defaults, **spec}
    kw["lr"] = _number("lr", kw["lr"], low=0, low_open=True)
    for k in ("weight_decay", "momentum", "dampening", "eps"):
        if k in kw:
            kw[k] = _number(k, kw[k], low=0)
    for k in ("nesterov", "amsgrad"):
        if k in kw and not isinstance(kw[k], bool):
            raise SettingError(f"{k} is true or false, got {kw[k]!r}")
    if "betas" in kw:
        b = kw["betas"]
        if not isinstance(b, (list, tuple)) or len(b) != 2:
            raise SettingError(f"betas is a list of two numbers such as [0.9, 0.999], got {b!r}")
        kw["betas"] = tuple(_number("betas", v, low=0) for v in b)
        if not all(v < 1 for v in kw["betas"]):
            raise SettingError(f"betas must be in [0, 1), got {list(kw['betas'])}")
    if name == "sgd" and kw["nesterov"] and (kw["momentum"] <= 0 or kw["dampening"] != 0):
        raise SettingError("nesterov needs momentum > 0 and dampening = 0",
                           "e.g. sgd(lr=0.01, momentum=0.9, nesterov=true)")
    return name, kw


def make_optimizer(spec: dict, params) -> torch.optim.Optimizer:
    """`optim = adam(lr=2e-4)` -> a torch optimizer over `params`."""
    name, kw = optimizer_settings(spec)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    return cls(list(params), **kw)


@dataclass(frozen=True)
class Schedule:
    """lr(t): the learning rate for the optimizer step that follows t steps in the stage."""

    name: str
    base: float
    fn: Callable[[int], float]
    text: str

    def __call__(self, t: int) -> float:
        return self.fn(t)

    def apply(self, opt: torch.optim.Optimizer, t: int) -> float:
        lr = self.fn(t)
        for g in opt.param_groups:
            g["lr"] = lr
        return lr


def make_schedule(spec: dict | None, base_lr: float, steps_per_epoch: int, epochs: int) -> Schedule:
    """`schedule = cosine(warmup=100)` -> a Schedule over epochs * steps_per_epoch steps."""
    if spec is None:
        return Schedule("constant", base_lr, lambda t: base_lr, "constant")
    spec = dict(spec)
    name = spec.pop("name", "constant")
    if name not in SCHEDULES:
        raise SettingError(f"unknown schedule '{name}'", _suggest(name, SCHEDULES))
    allowed = SCHEDULES[name]
    for k in spec:
        if k not in allowed:
            raise SettingError(f"schedule {name} has no setting '{k}'", _suggest(k, allowed))
    kw = {**allowed, **spec}
    missing = [k for k, v in kw.items() if v is None]
    if missing:
        raise SettingError(f"schedule {name} needs {', '.join(missing)}",
                           {"step": "e.g. step(every=1000, gamma=0.5)",
                            "multistep": "e.g. multistep(milestones=[75, 90])",
                            "exp": "e.g. exp(gamma=0.94, per=epoch)", "warmup": "e.g. warmup(steps=100)"}.get(name))
    if kw["per"] not in ("step", "epoch"):
        raise SettingError(f"per is step or epoch, got {kw['per']!r}")
    unit = steps_per_epoch if kw["per"] == "epoch" else 1
    total = max(1, epochs * steps_per_epoch)
    warm = _number("warmup", kw.pop("steps") if name == "warmup" else kw.get("warmup", 0), low=0)
    W = int(round(warm * unit))
    H = max(1, total - W)

    if name in ("constant", "warmup"):
        def main(s):
            return base_lr
    elif name == "step":
        every = _number("every", kw["every"], low=0, low_open=True) * unit
        gamma = _number("gamma", kw["gamma"], low=0)

        def main(s):
            return base_lr * gamma ** math.floor(s / every)
    elif name == "multistep":
        ms = kw["milestones"] if isinstance(kw["milestones"], list) else [kw["milestones"]]
        marks = sorted(_number("milestones", m, low=0) * unit for m in ms)
        gamma = _number("gamma", kw["gamma"], low=0)

        def main(s):
            return base_lr * gamma ** sum(1 for m in marks if s >= m)
    elif name == "exp":
        gamma = _number("gamma", kw["gamma"], low=0)

        def main(s):
            return base_lr * gamma ** (s // unit)
    elif name == "cosine":
        lo = _number("min_lr", kw["min_lr"], low=0)

        def main(s):
            return lo + (base_lr - lo) * 0.5 * (1 + math.cos(math.pi * min(s, H) / H))
    else:  # linear
        lo = _number("min_lr", kw["min_lr"], low=0)
        start = _number("start", kw["start"], low=0) * unit

        def main(s):
            if s < start:
                return base_lr
            return lo + (base_lr - lo) * max(0.0, 1 - (s - start) / max(1.0, H - start))

    def fn(t: int) -> float:
        if t < W:
            return base_lr * (t + 1) / W
        return main(t - W)

    shown = ", ".join(f"{k}={v}" for k, v in spec.items())
    return Schedule(name, base_lr, fn, f"{name}({shown})")
