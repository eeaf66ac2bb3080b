"""Limits on what a program may expand to once lets, defs and `for` branches are unfolded: how
deep (E209) and how many stages (E235). The parser bounds the text itself (E108, MAX_NESTING).

    def d(x) = x -> x;  d(d(d(d(d(d(d(d(d(d(d(d(d(d(d(d(d(d(id))))))))))))))))))   # E235
"""

from __future__ import annotations

from ..errors import DiagnosticSink, FifError, diagnostic
from ..plan import BlockStep, OpStep, PartMapStep, Plan, SeqStep, SharedStep
from ..syntax.parser import MAX_NESTING

# How deep the plan may nest, lets entered (E209). Text within MAX_NESTING gives at most
# 2 * MAX_NESTING + 1 levels (a block or part map and the sequence inside it); a running pipeline
# spends about 7 Python frames a level, so this stays far below Python's recursion limit.
MAX_DEPTH = 2 * MAX_NESTING + 8

# How many stages one pipeline may unfold to (E235): nested `for`s and defs multiply.
MAX_STAGES = 20_000


class StageBudget:
    """Counts the stages the kind pass unfolds; E235 at the one past MAX_STAGES."""

    def __init__(self):
        self.used = 0

    def spend(self, expr) -> None:
        self.used += 1
        if self.used > MAX_STAGES:
            raise FifError(diagnostic(
                "E235", f"the pipeline unfolds to more than {MAX_STAGES} stages", expr.span,
                hint="nested `for` branches and defs that use their argument twice multiply"))


def check_depth(plan: Plan, sink: DiagnosticSink) -> bool:
    """E209 (and False) when the plan, lets entered, nests deeper than MAX_DEPTH; the error points
    at the op where the limit is crossed. Iterative, so it is safe on any depth."""
    shared = dict(plan.shared)
    depth = _depths(plan.root, shared)
    if depth[id(plan.root)] <= MAX_DEPTH:
        return True
    step, level = plan.root, 1
    while level <= MAX_DEPTH or not isinstance(step, OpStep):
        kids = _children(step, shared)
        if not kids:
            break
        step = max(kids, key=lambda k: depth[id(k)])
        level += 1
    sink.add("E209", f"the pipeline nests {depth[id(plan.root)]} levels deep once lets and defs are "
             f"expanded; at most {MAX_DEPTH} are allowed", getattr(step, "span", None),
             hint="nest fewer blocks, part maps and lets inside one another")
    return False


def too_deep(expression) -> FifError:
    """E209 for lets and defs that unfold hundreds of levels deep (the kind pass ran out of stack)."""
    return FifError(diagnostic("E209", "the pipeline nests too deeply once lets and defs are expanded",
                               getattr(expression, "span", None),
                               hint="nest fewer blocks, part maps and lets inside one another"))


def _children(step, shared) -> tuple:
    if isinstance(step, SeqStep):
        return step.steps
    if isinstance(step, BlockStep):
        return step.branches
    if isinstance(step, PartMapStep):
        return tuple(s for _, s in step.parts)
    if isinstance(step, SharedStep) and step.name in shared:
        return (shared[step.name],)
    return ()


def _depths(root, shared) -> dict[int, int]:
    """Levels below and including each step, by id; every shared pipeline is visited once."""
    depth: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        step, ready = stack.pop()
        if id(step) in depth:
            continue
        kids = _children(step, shared)
        if ready:
            depth[id(step)] = 1 + max((depth[id(k)] for k in kids), default=0)
        else:
            stack.append((step, True))
            stack.extend((k, False) for k in kids if id(k) not in depth)
    return depth
