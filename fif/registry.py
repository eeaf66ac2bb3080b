"""The op registry: one place that knows every op, its typed parameters, kinds and flags.

    import fif
    from fif.registry import Param
    @fif.register_op("gain", params=[Param("k", "float", default=2.0, low=0.0)])
    def gain(args, inp, out):          # -> a torch.nn.Module
        return Scale(args["k"])
    fif.compile("gain(k=3) -> clamp")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import FifError, diagnostic
from .kinds import Kind

REQUIRED = object()

PARAM_TYPES = ("int", "float", "number", "bool", "str", "choice", "list[int]", "list[float]",
               "channels", "pipeline")


class KindError(Exception):
    """Raised by an op's `infer` rule; the kind pass turns it into a positioned diagnostic.

    `param` names the argument to point at (else the op itself is pointed at).
    """

    def __init__(self, code: str, message: str, *, param: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.param, self.hint = code, message, param, hint


@dataclass(frozen=True)
class Param:
    """A typed op parameter. `type` is one of PARAM_TYPES; `channels` is an int or the word `input`."""

    name: str
    type: str
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    doc: str = ""
    flag_value: Any = None  # what a bare `name` argument sets a non-bool parameter to

    def __post_init__(self):
        if self.type not in PARAM_TYPES:
            raise ValueError(f"Param {self.name!r}: type must be one of {PARAM_TYPES}, got {self.type!r}")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"Param {self.name!r}: a choice parameter needs choices")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def signature(self) -> str:
        text = f"{self.name}: {self.type}"
        if self.type == "choice":
            shown = "|".join(map(str, self.choices)) if len(self.choices) <= 10 else \
                "|".join(map(str, self.choices[:3])) + f"|... ({len(self.choices)} names)"
            text = f"{self.name}: {shown}"
        if self.low is not None or self.high is not None:
            lo = "" if self.low is None else f"{self.low:g}"
            hi = "" if self.high is None else f"{self.high:g}"
            text += f" in [{lo}, {hi}]"
        if not self.required:
            text += f" = {_show(self.default)}"
        if self.flag_value is not None:
            text += f" (bare `{self.name}` = {_show(self.flag_value)})"
        return text


def _show(v):
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4g}"
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
        sig = f"{self.name}({', '.join(p.signature() for p in self.params)})"
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
                replace: bool = False):
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
    """
    if build is None:
        def decorator(fn):
            register_op(name, fn, params=params, doc=doc if doc is not None else fn.__doc__,
                        accepts=accepts, infer=infer, learnable=learnable,
                        differentiable=differentiable, random=random, surrogate=surrogate,
                        branches=branches, family=family, replace=replace)
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
                  branches=branches, family=family)
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
