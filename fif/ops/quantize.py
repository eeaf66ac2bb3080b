"""`quantize`: uniform scalar quantization, on any tensor value (an image, features, or one part).

    blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct -> clamp

Steps are in the units of the value they act on: on blockdct parts (defaults scale=255, shift=128)
that is JPEG's pixel-scale DCT coefficients, so the NN-favoured steps 16 and 50 read as written.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import KindError, Param, register_op


class Quantize(nn.Module):
    """round(x / step) * step (torch.round: halves to even), or floor(x / step) * step."""

    def __init__(self, step: float, rounding: bool):
        super().__init__()
        self.step, self.rounding = step, rounding

    def forward(self, x):
        q = torch.round(x / self.step) if self.rounding else torch.floor(x / self.step)
        return q * self.step

    def extra_repr(self):
        return f"step={self.step:g}, round={self.rounding}"


def _quantize_infer(inp, args, ctx):
    if args["step"] <= 0:
        raise KindError("E224", f"step must be > 0, got {args['step']:g}", param="step")
    return inp.with_shape(kind="features")


register_op("quantize", lambda args, inp, out: Quantize(args["step"], args["round"]), infer=_quantize_infer,
            differentiable=False, family="lossy", params=[
                Param("step", "float", doc="quantization step, in the value's own units"),
                Param("round", "bool", True, doc="round to the nearest multiple; false: floor"),
            ], doc="""quantize(step, round=true): uniform quantization round(x/step)*step (false: floor).

    Not differentiable (zero gradient almost everywhere); the attack view passes the identity
    gradient backward (BPDA). The result is features: clamp to get an image again.
    blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct -> clamp""")
