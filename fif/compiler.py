"""The one compile path: text or syntax -> passes -> cached plan -> build.

    plan = plan_for("dwt -> <LL: downup> -> idwt", (1, 28, 28))      # torch-free, cached
    pipeline = compile_program(parse(text, "acm.fif"), (1, 28, 28))  # a fresh fif.Pipeline

`fif.compile`, recipes, `fif train` and `fif eval` all come through here. A recipe compiles one of
its pipelines by passing the recipe's program with `expression=` (the defense, a variant, the
model) and `decls=` (the lets and defs in scope); errors then point into the recipe file.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

from .errors import FifError
from .kinds import TensorKind
from .plan import Plan
from .syntax import nodes as n


@dataclass(frozen=True)
class CompileEnv:
    """What a pipeline may refer to beyond its own text.

    classifier: (arch, width, classes) of the recipe's classifier, which the `classifier` op
    builds (None outside a recipe). base: the folder that relative weight files are read from.
    search: the recipe's table-search result that `nnjpeg(table=search)` reads (set by train and
    eval; None where no run is known, e.g. `fif compile`)."""

    classifier: tuple[str, int | None, int] | None = None
    base: str | None = None
    search: str | None = None


NO_ENV = CompileEnv()

_CACHE: "OrderedDict[tuple, Plan]" = OrderedDict()
_CACHE_SIZE = 256


def standalone_program(program: n.Program, expression=None, decls=None) -> n.Program:
    """The program a recipe's pipeline would be on its own: its declarations, then the pipeline."""
    if expression is None:
        return program
    return n.Program(tuple(decls or ()) + (n.Statement(expression),))


def plan_for(program, input_shape=(1, 28, 28), kind: str = "image", *, expression=None, decls=None,
             env: CompileEnv | None = None) -> Plan:
    """Plan a program (text or parsed `Program`), or one `expression` of it with `decls` in scope.
    Cached by canonical text, input shape and kind, environment and the op catalog's version."""
    from .passes import analyze, main_expression
    from .registry import registry_version
    from .syntax import parse
    from .syntax.printer import format_program
    prog = program if isinstance(program, n.Program) else parse(program)
    env = env or NO_ENV
    shape = tuple(int(s) for s in input_shape)
    try:
        if expression is None:
            decls, expression = main_expression(prog)
        text = format_program(standalone_program(prog, expression, decls))
        key = (text, shape, kind, env, registry_version())
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        plan = analyze(TensorKind(kind, *shape), expression, decls, env=env, source=text)
    except FifError as e:
        raise e.with_source(prog.source, prog.file) from None
    _CACHE[key] = plan
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return plan


def compile_program(program, input_shape=(1, 28, 28), kind: str = "image", *, expression=None, decls=None,
                    env: CompileEnv | None = None, source: str | None = None):
    """plan_for + build: a fresh `fif.Pipeline` (new weights). `source` overrides its repr text."""
    from .build import build
    from .syntax import parse
    prog = program if isinstance(program, n.Program) else parse(program)
    plan = plan_for(prog, input_shape, kind, expression=expression, decls=decls, env=env)
    if source is not None:
        plan = replace(plan, source=source)
    try:
        return build(plan, env or NO_ENV)
    except FifError as e:
        raise e.with_source(prog.source, prog.file) from None


def clear_cache() -> None:
    _CACHE.clear()


make_plan = plan_for  # the name the tests and earlier code use
