"""Passes from syntax tree to plan, each a small pure function over the tree:

resolve (names) -> bind (arguments) and infer (kinds, parts, shapes) -> check (whole pipeline).
Every pass collects its diagnostics; they are reported together, sorted by position.
"""

from __future__ import annotations

from ..errors import DiagnosticSink, FifError, diagnostic
from ..kinds import TensorKind
from ..plan import Plan
from ..syntax import nodes as n
from .check import check_plan
from .infer import Env, InferContext, infer
from .limits import check_depth, too_deep
from .resolve import resolve


def main_expression(program: n.Program):
    """(declarations, the pipeline to compile): the program's pipeline, or its recipe's defense."""
    decls = program.lets + program.defs
    if program.statements:
        return decls, program.statements[0].value
    recipes = program.recipes
    if len(recipes) == 1:
        entries = recipes[0].entries
        inner = [e for e in entries if isinstance(e, (n.Let, n.Def))]
        for e in entries:
            if isinstance(e, n.FieldEntry) and e.name == "defense":
                return decls + inner, e.value
        raise FifError(diagnostic("E419", f"recipe '{recipes[0].name}' has no `defense = ...`",
                                  recipes[0].name_span, hint="add a line such as `defense = bitdepth(4)`"))
    from ..errors import Span
    from ..syntax.parser import _end_position
    line, col = _end_position(program.source or "")
    raise FifError(diagnostic("E206", "there is no pipeline to compile: the program only declares names",
                              Span(line, col, col + 1),
                              hint="end the program with a pipeline, e.g. `dwt -> idwt`"))


def analyze(input_kind: TensorKind, expression, decls=(), *, env=None, source: str = "") -> Plan:
    """Run every pass over `expression` with `decls` in scope; raise one FifError with all
    diagnostics, or return the plan. `env` is the compile environment (fif.compiler.CompileEnv)."""
    sink = DiagnosticSink()
    scope = resolve(decls or [], expression, sink)
    sink.raise_if_any()
    env = Env(scope, InferContext(input_kind, env), sink)
    try:
        step, _ = infer(expression, input_kind, env)
    except RecursionError:  # lets and defs unfolding into each other hundreds of levels deep
        raise too_deep(expression) from None
    sink.raise_if_any()
    shared = tuple((name, s) for name, (_, s) in env.shared.items())
    plan = Plan(source, input_kind, step, shared)
    if check_depth(plan, sink):
        check_plan(plan, sink)
    sink.raise_if_any()
    return plan
