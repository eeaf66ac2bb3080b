"""Pass 2, arguments: match a call's arguments to an op's typed parameters, at their positions.

    chancompress(1/6, noise)   ->  {ratio: 0.1667, noise: 20.0, ...}
    chancompress(ratio=7)      ->  E224 at `7`: ratio must be in [0, 1]

A bare name that names a boolean (or flag-valued) parameter sets it: `noise` in the call above.
"""

from __future__ import annotations

from ..errors import DiagnosticSink, did_you_mean
from ..registry import Param
from ..syntax import nodes as n
from ..syntax.printer import expr as show

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


class _Bad(Exception):
    def __init__(self, code, message, span, hint=None):
        self.code, self.message, self.span, self.hint = code, message, span, hint


def signature(op: str, params) -> str:
    return f"{op}({', '.join(p.signature() for p in params)})"


def bind_args(op: str, params: tuple[Param, ...], call: n.Call, sink: DiagnosticSink) -> dict | None:
    """Bound arguments by parameter name (defaults filled), or None after reporting errors."""
    by_name = {p.name: p for p in params}
    bound: dict = {}
    spans: dict = {}
    ok = True
    order = list(params)
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
            sink.add("E220", f"'{op}' takes at most {len(params)} argument(s)", a.span,
                     hint=f"the signature is {signature(op, params)}")
            ok = False
            continue
        p = order[pos]
        pos += 1
        ok &= _put(op, p, a.value, bound, spans, sink)
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
        ok &= _put(op, p, a.value, bound, spans, sink)
    for p in params:
        if not given(p.name):
            if p.required:
                sink.add("E222", f"'{op}' needs the argument '{p.name}'", call.span,
                         hint=f"the signature is {signature(op, params)}")
                ok = False
            else:
                bound[p.name] = _freeze(p.default)
    return {p.name: bound[p.name] for p in params} if ok else None


def _flag(value, by_name):
    if isinstance(value, n.Call) and not value.args:
        p = by_name.get(value.name)
        if p is not None and (p.type == "bool" or p.flag_value is not None):
            return p
    return None


def _put(op, p: Param, value, bound, spans, sink) -> bool:
    spans[p.name] = value.span
    try:
        bound[p.name] = convert(p, value)
        return True
    except _Bad as b:
        sink.add(b.code, b.message, b.span, hint=b.hint)
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


def convert(p: Param, value):
    """Convert one literal to the parameter's type, or raise _Bad."""
    t = p.type
    if t == "pipeline":
        return value
    if t in ("list[int]", "list[float]"):
        if not isinstance(value, n.ListLit):
            raise _Bad("E223", f"'{p.name}' takes a list, got {show(value)}", value.span,
                       hint=f"write e.g. {p.name}=[1, 2]")
        item = Param(p.name, t[5:-1], low=p.low, high=p.high)
        return tuple(convert(item, v) for v in value.items)
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
    if (p.low is not None and num < p.low) or (p.high is not None and num > p.high):
        lo = "-inf" if p.low is None else f"{p.low:g}"
        hi = "inf" if p.high is None else f"{p.high:g}"
        raise _Bad("E224", f"'{p.name}' must be in [{lo}, {hi}], got {show(value)}", value.span)
    return num
