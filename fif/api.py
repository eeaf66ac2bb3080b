"""The Python entry points behind `fif.parse`, `fif.format` and `fif.compile`.

    p = fif.compile("dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt", input_shape=(1, 28, 28))
"""

from __future__ import annotations

from .errors import FifError, diagnostic
from .syntax import nodes as n
from .syntax.parser import parse as _parse
from .syntax.printer import format_program


def parse(text: str, name: str = "<string>") -> n.Program:
    """The syntax tree of fif text (no semantics). Raises FifError with positions."""
    return _parse(text, name)


def format(text: str, name: str = "<string>") -> str:  # noqa: A001  (fixed public name)
    """Canonical text: `format(format(s)) == format(s)`, and it parses to the same tree."""
    return format_program(_parse(text, name))


def compile(source, input_shape=(1, 28, 28), *, kind: str = "image", name: str = "<string>", env=None):  # noqa: A001
    """Parse, check and build: text (or a parsed Program) -> a fresh `fif.Pipeline`.

    input_shape: (C, H, W) of one input; the default is the shipped MNIST digits' (1, 28, 28).
    env: a `fif.compiler.CompileEnv` (the recipe's classifier for the `classifier` op; the folder
    relative weight files are read from); recipes pass their own.
    """
    from .compiler import compile_program
    shape = _check_shape(input_shape)
    program = source if isinstance(source, n.Program) else _parse(source, name)
    return compile_program(program, shape, kind, env=env)


def _check_shape(input_shape):
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise FifError(diagnostic("E300", f"input_shape must be three positive sizes (C, H, W), got {input_shape!r}",
                                  hint="e.g. input_shape=(1, 28, 28)"))
    return shape
