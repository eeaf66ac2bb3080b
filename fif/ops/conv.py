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
    """C -> code channels -> (+ noise in training) -> tanh -> C channels."""

    def __init__(self, channels: int, code: int, sigma: float, test_noise: bool):
        super().__init__()
        self.compress = conv_stack(channels, [channels, code], 3, "elu")
        self.restore = conv_stack(code, [channels, channels], 3, "elu")
        self.sigma, self.test_noise = sigma, test_noise

    def encode(self, x, ctx=None):
        z = self.compress(x)
        if self.sigma > 0 and (self.training or self.test_noise):
            z = z + self.sigma * (ctx.randn(z.shape, like=z) if ctx is not None else torch.randn_like(z))
        return torch.tanh(z)

    def forward(self, x, ctx):
        return self.restore(self.encode(x, ctx))

    def extra_repr(self):
        return f"sigma={self.sigma}, test_noise={self.test_noise}"


def _code_width(args, C: int) -> int:
    return args["code"] or max(1, round(C * args["ratio"]))


def _chancompress_infer(inp, args, ctx):
    return inp.with_shape(kind="features")


register_op("chancompress",
            lambda args, inp, out: ChannelCompress(inp.C, _code_width(args, inp.C), args["noise"], args["test_noise"]),
            infer=_chancompress_infer, learnable=True, random=lambda a: a["test_noise"] and a["noise"] > 0,
            family="learnable", params=[
                Param("ratio", "float", 1 / 6, low=0.0, high=1.0, doc="code channels as a share of the input's"),
                Param("noise", "float", 0.0, low=0.0, flag_value=20.0,
                      doc="std of the Gaussian noise added to the code before tanh while training; bare `noise` = 20 (ComDefend's value)"),
                Param("code", "int", None, low=1, doc="code channels, overriding ratio"),
                Param("test_noise", "bool", False, doc="keep adding the noise at inference (a random defense)"),
            ], doc="""chancompress(ratio=1/6, noise, code, test_noise=false): ACM's channel compression.

    conv C->C, ELU, conv C->round(C*ratio); + N(0, noise^2) while training; tanh; conv back to C, ELU, conv C->C.
    Niu et al. 2020 (ACM) section 3, eq. 5.
    dwt -> <HH, HL, LH: chancompress(1/6, noise)> -> idwt""")


class DownUp(nn.Module):
    """Down-sample, a few convs, up-sample back to the input size, one conv."""

    def __init__(self, channels: int, factor: int, depth: int, down: str):
        super().__init__()
        self.factor = factor
        self.down = nn.AvgPool2d(factor) if down == "avg" else nn.Conv2d(channels, channels, factor, stride=factor)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ELU()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        y = self.body(self.down(x))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.out(y)


def _downup_infer(inp, args, ctx):
    f = args["factor"]
    if inp.H % f or inp.W % f:
        raise KindError("E330", f"downup factor {f} does not divide the input size {inp.H}x{inp.W}", param="factor",
                        hint="choose a factor that divides both sides" + (", e.g. 2" if inp.H % 2 == 0 and inp.W % 2 == 0 else ""))
    return inp.with_shape(kind="features")


register_op("downup", lambda args, inp, out: DownUp(inp.C, args["factor"], args["depth"], args["down"]),
            infer=_downup_infer, learnable=True, family="learnable", params=[
                Param("factor", "int", 2, low=2, high=16, doc="down-sampling factor"),
                Param("depth", "int", 3, low=0, high=16, doc="convs at the low resolution"),
                Param("down", "choice", "avg", choices=("avg", "conv"), doc="average pooling or a strided conv"),
            ], doc="""downup(factor=2, depth=3, down=avg): ACM's LL path: down-sample, convs, bilinear up, conv.

    Niu et al. 2020 (ACM) eq. 6.
    dwt -> <LL: downup(2)> -> idwt""")
