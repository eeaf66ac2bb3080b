"""`tvsolve`: random pixel dropout, then total-variation minimisation (Guo et al.'s TVM).

    tvsolve(0.5, lam=0.03) -> classifier

Per sample and call a random share `drop` of the pixel positions is dropped; the image z is then
the minimiser of

    1/2 sum_kept (z - x)^2  +  lam * TV(z),      TV(z) = sum sqrt(dz_h^2 + dz_v^2 + smooth)

found by `iters` steps of projected gradient descent (z kept in [0, 1]) from the kept pixels (the
dropped ones start at 0). The solve is an iterative algorithm, not a layer: the op is declared
non-differentiable and the attack view passes the identity gradient backward (BPDA, the
surrogate Athalye et al. 2018 used for it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Param, register_op
from .basic import _image_only


def total_variation(z: torch.Tensor, smooth: float = 0.0) -> torch.Tensor:
    """Isotropic TV per sample ([N]): sum over pixels of sqrt(dh^2 + dv^2 + smooth), forward
    differences, zero past the last row and column."""
    dh = F.pad(z[..., :, 1:] - z[..., :, :-1], (0, 1))
    dv = F.pad(z[..., 1:, :] - z[..., :-1, :], (0, 0, 0, 1))
    return (dh ** 2 + dv ** 2 + smooth).sqrt().flatten(1).sum(1)


def tv_solve(x: torch.Tensor, keep: torch.Tensor, lam: float, iters: int, smooth: float = 1e-2) -> torch.Tensor:
    """argmin_z 1/2 |keep * (z - x)|^2 + lam TV_smooth(z) over z in [0, 1], by projected gradient
    descent with step 1 / L (L bounds the objective's curvature: 1 + 8 lam / sqrt(smooth))."""
    step = 1.0 / (1.0 + 8.0 * lam / math.sqrt(smooth))
    z = (x * keep).detach()
    for _ in range(iters):
        with torch.enable_grad():
            z = z.requires_grad_(True)
            tv = total_variation(z, smooth).sum()
            (g_tv,) = torch.autograd.grad(tv, z)
        z = (z.detach() - step * (keep * (z.detach() - x) + lam * g_tv)).clamp(0, 1)
    return z


class TVSolve(nn.Module):
    def __init__(self, drop: float, lam: float, iters: int):
        super().__init__()
        self.drop, self.lam, self.iters = drop, lam, iters

    def forward(self, x, ctx):
        N, _, H, W = x.shape
        if self.drop == 0:
            keep = torch.ones(N, 1, H, W, dtype=x.dtype, device=x.device)
        else:
            keep = (ctx.rand((N, 1, H, W), like=x) >= self.drop).to(x.dtype)
        return tv_solve(x.detach(), keep, self.lam, self.iters)

    def extra_repr(self):
        return f"drop={self.drop}, lam={self.lam}, iters={self.iters}"


register_op("tvsolve", lambda args, inp, out: TVSolve(args["drop"], args["lam"], args["iters"]),
            accepts=("image",), infer=_image_only("tvsolve"), differentiable=False,
            random=lambda args: args["drop"] > 0, family="lossy", params=[
                Param("drop", "float", 0.5, low=0.0, high=1.0, high_open=True,
                      doc="share of pixel positions dropped before the solve"),
                Param("lam", "float", 0.03, low=0.0, doc="weight of the total variation"),
                Param("iters", "int", 40, low=1, high=10_000, doc="projected gradient steps"),
            ], doc="""tvsolve(drop=0.5, lam=0.03, iters=40): drop random pixels, then total-variation minimisation.

    Guo, Rana, Cisse & van der Maaten, Countering Adversarial Images using Input
    Transformations, ICLR 2018 (TVM). Kept pixels are fitted, the image is made piecewise smooth,
    dropped pixels are filled in by the TV term. An iterative solver: non-differentiable, random
    (unless drop=0), identity surrogate backward (BPDA).
    tvsolve(0.5, lam=0.03) -> classifier""")
