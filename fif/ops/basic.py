"""Simple ops: identity, drop, clamp, bit-depth reduction, Gaussian noise.

    dwt -> <HH: zero> -> idwt -> bitdepth(4) -> noise(0.05) -> clamp
"""

from __future__ import annotations

import torch
from torch import nn

from ..kinds import TensorKind
from ..registry import KindError, Param, register_op
from .masks import DropPatches


class Identity(nn.Module):
    def forward(self, x):
        return x


class _Zeros(torch.autograd.Function):
    """Zeros whose gradient is zero (not absent), so `zero` stays in the autograd graph."""

    @staticmethod
    def forward(ctx, x):
        return torch.zeros_like(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.zeros_like(grad)


class Zero(nn.Module):
    def forward(self, x):
        return _Zeros.apply(x)


class Clamp(nn.Module):
    """Clips to [lo, hi]; with `train=False` only at inference (in training mode values pass, so a
    decoder whose outputs start out of range still gets a gradient)."""

    def __init__(self, lo: float, hi: float, train: bool = True):
        super().__init__()
        self.lo, self.hi, self.clip_in_training = lo, hi, train

    def forward(self, x):
        if self.training and not self.clip_in_training:
            return x
        return x.clamp(self.lo, self.hi)

    def extra_repr(self):
        return f"lo={self.lo}, hi={self.hi}" + ("" if self.clip_in_training else ", train=False")


class BitDepth(nn.Module):
    """Rounds to `levels` evenly spaced values in [0, 1]. Its true gradient is zero."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        scale = self.levels - 1
        return torch.round(x.clamp(0, 1) * scale) / scale

    def extra_repr(self):
        return f"levels={self.levels}"


class GaussianNoise(nn.Module):
    """Adds N(0, sigma^2) noise, a fresh draw per sample and per call."""

    def __init__(self, sigma: float, clip: bool):
        super().__init__()
        self.sigma, self.clip = sigma, clip

    def forward(self, x, ctx):
        y = x + self.sigma * ctx.randn(x.shape, like=x)
        return y.clamp(0, 1) if self.clip else y

    def extra_repr(self):
        return f"sigma={self.sigma}, clip={self.clip}"


register_op("id", lambda args, inp, out: Identity(), accepts=("image", "features", "parts", "logits"),
            family="basic", doc="""id: pass the value through unchanged.

    dwt -> <HH, HL, LH: id, LL: downup> -> idwt""")

register_op("zero", lambda args, inp, out: Zero(), family="basic", doc="""zero: replace the value by zeros (drop a part).

    dwt -> <LL, LH, HL: zero> -> idwt      # keep only the diagonal band""")


def _clamp_infer(inp, args, ctx):
    if args["lo"] >= args["hi"]:
        raise KindError("E224", f"clamp needs lo < hi, got lo={args['lo']:g}, hi={args['hi']:g}", param="hi")
    if args["lo"] >= 0 and args["hi"] <= 1:
        return inp.with_shape(kind="image")
    return inp.with_shape(kind="features")


register_op("clamp", lambda args, inp, out: Clamp(args["lo"], args["hi"], args["train"]),
            params=[Param("lo", "float", 0.0, doc="lower bound"), Param("hi", "float", 1.0, doc="upper bound"),
                    Param("train", "bool", True, doc="clip while training too (false: only at inference)")],
            infer=_clamp_infer, family="basic", doc="""clamp(lo=0, hi=1, train=true): clip values; clipping to [0, 1] makes an image.

    With train=false the values pass unclipped while training (the loss sees them, and a decoder
    whose outputs start below 0 still learns) and are clipped at inference.
    conv(out=input) -> clamp(train=false)""")


def _image_only(name):
    def infer(inp, args, ctx):
        if not isinstance(inp, TensorKind) or inp.kind != "image":
            raise KindError("E302", f"'{name}' needs an image with values in [0, 1], got {inp}",
                            hint="add `-> clamp` before it")
        return inp
    return infer


def _bitdepth_levels(args) -> int:
    """The number of grey levels `bitdepth` keeps: `levels`, or 2**levels with bits=true."""
    return 2 ** args["levels"] if args["bits"] else args["levels"]


def _bitdepth_infer(inp, args, ctx):
    k = args["levels"]
    if args["bits"] and k > 8:
        raise KindError("E224", f"with bits=true, 'levels' counts bits and must be in [1, 8], got {k}",
                        param="levels", hint=f"bitdepth({min(k, 256)}) keeps {min(k, 256)} levels")
    if not args["bits"] and k < 2:
        raise KindError("E224", f"'levels' must be in [2, 256], got {k}", param="levels",
                        hint="bitdepth(2) binarizes; bitdepth(1, bits=true) is the same in bits")
    return _image_only("bitdepth")(inp, args, ctx)


register_op("bitdepth", lambda args, inp, out: BitDepth(_bitdepth_levels(args)),
            params=[Param("levels", "int", low=1, high=256,
                          doc="grey levels kept, 2 to 256 (2 = binarize); with bits=true, bits, 1 to 8"),
                    Param("bits", "bool", False, keyword=True,
                          doc="read `levels` as bits: keep 2**levels levels (keyword only)")],
            accepts=("image",), infer=_bitdepth_infer, differentiable=False, family="lossy",
            doc="""bitdepth(levels, *, bits=false): reduce each pixel to `levels` evenly spaced values (feature squeezing).

    x -> round(x * (L - 1)) / (L - 1) with L = levels, or L = 2**levels with bits=true
    (Zhang et al. 2021 call it k, "the maximum range of pixel values": levels is the default
    reading, bits the other one). Xu et al., Feature Squeezing, NDSS 2018. Rounding has zero
    gradient; the attack view passes the identity gradient backward (BPDA).
    bitdepth(2) -> smallcnn      # binarize; bitdepth(2, bits=true) keeps 4 levels""")


def _noise_infer(inp, args, ctx):
    if inp.kind == "image" and not args["clip"]:
        return inp.with_shape(kind="features")
    return inp


register_op("noise", lambda args, inp, out: GaussianNoise(args["sigma"], args["clip"] and inp.kind == "image"),
            params=[Param("sigma", "float", low=0.0, doc="standard deviation"),
                    Param("clip", "bool", True, doc="clip images back to [0, 1]")],
            infer=_noise_infer, random=True, family="random",
            doc="""noise(sigma, clip=true): add Gaussian noise, a fresh draw per sample and per call.

    noise(0.1) -> smallcnn""")


register_op("droppixels", lambda args, inp, out: DropPatches(args["share"], 1),
            params=[Param("share", "float", low=0.0, high=1.0, doc="share of pixel positions set to zero")],
            random=True, family="random",
            doc="""droppixels(share): zero a random share of pixel positions (all channels at once).

    Niu et al. 2020 (ACM) section 2.1.2 drop 30-80% of a perturbation's pixels.
    fif eval recipes/bitdepth.fif --probe 'droppixels(0.8)'""")
