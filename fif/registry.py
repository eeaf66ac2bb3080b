"""The op registry: one place that knows every op, its typed parameters, kinds and flags.

    import fif
    from fif.registry import Param
    @fif.register_op("gain", params=[Param("k", "float", default=2.0, low=0.0)])
    def gain(args, inp, out):          # -> a torch.nn.Module
        return Scale(args["k"])
    fif.compile("gain(k=3) -> clamp")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .errors import FifError, diagnostic
from .kinds import Kind

REQUIRED = object()

# Scalar types; a type is a scalar, `list[T]`, or `T|list[T]` (one or many: always bound to a
# list) or `A|list[B]` (either form, e.g. `int|list[pipeline]`). `call` binds `name(args)` against
# a Catalog of signatures (`attack=pgd(steps=40)`); `pipeline` keeps the expression as written.
SCALAR_TYPES = ("int", "float", "number", "bool", "str", "choice", "channels", "pipeline", "call")
PARAM_TYPES = SCALAR_TYPES + ("list[int]", "list[float]",
                              "float|list[float]", "str|list[str]", "choice|list[choice]",
                              "call|list[call]", "int|list[pipeline]", "float|list[float]|call")


def type_parts(t: str) -> tuple[str | None, str | None]:
    """(scalar alternative, list item type) of a parameter type: `float|list[float]` -> (float, float).
    A trailing `|call` alternative is not counted: the binder tries it first (see Param)."""
    scalar = item = None
    for part in t.removesuffix("|call").split("|"):
        if part.startswith("list[") and part.endswith("]"):
            item = part[5:-1]
        else:
            scalar = part
    return scalar, item


@dataclass(frozen=True)
class Catalog:
    """The named signatures a `call` parameter chooses from, e.g. every attack for `attack=pgd(steps=40)`.

    entries() -> {name: (Param, ...)} (a function, so catalogs can be filled lazily); an unknown
    name is reported with `code` (E251 for attacks, E202 for classifiers, E226 otherwise).
    """

    what: str
    entries: Callable[[], "dict[str, tuple[Param, ...]]"]
    code: str = "E226"


class KindError(Exception):
    """Raised by an op's `infer` rule; the kind pass turns it into a positioned diagnostic.

    `param` names the argument to point at (else the op itself is pointed at).
    """

    def __init__(self, code: str, message: str, *, param: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.param, self.hint = code, message, param, hint


@dataclass(frozen=True)
class Param:
    """A typed parameter of an op, attack, loss, optimizer, ... (see PARAM_TYPES).

    `channels` is an int or the word `input`. Ranges are closed unless `low_open` / `high_open`;
    `size` fixes a list's length. A `call` parameter names its `catalog`; `shorthand` = (name,
    param) lets a bare number stand for that call: `adversarial=0.3` is `adversarial=pgd(eps=0.3)`.
    A type with a `|call` alternative (`float|list[float]|call`) takes a number, a list, or a call
    from the catalog: `eps=uniform(0, 0.3)`. `keyword` makes a parameter keyword-only:
    `bitdepth(2, bits=true)` sets it, `bitdepth(2, 3)` is E220.
    """

    name: str
    type: str
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    doc: str = ""
    flag_value: Any = None  # what a bare `name` argument sets a non-bool parameter to
    low_open: bool = False
    high_open: bool = False
    size: int | None = None
    catalog: Catalog | None = field(default=None, compare=False)
    shorthand: tuple[str, str] | None = None
    keyword: bool = False  # keyword-only: no positional argument binds to it (a bare flag name still does)

    def __post_init__(self):
        if self.type not in PARAM_TYPES:
            raise ValueError(f"Param {self.name!r}: type must be one of {PARAM_TYPES}, got {self.type!r}")
        if "choice" in self.type and not self.choices:
            raise ValueError(f"Param {self.name!r}: a choice parameter needs choices")
        if "call" in self.type and self.catalog is None:
            raise ValueError(f"Param {self.name!r}: a call parameter needs a catalog")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def signature(self) -> str:
        text = f"{self.name}: {self.type}"
        if self.type.endswith("|call"):
            draws = "|".join(f"{k}({', '.join(p.name for p in ps)})" for k, ps in self.catalog.entries().items())
            text = f"{self.name}: {self.type.removesuffix('call')}{draws}"
        elif "choice" in self.type or "call" in self.type:
            if "call" in self.type:
                shown = self.catalog.what
            elif len(self.choices) <= 10:
                shown = "|".join(map(str, self.choices))
            else:
                shown = "|".join(map(str, self.choices[:3])) + f"|... ({len(self.choices)} names)"
            text = f"{self.name}: {shown}" + (" or a list" if "|list[" in self.type else "")
        if self.low is not None or self.high is not None:
            lo = "" if self.low is None else f"{self.low:g}"
            hi = "" if self.high is None else f"{self.high:g}"
            text += f" in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"
        if not self.required:
            text += f" = {_show(self.default)}"
        if self.flag_value is not None:
            text += f" (bare `{self.name}` = {_show(self.flag_value)})"
        return text


def param_list(params: Sequence[Param]) -> str:
    """`levels: int in [2, 256], *, bits: bool = false`: keyword-only parameters after a `*`."""
    parts, star = [], False
    for p in params:
        if p.keyword and not star:
            parts.append("*")
            star = True
        parts.append(p.signature())
    return ", ".join(parts)


def _show(v):
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return v if isinstance(v, str) else str(v)


Flag = bool | Callable[[dict], bool]


def _identity_infer(inp: Kind, args: dict, ctx) -> Kind:
    return inp


@dataclass(frozen=True)
class OpSpec:
    """Everything fif knows about an op. See `register_op` for the fields."""

    name: str
    build: Callable[..., Any]
    params: tuple[Param, ...] = ()
    doc: str = ""
    accepts: tuple[str, ...] = ("image", "features")
    infer: Callable[..., Kind] = _identity_infer
    learnable: Flag = False
    differentiable: Flag = True
    random: Flag = False
    surrogate: Callable | None = None
    branches: tuple[int, int | None] | None = None
    family: str = "user"
    shares: Callable | None = None

    @property
    def is_block(self) -> bool:
        return self.branches is not None

    def flag(self, which: str, args: dict) -> bool:
        value = getattr(self, which)
        return bool(value(args)) if callable(value) else bool(value)

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def signature(self) -> str:
        sig = f"{self.name}({param_list(self.params)})"
        if self.is_block:
            sig += " { p | q ... }"
        return sig

    def summary(self) -> str:
        return (self.doc or "").strip().splitlines()[0] if self.doc else ""


_REGISTRY: dict[str, OpSpec] = {}


def register_op(name: str, build: Callable | None = None, *, params: Sequence[Param] = (),
                doc: str | None = None, accepts: Sequence[str] = ("image", "features"),
                infer: Callable | None = None, learnable: Flag = False, differentiable: Flag = True,
                random: Flag = False, surrogate: Callable | None = None,
                branches: tuple[int, int | None] | None = None, family: str = "user",
                shares: Callable | None = None, replace: bool = False):
    """Register an op. Usable directly or as a decorator on its `build` function.

    build(args, inp, out) -> nn.Module (block ops: build(args, inp, out, branches)), whose forward
    takes the input value (a tensor, or a dict of part tensors) and returns the output value.
    infer(inp, args, ctx) -> Kind (block ops: infer(inp, args, ctx, branch_kinds)); default: same kind.
    accepts: the input kinds allowed ('image', 'features', 'parts', 'logits').
    learnable / differentiable / random: bools, or callables of the bound args. A random op draws
    per sample and per call from the run context: its module's forward takes `(x, ctx)` and draws
    with `ctx.randn(shape, like=x)` / `ctx.rand(...)` (fif.run_context).
    surrogate(module, x) -> tensor (or surrogate(module, x, ctx) for modules whose forward takes
    ctx): the differentiable stand-in used backward by the attack view (BPDA) for a
    non-differentiable op; identity when omitted.
    branches: (min, max) sub-pipelines for a block op `name(args) { p | q }`; None for plain ops.
    shares(args, inp) -> dict: what a block tells the ops inside its branches at compile time;
    their infer rules read it as `ctx.values` (the compile-time twin of the run context's values,
    e.g. `masks` shares its patch side so `vitdenoise` can check its own against it).
    """
    if build is None:
        def decorator(fn):
            register_op(name, fn, params=params, doc=doc if doc is not None else fn.__doc__,
                        accepts=accepts, infer=infer, learnable=learnable,
                        differentiable=differentiable, random=random, surrogate=surrogate,
                        branches=branches, family=family, shares=shares, replace=replace)
            return fn
        return decorator
    _ensure_builtin_ops()  # the built-in catalog first, so a user op can never shadow one by accident
    if not isinstance(name, str) or not name.isidentifier():
        raise FifError(diagnostic("E210", f"op name {name!r} is not an identifier",
                                  hint="use letters, digits and underscores"))
    if name in _REGISTRY and not replace:
        raise FifError(diagnostic("E211", f"an op named '{name}' is already registered",
                                  hint="choose another name, or pass replace=True"))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise FifError(diagnostic("E212", f"op '{name}' declares a parameter twice"))
    spec = OpSpec(name=name, build=build, params=tuple(params), doc=(doc or build.__doc__ or "").strip(),
                  accepts=tuple(accepts), infer=infer or _identity_infer, learnable=learnable,
                  differentiable=differentiable, random=random, surrogate=surrogate,
                  branches=branches, family=family, shares=shares)
    _REGISTRY[name] = spec
    _bump()
    return spec


def unregister_op(name: str) -> None:
    _ensure_builtin_ops()
    if _REGISTRY.pop(name, None) is not None:
        _bump()


_VERSION = [0]


def _bump():
    _VERSION[0] += 1


def registry_version() -> int:
    """Changes whenever an op is added or removed, so cached plans are not reused across it."""
    return _VERSION[0]


def get_op(name: str) -> OpSpec | None:
    _ensure_builtin_ops()
    return _REGISTRY.get(name)


def all_ops() -> dict[str, OpSpec]:
    _ensure_builtin_ops()
    return dict(sorted(_REGISTRY.items()))


_LOADED = False


def _ensure_builtin_ops():
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import ops  # noqa: F401  (registers the built-in catalog)
