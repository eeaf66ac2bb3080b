"""Shared pieces of every attack: argument checks, projections, losses, the batched EOT gradient.

    loss, grad, logits = loss_grad(model, x, y, loss="ce", eot=8)   # one forward of 8*N images

Conventions used by all attacks in `fif.attacks`:
- `x` is a float tensor [N, C, H, W] with values in [0, 1]; `y` is an integer tensor [N].
- `model` is any callable mapping [B, C, H, W] to logits [B, K]. The attacks never change its
  train/eval mode; put it in eval mode first (BatchNorm in train mode would mix the EOT copies).
- Every loss here is a quantity the attacker *maximises*. With `targeted=True`, `y` holds the
  target labels and the loss is the negated untargeted loss on them (so ascending it moves the
  prediction towards `y`).
- Bad arguments raise `FifError` E250; non-finite inputs or inputs outside [0, 1] raise E502.
"""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from ..errors import did_you_mean, error
from ..registry import Param


# Slack allowed on the [0, 1] range of inputs (images decoded from uint8 or passed through a
# float transform can land a rounding error outside).
RANGE_TOL = 1e-6


# ---------------------------------------------------------------------------------------------
# The parameters a recipe may set live in fif.attacks.params (torch-free).
from .params import EOT, LOSSES, STEP, TARGETED, loss_param, steps_param  # noqa: E402,F401


# ---------------------------------------------------------------------------------------------
# Argument checks


def bad(message: str, hint: str | None = None):
    """The E250 error (bad attack argument), to be raised by the caller."""
    return error("E250", message, hint=hint)


def check_inputs(x, y, *, who: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate `x` [N,C,H,W] in [0,1] (finite) and `y` [N] integer; return them detached, y as int64."""
    if not isinstance(x, torch.Tensor):
        raise bad(f"{who}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise bad(f"{who}: x must have shape [N, C, H, W], got {list(x.shape)}",
                  hint="add a batch dimension with x.unsqueeze(0)" if x.dim() == 3 else None)
    if not x.is_floating_point():
        raise bad(f"{who}: x must be a floating-point tensor, got {x.dtype}",
                  hint="convert uint8 images with x.float() / 255")
    if x.shape[0] == 0:
        raise bad(f"{who}: x is an empty batch")
    if not isinstance(y, torch.Tensor):
        raise bad(f"{who}: y must be a torch.Tensor of labels, got {type(y).__name__}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise bad(f"{who}: y must have shape [{x.shape[0]}] (one label per image), got {list(y.shape)}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise bad(f"{who}: y must hold integer labels, got {y.dtype}", hint="use y.long()")
    x = x.detach()
    if not bool(torch.isfinite(x).all()):
        raise error("E502", f"{who}: x contains NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < -RANGE_TOL or hi > 1 + RANGE_TOL:
        raise error("E502", f"{who}: x must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]",
                    hint="attacks work on images scaled to [0, 1]; normalise inside the model")
    if bool((y < 0).any()):
        raise bad(f"{who}: labels must be >= 0, got {int(y.min())}")
    return x, y.detach().to(device=x.device, dtype=torch.long)


def check_model(model, *, who: str):
    if not callable(model):
        raise bad(f"{who}: model must be callable (a torch.nn.Module or a function), got "
                  f"{type(model).__name__}")


def check_eps(eps, *, who: str, name: str = "eps", allow_none: bool = False) -> float | None:
    if eps is None:
        if allow_none:
            return None
        raise bad(f"{who}: {name} is required")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise bad(f"{who}: {name} must be a number, got {type(eps).__name__}")
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise bad(f"{who}: {name} must be finite and >= 0, got {eps}",
                  hint="a budget of 8/255 on [0,1] images is written eps=8/255")
    return eps


def check_int(value, *, who: str, name: str, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise bad(f"{who}: {name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise bad(f"{who}: {name} must be {rng}, got {value}")
    return value


def check_float(value, *, who: str, name: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise bad(f"{who}: {name} must be a number, got {value!r}")
    value = float(value)
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "" if low is None else (("(" if low_open else "[") + f"{low:g}")
        hi = "" if high is None else f"{high:g}]"
        rng = f" in {lo or '(-inf'}, {hi or 'inf)'}" if (low is not None or high is not None) else ""
        raise bad(f"{who}: {name} must be a finite number{rng}, got {value}")
    return value


def check_loss(loss, *, who: str, allowed=LOSSES) -> str:
    if loss not in allowed:
        raise bad(f"{who}: unknown loss {loss!r}; expected one of {', '.join(allowed)}",
                  hint=did_you_mean(str(loss), allowed))
    return loss


def check_choice(value, allowed, *, who: str, name: str) -> str:
    if value not in allowed:
        raise bad(f"{who}: {name} must be one of {', '.join(allowed)}, got {value!r}",
                  hint=did_you_mean(str(value), allowed))
    return value


def check_seed(seed, *, who: str):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise bad(f"{who}: seed must be an integer or None, got {seed!r}")
    return seed


def check_bool(value, *, who: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise bad(f"{who}: {name} must be True or False, got {value!r}")
    return value


def check_common(model, x, y, *, who: str, eot, seed, targeted=False):
    """The checks every attack shares; returns (x, y) detached, y as int64 on x's device."""
    check_model(model, who=who)
    x, y = check_inputs(x, y, who=who)
    check_int(eot, who=who, name="eot")
    check_seed(seed, who=who)
    check_bool(targeted, who=who, name="targeted")
    return x, y


# ---------------------------------------------------------------------------------------------
# Randomness


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the body with torch seeded to `seed`, restoring the caller's RNG state afterwards.

    With `seed=None` the body uses (and advances) the global RNG as usual. Otherwise the CPU RNG
    and, when CUDA is present, every CUDA device's RNG are forked, so the attack (random starts and
    the model's own random ops alike) is reproducible and the caller's RNG is left untouched.
    """
    if seed is None:
        yield
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


# ---------------------------------------------------------------------------------------------
# Projections


def project_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the L-inf ball of radius eps around x, then onto the [0, 1] box."""
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0.0, 1.0)


def linf_box(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The bounds (lo, hi) of the L-inf ball of radius eps around x intersected with [0, 1], made
    once per attack: `project_box(x_adv, lo, hi)` is then `project_linf(x_adv, x, eps)`, exactly,
    in two passes over the images instead of five."""
    return (x - eps).clamp_(0.0, 1.0), (x + eps).clamp_(0.0, 1.0)


def project_box(x_adv: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Clip x_adv to [lo, hi] elementwise (see linf_box)."""
    return torch.max(torch.min(x_adv, hi), lo)


def l2_norm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of a [N, ...] tensor, shape [N]."""
    return t.flatten(1).norm(p=2, dim=1)


def project_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Scale the perturbation onto the L2 ball of radius eps around x, then clip to [0, 1].

    Clipping to the box only shortens the perturbation, so the result stays in the ball.
    """
    delta = x_adv - x
    norm = l2_norm(delta).view(-1, *([1] * (x.dim() - 1)))
    # Shrink a little more than eps/norm so float rounding cannot leave the ball.
    scale = torch.where(norm > eps, eps / norm.clamp_min(1e-12) * (1 - 1e-6),
                        torch.ones_like(norm))
    return (x + delta * scale).clamp_(0.0, 1.0)


def random_linf_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    """A uniform draw from the L-inf ball of radius eps around x, clipped to [0, 1]."""
    noise = torch.rand_like(x).mul_(2).sub_(1).mul_(eps)
    return (x + noise).clamp_(0.0, 1.0)


def per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a [N] tensor to broadcast against a [N, C, H, W] tensor."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def finish(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The returned example: detached, with x's dtype and device."""
    return x_adv.detach().to(device=x.device, dtype=x.dtype)


# ---------------------------------------------------------------------------------------------
# Losses (all to be maximised by the attacker)


def _other_max(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{j != y} z_j, per sample."""
    mask = F.one_hot(y, logits.shape[1]).bool()
    return logits.masked_fill(mask, float("-inf")).amax(dim=1)


def margin_of(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{j != y} z_j - z_y: positive exactly when some other class beats y."""
    return _other_max(logits, y) - logits.gather(1, y[:, None]).squeeze(1)


def per_sample_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, targeted: bool,
                    target: torch.Tensor | None = None) -> torch.Tensor:
    """The attacker's objective per sample, shape [N].

    ce: cross-entropy of y; margin: max_{j!=y} z_j - z_y (the C&W margin);
    dlr: -(z_y - max_{j!=y} z_j) / (z_pi1 - z_pi3 + 1e-12), the Difference of Logits Ratio of
    Croce & Hein 2020 (pi sorts the logits in decreasing order). Targeted: the negation.

    With `target` ([N] classes, each != y) `y` stays the true label and the loss moves towards the
    target, as APGD-T does: ce: -CE(target); margin: z_t - z_y; dlr: the targeted DLR of Croce &
    Hein, (z_t - z_y) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12) (needs K >= 4).
    """
    if target is not None:
        return targeted_loss(logits, y, target, loss)
    if loss == "ce":
        value = F.cross_entropy(logits, y, reduction="none")
    elif loss == "margin":
        value = margin_of(logits, y)
    elif loss == "dlr":
        top = logits.topk(3, dim=1).values
        value = margin_of(logits, y) / (top[:, 0] - top[:, 2] + 1e-12)
    else:  # pragma: no cover - checked by callers
        raise bad(f"unknown loss {loss!r}")
    return -value if targeted else value


def targeted_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """The loss towards `target` away from the true label `y`, per sample (see per_sample_loss)."""
    if loss == "ce":
        return -F.cross_entropy(logits, target, reduction="none")
    gap = logits.gather(1, target[:, None]).squeeze(1) - logits.gather(1, y[:, None]).squeeze(1)
    if loss == "margin":
        return gap
    if loss == "dlr":
        top = logits.topk(4, dim=1).values
        return gap / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + 1e-12)
    raise bad(f"unknown loss {loss!r}")  # pragma: no cover - checked by callers


def top_other_classes(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """The k classes with the highest logits other than y, best first, per sample: [N, k]."""
    mask = F.one_hot(y, logits.shape[1]).bool()
    return logits.masked_fill(mask, float("-inf")).topk(k, dim=1).indices


def forward_logits(model, x: torch.Tensor, n_expected: int, who: str) -> torch.Tensor:
    """model(x), checked to be logits [n_expected, K] (E250 otherwise)."""
    logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != n_expected:
        shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise bad(f"{who}: the model must map [B, C, H, W] images to logits [B, K]; for B = "
                  f"{n_expected} it returned {shape}")
    return logits


def check_classes(model_logits_k: int, y: torch.Tensor, loss: str, *, who: str, targeted_dlr: bool = False):
    if bool((y >= model_logits_k).any()):
        raise bad(f"{who}: label {int(y.max())} is out of range for a model with "
                  f"{model_logits_k} classes")
    need = 4 if targeted_dlr else 3
    if loss == "dlr" and model_logits_k < need:
        raise bad(f"{who}: the {'targeted ' if targeted_dlr else ''}dlr loss needs at least {need} classes, "
                  f"the model has {model_logits_k}",
                  hint="use loss='ce'" if targeted_dlr else "use loss='ce' or loss='margin'")


def loss_grad(model: Callable, x: torch.Tensor, y: torch.Tensor, loss: str = "ce", targeted: bool = False,
              eot: int = 1, target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss, input gradient and logits, each averaged over `eot` random draws of the model.

    EOT (expectation over transformation, Athalye et al. 2018) is done in ONE batched forward pass:
    the batch is repeated `eot` times along dim 0, so a model with random ops (noise, random masks)
    draws fresh randomness for every copy; the per-sample losses are summed, differentiated once,
    and the gradient is reshaped to [eot, N, ...] and averaged over the draws.

    Args:
        model: callable, [B, C, H, W] -> logits [B, K].
        x: [N, C, H, W] float images (no range check here; the attacks check their inputs).
        y: [N] int64 labels (targets when `targeted`).
        loss: "ce" | "margin" | "dlr" (see `per_sample_loss`); always to be maximised.
        targeted: negate the loss so ascending it moves predictions towards `y`.
        eot: number of draws, >= 1. Memory grows linearly with eot * N.
        target: [N] classes to move towards while `y` stays the true label (APGD-T's losses, see
            `per_sample_loss`); `targeted` is then ignored.

    Returns:
        (loss [N], grad [N, C, H, W], logits [N, K]), all detached; loss and logits are the
        averages over the draws. A model whose output does not depend on x differentiably
        (e.g. it detaches its input) gets an all-zero gradient: the attack then cannot move,
        which is what gradient masking looks like.
    """
    loss = check_loss(loss, who="loss_grad")
    eot = check_int(eot, who="loss_grad", name="eot")
    n = x.shape[0]
    if eot == 1:   # no copies: the images themselves, the labels as they are
        xr, yr = x.detach().requires_grad_(True), y
    else:
        xr = x.detach().repeat(eot, *([1] * (x.dim() - 1))).requires_grad_(True)
        yr = y.repeat(eot)
    with torch.enable_grad():
        logits = forward_logits(model, xr, n * eot, "loss_grad")
        check_classes(logits.shape[1], y, loss, who="loss_grad", targeted_dlr=target is not None)
        per = per_sample_loss(logits, yr, loss, targeted, None if target is None else target.repeat(eot))
        if per.requires_grad:
            (grad,) = torch.autograd.grad(per.sum(), xr, allow_unused=True)
        else:
            grad = None
    if grad is None:
        grad = torch.zeros_like(xr)
    if eot == 1:   # the mean over one draw is that draw
        return per.detach(), grad, logits.detach()
    grad = grad.view(eot, *x.shape).mean(dim=0)
    per = per.detach().view(eot, n).mean(dim=0)
    logits = logits.detach().view(eot, n, -1).mean(dim=0)
    return per, grad, logits


@torch.no_grad()
def eot_logits(model: Callable, x: torch.Tensor, eot: int = 1) -> torch.Tensor:
    """Logits averaged over `eot` draws of the model, in one forward pass, no gradient. [N, K]."""
    n = x.shape[0]
    xr = x.detach().repeat(eot, *([1] * (x.dim() - 1)))
    return forward_logits(model, xr, n * eot, "eot_logits").view(eot, n, -1).mean(dim=0)


def fooled(logits: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    """Per-sample success: prediction differs from y (untargeted) or equals y (targeted). [N] bool."""
    pred = logits.argmax(dim=1)
    return pred == y if targeted else pred != y


@torch.no_grad()
def eot_loss(model: Callable, x: torch.Tensor, y: torch.Tensor, loss: str = "ce", targeted: bool = False,
             eot: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss [N] and logits [N, K] averaged over `eot` draws, in one forward pass, no gradient."""
    n = x.shape[0]
    xr = x.detach().repeat(eot, *([1] * (x.dim() - 1)))
    logits = forward_logits(model, xr, n * eot, "eot_loss")
    check_classes(logits.shape[1], y, loss, who="eot_loss")
    per = per_sample_loss(logits, y.repeat(eot), loss, targeted)
    return per.view(eot, n).mean(dim=0), logits.view(eot, n, -1).mean(dim=0)
