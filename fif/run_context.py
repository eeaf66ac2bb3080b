"""The run context: what one forward pass of a pipeline needs besides its input.

    y = pipeline(x)                                         # deployed view, the global RNG
    y = pipeline(x, generator=torch.Generator().manual_seed(0))   # a reproducible draw
    y = pipeline.attack_view()(x)                           # BPDA through non-differentiable ops

Ops see it as `forward(self, x, ctx)` when their forward names a `ctx` parameter (random ops and
block ops do); plain ops keep `forward(self, x)`. A block can draw one random value per sample and
hand it to its branches with `ctx.with_values(mask=m)`: DIR's complementary masks
(`masks(k=2) { ... }`) draw K complementary masks per sample and run the body once on all K*N
views, each with its own mask.

The values in use: `mask` ([K*N, 1, H, W], 1 = visible) and `patch` (set by `masks` for the ops in
its body, e.g. `vitdenoise`); `views` (a list a caller passes in to collect what a masks block
restores from each view, for a per-view loss); `identity_lets` (let names whose output passes the
identity gradient backward: BPDA over a whole defense, `Pipeline.attack_view(identity=...)`).

Random draws are per sample and per call: `ctx.randn(shape, like=x)` draws a fresh tensor of the
full batch shape from the context's generator (or the global RNG when there is none).

Diagnostics: a caller that passes `values={"record": {}}` collects what ops report with
`ctx.record(key, tensor)` (per-sample means, detached), e.g. the fusion weight of `ufuse`:

    rec = {}; pipeline(x, ctx=RunContext(values={"record": rec}))     # rec["W"]: [N] mean weights
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

import torch


@dataclass(frozen=True)
class RunContext:
    """attack_view: non-differentiable ops pass their surrogate gradient backward (BPDA).
    generator: where random ops draw from (None: torch's global RNG).
    values: what an enclosing block shares with the ops inside it (read-only)."""

    attack_view: bool = False
    generator: torch.Generator | None = None
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def with_values(self, **values) -> "RunContext":
        """A context for a branch: the same view and generator, plus `values`."""
        return replace(self, values=MappingProxyType({**self.values, **values}))

    def _draw(self, fn, shape, like: torch.Tensor) -> torch.Tensor:
        if self.generator is None:
            return fn(shape, device=like.device, dtype=like.dtype)
        if self.generator.device == like.device:
            return fn(shape, generator=self.generator, device=like.device, dtype=like.dtype)
        return fn(shape, generator=self.generator, device=self.generator.device, dtype=like.dtype).to(like.device)

    def randn(self, shape, like: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of `shape` on `like`'s device and dtype."""
        return self._draw(torch.randn, tuple(shape), like)

    def rand(self, shape, like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) noise of `shape` on `like`'s device and dtype."""
        return self._draw(torch.rand, tuple(shape), like)

    def record(self, key: str, value: torch.Tensor) -> None:
        """Append the per-sample mean of `value` ([N, ...]) to values["record"][key], when the caller
        asked for diagnostics; otherwise do nothing."""
        sink = self.values.get("record")
        if sink is not None:
            sink.setdefault(key, []).append(value.detach().flatten(1).mean(1).cpu())


DEPLOYED = RunContext()
ATTACK = RunContext(attack_view=True)


def context_for(attack_view: bool = False, generator: torch.Generator | None = None) -> RunContext:
    if generator is None:
        return ATTACK if attack_view else DEPLOYED
    if not isinstance(generator, torch.Generator):
        from .errors import error
        raise error("E503", f"generator must be a torch.Generator, got {type(generator).__name__}",
                    hint="e.g. generator=torch.Generator().manual_seed(0)")
    return RunContext(attack_view=attack_view, generator=generator)
