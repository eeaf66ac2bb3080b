"""Pass 1, names: every stage names a known op, `let` or `def`; lets and defs are unique and not
recursive. Unknown names get a did-you-mean hint.

    dwt -> <LL: downpu> -> idwt      # E201 unknown operator 'downpu'; did you mean 'downup'?
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DiagnosticSink, did_you_mean
from ..registry import all_ops
from ..syntax import nodes as n


@dataclass
class Scope:
    lets: dict[str, n.Let] = field(default_factory=dict)
    defs: dict[str, n.Def] = field(default_factory=dict)

    def names(self):
        return list(self.lets) + list(self.defs) + list(all_ops())


def collect_scope(decls, sink: DiagnosticSink, scope: Scope | None = None) -> Scope:
    """Gather `let` and `def` declarations; E204 for a name declared twice or shadowing an op."""
    scope = scope or Scope()
    ops = all_ops()
    for d in decls:
        if not isinstance(d, (n.Let, n.Def)):
            continue
        if d.name in scope.lets or d.name in scope.defs:
            sink.add("E204", f"'{d.name}' is declared twice", d.name_span,
                     hint="rename one of them")
            continue
        if d.name in ops:
            sink.add("E205", f"'{d.name}' is already an op; a declaration may not hide it", d.name_span,
                     hint=f"rename it, e.g. '{d.name}_1'")
            continue
        if isinstance(d, n.Def):
            seen = set()
            for p in d.params:
                if p.name in seen:
                    sink.add("E204", f"parameter '{p.name}' of '{d.name}' is declared twice", p.span,
                             hint="rename one of them")
                seen.add(p.name)
        (scope.lets if isinstance(d, n.Let) else scope.defs)[d.name] = d
    return scope


def stage_calls(expr, params: frozenset = frozenset()):
    """Yield (call, is_block) for every call in a pipeline position, skipping def parameters."""
    if isinstance(expr, n.Call):
        if expr.name not in params:
            yield expr, False
    elif isinstance(expr, n.Block):
        yield expr.call, True
        for b in expr.branches:
            if isinstance(b, n.ForBranch):
                yield from stage_calls(b.body, params | set(b.names))
            else:
                yield from stage_calls(b, params)
    elif isinstance(expr, n.Seq):
        for s in expr.steps:
            yield from stage_calls(s, params)
    elif isinstance(expr, n.PartMap):
        for g in expr.groups:
            yield from stage_calls(g.body, params)


def named(expr, params: frozenset = frozenset()):
    """Yield every name used anywhere in `expr`, arguments included (`f(a)` names f and a), except
    def parameters and `for` variables. Recursion here is bounded by the parser's MAX_NESTING."""
    if isinstance(expr, n.Call):
        if expr.name not in params:
            yield expr.name
        for a in expr.args:
            yield from named(a.value, params)
    elif isinstance(expr, n.ForBranch):
        yield from named(expr.iterable, params)
        yield from named(expr.body, params | set(expr.names))
    elif isinstance(expr, n.Block):
        yield from named(expr.call, params)
        for b in expr.branches:
            yield from named(b, params)
    elif isinstance(expr, n.PartMap):
        for g in expr.groups:
            yield from named(g.body, params)
    elif isinstance(expr, n.Neg):
        yield from named(expr.value, params)
    else:
        for child in getattr(expr, "steps", ()) + getattr(expr, "terms", ()) + \
                getattr(expr, "factors", ()) + getattr(expr, "items", ()):
            yield from named(child, params)


def check_names(expr, scope: Scope, sink: DiagnosticSink, params: frozenset = frozenset()) -> None:
    """E201 for every stage whose name is not an op, let or def."""
    known = set(scope.lets) | set(scope.defs) | set(all_ops())
    for call, _ in stage_calls(expr, params):
        if call.name not in known:
            sink.add("E201", f"unknown operator '{call.name}'", call.name_span,
                     hint=did_you_mean(call.name, scope.names()) or "run `fif ops` to list the ops")


def check_recursion(scope: Scope, sink: DiagnosticSink) -> None:
    """E203 for a let or def that uses itself, directly or through others, also as an argument
    or a default (`let a = f(a)`, `def f(x=f) = x`): expanding it would never end."""
    def uses(name):
        decl = scope.lets.get(name) or scope.defs.get(name)
        if isinstance(decl, n.Let):
            exprs, params = [decl.value], frozenset()
        else:
            exprs = [decl.body] + [p.default for p in decl.params if p.default is not None]
            params = frozenset(p.name for p in decl.params)
        return {u for e in exprs for u in named(e, params) if u in scope.lets or u in scope.defs}

    for start in list(scope.lets) + list(scope.defs):
        seen, stack = set(), list(uses(start))
        while stack:
            cur = stack.pop()
            if cur == start:
                decl = scope.lets.get(start) or scope.defs.get(start)
                sink.add("E203", f"'{start}' uses itself", decl.name_span,
                         hint="a pipeline cannot contain itself; repeat it explicitly instead")
                break
            if cur not in seen:
                seen.add(cur)
                stack.extend(uses(cur))


def resolve(decls, main, sink: DiagnosticSink) -> Scope:
    """Collect declarations and check every name used as a stage."""
    scope = collect_scope(decls, sink)
    for d in scope.lets.values():
        check_names(d.value, scope, sink)
    for d in scope.defs.values():
        check_names(d.body, scope, sink, frozenset(p.name for p in d.params))
    if main is not None:
        check_names(main, scope, sink)
    check_recursion(scope, sink)
    return scope
