"""Pixel-wise filtering with predicted kernels, its uncertainty map, and uncertainty-aware fusion.

    let enc = pad(2) -> kpencoder
    let sl = kpfilter(3) { enc -> kpdecoder(3) -> crop(2) } -> clamp
    let m = kpfilter(3) { enc -> kpdecoder(3) -> crop(2) } -> clamp
    defense = ufuse { sl | m } -> clamp            # PA-Filt: W * sl + (1 - W) * m, W from [U_sl, U_m]

Huang et al., AdvFilter, ACM MM 2021: Eq. 7 (each pixel filtered by its own K x K kernel per
channel), Eq. 9 (the uncertainty map: the max of a pixel's kernel values), Eq. 10-11 (a CNN of six
convs and a sigmoid turns [U_sl, U_m] into the weight map W that blends the two outputs).

How the uncertainty reaches the fusion: `ufuse` hands each branch a slot in the run context
(values["uncertainty"], a list); the one `kpfilter` of that branch (checked when the pipeline
compiles) appends its uncertainty map there, with its gradient, and `ufuse` reads it. `kpfilter`
gives its predictor a context without the slot, so filters inside predictors never report. For
diagnostics, `ufuse` reports the per-sample means of U1, U2 and W with `ctx.record` (run_context).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..kinds import TensorKind
from ..plan import BlockStep, OpStep, PartMapStep, SeqStep, SharedStep
from ..registry import KindError, Param, register_op

SLOT = "uncertainty"


def apply_kernels(x: torch.Tensor, kernels: torch.Tensor, k: int) -> torch.Tensor:
    """Filter each pixel of x [N, C, H, W] with its own k x k kernel per channel.

    kernels [N, C*k*k, H, W]: channels c*k*k .. (c+1)*k*k - 1 are channel c's kernel in row-major
    order. Zero padding k//2, no normalisation, no bias; one batched unfold, no loop over pixels."""
    N, C, H, W = x.shape
    patches = F.unfold(x, k, padding=k // 2).view(N, C, k * k, H, W)
    return (patches * kernels.view(N, C, k * k, H, W)).sum(2)


def uncertainty(kernels: torch.Tensor) -> torch.Tensor:
    """Eq. 9: the max over each pixel's kernel values, [N, C*k*k, H, W] -> [N, 1, H, W]."""
    return kernels.amax(1, keepdim=True)


class KernelFilter(nn.Module):
    def __init__(self, predictor: nn.Module, k: int):
        super().__init__()
        self.predictor, self.k = predictor, k

    def forward(self, x, ctx):
        kernels = self.predictor(x, ctx.with_values(**{SLOT: None}))
        slot = ctx.values.get(SLOT)
        if slot is not None:
            slot.append(uncertainty(kernels))
        return apply_kernels(x, kernels, self.k)

    def extra_repr(self):
        return f"k={self.k}"


def _check_k(k: int):
    if k % 2 == 0:
        raise KindError("E224", f"kernel size k must be odd (the kernel is centred on its pixel), got {k}", param="k",
                        hint=f"use k={k + 1}")


def _check_kernels(who: str, inp: TensorKind, k: int, kernels, branch: str = "its predictor"):
    want = inp.C * k * k
    if not isinstance(kernels, TensorKind) or kernels.C != want or (kernels.H, kernels.W) != (inp.H, inp.W):
        raise KindError("E336", f"{who} needs {branch} to give {inp.C}*{k}*{k} = {want} kernel values per pixel at "
                        f"{inp.H}x{inp.W}, like features[{want},{inp.H},{inp.W}]; got {kernels}",
                        hint=f"end it with kpdecoder({k}) (and crop back to {inp.H}x{inp.W} if the encoder saw a "
                        "padded image)")


def _kpfilter_infer(inp, args, ctx, kinds):
    _check_k(args["k"])
    _check_kernels(f"kpfilter({args['k']})", inp, args["k"], kinds[0])
    return inp.with_shape(kind="features")


register_op("kpfilter", lambda args, inp, out, branches: KernelFilter(branches[0], args["k"]), branches=(1, 1),
            infer=_kpfilter_infer, family="block", params=[
                Param("k", "int", 3, low=1, high=15, doc="kernel size K (odd)"),
            ], doc="""kpfilter(k=3) { predictor }: filter each pixel of the input with its own predicted k x k kernel per channel.

    The predictor maps the input [C,H,W] to kernels features[C*k*k, H, W]; output pixel p of
    channel c is the sum over p's k x k neighbourhood (zero padding k//2) of kernel weight times
    input. No normalisation, no bias. A one-hot centre kernel is the identity. Output: features.
    Huang et al., AdvFilter, ACM MM 2021, Eq. 7 (Filt).
    kpfilter(3) { pad(2) -> kpencoder -> kpdecoder(3) -> crop(2) } -> clamp""")


class _Uncertainty(nn.Module):
    def forward(self, x):
        return uncertainty(x)


register_op("uncertainty", lambda args, inp, out: _Uncertainty(), accepts=("features",),
            infer=lambda inp, args, ctx: inp.with_shape(C=1, kind="features"), family="basic",
            doc="""uncertainty: the uncertainty map of a kernel map, the max over each pixel's kernel values; [C*k*k,H,W] -> [1,H,W].

    Huang et al., AdvFilter, ACM MM 2021, Eq. 9 (computed by max pooling over the kernel channels).
    pad(2) -> kpencoder -> kpdecoder(3) -> crop(2) -> uncertainty""")


class UncertaintyFusion(nn.Module):
    """W = sigmoid(C([U_a, U_b])), output W * a + (1 - W) * b."""

    def __init__(self, branches, widths: list[int], k: int):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        layers: list[nn.Module] = []
        cin = len(branches)
        for w in widths:
            layers += [nn.Conv2d(cin, w, k, padding=k // 2), nn.ReLU()]
            cin = w
        layers += [nn.Conv2d(cin, 1, k, padding=k // 2), nn.Sigmoid()]
        self.fusion = nn.Sequential(*layers)

    def forward(self, x, ctx):
        outs, maps = [], []
        for b in self.branches:
            slot: list = []
            outs.append(b(x, ctx.with_values(**{SLOT: slot})))
            maps.append(slot[-1])
        w = self.fusion(torch.cat(maps, 1))
        for i, u in enumerate(maps, start=1):
            ctx.record(f"U{i}", u)
        ctx.record("W", w)
        return w * outs[0] + (1 - w) * outs[1]


def _filters(step, lets: dict, top: bool = True):
    """(step, top level?) for every kpfilter a branch runs that would report to ufuse's slot:
    not those inside a kpfilter's predictor or a nested ufuse's branches (they get other slots)."""
    if isinstance(step, SharedStep):
        inner = lets.get(step.name)
        if inner is not None:
            yield from _filters(inner, lets, top)
    elif isinstance(step, SeqStep):
        for s in step.steps:
            yield from _filters(s, lets, top)
    elif isinstance(step, PartMapStep):
        for _, s in step.parts:
            yield from _filters(s, lets, False)
    elif isinstance(step, BlockStep):
        if step.op == "kpfilter":
            yield step, top
        elif step.op != "ufuse":
            for b in step.branches:
                yield from _filters(b, lets, False)
    elif isinstance(step, OpStep):
        return


def _ufuse_infer(inp, args, ctx, kinds):
    _check_k(args["k"])
    for i, (step, kind) in enumerate(zip(ctx.branches, kinds), start=1):
        found = list(_filters(step, ctx.lets))
        if len(found) != 1 or not found[0][1]:
            got = "none" if not found else (f"{len(found)}" if len(found) > 1 else "one only inside another block")
            raise KindError("E337", f"ufuse fuses by the uncertainty of the kpfilter in each branch; branch {i} "
                            f"has {got}", hint="give each branch exactly one kpfilter in its main line, e.g. "
                            "ufuse { kpfilter(3) { ... } -> clamp | kpfilter(3) { ... } -> clamp }, or lets of them")
        f = found[0][0]
        if not isinstance(kind, TensorKind) or (kind.H, kind.W) != (f.out.H, f.out.W):
            raise KindError("E337", f"branch {i} gives {kind} but its kpfilter filters at {f.out.H}x{f.out.W}; "
                            "the uncertainty map must match the pixels it weighs", hint="crop the kernels, not the "
                            "filtered image: kpfilter(3) { pad(2) -> kpencoder -> kpdecoder(3) -> crop(2) }")
    a, b = kinds
    if a.shape != b.shape:
        raise KindError("E320", f"ufuse needs branches of one shape; branch 1 gives {a}, branch 2 gives {b}")
    both_images = a.kind == "image" and b.kind == "image"
    return a.with_shape(kind="image" if both_images else "features")


register_op("ufuse", lambda args, inp, out, branches: UncertaintyFusion(branches, list(args["widths"]), args["k"]),
            branches=(2, 2), infer=_ufuse_infer, learnable=True, family="learnable", params=[
                Param("widths", "list[int]", (32, 32, 32, 32, 32), low=1, high=4096,
                      doc="hidden widths of the fusion CNN (len + 1 convs; the paper has six)"),
                Param("k", "int", 3, low=1, high=15, doc="kernel size of the fusion convs (odd)"),
            ], doc="""ufuse(widths=[32, 32, 32, 32, 32], k=3) { a | b }: blend two kpfilter branches by their uncertainty.

    Each branch runs one kpfilter (checked at compile time); U_a, U_b are their uncertainty maps
    (Eq. 9); W = sigmoid(CNN([U_a, U_b])) in [0, 1]^{H x W}, six 3x3 convs with ReLU between by
    default; output W * a + (1 - W) * b (an image when both branches give images). Means of U1, U2
    and W go to ctx.record. Huang et al., AdvFilter, ACM MM 2021, Eq. 10-11 (PA-Filt).
    ufuse { sl | m } -> clamp""")
