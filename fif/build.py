"""Plan -> modules: the only place torch modules are made. Nothing is checked here; the passes did it.

    pipeline = build(make_plan("dwt -> <LL: downup> -> idwt", (1, 28, 28)))
"""

from __future__ import annotations

from contextvars import ContextVar

import torch
from torch import nn

from .plan import BlockStep, OpStep, PartMapStep, Plan, SeqStep, SharedStep
from .registry import get_op

# True while an attack view runs: non-differentiable ops then pass their surrogate gradient (BPDA).
ATTACK_VIEW: ContextVar[bool] = ContextVar("fif_attack_view", default=False)


class OpNode(nn.Module):
    """One op. In the attack view a non-differentiable op returns its true output forward and the
    gradient of its surrogate (identity unless the op declares one) backward."""

    def __init__(self, step: OpStep | BlockStep, inner: nn.Module, surrogate):
        super().__init__()
        self.op = step.op
        self.differentiable = step.differentiable
        self.random = step.random
        self.inner = inner
        self._surrogate = surrogate
        self.branches: list[nn.Module] = []  # a block op's sub-pipelines (registered inside `inner`)

    def forward(self, x):
        if self.differentiable or not ATTACK_VIEW.get():
            return self.inner(x)
        return _bpda(self.inner, self._surrogate, x)

    def extra_repr(self):
        return f"op={self.op}"


def _bpda(inner, surrogate, x):
    with torch.no_grad():
        y = inner(x)
    g = x if surrogate is None else surrogate(inner, x)
    if isinstance(y, dict):
        return {k: g[k] + (y[k] - g[k]).detach() for k in y}
    return g + (y - g).detach()


class SeqNode(nn.Module):
    def __init__(self, stages):
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        for stage in self.stages:
            x = stage(x)
        return x


class PartMapNode(nn.Module):
    """Runs a pipeline on each named part; the other parts pass through."""

    def __init__(self, parts: dict[str, nn.Module]):
        super().__init__()
        self.parts = nn.ModuleDict(parts)

    def forward(self, value: dict):
        out = dict(value)
        for name, module in self.parts.items():
            out[name] = module(value[name])
        return out


class SharedNode(nn.Module):
    """A use of a `let` name: runs the pipeline's shared module, which it does not own."""

    def __init__(self, name: str, table: nn.ModuleDict):
        super().__init__()
        self.name = name
        self._table = [table]  # a list, so the shared weights are registered once, in the table

    def forward(self, x):
        return self._table[0][self.name](x)

    def extra_repr(self):
        return f"shared={self.name}"


def build_step(step, shared: nn.ModuleDict) -> nn.Module:
    if isinstance(step, SeqStep):
        return SeqNode([build_step(s, shared) for s in step.steps])
    if isinstance(step, PartMapStep):
        return PartMapNode({name: build_step(s, shared) for name, s in step.parts})
    if isinstance(step, SharedStep):
        return SharedNode(step.name, shared)
    spec = get_op(step.op)
    args = step.kwargs
    if isinstance(step, BlockStep):
        branches = [build_step(b, shared) for b in step.branches]
        node = OpNode(step, spec.build(args, step.inp, step.out, branches), spec.surrogate)
        node.branches = branches
        return node
    return OpNode(step, spec.build(args, step.inp, step.out), spec.surrogate)


def build(plan: Plan):
    """A fresh `fif.Pipeline` (new weights) for the plan."""
    from .pipeline import Pipeline
    shared = nn.ModuleDict()
    for name, step in plan.shared:
        shared[name] = build_step(step, shared)
    root = build_step(plan.root, shared)
    return Pipeline(plan, root, shared)
