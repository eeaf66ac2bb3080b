"""`pad` and `crop`: grow an image by a border and cut it off again.

    pad(2) -> kpencoder -> kpdecoder(3) -> crop(2)      # a U-Net that pools 4 times sees 32x32 digits

Four 2x poolings need sides divisible by 16; the 28x28 MNIST digits are padded to 32x32 with
zeros (their background) and the result cropped back, as shared/RECIPES.md section 3.5 suggests
for the AdvFilter reproduction (Huang et al., ACM MM 2021).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..kinds import TensorKind
from ..registry import KindError, Param, register_op

MODES = ("zeros", "reflect", "replicate")


class Pad(nn.Module):
    def __init__(self, n: int, mode: str):
        super().__init__()
        self.n, self.mode = n, mode

    def forward(self, x):
        if self.mode == "zeros":
            return F.pad(x, (self.n,) * 4)
        return F.pad(x, (self.n,) * 4, mode=self.mode)

    def extra_repr(self):
        return f"n={self.n}, mode={self.mode}"


class Crop(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def forward(self, x):
        n = self.n
        return x[..., n:x.shape[-2] - n, n:x.shape[-1] - n]

    def extra_repr(self):
        return f"n={self.n}"


def _pad_infer(inp: TensorKind, args, ctx):
    n = args["n"]
    if args["mode"] == "reflect" and n >= min(inp.H, inp.W):
        raise KindError("E330", f"reflect padding by {n} needs sides above {n}, got {inp.H}x{inp.W}", param="n",
                        hint="pad less, or use mode=zeros")
    return inp.with_shape(H=inp.H + 2 * n, W=inp.W + 2 * n)


register_op("pad", lambda args, inp, out: Pad(args["n"], args["mode"]), infer=_pad_infer, family="basic", params=[
    Param("n", "int", low=0, high=4096, doc="pixels added on each side"),
    Param("mode", "choice", "zeros", choices=MODES, doc="zeros, reflect (mirror without the edge) or replicate"),
], doc="""pad(n, mode=zeros): add n pixels on every side; [C,H,W] -> [C,H+2n,W+2n]; crop(n) undoes it.

    Zeros keep an image an image (MNIST's background is 0). Huang et al., ACM MM 2021, as reproduced
    on 28x28 digits (shared/RECIPES.md 3.5): the U-Net's four poolings need sides divisible by 16.
    pad(2) -> kpencoder -> kpdecoder(3) -> crop(2)""")


def _crop_infer(inp: TensorKind, args, ctx):
    n = args["n"]
    if 2 * n >= min(inp.H, inp.W):
        raise KindError("E330", f"crop({n}) would leave nothing of {inp.H}x{inp.W}", param="n",
                        hint=f"crop at most {(min(inp.H, inp.W) - 1) // 2} on each side")
    return inp.with_shape(H=inp.H - 2 * n, W=inp.W - 2 * n)


register_op("crop", lambda args, inp, out: Crop(args["n"]), infer=_crop_infer, family="basic", params=[
    Param("n", "int", low=0, high=4096, doc="pixels removed on each side"),
], doc="""crop(n): remove n pixels from every side; [C,H,W] -> [C,H-2n,W-2n] (undoes pad(n)).

    Huang et al., ACM MM 2021 reproduced on 28x28 digits padded to 32x32 (shared/RECIPES.md 3.5).
    pad(2) -> kpencoder -> kpdecoder(3) -> crop(2)""")
