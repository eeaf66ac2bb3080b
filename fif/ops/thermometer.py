"""`thermometer`: Buckman et al.'s thermometer encoding, image[C,H,W] -> image[C*L,H,W] of 0s and 1s.

    thermometer(16) -> classifier(encoded=thermometer(16))   # a classifier trained on the encoding

Channel c*L + (i-1), i = 1..L, is 1 where x_c >= i / (L + 1): L thresholds evenly spaced inside
(0, 1), so black encodes as all zeros and white as all ones. The step has zero gradient: the op
is non-differentiable, and the attack view passes the gradient of the smooth thermometer backward
(BPDA), each channel a ramp of width 1 / (L + 1) centred on its threshold (Athalye et al. 2018
attack it through such a relaxation).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Param, register_op
from .basic import _image_only


class Thermometer(nn.Module):
    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    def thresholds(self, x: torch.Tensor) -> torch.Tensor:
        L = self.levels
        return (torch.arange(1, L + 1, dtype=x.dtype, device=x.device) / (L + 1)).view(1, 1, L, 1, 1)

    def _spread(self, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        return values.reshape(N, C * self.levels, H, W)

    def forward(self, x):
        return self._spread((x.detach().unsqueeze(2) >= self.thresholds(x)).to(x.dtype), x)

    def smooth(self, x):
        """Each channel a ramp from 0 to 1 over [t - 1/(2(L+1)), t + 1/(2(L+1))] around its threshold t."""
        ramp = ((x.unsqueeze(2) - self.thresholds(x)) * (self.levels + 1) + 0.5).clamp(0, 1)
        return self._spread(ramp, x)

    def extra_repr(self):
        return f"levels={self.levels}"


def _thermometer_infer(inp, args, ctx):
    _image_only("thermometer")(inp, args, ctx)
    return inp.with_shape(C=inp.C * args["levels"])


register_op("thermometer", lambda args, inp, out: Thermometer(args["levels"]), accepts=("image",),
            infer=_thermometer_infer, differentiable=False, surrogate=lambda module, x: module.smooth(x),
            family="lossy", params=[Param("levels", "int", 16, low=1, high=256, doc="thresholds per channel (L)")],
            doc="""thermometer(levels=16): thermometer encoding, image[C,H,W] -> image[C*levels,H,W] of 0/1.

    Buckman, Roy, Raffel & Goodfellow, Thermometer Encoding: One Hot Way To Resist Adversarial
    Examples, ICLR 2018. Channel i of a pixel is 1 when its value is at least i/(levels+1).
    The classifier behind it must take levels*C channels and be trained on the encoding:
    `classifier(encoded=thermometer(16))`. Non-differentiable; the attack view passes the
    gradient of ramps around the thresholds (BPDA).
    thermometer(16) -> classifier(encoded=thermometer(16))""")
