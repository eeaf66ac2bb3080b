"""The canonical printer: one way to write every program, like gofmt.

    format_source("dwt->< LL :downup >->idwt")  ==  "dwt -> <LL: downup> -> idwt\\n"

`format_source(format_source(s)) == format_source(s)` and `parse(format_source(s)) == parse(s)`.
Comments are kept: each one moves to the line above the statement or recipe entry it was in.
"""

from __future__ import annotations

import json

from . import nodes as n

WIDTH = 100
INDENT = "  "

_PREC_SUM, _PREC_PRODUCT, _PREC_SEQ, _PREC_UNARY, _PREC_ATOM = 1, 2, 3, 4, 5


def format_number(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" in text:
        mant, exp = text.split("e")
        sign = "-" if exp.startswith("-") else ""
        text = f"{mant}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
    return text


def _prec(node) -> int:
    if isinstance(node, n.Sum):
        return _PREC_SUM
    if isinstance(node, n.Product):
        return _PREC_PRODUCT
    if isinstance(node, n.Seq):
        return _PREC_SEQ
    if isinstance(node, n.Neg) or (isinstance(node, n.Number) and node.value < 0):
        return _PREC_UNARY
    return _PREC_ATOM


def _wrap(node, need: int) -> str:
    text = expr(node)
    return f"({text})" if _prec(node) < need else text


def expr(node) -> str:
    """One expression on one line."""
    if isinstance(node, n.Number):
        return format_number(node.value)
    if isinstance(node, n.Fraction):
        return f"{format_number(node.num)}/{format_number(node.den)}"
    if isinstance(node, n.String):
        return json.dumps(node.value, ensure_ascii=False)
    if isinstance(node, n.ListLit):
        return "[" + ", ".join(_branch(i) for i in node.items) + "]"
    if isinstance(node, n.Call):
        if not node.args:
            return node.name
        return f"{node.name}(" + ", ".join(_arg(a) for a in node.args) + ")"
    if isinstance(node, n.Block):
        return f"{expr(node.call)} {{ " + " | ".join(_branch(b) for b in node.branches) + " }"
    if isinstance(node, n.PartMap):
        return "<" + ", ".join(_group(g) for g in node.groups) + ">"
    if isinstance(node, n.Seq):
        return " -> ".join(_wrap(s, _PREC_UNARY) for s in node.steps)
    if isinstance(node, n.Product):
        return " * ".join(_wrap(f, _PREC_SEQ) for f in node.factors)
    if isinstance(node, n.Sum):
        return " + ".join(_wrap(t, _PREC_PRODUCT) for t in node.terms)
    if isinstance(node, n.Neg):
        return "-" + _wrap(node.value, _PREC_UNARY)
    raise TypeError(f"cannot print {type(node).__name__}")


def _arg(a: n.Arg) -> str:
    return expr(a.value) if a.name is None else f"{a.name}={expr(a.value)}"


def _branch(b) -> str:
    if isinstance(b, n.ForBranch):
        return f"for {', '.join(b.names)} in {expr(b.iterable)}: {expr(b.body)}"
    return expr(b)


def _group(g: n.Group) -> str:
    return ", ".join(p.name for p in g.names) + ": " + expr(g.body)


def _value(node, lead: str, indent: str) -> list[str]:
    """`lead + value`, breaking a long pipeline before each '->' and a long list after each item."""
    one = lead + expr(node)
    if len(one) <= WIDTH:
        return [one]
    if isinstance(node, n.ListLit) and node.items:
        inner = indent + INDENT
        return [lead + "["] + [f"{inner}{_branch(i)}," for i in node.items] + [indent + "]"]
    if not isinstance(node, n.Seq):
        return [one]
    steps = [_wrap(s, _PREC_UNARY) for s in node.steps]
    cont = indent + INDENT * 2
    return [lead + steps[0]] + [f"{cont}-> {s}" for s in steps[1:]]


def _comments(comments, indent: str) -> list[str]:
    return [indent + c.strip() for c in comments]


def _entry(entry, indent: str) -> list[str]:
    lines = _comments(entry.comments, indent)
    if isinstance(entry, n.FieldEntry):
        lines += _value(entry.value, f"{indent}{entry.name} = ", indent)
    elif isinstance(entry, n.Section):
        head = f"{indent}{entry.kind}" + (f" {entry.label}" if entry.label else "")
        lines += _braced(head, entry.entries, entry.end_comments, indent)
    else:
        lines += _statement(entry, indent)
    return lines


def _braced(head: str, entries, end_comments, indent: str) -> list[str]:
    if not entries and not end_comments:
        return [head + " {}"]
    inner = indent + INDENT
    lines = [head + " {"]
    for e in entries:
        lines += _entry(e, inner)
    lines += _comments(end_comments, inner)
    lines.append(indent + "}")
    return lines


def _statement(item, indent: str = "") -> list[str]:
    if isinstance(item, n.Let):
        return _value(item.value, f"{indent}let {item.name} = ", indent)
    if isinstance(item, n.Def):
        params = ", ".join(p.name if p.default is None else f"{p.name}={expr(p.default)}"
                           for p in item.params)
        return _value(item.body, f"{indent}def {item.name}({params}) = ", indent)
    if isinstance(item, n.Statement):
        return _value(item.value, indent, indent)
    raise TypeError(f"cannot print {type(item).__name__}")


def format_program(program: n.Program) -> str:
    """Canonical text of a parsed program, ending in one newline."""
    blocks: list[tuple[bool, list[str]]] = []
    for item in program.items:
        lines = _comments(item.comments, "")
        if isinstance(item, n.Recipe):
            lines += _braced(f"recipe {item.name}", item.entries, item.end_comments, "")
        else:
            lines += _statement(item)
        blocks.append((isinstance(item, n.Recipe), lines))
    out: list[str] = []
    for i, (is_recipe, lines) in enumerate(blocks):
        if i and (is_recipe or blocks[i - 1][0]):
            out.append("")
        out += lines
    if program.end_comments:
        if out:
            out.append("")
        out += _comments(program.end_comments, "")
    return "\n".join(out) + "\n" if out else ""


def format_source(text: str, name: str = "<string>") -> str:
    """Parse and print canonically (`fif.format`)."""
    from .parser import parse
    return format_program(parse(text, name))
