"""The syntax tree: frozen dataclasses. Spans and comments never take part in equality, so
`parse(format(s)) == parse(s)` compares meaning, not layout.

    dwt -> <LL: downup> -> idwt   ==>   Seq((Call('dwt'), PartMap(...), Call('idwt')))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..errors import Span

NOSPAN = Span(0, 0)


def _span():
    return field(default=NOSPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span = _span()


@dataclass(frozen=True)
class Fraction:
    """`1/6`, `8/255`: kept as written, evaluated to a float when bound."""

    num: int | float
    den: int | float
    span: Span = _span()

    @property
    def value(self) -> float:
        return self.num / self.den


@dataclass(frozen=True)
class String:
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class ListLit:
    items: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Arg:
    """A call argument; `name` is None for a positional one."""

    name: str | None
    value: "Expr"
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Call:
    """`name` or `name(args)`. A bare name is a call with no arguments."""

    name: str
    args: tuple[Arg, ...] = ()
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class ForBranch:
    """`for q in [90, 70]: jpeg(q) -> smallcnn`: one branch (in a block) or one item (in a list)
    per list item. `more` holds further names: `for q, m in [[90, 1], [70, 3]]: ...` takes each
    item apart, so every item must be a list of len(names) values."""

    var: str
    iterable: "Expr"
    body: "Expr"
    span: Span = _span()
    var_span: Span = _span()
    more: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.var,) + self.more


Branch = Union["Expr", ForBranch]


@dataclass(frozen=True)
class Block:
    """`name(args) { p | q }`: a higher-order op over sub-pipelines."""

    call: Call
    branches: tuple[Branch, ...]
    span: Span = _span()


@dataclass(frozen=True)
class PartName:
    name: str  # "*" for all the others
    span: Span = _span()


@dataclass(frozen=True)
class Group:
    names: tuple[PartName, ...]
    body: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class PartMap:
    """`<HH, HL: p, LL: q>`: a pipeline per named part; unnamed parts pass through."""

    groups: tuple[Group, ...]
    span: Span = _span()


@dataclass(frozen=True)
class Seq:
    """`a -> b -> c`, flattened."""

    steps: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Sum:
    """`a + b + c` (loss terms), flattened."""

    terms: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Product:
    """`2 * rep`, flattened."""

    factors: tuple["Expr", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Neg:
    value: "Expr"
    span: Span = _span()


Expr = Union[Number, Fraction, String, ListLit, Call, Block, PartMap, Seq, Sum, Product, Neg]


@dataclass(frozen=True)
class ParamDecl:
    name: str
    default: Expr | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Let:
    """`let enc = conv(32)`: every use of `enc` shares one set of weights."""

    name: str
    value: Expr
    span: Span = _span()
    name_span: Span = _span()
    comments: tuple[str, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Def:
    """`def band(r=1/6) = chancompress(r, noise)`: a composite op; each use has its own weights."""

    name: str
    params: tuple[ParamDecl, ...]
    body: Expr
    span: Span = _span()
    name_span: Span = _span()
    comments: tuple[str, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class FieldEntry:
    """`key = value` inside a recipe or section."""

    name: str
    value: Expr
    span: Span = _span()
    name_span: Span = _span()
    comments: tuple[str, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Section:
    """`train { ... }` or `stage warmup { ... }`."""

    kind: str
    label: str | None
    entries: tuple["Entry", ...]
    span: Span = _span()
    name_span: Span = _span()
    comments: tuple[str, ...] = field(default=(), compare=False, repr=False)
    end_comments: tuple[str, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Recipe:
    name: str
    entries: tuple["Entry", ...]
    span: Span = _span()
    name_span: Span = _span()
    comments: tuple[str, ...] = field(default=(), compare=False, repr=False)
    end_comments: tuple[str, ...] = field(default=(), compare=False, repr=False)


Entry = Union[FieldEntry, Section, Let, Def]


@dataclass(frozen=True)
class Statement:
    """A top-level pipeline expression (the program's result)."""

    value: Expr
    span: Span = _span()
    comments: tuple[str, ...] = field(default=(), compare=False, repr=False)


Item = Union[Let, Def, Recipe, Statement]


@dataclass(frozen=True)
class Program:
    items: tuple[Item, ...]
    end_comments: tuple[str, ...] = field(default=(), compare=False, repr=False)
    file: str = field(default="<string>", compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)

    @property
    def lets(self):
        return [i for i in self.items if isinstance(i, Let)]

    @property
    def defs(self):
        return [i for i in self.items if isinstance(i, Def)]

    @property
    def recipes(self):
        return [i for i in self.items if isinstance(i, Recipe)]

    @property
    def statements(self):
        return [i for i in self.items if isinstance(i, Statement)]


def number_value(text: str) -> int | float:
    """`3` -> 3, `2e-4` -> 0.0002, `1.0` -> 1.0."""
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)
