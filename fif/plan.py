"""The plan: a torch-free, printable description of a checked pipeline, cached by canonical text.

    plan = make_plan("dwt -> <LL: downup> -> idwt", (1, 28, 28))
    for row in plan.rows(): print(row)      # op, kind, shape, parameters, flags

Every name is resolved, every argument bound and every kind and shape known: `build` turns a plan
into modules without checking anything again.
"""

from __future__ import annotations

from collections import OrderedDict
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


_CACHE: "OrderedDict[tuple, Plan]" = OrderedDict()
_CACHE_SIZE = 256


def make_plan(program, input_shape=(1, 28, 28), kind: str = "image") -> Plan:
    """Plan a program (text or parsed `Program`); cached by its canonical text and input kind."""
    from .errors import FifError
    from .passes import analyze
    from .registry import registry_version
    from .syntax import parse
    from .syntax.nodes import Program
    from .syntax.printer import format_program
    prog = program if isinstance(program, Program) else parse(program)
    shape = tuple(int(s) for s in input_shape)
    key = (format_program(prog), shape, kind, registry_version())
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    try:
        plan = analyze(prog, TensorKind(kind, *shape))
    except FifError as e:
        raise e.with_source(prog.source, prog.file) from None
    _CACHE[key] = plan
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return plan
