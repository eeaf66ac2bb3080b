"""`deflect`: pixel deflection (Prakash et al.): random pixels take the value of a random neighbour.

    deflect(16, window=5) -> shrink(db1, levels=2) -> clamp -> classifier

Per sample and call, `count` distinct pixel positions are drawn; each takes the value (all
channels) of another pixel drawn uniformly from the window x window square around it (clipped at
the borders). All deflections read the input image (the paper applies them one after another, so a
later one can read an earlier one's result; with few deflections on many pixels the two rarely
differ). Copying a value is differentiable: the gradient of a deflected pixel goes to its source.
"""

from __future__ import annotations

import torch
from torch import nn

from ..kinds import TensorKind
from ..registry import KindError, Param, register_op


class Deflect(nn.Module):
    def __init__(self, count: int, window: int):
        super().__init__()
        self.count, self.window = count, window

    def positions(self, x: torch.Tensor, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        """([N, count] flat indices of the deflected pixels, [N, count] flat indices of their sources)."""
        N, _, H, W = x.shape
        targets = ctx.rand((N, H * W), like=x).argsort(1)[:, :self.count]
        row, col = targets // W, targets % W
        w, centre = self.window, self.window ** 2 // 2
        # a window cell other than the centre, uniformly
        cell = (ctx.rand(targets.shape, like=x) * (w * w - 1)).floor().long().clamp(max=max(w * w - 2, 0))
        cell = cell + (cell >= centre).long() if w > 1 else cell + centre
        dr, dc = cell // w - w // 2, cell % w - w // 2
        sources = (row + dr).clamp(0, H - 1) * W + (col + dc).clamp(0, W - 1)
        return targets, sources

    def forward(self, x, ctx):
        N, C, H, W = x.shape
        targets, sources = self.positions(x, ctx)
        flat = x.reshape(N, C, H * W)
        values = flat.gather(2, sources.unsqueeze(1).expand(N, C, -1))
        return flat.scatter(2, targets.unsqueeze(1).expand(N, C, -1), values).reshape(N, C, H, W)

    def extra_repr(self):
        return f"count={self.count}, window={self.window}"


def _deflect_infer(inp, args, ctx):
    if not isinstance(inp, TensorKind):
        raise KindError("E301", f"deflect needs an image or features, got {inp}")
    if args["count"] > inp.H * inp.W:
        raise KindError("E224", f"deflect: {args['count']} deflections but only {inp.H * inp.W} pixels",
                        param="count", hint=f"use at most {inp.H * inp.W}")
    if args["window"] % 2 == 0:
        raise KindError("E224", f"deflect needs an odd window, got {args['window']}", param="window",
                        hint=f"use window={args['window'] + 1}")
    return inp


register_op("deflect", lambda args, inp, out: Deflect(args["count"], args["window"]), infer=_deflect_infer,
            random=True, family="random", params=[
                Param("count", "int", 16, low=1, high=1 << 24, doc="pixels deflected per image"),
                Param("window", "int", 5, low=1, high=255, doc="side of the (odd) square a source is drawn from"),
            ], doc="""deflect(count=16, window=5): pixel deflection, each of `count` random pixels takes a random neighbour's value.

    Prakash, Moran, Garber, DiLillo & Storer, Deflecting Adversarial Attacks with Pixel
    Deflection, CVPR 2018; the paper follows it with wavelet soft-threshold denoising (`shrink`).
    Random (a fresh draw per sample and call), differentiable (values are copied).
    deflect(16, window=5) -> shrink(db1, levels=2) -> clamp -> classifier""")
