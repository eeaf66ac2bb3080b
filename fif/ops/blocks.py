"""Block ops, which take sub-pipelines: `mean { p | q }` and `residual { p }`.

    residual { conv(32, depth=3) -> conv(out=input) } -> clamp
"""

from __future__ import annotations

import torch
from torch import nn

from ..kinds import LogitsKind, TensorKind
from ..registry import KindError, register_op


class Mean(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.stack([b(x) for b in self.branches]).mean(0)


class Residual(nn.Module):
    def __init__(self, branch):
        super().__init__()
        self.branch = branch

    def forward(self, x):
        return x + self.branch(x)


def _mean_infer(inp, args, ctx, kinds):
    first = kinds[0]
    for i, k in enumerate(kinds[1:], start=2):
        if k != first:
            raise KindError("E320", f"mean needs branches of one kind; branch 1 gives {first}, branch {i} gives {k}")
    if not isinstance(first, (TensorKind, LogitsKind)):
        raise KindError("E320", f"mean averages tensors or logits, got {first}")
    return first


register_op("mean", lambda args, inp, out, branches: Mean(branches), branches=(1, None),
            accepts=("image", "features", "logits"), infer=_mean_infer, family="block",
            doc="""mean { p | q ... }: run each branch on the input and average their outputs.

    mean { bitdepth(2) | bitdepth(4) } -> smallcnn""")


def _residual_infer(inp, args, ctx, kinds):
    (k,) = kinds
    if not isinstance(k, TensorKind) or k.shape != inp.shape:
        raise KindError("E321", f"residual needs its branch to keep the shape {inp}, got {k}",
                        hint="end the branch with conv(out=input) or a conv back to the input's channels")
    return inp.with_shape(kind="features")


register_op("residual", lambda args, inp, out, branches: Residual(branches[0]), branches=(1, 1),
            infer=_residual_infer, family="block",
            doc="""residual { p }: x + p(x); the result is features (clamp to get an image).

    residual { conv(16, depth=2) -> conv(out=input) } -> clamp""")
