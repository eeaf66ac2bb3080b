"""The training loop of one stage (or one member of a classifier chain): epochs of seeded batches,
inputs made on the fly, the loss's terms, NaN guards, a log line per step and checkpoint hooks.

    stage denoise { inputs = noisy(sigma=0.3); loss = l1; epochs = 2; batch = 64; optim = adam(lr=2e-3) }

Everything random in a step is seeded from (run seed, unit, epoch, step): the batch order by a
torch.Generator per epoch, the inputs by a generator per step, and torch's, numpy's and python's
global generators (random ops inside the defense, the rep loss's start) reseeded before each step;
with `draws = step` the defense's random ops draw from a generator seeded per step instead, the same
draw at every forward pass of the step (fif.pipeline.Pipeline.fixed_draws).
A run resumed from a checkpoint therefore replays exactly the steps an uninterrupted run takes.

Under torchrun (fif.distributed) each step's batch is the same global batch a single process takes,
split into contiguous shards, one a rank; each rank's gradient, weighted by its share of the batch,
is summed over the ranks (the gradient of the global batch's mean loss, as DistributedDataParallel
gives), so every rank takes the same optimizer step and the weights stay identical. The random
draws of a step (inputs, the defense's random ops) are seeded per (step, rank) when there are
several ranks, so a 2-process run is reproducible but draws other noise than a 1-process run.
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .. import distributed as dist
from ..data.store import fetch, is_lazy
from ..errors import FifError, diagnostic
from ..precision import autocast
from ..progress import bar
from .context import stage_span
from .losses import Forward, StepData, evaluate
from .optim import make_optimizer, make_schedule


@dataclass
class UnitState:
    """Where a unit is: the next (epoch, step), optimizer steps taken, the running epoch loss."""

    epoch: int = 0
    step: int = 0
    t: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    epoch_losses: list = field(default_factory=list)
    seconds: float = 0.0
    init: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "UnitState":
        return cls(**d)


def training_images(ds, limit):
    """The first `limit` images of the training split (it is shuffled and stratified); a
    streamed split stays streamed (nothing is decoded here)."""
    if limit is None or limit >= len(ds):
        return ds.images, ds.labels
    if is_lazy(ds.images):
        return ds.images.take(range(limit)), ds.labels[:limit]
    return ds.images[:limit], ds.labels[:limit]


def steps_per_epoch(n: int, batch: int) -> int:
    return max(1, -(-n // batch))


def bad_value(recipe, unit, epoch, step, what, value, checkpoint) -> FifError:
    """E510: a loss term or the weights went NaN or infinite; names stage, epoch, step and term."""
    where = f"stage '{unit.stage.name}'" + (f" ({unit.target})" if unit.target not in (None, "defense") else "") + \
        (f", chain member {unit.member}" if unit.member else "")
    kept = (f"the last good checkpoint is kept: {checkpoint}" if checkpoint is not None
            else "no checkpoint had been written yet")
    return FifError(diagnostic(
        "E510", f"{where}, epoch {epoch + 1}, step {step + 1}: {what} is {value}; training stopped and "
        f"{kept}", stage_span(recipe, unit.stage.name, "loss" if what.startswith("loss") else "optim"),
        file=recipe.file, source=recipe.source,
        hint="lower the learning rate (optim = adam(lr=...)), or check the data and the loss weights"))


def _first_bad(total, parts) -> tuple[str, float] | None:
    for label, (v, count) in parts.items():
        if count and not bool(torch.isfinite(v)):
            return f"loss term '{label}'", float(v.detach())
    if not bool(torch.isfinite(total)):
        return "the total loss", float(total.detach())
    return None


def train_unit(unit, *, ctx, model, params, pipeline, classifier, hooks, state: UnitState, restore=None) -> UnitState:
    """Run `unit` from `state` to its end. `model` is the module being trained (put in train mode
    each step), `params` its trainable parameters, `pipeline`/`classifier` what the losses run
    through. hooks: log(record), after_step(unit, state, optimizer, end_of_epoch),
    last_checkpoint(). restore(optimizer) loads a resumed optimizer's state."""
    stage = unit.stage
    images, labels = training_images(ctx.train_ds, stage.limit)
    n, b, epochs = images.shape[0], stage.batch, stage.epochs
    spe = steps_per_epoch(n, b)
    opt = make_optimizer(stage.optim, params)
    sched = make_schedule(stage.schedule, opt.param_groups[0]["lr"], spe, epochs)
    if restore is not None:
        restore(opt)
    frozen = [m for m in (pipeline, classifier) if m is not None and m is not model]
    device = ctx.device
    world = dist.world_size() if dist.active() else 1
    rank = dist.rank() if world > 1 else 0
    while state.epoch < epochs:
        epoch = state.epoch
        order = torch.randperm(n, generator=torch.Generator().manual_seed(ctx.seed_for(unit.key, "order", epoch)))
        # this rank's share of each remaining step's global batch, read ahead when the data is streamed
        first = state.step
        shares = [_shard(order[step * b:(step + 1) * b], world, rank) for step in range(first, spe)]
        fetched = fetch(images, [local for local, _ in shares])
        with bar(f"{unit.label} epoch {epoch + 1}/{epochs}", spe) as tick:
            if state.step:
                tick(state.step, loss=state.loss_sum / max(state.loss_count, 1))
            for step in range(state.step, spe):
                started = time.perf_counter()
                local, weight = shares[step - first]
                clean, y = next(fetched).to(device), labels[local].to(device)
                key = (unit.key, epoch, step) if world == 1 else (unit.key, epoch, step, "rank", rank)
                seed = ctx.seed_for(*key)
                torch.manual_seed(seed)
                random.seed(seed)
                np.random.seed(seed % (2 ** 32))
                gen = torch.Generator().manual_seed(ctx.seed_for(*key, "inputs"))
                with _draws(stage, pipeline, ctx.seed_for(*key, "draws")), autocast(device, ctx.amp):
                    x, eps = unit.inputs.make(clean, y, gen, seed)
                    if not bool(torch.isfinite(x).all()):
                        raise bad_value(ctx.recipe, unit, epoch, step, "the stage input", "NaN or infinite",
                                        hooks.last_checkpoint())
                    lr = sched.apply(opt, state.t)
                    for m in frozen:
                        m.eval()
                    model.train()
                    opt.zero_grad(set_to_none=True)
                    fwd = Forward(StepData(clean, x, y, eps), pipeline=pipeline, classifier=classifier)
                    total, parts = evaluate(unit.terms, fwd)
                    bad = _first_bad(total, parts)
                    if bad is not None:
                        raise bad_value(ctx.recipe, unit, epoch, step, bad[0], bad[1], hooks.last_checkpoint())
                    total.backward()
                dist.average_gradients(params, weight)
                opt.step()
                dist.broadcast_modules([model], buffers_only=True)  # BatchNorm statistics: rank 0's
                state.t += 1
                value, terms = _step_losses(total, parts, weight)
                state.loss_sum += value
                state.loss_count += 1
                seconds = time.perf_counter() - started
                state.seconds += seconds
                hooks.log({"target": unit.target or "classifier", "stage": stage.name, "member": unit.member,
                           "epoch": epoch + 1, "step": step + 1, "t": state.t, "loss": value,
                           "terms": terms,
                           "lr": lr, "seconds": round(seconds, 6)})
                tick(loss=state.loss_sum / state.loss_count)
                end_of_epoch = step + 1 == spe
                if end_of_epoch:
                    state.epoch_losses.append(state.loss_sum / state.loss_count)
                    state.loss_sum, state.loss_count = 0.0, 0
                    state.epoch, state.step = epoch + 1, 0
                else:
                    state.step = step + 1
                if not (end_of_epoch and state.epoch == epochs):
                    hooks.after_step(unit, state, opt, end_of_epoch)
    return state


def _shard(idx: torch.Tensor, world: int, rank: int) -> tuple[torch.Tensor, float]:
    """This rank's contiguous part of the global batch `idx` and its share of it. A rank left
    without samples (a last batch smaller than the world) runs one sample with weight 0."""
    if world == 1:
        return idx, 1.0
    local = torch.tensor_split(idx, world)[rank]
    if len(local) == 0:
        return idx[:1], 0.0
    return local, len(local) / len(idx)


def _step_losses(total, parts, weight: float) -> tuple[float, dict]:
    """The step's loss and terms for the log: the global batch's (weighted sums over ranks)."""
    labels = list(parts)
    values = [float(total.detach())] + [float(parts[k][0].detach()) if parts[k][1] else 0.0 for k in labels]
    counted = [1.0 if parts[k][1] else 0.0 for k in labels]
    if not dist.active():
        return values[0], {k: (values[i + 1] if counted[i] else None) for i, k in enumerate(labels)}
    packed = torch.tensor([v * weight for v in values] + counted, dtype=torch.float64)
    dist.all_reduce_sum(packed)
    terms = {k: (float(packed[i + 1]) if packed[len(values) + i] > 0 else None) for i, k in enumerate(labels)}
    return float(packed[0]), terms


@contextmanager
def deterministic():
    """torch.use_deterministic_algorithms (warn only) for the body: a seed gives the same run."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _draws(stage, pipeline, seed: int):
    """`draws = step`: every forward of the defense in this step makes the same random draw (on
    batches of the same size: with a list of eps, each eps group of the inputs draws its own)."""
    if getattr(stage, "draws", "call") == "step" and pipeline is not None:
        return pipeline.fixed_draws(seed)
    return contextlib.nullcontext()


def finite_weights(modules: dict) -> str | None:
    """The first non-finite weight as 'model: tensor', or None when all are finite."""
    for name, module in modules.items():
        for key, t in module.state_dict().items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return f"{name}: {key}"
    return None
