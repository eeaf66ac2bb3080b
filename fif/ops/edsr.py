"""`edsr`: an EDSR-style residual reconstruction network at scale 1 (no up-sampler).

    bitdepth(2) -> edsr(32, 4) -> clamp -> smallcnn

Lim, Son, Kim, Nah & Lee, Enhanced Deep Residual Networks for Single Image Super-Resolution,
CVPRW 2017 (structure as in sanghyun-son/EDSR-PyTorch); used at scale 1 after bit-depth reduction
by Zhang, Xu, Pei & Yang, PeerJ CS 2021 (shared/RECIPES.md section 4.2).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import KindError, Param, register_op

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)  # EDSR's RGB mean shift, on values in [0, 1]


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=True)


class ResBlock(nn.Module):
    """conv3x3, ReLU, conv3x3, times res_scale, plus the identity; no batch norm."""

    def __init__(self, width: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(_conv(width, width), nn.ReLU(inplace=False), _conv(width, width))
        self.res_scale = res_scale

    def forward(self, x):
        out = self.body(x)
        # a multiply by 1 would allocate one more feature map (bitdepth_sr peak 43.1 -> 40.5 MB)
        return x + (out if self.res_scale == 1 else out * self.res_scale)

    def extra_repr(self):
        return f"res_scale={self.res_scale:g}"


class EDSR(nn.Module):
    """head conv (C -> width); `depth` ResBlocks and a conv; global skip; tail conv (width -> C)."""

    def __init__(self, channels: int, width: int, depth: int, res_scale: float, mean_shift: bool):
        super().__init__()
        self.head = _conv(channels, width)
        self.body = nn.Sequential(*[ResBlock(width, res_scale) for _ in range(depth)], _conv(width, width))
        self.tail = _conv(width, channels)
        self.mean_shift = mean_shift

    def forward(self, x):
        mean = None
        if self.mean_shift:
            mean = torch.tensor(DIV2K_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = x - mean
        h = self.head(x)
        y = self.tail(h + self.body(h))
        return y if mean is None else y + mean


def _edsr_infer(inp, args, ctx):
    if args["mean_shift"] and inp.C != 3:
        raise KindError("E335", f"EDSR's mean shift is the DIV2K RGB mean and needs 3 channels, got {inp.C}",
                        param="mean_shift", hint="leave mean_shift off")
    return inp.with_shape(kind="features")


register_op("edsr", lambda args, inp, out: EDSR(inp.C, args["width"], args["depth"], args["res_scale"],
                                                 args["mean_shift"]),
            infer=_edsr_infer, learnable=True, family="learnable", params=[
                Param("width", "int", 32, low=1, high=1024, doc="feature channels (EDSR n_feats)"),
                Param("depth", "int", 4, low=0, high=256, doc="residual blocks (EDSR n_resblocks)"),
                Param("res_scale", "float", 1.0, low=0.0, doc="residual scaling (0.1 in EDSR's big model)"),
                Param("mean_shift", "bool", False, doc="subtract the DIV2K RGB mean first, add it back last"),
            ], doc="""edsr(width=32, depth=4, res_scale=1, mean_shift=false): EDSR-style residual reconstruction at scale 1.

    Head conv3x3 (C -> width); `depth` residual blocks (conv3x3, ReLU, conv3x3, x res_scale,
    + identity; no batch norm, biases on) and a conv3x3; global skip (head + body); tail conv3x3
    back to C channels. No up-sampler. Output is features: clamp to get an image.
    Lim et al., EDSR, CVPRW 2017; Zhang, Xu, Pei & Yang, PeerJ CS 2021 (bit depth + EDSR).
    EDSR-baseline is edsr(64, 16); the paper-scale CPU default is edsr(32, 4).
    bitdepth(2) -> edsr(32, 4) -> clamp""")
