"""Pass 2, arguments: match a call's arguments to typed parameters, at their positions. The one
binder: ops, attacks, losses, training inputs, optimizers, schedules, classifiers, data sources and
recipe fields all declare `fif.registry.Param`s and are bound here.

    chancompress(1/6, noise)   ->  {ratio: 0.1667, noise: 20.0, ...}
    chancompress(ratio=7)      ->  E224 at `7`: ratio must be in [0, 1]
    pgd(stepz=10)              ->  E221 at `stepz`: did you mean 'steps'?

A bare name that names a boolean (or flag-valued) parameter sets it: `noise` in the call above.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import DiagnosticSink, did_you_mean
from ..registry import Catalog, Param, param_list, type_parts
from ..syntax import nodes as n
from ..syntax.printer import expr as show
from .substitute import expand_items

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}

INVALID: Any = object()  # what bind_value gives back after reporting an error


class Bound(NamedTuple):
    """A name chosen from a catalog with its bound arguments: `pgd(steps=40)` -> ('pgd', {'steps': 40})."""

    name: str
    args: dict


class _Bad(Exception):
    def __init__(self, code, message, span, hint=None):
        self.code, self.message, self.span, self.hint = code, message, span, hint


class _Reported(Exception):
    """The errors are already in the sink (a nested call's arguments)."""


def signature(op: str, params) -> str:
    return f"{op}({param_list(params)})"


def bind_args(op: str, params: tuple[Param, ...], call: n.Call, sink: DiagnosticSink, *,
              fill_defaults: bool = True) -> dict | None:
    """Bound arguments by parameter name, or None after reporting errors. With `fill_defaults`
    every parameter is present (defaults filled), in declared order; without, only the ones the
    call gives, in the order written (so `cw(c=10, lr=0.1)` keeps its label)."""
    by_name = {p.name: p for p in params}
    bound: dict = {}
    spans: dict = {}
    ok = True
    order = [p for p in params if not p.keyword]  # what positional arguments bind to, in turn
    pos = 0

    def given(name):  # bound, or given with a bad value (already reported)
        return name in bound or name in spans

    for a in call.args:
        if a.name is not None:
            continue
        flag = _flag(a.value, by_name)
        if flag is not None and not given(flag.name):
            bound[flag.name] = flag.flag_value if flag.type != "bool" else True
            continue
        while pos < len(order) and given(order[pos].name):
            pos += 1
        if pos >= len(order):
            by_position = " by position" if len(order) < len(params) else ""
            sink.add("E220", f"'{op}' takes at most {len(order)} argument(s){by_position}", a.span,
                     hint=f"the signature is {signature(op, params)}")
            ok = False
            continue
        p = order[pos]
        pos += 1
        ok &= _put(p, a.value, bound, spans, sink)
    for a in call.args:
        if a.name is None:
            continue
        p = by_name.get(a.name)
        if p is None:
            sink.add("E221", f"'{op}' has no parameter '{a.name}'", a.name_span,
                     hint=did_you_mean(a.name, by_name) or f"the signature is {signature(op, params)}")
            ok = False
            continue
        if given(p.name):
            sink.add("E225", f"'{a.name}' is given twice", a.name_span,
                     hint="give each argument once")
            ok = False
            continue
        ok &= _put(p, a.value, bound, spans, sink)
    for p in params:
        if not given(p.name):
            if p.required:
                sink.add("E222", f"'{op}' needs the argument '{p.name}'", call.span,
                         hint=f"the signature is {signature(op, params)}")
                ok = False
            elif fill_defaults:
                bound[p.name] = _freeze(p.default)
    if not ok:
        return None
    return {p.name: bound[p.name] for p in params} if fill_defaults else dict(bound)


def bind_value(p: Param, value, sink: DiagnosticSink):
    """One value (a recipe field such as `eps = [0.1, 0.3]`) bound to `p`, or INVALID after
    reporting the error."""
    try:
        return convert(p, value, sink)
    except _Bad as b:
        sink.add(b.code, b.message, b.span, hint=b.hint)
    except _Reported:
        pass
    return INVALID


def bind_call(catalog: Catalog, node, sink: DiagnosticSink, *, fill_defaults: bool = False) -> Bound | None:
    """`name` or `name(args)` chosen from `catalog` (E251 / E202 / E226 for an unknown name, with
    did-you-mean), its arguments bound: `pgd(steps=40)` -> Bound('pgd', {'steps': 40})."""
    try:
        return _call(catalog, node, sink, fill_defaults)
    except _Bad as b:
        sink.add(b.code, b.message, b.span, hint=b.hint)
    except _Reported:
        pass
    return None


def _call(catalog: Catalog, node, sink, fill_defaults=False) -> Bound:
    entries = catalog.entries()
    if not isinstance(node, n.Call):
        raise _Bad("E223", f"expected {_a(catalog.what)} such as {next(iter(entries))}, got {show(node)}",
                   node.span)
    if node.name not in entries:
        raise _Bad(catalog.code, f"unknown {catalog.what} '{node.name}'", node.name_span,
                   hint=did_you_mean(node.name, entries) or f"choose one of {', '.join(entries)}")
    args = bind_args(node.name, entries[node.name], node, sink, fill_defaults=fill_defaults)
    if args is None:
        raise _Reported()
    return Bound(node.name, args)


def arg_span(params: tuple[Param, ...], call: n.Call, name: str):
    """Where the argument bound to parameter `name` is written in `call` (its value), else the call's
    span: `l1(sl)` -> the span of `sl` for `on`."""
    for a in call.args:
        if a.name == name:
            return a.value.span
    by_name = {p.name: p for p in params}
    named = {a.name for a in call.args if a.name is not None}
    free = [p.name for p in params if p.name not in named and not p.keyword]
    for a in call.args:
        if a.name is not None:
            continue
        flag = _flag(a.value, by_name)
        if flag is not None:
            if flag.name == name:
                return a.value.span
            free = [f for f in free if f != flag.name]
            continue
        if free and free.pop(0) == name:
            return a.value.span
    return call.span


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _flag(value, by_name):
    if isinstance(value, n.Call) and not value.args:
        p = by_name.get(value.name)
        if p is not None and (p.type == "bool" or p.flag_value is not None):
            return p
    return None


def _put(p: Param, value, bound, spans, sink) -> bool:
    spans[p.name] = value.span
    try:
        bound[p.name] = convert(p, value, sink)
        return True
    except _Bad as b:
        sink.add(b.code, b.message, b.span, hint=b.hint)
    except _Reported:
        pass
    return False


def _freeze(v):
    return tuple(v) if isinstance(v, list) else v


def number(value) -> int | float | None:
    """The number a literal denotes (`3`, `0.5`, `1/6`, `-1/6`), else None."""
    if isinstance(value, n.Number):
        return value.value
    if isinstance(value, n.Fraction):
        return value.value
    if isinstance(value, n.Neg):
        inner = number(value.value)
        return None if inner is None else -inner
    return None


def convert(p: Param, value, sink: DiagnosticSink):
    """Convert one literal to the parameter's type, or raise _Bad (_Reported when the errors,
    several perhaps, are already in `sink`). Lists come back as tuples. A `|call` alternative
    binds any name or call against the catalog: `eps=uniform(0, 0.3)` -> Bound('uniform', ...)."""
    if p.type.endswith("|call") and isinstance(value, n.Call):
        return _call(p.catalog, value, sink, fill_defaults=True)
    scalar, item = type_parts(p.type)
    if item is not None and isinstance(value, n.ListLit):
        items, err = expand_items(value.items)  # `[for q in [90, 80]: jpeg(q)]` is two items
        if err is not None:
            raise _Bad(*err)
        if p.size is not None and len(items) != p.size:
            raise _Bad("E223", f"'{p.name}' takes a list of {p.size}, got {len(items)} item(s)",
                       value.span)
        if scalar == item and not items:
            raise _Bad("E223", f"'{p.name}' needs at least one value", value.span)
        one, out, failed = _scalar(p, item), [], False
        for v in items:  # every bad item is reported
            try:
                out.append(convert_scalar(one, v, sink))
            except _Bad as b:
                sink.add(b.code, b.message, b.span, hint=b.hint)
                failed = True
            except _Reported:
                failed = True
        if failed:
            raise _Reported()
        return tuple(out)
    if scalar is None:
        want = {"int": "integers", "float": "numbers"}.get(item, f"{item}s")
        raise _Bad("E223", f"'{p.name}' takes a list of {want}, got {show(value)}", value.span,
                   hint=f"write e.g. {p.name}=[1, 2]")
    one = convert_scalar(p if scalar == p.type else _scalar(p, scalar), value, sink)
    return (one,) if scalar == item else one


def _scalar(p: Param, t: str) -> Param:
    return Param(p.name, t, low=p.low, high=p.high, choices=p.choices, low_open=p.low_open,
                 high_open=p.high_open, catalog=p.catalog, shorthand=p.shorthand)


def convert_scalar(p: Param, value, sink: DiagnosticSink):
    t = p.type
    if t == "pipeline":
        return value
    if t == "call":
        num = number(value)
        if num is not None and p.shorthand is not None:
            name, key = p.shorthand
            value = n.Call(name, (n.Arg(key, value, value.span, value.span),), value.span, value.span)
        return _call(p.catalog, value, sink)
    if t == "bool":
        if isinstance(value, n.Call) and not value.args and value.name.lower() in _TRUE | _FALSE:
            return value.name.lower() in _TRUE
        if isinstance(value, n.Number) and value.value in (0, 1):
            return bool(value.value)
        raise _Bad("E223", f"'{p.name}' takes true or false, got {show(value)}", value.span)
    if t in ("str", "choice"):
        if isinstance(value, n.Call) and not value.args:
            text = value.name
        elif isinstance(value, n.String):
            text = value.value
        else:
            raise _Bad("E223", f"'{p.name}' takes a name, got {show(value)}", value.span)
        if t == "choice" and text not in p.choices:
            raise _Bad("E226", f"'{text}' is not a valid {p.name}", value.span,
                       hint=did_you_mean(text, map(str, p.choices))
                       or f"choose one of {', '.join(map(str, p.choices))}")
        return text
    if t == "channels" and isinstance(value, n.Call) and not value.args and value.name == "input":
        return "input"
    num = number(value)
    if num is None:
        want = {"int": "an integer", "channels": "an integer or `input`"}.get(t, "a number")
        raise _Bad("E223", f"'{p.name}' takes {want}, got {show(value)}", value.span)
    if t in ("int", "channels"):
        if isinstance(num, float):
            if not num.is_integer() or not isinstance(value, n.Number):
                raise _Bad("E223", f"'{p.name}' takes an integer, got {show(value)}", value.span,
                           hint=f"write {round(num)}")
            num = int(num)
    elif t == "float":
        num = float(num)
    if not in_range(p, num):
        lo = "-inf" if p.low is None else f"{p.low:g}"
        hi = "inf" if p.high is None else f"{p.high:g}"
        left, right = "(" if p.low_open or p.low is None else "[", ")" if p.high_open or p.high is None else "]"
        raise _Bad("E224", f"'{p.name}' must be in {left}{lo}, {hi}{right}, got {show(value)}", value.span)
    return num


def in_range(p: Param, num) -> bool:
    if p.low is not None and (num <= p.low if p.low_open else num < p.low):
        return False
    if p.high is not None and (num >= p.high if p.high_open else num > p.high):
        return False
    return True


def thaw(v):
    """Bound values as recipe containers hold them: lists, not tuples; plain dicts."""
    if isinstance(v, Bound):
        return Bound(v.name, thaw(v.args))
    if isinstance(v, tuple):
        return [thaw(x) for x in v]
    if isinstance(v, dict):
        return {k: thaw(x) for k, x in v.items()}
    return v
