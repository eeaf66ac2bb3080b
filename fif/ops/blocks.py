"""Block ops, which take sub-pipelines: `mean { p | q }`, `vote { p | q }`, `residual { p }` and
`choose { p | q }`.

    residual { conv(32, depth=3) -> conv(out=input) } -> clamp
    mean { classifier | bitdepth(4) -> classifier(member=1) }       # an ensemble: averaged softmax
    choose { jpeg(50) | bitdepth(4) | median(3) }                    # one branch per sample, at random

A block's forward takes the run context and hands it to its branches, so the attack view and the
generator reach every op inside.
"""

from __future__ import annotations

import torch
from torch import nn

from ..kinds import LogitsKind, TensorKind
from ..registry import KindError, register_op


class Mean(nn.Module):
    """Average of the branches; for logits, the average of their softmax probabilities, returned
    as log-probabilities (so argmax and cross-entropy read it as logits)."""

    def __init__(self, branches, logits: bool):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.logits = logits

    def forward(self, x, ctx):
        outs = torch.stack([b(x, ctx) for b in self.branches])
        if not self.logits:
            return outs.mean(0)
        return torch.logsumexp(torch.log_softmax(outs, dim=-1), dim=0) - torch.log(
            torch.tensor(float(len(self.branches)), dtype=outs.dtype, device=outs.device))


class Vote(nn.Module):
    """Majority vote of the branches' labels; ties go to the class with the higher mean softmax.

    The output is log of (votes + mean softmax), normalised: its argmax is the vote (the mean
    softmax, below 1, only orders classes with equal votes). Counting votes has no gradient, so
    `vote` is non-differentiable; the attack view passes the gradient of the averaged softmax."""

    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def members(self, x, ctx) -> torch.Tensor:
        return torch.stack([b(x, ctx) for b in self.branches])

    def forward(self, x, ctx):
        outs = self.members(x, ctx)
        probs = torch.softmax(outs, dim=-1)
        votes = torch.nn.functional.one_hot(outs.argmax(-1), outs.shape[-1]).to(outs.dtype).sum(0)
        scores = (votes + probs.mean(0)).detach()
        # Counting has zero gradient; `0 * outs` keeps the output in the autograd graph.
        return torch.log(scores / scores.sum(-1, keepdim=True)) + 0 * outs.sum(0)


def _vote_surrogate(module: Vote, x, ctx):
    outs = module.members(x, ctx)
    return torch.logsumexp(torch.log_softmax(outs, dim=-1), dim=0) - torch.log(
        torch.tensor(float(outs.shape[0]), dtype=outs.dtype, device=outs.device))


class Residual(nn.Module):
    def __init__(self, branch):
        super().__init__()
        self.branch = branch

    def forward(self, x, ctx):
        return x + self.branch(x, ctx)


class Choose(nn.Module):
    """Per sample and call, one branch drawn uniformly; each branch runs on the samples that drew it
    (so a batch costs one pass through each branch, not one through all of them per sample)."""

    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def draw(self, x, ctx) -> torch.Tensor:
        """[N] index of the branch each sample takes."""
        k = len(self.branches)
        return (ctx.rand((x.shape[0],), like=x) * k).floor().long().clamp(max=k - 1)

    def forward(self, x, ctx):
        pick = self.draw(x, ctx)
        out = None
        for i, branch in enumerate(self.branches):
            rows = (pick == i).nonzero().flatten()
            if rows.numel() == 0 and not (i == len(self.branches) - 1 and out is None):
                continue
            y = branch(x.index_select(0, rows), ctx)
            if out is None:
                out = y.new_zeros((x.shape[0],) + tuple(y.shape[1:]))
            out = out.index_copy(0, rows, y)
        return out


def _same_kinds(name, kinds):
    first = kinds[0]
    for i, k in enumerate(kinds[1:], start=2):
        if k != first:
            raise KindError("E320", f"{name} needs branches of one kind; branch 1 gives {first}, branch {i} gives {k}")
    return first


def _mean_infer(inp, args, ctx, kinds):
    first = _same_kinds("mean", kinds)
    if not isinstance(first, (TensorKind, LogitsKind)):
        raise KindError("E320", f"mean averages tensors or logits, got {first}")
    return first


register_op("mean", lambda args, inp, out, branches: Mean(branches, isinstance(out, LogitsKind)),
            branches=(1, None), accepts=("image", "features", "logits"), infer=_mean_infer, family="block",
            doc="""mean { p | q ... }: run each branch on the input and average their outputs.

    Branches that end in logits are averaged as softmax probabilities (an ensemble); the result
    is the log of the mean probability, so it reads as logits.
    mean { bitdepth(2) | bitdepth(4) } -> smallcnn
    mean { classifier(member=1) | jpeg(50) -> classifier(member=2) }""")


def _vote_infer(inp, args, ctx, kinds):
    first = _same_kinds("vote", kinds)
    if not isinstance(first, LogitsKind):
        raise KindError("E320", f"vote counts the labels of classifiers, so every branch must end in logits; "
                        f"got {first}", hint="end each branch with a classifier, e.g. jpeg(50) -> classifier")
    return first


register_op("vote", lambda args, inp, out, branches: Vote(branches), branches=(1, None),
            accepts=("image",), infer=_vote_infer, differentiable=False, surrogate=_vote_surrogate,
            family="block", doc="""vote { p | q ... }: majority vote of classifier branches; ties go to the higher mean softmax.

    Non-differentiable (counting); the attack view passes the averaged softmax's gradient (BPDA).
    vote { classifier(member=1) | bitdepth(4) -> classifier(member=2) | noise(0.1) -> classifier(member=3) }""")


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


def _choose_infer(inp, args, ctx, kinds):
    first = _same_kinds("choose", kinds)
    if not isinstance(first, (TensorKind, LogitsKind)):
        raise KindError("E320", f"choose picks among tensors or logits, got {first}")
    return first


register_op("choose", lambda args, inp, out, branches: Choose(branches), branches=(1, None),
            accepts=("image", "features"), infer=_choose_infer, random=True, family="block",
            doc="""choose { p | q ... }: each sample goes through one branch, drawn uniformly per sample and call.

    Random. The draw itself has no gradient; the gradient of a sample flows through the branch it
    drew, in the view the attack uses (true gradients, or the surrogates of the ops inside), so
    EOT over draws averages over branches too. Raff et al., Barrage of Random Transforms, CVPR
    2019, stack several such choices: `choose { ... } -> choose { ... }`.
    choose { jpeg(50) | bitdepth(4) | for k in [3, 5]: median(k) }""")
