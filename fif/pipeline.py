"""`fif.Pipeline`: the compiled defense, a torch.nn.Module whose repr is its canonical source.

    p = fif.compile("dwt -> <HH, HL, LH: chancompress(1/6, noise), LL: downup> -> idwt", input_shape=(1, 28, 28))
    y = p(x)                       # the defense as deployed, true gradients
    y = p.attack_view()(x)         # BPDA through non-differentiable ops, fresh randomness per call
    y = p(x, generator=torch.Generator().manual_seed(0))   # random ops draw reproducibly
    with p.fixed_draws(7): p(x); p.attack_view()(x)         # the same draw at every call (same batch size)
    p.save("acm.safetensors"); q = fif.load("acm.safetensors")
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from .errors import FifError, diagnostic
from .kinds import shape_of
from .plan import Plan
from .node_call import call
from .run_context import DEPLOYED, context_for

FORMAT = "fif-pipeline/1"


class Pipeline(nn.Module):
    def __init__(self, plan: Plan, root: nn.Module, shared: nn.ModuleDict, env=None):
        super().__init__()
        self.plan = plan
        self.shared = shared
        self.root = root
        self.env = env
        self._draw_seed: int | None = None
        self._input_shape = tuple(plan.input_kind.shape)   # forward's check, without the property chain
        self.reuses_lets = False   # set by build: a pure let used twice runs once per call

    # -- what it is ------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self.plan.source

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.plan.input_kind.shape

    @property
    def output_kind(self):
        return self.plan.out

    @property
    def output_shape(self):
        return shape_of(self.plan.out)

    @property
    def learnable(self) -> bool:
        return self.plan.flags()["learnable"]

    @property
    def differentiable(self) -> bool:
        return self.plan.flags()["differentiable"]

    @property
    def random(self) -> bool:
        return self.plan.flags()["random"]

    def stages(self) -> list[dict]:
        """The stage table `fif compile` prints, one row per op."""
        rows = self.plan.rows()
        params = _param_counts(self)
        for r in rows:
            r["weights"] = params.get(r["stage"], 0)
        return rows

    def __repr__(self) -> str:
        return self.source.rstrip("\n")

    # -- running ---------------------------------------------------------------------------
    def forward(self, x, *, generator=None, ctx=None):
        """The pipeline as deployed (true gradients). `generator` makes random ops reproducible;
        `ctx` (a fif.run_context.RunContext) is for callers that build their own."""
        if not isinstance(x, torch.Tensor) or x.shape[1:] != self._input_shape:   # also any x.dim() != 4
            got = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise FifError(diagnostic(
                "E501", f"this pipeline was compiled for inputs [N, {', '.join(map(str, self.input_shape))}], "
                f"got {got}",
                hint=f"compile it with input_shape={tuple(x.shape[1:]) if isinstance(x, torch.Tensor) and x.dim() == 4 else '(C, H, W)'}"))
        if ctx is None:
            ctx = DEPLOYED if generator is None else context_for(False, generator)
        if self._draw_seed is not None and ctx.generator is None:
            ctx = replace(ctx, generator=torch.Generator().manual_seed(self._draw_seed))
        if self.reuses_lets:
            ctx = ctx.with_values(lets={})   # this call's outputs of lets used more than once
        return call(self._modules["root"], x, ctx)

    @contextmanager
    def fixed_draws(self, seed: int):
        """Inside the block, every call that brings no generator of its own (deployed or attack
        view) draws from a generator freshly seeded with `seed`: random ops make the same draw at
        every call on a batch of the same size. DIR's per-batch masks (Alg. 1) and the attacker
        who knows the masks (Eq. 8) are this."""
        previous, self._draw_seed = self._draw_seed, int(seed)
        try:
            yield self
        finally:
            self._draw_seed = previous

    def attack_view(self, identity: tuple[str, ...] = ()) -> "AttackView":
        """The same defense (same weights) as an adaptive attacker should see it: every
        non-differentiable op passes its surrogate gradient backward (BPDA); random ops draw
        fresh randomness per call, so attacks average gradients over draws (EOT). `identity`
        names `let`s whose whole sub-pipeline passes the identity gradient backward (BPDA over a
        differentiable stage too, Athalye et al. 2018: `identity=("defense",)` in a model)."""
        return AttackView(self, tuple(identity))

    # -- saving ----------------------------------------------------------------------------
    def save(self, path) -> None:
        """(source, weights) in one safetensors file, written atomically."""
        from .models.weights import write_safetensors
        meta = {"format": FORMAT, "source": self.source, "input_shape": json.dumps(list(self.input_shape)),
                "input_kind": self.plan.input_kind.kind}
        write_safetensors(path, self.state_dict(), meta)


class AttackView(nn.Module):
    """See `Pipeline.attack_view`."""

    def __init__(self, pipeline: Pipeline, identity: tuple[str, ...] = ()):
        super().__init__()
        self.pipeline = pipeline
        self.identity = identity

    def forward(self, x, *, generator=None):
        ctx = context_for(True, generator)
        if self.identity:
            ctx = ctx.with_values(identity_lets=self.identity)
        return call(self._modules["pipeline"], x, ctx=ctx)

    def __repr__(self) -> str:
        shown = f", identity={list(self.identity)}" if self.identity else ""
        return f"attack_view({self.pipeline!r}{shown})"


def _param_counts(p: Pipeline) -> dict[str, int]:
    """Parameters per stage path, matching Plan.rows() paths (each node counts its own)."""
    counts: dict[str, int] = {}
    for name, m in p.shared.items():
        m.count_weights(name, counts)
    p.root.count_weights("", counts)
    return counts
