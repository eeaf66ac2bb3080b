"""Value kinds that flow between stages, checked before anything is built.

    image[1,28,28] -> dwt -> parts{LL: features[1,14,14], LH: ..., HL: ..., HH: ...} -> idwt -> image[1,28,28]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class TensorKind:
    """`image[C,H,W]` (values in [0,1]) or `features[C,H,W]` (any real values)."""

    kind: str
    C: int
    H: int
    W: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.C, self.H, self.W)

    def with_shape(self, C=None, H=None, W=None, kind=None) -> "TensorKind":
        return TensorKind(kind or self.kind, self.C if C is None else C,
                          self.H if H is None else H, self.W if W is None else W)

    def __str__(self):
        return f"{self.kind}[{self.C},{self.H},{self.W}]"


@dataclass(frozen=True)
class PartsKind:
    """`parts{name: kind, ...}`: a value made of named parts, with a record of what made it.

    `origin` names the op that made the parts (`dwt`, `dct`), and `meta` holds what its inverse
    needs (wavelet, levels, mode, the original kind), so `idwt` can check it gets what `dwt` made.
    """

    parts: tuple[tuple[str, "Kind"], ...]
    origin: str
    meta: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.parts)

    def part(self, name: str) -> "Kind":
        return dict(self.parts)[name]

    def get(self, key: str, default=None):
        return dict(self.meta).get(key, default)

    def replace_parts(self, new: dict[str, "Kind"]) -> "PartsKind":
        return PartsKind(tuple((n, new.get(n, k)) for n, k in self.parts), self.origin, self.meta)

    def __str__(self):
        inner = ", ".join(f"{n}: {k}" for n, k in self.parts)
        return "parts{" + inner + "}"


@dataclass(frozen=True)
class LogitsKind:
    """`logits[K]`: class scores from a classifier."""

    K: int

    @property
    def shape(self) -> tuple[int]:
        return (self.K,)

    def __str__(self):
        return f"logits[{self.K}]"


Kind = Union[TensorKind, PartsKind, LogitsKind]


def kind_name(k: Kind) -> str:
    """The family word used in `accepts` lists: image, features, parts or logits."""
    if isinstance(k, TensorKind):
        return k.kind
    if isinstance(k, PartsKind):
        return "parts"
    return "logits"


def shape_of(k: Kind):
    """The per-sample shape for tables: a tuple, or a dict of tuples for parts."""
    if isinstance(k, PartsKind):
        return {n: shape_of(v) for n, v in k.parts}
    return k.shape
