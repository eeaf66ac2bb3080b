"""Pass 3, kinds, parts and shapes: walk the pipeline with the kind of value flowing into each
stage, ask each op's shape rule for its output, and build the plan on the way.

    dwt -> <LL: downup(3)> -> idwt      # on image[1,28,28]: E330 at `3`, 14 is not divisible by 3
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import DiagnosticSink, did_you_mean
from ..kinds import Kind, PartsKind, TensorKind, kind_name
from ..plan import BlockStep, OpStep, PartMapStep, SeqStep, SharedStep
from ..registry import REQUIRED, KindError, Param, get_op
from ..syntax import nodes as n
from ..syntax.printer import expr as show
from .bind import bind_args
from .limits import StageBudget
from .substitute import expand_for, substitute
from .resolve import Scope


@dataclass
class InferContext:
    """What shape rules may look at beyond their input: the pipeline's own input kind and the
    compile environment (the recipe's classifier, the folder weight files are read from). A block's
    rule also sees its branches' plan steps (`branches`) and the steps of the lets they use
    (`lets`, name -> step), e.g. `ufuse` checks that each branch filters with a `kpfilter`; `values`
    is what enclosing blocks share with the ops inside them (OpSpec.shares)."""

    input_kind: TensorKind
    env: object = None
    branches: tuple = ()
    lets: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)


@dataclass
class Env:
    scope: Scope
    ctx: InferContext
    sink: DiagnosticSink
    shared: dict = field(default_factory=dict)       # let name -> (input kind, step)
    expanding: tuple = ()                             # defs being expanded, outermost first
    budget: StageBudget = field(default_factory=StageBudget)  # stages unfolded so far (E235)


def infer(expr, inp: Kind | None, env: Env):
    """(plan step, output kind) for `expr` applied to a value of kind `inp`; (None, None) on error."""
    if inp is None:
        return None, None
    if isinstance(expr, (n.Call, n.Block)):
        env.budget.spend(expr)
    if isinstance(expr, n.Seq):
        steps = []
        kind = inp
        for s in expr.steps:
            step, kind = infer(s, kind, env)
            if step is None:
                return None, None
            steps.append(step)
        return SeqStep(tuple(steps), inp, kind), kind
    if isinstance(expr, n.Call):
        return _call(expr, inp, env)
    if isinstance(expr, n.Block):
        return _block(expr, inp, env)
    if isinstance(expr, n.PartMap):
        return _partmap(expr, inp, env)
    if isinstance(expr, (n.Sum, n.Product, n.Neg)):
        env.sink.add("E208", f"'{show(expr)}' is arithmetic, not a pipeline stage", expr.span,
                     hint="'+' and '*' weigh loss terms in a recipe's train section")
        return None, None
    env.sink.add("E207", f"expected a stage, got {show(expr)}", expr.span,
                 hint="stages are ops such as dwt, conv(32) or <LL: downup>")
    return None, None


def _call(call: n.Call, inp: Kind, env: Env):
    scope = env.scope
    if call.name in scope.lets:
        return _shared(call, inp, env)
    if call.name in scope.defs:
        return _expand_def(call, inp, env)
    spec = get_op(call.name)
    if spec is None:  # a name the name pass could not see: one passed as an argument, `f(foo)`
        return _unknown(call, env)
    if spec.is_block:
        env.sink.add("E233", f"'{call.name}' needs branches", call.span,
                     hint=f"write {call.name} {{ p | q }}")
        return None, None
    args = bind_args(call.name, spec.params, call, env.sink)
    if args is None or not _accepts(spec, call, inp, env):
        return None, None
    out = _run_infer(spec, call, args, inp, env)
    if out is None:
        return None, None
    return OpStep(call.name, tuple(args.items()), inp, out, spec.flag("learnable", args),
                  spec.flag("differentiable", args), spec.flag("random", args), call.name_span), out


def _unknown(call: n.Call, env: Env):
    env.sink.add("E201", f"unknown operator '{call.name}'", call.name_span,
                 hint=did_you_mean(call.name, env.scope.names()) or "run `fif ops` to list the ops")
    return None, None


def _accepts(spec, call, inp, env) -> bool:
    if kind_name(inp) in spec.accepts:
        return True
    want = " or ".join(spec.accepts)
    hint = None
    if isinstance(inp, PartsKind):
        hint = f"apply it to parts with a part map, e.g. <{', '.join(inp.names[:2])}: {call.name}>, or invert first"
    elif "parts" in spec.accepts:
        hint = f"'{call.name}' undoes a transform such as dwt; put that transform before it"
    elif kind_name(inp) == "logits":
        hint = "logits come last: nothing but a classifier's output follows"
    env.sink.add("E301", f"'{call.name}' takes {want}, got {inp}", call.name_span, hint=hint)
    return False


def _run_infer(spec, call, args, inp, env, *extra, ctx=None):
    try:
        return spec.infer(inp, args, ctx or env.ctx, *extra)
    except KindError as e:
        span = call.name_span
        if e.param:
            for a in call.args:
                if a.name == e.param:
                    span = a.value.span
                    break
            else:
                positional = [a for a in call.args if a.name is None]
                names = [p.name for p in spec.params]
                if e.param in names and names.index(e.param) < len(positional):
                    span = positional[names.index(e.param)].value.span
        env.sink.add(e.code, e.message, span, hint=e.hint)
        return None


def _shared(call: n.Call, inp: Kind, env: Env):
    name = call.name
    if call.args:
        env.sink.add("E234", f"'{name}' is a let binding and takes no arguments", call.span,
                     hint="use `def` for a pipeline with parameters")
        return None, None
    if name in env.shared:
        first_inp, step = env.shared[name]
        if step is None:
            return None, None
        if getattr(first_inp, "shape", first_inp) != getattr(inp, "shape", inp) or type(first_inp) is not type(inp):
            env.sink.add("E340", f"'{name}' shares its weights, so every use needs the same input; "
                         f"first used on {first_inp}, here on {inp}", call.span,
                         hint="use `def` for a pipeline that may run on different inputs")
            return None, None
        return SharedStep(name, inp, step.out), step.out
    env.shared[name] = (inp, None)
    step, out = infer(env.scope.lets[name].value, inp, env)
    env.shared[name] = (inp, step)
    if step is None:
        return None, None
    return SharedStep(name, inp, out), out


def _expand_def(call: n.Call, inp: Kind, env: Env):
    d = env.scope.defs[call.name]
    # No guard against `f` inside `f`: the name pass rejects recursive defs (E203), and `f(f(id))`
    # is fine: it expands f with the argument f(id).
    mapping = _bind_def(d, call, env)
    if mapping is None:
        return None, None
    body = substitute(d.body, mapping)
    sub = Env(env.scope, env.ctx, env.sink, env.shared, env.expanding + (call.name,), env.budget)
    return infer(body, inp, sub)


def _bind_def(d: n.Def, call: n.Call, env: Env):
    """A def's parameters bind like an op's, each taking an expression: `band(1/6)`."""
    params = tuple(Param(p.name, "pipeline", REQUIRED if p.default is None else p.default) for p in d.params)
    return bind_args(d.name, params, call, env.sink)


def _block(block: n.Block, inp: Kind, env: Env):
    call = block.call
    spec = get_op(call.name)
    if call.name in env.scope.lets or call.name in env.scope.defs or (spec is not None and not spec.is_block):
        env.sink.add("E230", f"'{call.name}' takes no branches", block.span,
                     hint="block ops include " + ", ".join(_block_ops()))
        return None, None
    if spec is None:
        return _unknown(call, env)
    args = bind_args(call.name, spec.params, call, env.sink)
    branches = _expand_branches(block, env)
    if args is None or branches is None or not _accepts(spec, call, inp, env):
        return None, None
    lo, hi = spec.branches
    if len(branches) < lo or (hi is not None and len(branches) > hi):
        want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
        env.sink.add("E231", f"'{call.name}' takes {want} branch(es), got {len(branches)}", block.span)
        return None, None
    shares = spec.shares(args, inp) if spec.shares is not None else None
    inner = env if not shares else Env(env.scope, replace(env.ctx, values={**env.ctx.values, **shares}),
                                       env.sink, env.shared, env.expanding)
    steps, kinds = [], []
    for b in branches:
        step, kind = infer(b, inp, inner)
        steps.append(step)
        kinds.append(kind)
    if any(s is None for s in steps):
        return None, None
    lets = {name: s for name, (_, s) in env.shared.items() if s is not None}
    out = _run_infer(spec, call, args, inp, env, kinds, ctx=replace(env.ctx, branches=tuple(steps), lets=lets))
    if out is None:
        return None, None
    return BlockStep(call.name, tuple(args.items()), inp, out,
                     spec.flag("learnable", args) or any(_learnable(s, env) for s in steps),
                     spec.flag("differentiable", args), spec.flag("random", args), call.name_span,
                     branches=tuple(steps)), out


def _learnable(step, env: Env) -> bool:
    """Whether a branch has weights anywhere: inside sequences, part maps and shared `let`s too."""
    if isinstance(step, SharedStep):
        shared = env.shared.get(step.name)
        return shared is not None and shared[1] is not None and _learnable(shared[1], env)
    if isinstance(step, SeqStep):
        return any(_learnable(s, env) for s in step.steps)
    if isinstance(step, PartMapStep):
        return any(_learnable(s, env) for _, s in step.parts)
    return getattr(step, "learnable", False)


def _block_ops():
    from ..registry import all_ops
    return [name for name, s in all_ops().items() if s.is_block]


def _expand_branches(block: n.Block, env: Env):
    out, ok = [], True
    for b in block.branches:
        if not isinstance(b, n.ForBranch):
            out.append(b)
            continue
        got, err = expand_for(b)
        if err is not None:
            code, message, span, hint = err
            env.sink.add(code, message, span, hint=hint)
            ok = False
            continue
        out += got
    return out if ok else None


def _partmap(pm: n.PartMap, inp: Kind, env: Env):
    if not isinstance(inp, PartsKind):
        env.sink.add("E310", f"a part map needs a value made of parts, got {inp}", pm.span,
                     hint="split it first, e.g. dwt -> <LL: downup> -> idwt")
        return None, None
    valid = inp.names
    assigned: dict[str, n.Expr] = {}
    star = None
    ok = True
    for g in pm.groups:
        for p in g.names:
            if p.name == "*":
                if star is not None:
                    env.sink.add("E313", "'*' is named twice", p.span)
                    ok = False
                star = g.body
                continue
            if p.name not in valid:
                env.sink.add("E311", f"no part '{p.name}'; this value has {', '.join(valid)}", p.span,
                             hint=did_you_mean(p.name, valid))
                ok = False
            elif p.name in assigned:
                env.sink.add("E312", f"part '{p.name}' is named twice", p.span,
                             hint="give each part one pipeline")
                ok = False
            else:
                assigned[p.name] = g.body
    if not ok:
        return None, None
    if star is not None:
        for name in valid:
            assigned.setdefault(name, star)
    parts, new_kinds = [], {}
    for name in valid:
        if name not in assigned:
            continue
        step, kind = infer(assigned[name], inp.part(name), env)
        if step is None:
            ok = False
            continue
        parts.append((name, step))
        new_kinds[name] = kind
    if not ok:
        return None, None
    out = inp.replace_parts(new_kinds)
    return PartMapStep(tuple(parts), inp, out), out
