"""Pass 4, whole-pipeline checks that no single stage can make.

    bitdepth(4) on a stage that changes shape with no surrogate    # E350
"""

from __future__ import annotations

from ..errors import DiagnosticSink
from ..kinds import Kind
from ..plan import OpStep, Plan
from ..registry import get_op


def check_plan(plan: Plan, sink: DiagnosticSink) -> None:
    """E350: a non-differentiable op that changes its input's shape needs a declared surrogate,
    else the attack view could not pass a gradient through it."""
    for _, step in plan.ops():
        if not isinstance(step, OpStep) or step.differentiable:
            continue
        spec = get_op(step.op)
        if spec is not None and spec.surrogate is None and not _same_shape(step.inp, step.out):
            sink.add("E350", f"'{step.op}' is not differentiable and changes {step.inp} into "
                     f"{step.out}, but declares no surrogate gradient", step.span,
                     hint="register it with surrogate=... so adaptive attacks can pass through it")


def _same_shape(a: Kind, b: Kind) -> bool:
    return getattr(a, "shape", None) == getattr(b, "shape", None) and type(a) is type(b)
