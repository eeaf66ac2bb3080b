"""The plan: a torch-free, printable description of a checked pipeline, cached by canonical text.

    plan = fif.compiler.plan_for("dwt -> <LL: downup> -> idwt", (1, 28, 28))
    for row in plan.rows(): print(row)      # op, kind, shape, parameters, flags

Every name is resolved, every argument bound and every kind and shape known: `build` turns a plan
into modules without checking anything again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from .errors import Span
from .kinds import Kind, TensorKind, shape_of


@dataclass(frozen=True)
class OpStep:
    op: str
    args: tuple[tuple[str, Any], ...]
    inp: Kind
    out: Kind
    learnable: bool
    differentiable: bool
    random: bool
    span: Span = field(compare=False, repr=False, default=None)

    @property
    def kwargs(self) -> dict:
        return dict(self.args)


@dataclass(frozen=True)
class SeqStep:
    steps: tuple["Step", ...]
    inp: Kind
    out: Kind


@dataclass(frozen=True)
class PartMapStep:
    """Parts with a pipeline; every other part passes through unchanged."""

    parts: tuple[tuple[str, "Step"], ...]
    inp: Kind
    out: Kind


@dataclass(frozen=True)
class BlockStep(OpStep):
    """A block op `name(args) { p | q }`: an op step with sub-pipelines."""

    branches: tuple["Step", ...] = ()


@dataclass(frozen=True)
class SharedStep:
    """A use of `let name = ...`: every use of one name runs the same modules (shared weights)."""

    name: str
    inp: Kind
    out: Kind


Step = Union[OpStep, SeqStep, PartMapStep, BlockStep, SharedStep]


@dataclass(frozen=True)
class Plan:
    source: str
    input_kind: TensorKind
    root: Step
    shared: tuple[tuple[str, Step], ...] = ()

    @property
    def out(self) -> Kind:
        return self.root.out

    def ops(self):
        """Every op step, in order, with its path (`2.HH.0`), shared pipelines first."""
        for name, step in self.shared:
            yield from _walk(step, f"{name}")
        yield from _walk(self.root, "")

    def flags(self) -> dict[str, bool]:
        steps = [s for _, s in self.ops()]
        return {
            "learnable": any(s.learnable for s in steps),
            "differentiable": all(s.differentiable for s in steps),
            "random": any(s.random for s in steps),
        }

    def rows(self) -> list[dict]:
        """One row per op stage: path, op, kind, output shape, parameters, flags."""
        rows = []
        for path, s in self.ops():
            rows.append({
                "stage": path,
                "op": s.op,
                "input": str(s.inp),
                "kind": str(s.out).split("[")[0].split("{")[0],
                "output": str(s.out),
                "shape": shape_of(s.out),
                "params": {k: v for k, v in s.args},
                "learnable": s.learnable,
                "differentiable": s.differentiable,
                "random": s.random,
            })
        return rows


def _walk(step: Step, path: str):
    join = (lambda p, q: f"{p}.{q}" if p else str(q))
    if isinstance(step, BlockStep):
        yield path or "0", step
        for i, s in enumerate(step.branches):
            yield from _walk(s, join(path, f"b{i}"))
    elif isinstance(step, OpStep):
        yield path or "0", step
    elif isinstance(step, SeqStep):
        for i, s in enumerate(step.steps):
            yield from _walk(s, join(path, i))
    elif isinstance(step, PartMapStep):
        for name, s in step.parts:
            yield from _walk(s, join(path, name))
    elif isinstance(step, SharedStep):
        return
