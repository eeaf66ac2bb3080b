"""Learnable conv stacks: `conv`, ACM's channel compression `chancompress` and its LL path `downup`.

    conv(32, depth=3) -> dwt -> <HH, HL, LH: chancompress(1/6, noise), LL: downup> -> idwt -> conv(out=input)

Niu et al., On the Limitations of Denoising Strategies as Adversarial Defenses (ACM), arXiv 2012.09384.
Layer counts and widths the paper leaves open follow shared/RECIPES.md section 1.2 and are parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..kinds import TensorKind
from ..registry import KindError, Param, register_op

ACTIVATIONS = ("elu", "relu", "gelu", "tanh", "none")


def activation(name: str) -> nn.Module:
    return {"elu": nn.ELU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "none": nn.Identity}[name]()


def conv_stack(cin: int, widths: list[int], k: int, act: str) -> nn.Sequential:
    """k x k convs (same padding) through `widths`, with `act` between layers, none after the last."""
    layers: list[nn.Module] = []
    for i, cout in enumerate(widths):
        layers.append(nn.Conv2d(cin, cout, k, padding=k // 2))
        if i < len(widths) - 1:
            layers.append(activation(act))
        cin = cout
    return nn.Sequential(*layers)


def _out_channels(args, inp: TensorKind, ctx) -> int:
    out = args["out"]
    if out is None:
        return inp.C
    if out == "input":
        return ctx.input_kind.C
    return out


def _conv_infer(inp, args, ctx):
    if args["k"] % 2 == 0:
        raise KindError("E224", f"kernel size k must be odd to keep the size, got {args['k']}", param="k",
                        hint=f"use k={args['k'] + 1}")
    return TensorKind("features", _out_channels(args, inp, ctx), inp.H, inp.W)


def _conv_build(args, inp, out):
    width = args["width"] or out.C
    widths = [width] * (args["depth"] - 1) + [out.C]
    return conv_stack(inp.C, widths, args["k"], args["act"])


register_op("conv", _conv_build, infer=_conv_infer, learnable=True, family="learnable", params=[
    Param("out", "channels", None, low=1, doc="output channels; `input` = the pipeline's input channels; default: unchanged"),
    Param("k", "int", 3, low=1, high=15, doc="kernel size (odd)"),
    Param("depth", "int", 1, low=1, high=32, doc="number of conv layers"),
    Param("act", "choice", "elu", choices=ACTIVATIONS, doc="activation between layers"),
    Param("width", "int", None, low=1, doc="hidden width (default: out)"),
], doc="""conv(out, k=3, depth=1, act=elu, width): a stack of `depth` k x k convolutions, same padding.

    conv(32, depth=3) -> ... -> conv(out=input) -> clamp""")


class ChannelCompress(nn.Module):
    """C -> code channels -> (+ noise in training) -> tanh -> C channels; with `binarize`, the
    code is sign(tanh) at inference (training keeps tanh, so the weights still learn)."""

    def __init__(self, channels: int, code: int, sigma: float, test_noise: bool, binarize: bool = False,
                 bpda: str = "identity"):
        super().__init__()
        self.compress = conv_stack(channels, [channels, code], 3, "elu")
        self.restore = conv_stack(code, [channels, channels], 3, "elu")
        self.sigma, self.test_noise, self.binarize, self.bpda = sigma, test_noise, binarize, bpda

    def logits(self, x, ctx=None):
        """The code before tanh, noise included when it applies."""
        z = self.compress(x)
        if self.sigma > 0 and (self.training or self.test_noise):
            z = z + self.sigma * (ctx.randn(z.shape, like=z) if ctx is not None else torch.randn_like(z))
        return z

    def encode(self, x, ctx=None):
        z = self.logits(x, ctx)
        return torch.sign(z) if self.binarize and not self.training else torch.tanh(z)

    def forward(self, x, ctx):
        return self.restore(self.encode(x, ctx))

    def surrogate(self, x, ctx=None):
        """BPDA for the binary code: the true code forward; backward, d code / d z is 1 (`identity`,
        straight through the sign) or tanh'(z) (`tanh`)."""
        z = self.logits(x, ctx)
        soft = z if self.bpda == "identity" else torch.tanh(z)
        return self.restore(soft + (torch.sign(z) - soft).detach())

    def extra_repr(self):
        return (f"code={self.compress[-1].out_channels}, sigma={self.sigma}, test_noise={self.test_noise}, "
                f"binarize={self.binarize}")


def _code_width(args, C: int) -> int:
    return args["code"] or max(1, round(C * args["ratio"]))


def _chancompress_infer(inp, args, ctx):
    return inp.with_shape(kind="features")


def _chancompress_build(args, inp, out):
    return ChannelCompress(inp.C, _code_width(args, inp.C), args["noise"], args["test_noise"], args["binarize"],
                           args["bpda"])


register_op("chancompress", _chancompress_build,
            infer=_chancompress_infer, learnable=True, random=lambda a: a["test_noise"] and a["noise"] > 0,
            differentiable=lambda a: not a["binarize"],
            surrogate=lambda module, x, ctx: module.surrogate(x, ctx),
            family="learnable", params=[
                Param("ratio", "float", 1 / 6, low=0.0, high=1.0, doc="code channels as a share of the input's"),
                Param("noise", "float", 0.0, low=0.0, flag_value=20.0,
                      doc="std of the Gaussian noise added to the code before tanh while training; bare `noise` = 20 (ComDefend's value)"),
                Param("code", "int", None, low=1, doc="code channels, overriding ratio"),
                Param("test_noise", "bool", False, doc="keep adding the noise at inference (a random defense)"),
                Param("binarize", "bool", False, doc="code = sign(tanh) at inference, as ComDefend's test code (not differentiable)"),
                Param("bpda", "choice", "identity", choices=("identity", "tanh"),
                      doc="with binarize: the attack view's gradient through the sign, 1 or tanh'"),
            ], doc="""chancompress(ratio=1/6, noise, code, test_noise=false, binarize=false, bpda=identity): ACM's channel compression.

    conv C->C, ELU, conv C->round(C*ratio); + N(0, noise^2) while training; tanh (sign at inference
    with binarize); conv back to C, ELU, conv C->C. Niu et al. 2020 (ACM) section 3, eq. 5.
    dwt -> <HH, HL, LH: chancompress(1/6, noise, binarize)> -> idwt""")


class DownUp(nn.Module):
    """Down-sample, a few convs (C -> width -> ... -> width), up-sample back to the input size, one
    conv back to C."""

    def __init__(self, channels: int, factor: int, depth: int, down: str, width: int | None = None):
        super().__init__()
        self.factor = factor
        width = width or channels
        self.down = nn.AvgPool2d(factor) if down == "avg" else nn.Conv2d(channels, channels, factor, stride=factor)
        layers: list[nn.Module] = []
        cin = channels
        for _ in range(depth):
            layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ELU()]
            cin = width
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(cin, channels, 3, padding=1)

    def forward(self, x):
        y = self.body(self.down(x))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(y)


def _downup_infer(inp, args, ctx):
    f = args["factor"]
    if inp.H % f or inp.W % f:
        raise KindError("E330", f"downup factor {f} does not divide the input size {inp.H}x{inp.W}", param="factor",
                        hint="choose a factor that divides both sides" + (", e.g. 2" if inp.H % 2 == 0 and inp.W % 2 == 0 else ""))
    if args["width"] is not None and args["depth"] == 0:
        raise KindError("E224", "downup(width=...) sets the width of its convs, and depth=0 has none", param="width",
                        hint="give depth >= 1, or leave width out")
    return inp.with_shape(kind="features")


register_op("downup", lambda args, inp, out: DownUp(inp.C, args["factor"], args["depth"], args["down"], args["width"]),
            infer=_downup_infer, learnable=True, family="learnable", params=[
                Param("factor", "int", 2, low=2, high=16, doc="down-sampling factor"),
                Param("depth", "int", 3, low=0, high=16, doc="convs at the low resolution"),
                Param("down", "choice", "avg", choices=("avg", "conv"), doc="average pooling or a strided conv"),
                Param("width", "int", None, low=1, doc="channels of the low-resolution convs (default: the input's)"),
            ], doc="""downup(factor=2, depth=3, down=avg, width): ACM's LL path: down-sample, convs, bilinear up, conv.

    `width` narrows the low-resolution convs (C -> width ... -> C), so the path squeezes its band.
    Niu et al. 2020 (ACM) eq. 6.
    dwt -> <LL: downup(2, width=4)> -> idwt""")
