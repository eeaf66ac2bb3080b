"""`shield`: JPEG with a quality drawn at random for every 8x8 block (Das et al.'s SHIELD, SLQ).

    shield([20, 40, 60, 80]) -> classifier

The image is JPEG-coded once at each quality with fif's own codec (fif.ops.jpeg, whose DCT is
fif.ops.dct_kernels); then, per sample, per call and per 8x8 block, one of those codings is kept.
JPEG codes every 8x8 block on its own, so this is the image coded with a per-block table.
Non-differentiable (rounding) and random; the attack view passes the identity gradient (BPDA).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import KindError, Param, register_op
from .jpeg import _uses_ycbcr, codec, round_half_away
from .jpeg_tables import CHROMA, LUMA, quality_table
from .masks import expand_patches, patch_grid

BLOCK = 8


class Shield(nn.Module):
    def __init__(self, qualities: tuple[int, ...], ycbcr: bool):
        super().__init__()
        self.qualities, self.ycbcr = tuple(qualities), ycbcr
        self.tables = [(quality_table(LUMA, q), quality_table(CHROMA, q)) for q in self.qualities]

    def choices(self, x: torch.Tensor, ctx) -> torch.Tensor:
        """[N, 1, H, W] index of the quality each pixel's 8x8 block uses (one draw per block)."""
        N, _, H, W = x.shape
        hb, wb = patch_grid((H, W), BLOCK)
        k = len(self.qualities)
        grid = (ctx.rand((N, 1, hb, wb), like=x) * k).floor().clamp(max=k - 1)
        return expand_patches(grid, BLOCK, (H, W)).long()

    def forward(self, x, ctx):
        p = round_half_away(x.detach().clamp(0, 1) * 255)
        coded = torch.stack([codec(p, luma, chroma, ycbcr=self.ycbcr, subsample=False, rnd=round_half_away,
                                   rnd_pixels=round_half_away) for luma, chroma in self.tables])
        pick = self.choices(x, ctx).expand_as(x).unsqueeze(0)
        return coded.gather(0, pick).squeeze(0) / 255

    def extra_repr(self):
        return f"qualities={list(self.qualities)}, ycbcr={self.ycbcr}"


def _shield_infer(inp, args, ctx):
    if not args["qualities"]:
        raise KindError("E224", "shield needs at least one quality", param="qualities", hint="e.g. [20, 40, 60, 80]")
    if args["color"] == "ycbcr" and inp.C != 3:
        raise KindError("E335", f"color=ycbcr needs 3 (RGB) channels, got {inp.C}", param="color",
                        hint="use color=channels to code each channel as a grey image")
    return inp


register_op("shield", lambda args, inp, out: Shield(args["qualities"], _uses_ycbcr(args, inp.C)),
            accepts=("image",), infer=_shield_infer, differentiable=False,
            random=lambda args: len(set(args["qualities"])) > 1, family="lossy", params=[
                Param("qualities", "list[int]", (20, 40, 60, 80), low=1, high=100,
                      doc="the IJG qualities a block draws from, uniformly"),
                Param("color", "choice", "auto", choices=("auto", "ycbcr", "channels"),
                      doc="as jpeg: YCbCr for 3 channels, else each channel as grey"),
            ], doc="""shield(qualities=[20, 40, 60, 80], color=auto): JPEG with a random quality per 8x8 block.

    Das, Shanbhogue, Chen, Hohman, Li, Chen, Kounavis & Chau, SHIELD: Fast, Practical Defense and
    Vaccination for Deep Learning using JPEG Compression, KDD 2018 (stochastic local
    quantization). Per sample, call and block one quality is drawn; the coding is fif's `jpeg`.
    Non-differentiable and random (unless one quality is given); identity gradient backward (BPDA).
    shield([20, 40, 60, 80]) -> classifier""")
