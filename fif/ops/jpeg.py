"""`jpeg`: standard JPEG compression and decompression as one op, vectorised over all 8x8 blocks.

    jpeg(75) -> smallcnn

What it does, in the order libjpeg does it (baseline, as Pillow's encoder and decoder):
  1. pixels p = round(255 x), the 8-bit image an encoder is given;
  2. RGB -> YCbCr (JFIF, rounded to 8 bits) for colour input, or the grey channel as it is;
     optional 4:2:0 chroma subsampling (2x2 mean; decoder: bilinear, libjpeg's "fancy" upsampling);
  3. level shift -128, orthonormal 8x8 DCT-II (fif.ops.dct_kernels, shared with blockdct);
  4. coefficients rounded to multiples of the IJG tables scaled by quality (halves away from zero);
  5. inverse DCT, +128, samples rounded and clipped to [0, 255]; YCbCr -> RGB rounded and clipped;
  6. back to [0, 1].
Differences from libjpeg: fif's DCT is exact floating point where libjpeg's default (islow) is a
fixed-point approximation, and colour conversion rounds in floating point. tests/test_dct.py
measures the resulting PSNR gap against Pillow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import KindError, Param, register_op
from . import dct_kernels as dk
from .jpeg_tables import CHROMA, LUMA, quality_table

# JFIF colour conversion (libjpeg jccolor.c / jdcolor.c); chroma carries an offset of 128.
RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
YCBCR_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer, halves away from zero (libjpeg's quantizer). Zero gradient."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def cubic_round(x: torch.Tensor) -> torch.Tensor:
    """Shin & Song's differentiable rounding: round(x) + (x - round(x))^3; slope 3 (x - round x)^2."""
    r = torch.round(x).detach()
    return r + (x - r) ** 3


def _mix(matrix, x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,njhw->nihw", m, x)


def rgb_to_ycbcr(p: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] RGB in [0, 255] -> YCbCr in [0, 255] (chroma centred on 128)."""
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=p.dtype, device=p.device).view(1, 3, 1, 1)
    return _mix(RGB_TO_YCBCR, p) + offset


def ycbcr_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    offset = torch.tensor([0.0, 128.0, 128.0], dtype=ycc.dtype, device=ycc.device).view(1, 3, 1, 1)
    return _mix(YCBCR_TO_RGB, ycc - offset)


def code_blocks(comp: torch.Tensor, table, rnd, rnd_pixels, shift: float = 128.0) -> torch.Tensor:
    """Encode and decode components [N, C, H, W] on the 8-bit scale with one 64-entry table:
    level shift, 8x8 DCT, coefficients rounded to multiples of the table (`rnd`), inverse DCT,
    samples rounded (`rnd_pixels`) and clipped to [0, 255]."""
    q = torch.tensor(table, dtype=comp.dtype, device=comp.device)
    c = dk.block_dct(comp - shift, 8)
    c = rnd(c / q) * q
    return rnd_pixels(dk.block_idct(c, 8, comp.shape[-2:]) + shift).clamp(0, 255)


def codec(p: torch.Tensor, luma, chroma, *, ycbcr: bool, subsample: bool, rnd, rnd_pixels,
          shift: float = 128.0) -> torch.Tensor:
    """The JPEG round trip of an image p [N, C, H, W] on the 8-bit scale: every channel with the
    `luma` table, or (ycbcr, 3 channels) Y with `luma` and Cb, Cr with `chroma`, optionally 4:2:0."""
    if not ycbcr:
        return code_blocks(p, luma, rnd, rnd_pixels, shift)
    ycc = rnd_pixels(rgb_to_ycbcr(p)).clamp(0, 255)
    y = code_blocks(ycc[:, :1], luma, rnd, rnd_pixels, shift)
    cc = ycc[:, 1:]
    if subsample:
        H, W = cc.shape[-2:]
        cc = F.pad(cc, (0, W % 2, 0, H % 2), mode="replicate")
        cc = code_blocks(rnd_pixels(F.avg_pool2d(cc, 2)), chroma, rnd, rnd_pixels, shift)
        cc = F.interpolate(cc, scale_factor=2, mode="bilinear", align_corners=False)
        cc = rnd_pixels(cc[..., :H, :W])
    else:
        cc = code_blocks(cc, chroma, rnd, rnd_pixels, shift)
    return rnd_pixels(ycbcr_to_rgb(torch.cat([y, cc], 1))).clamp(0, 255)


class JPEG(nn.Module):
    def __init__(self, quality: int, ycbcr: bool, subsample: bool, bpda: str):
        super().__init__()
        self.quality, self.ycbcr, self.subsample, self.bpda = quality, ycbcr, subsample, bpda
        self.luma = quality_table(LUMA, quality)
        self.chroma = quality_table(CHROMA, quality)

    def forward(self, x):
        return self.code(x, round_half_away, round_half_away)

    def smooth(self, x):
        """The same codec with every rounding made differentiable (cubic), the 8-bit input rounding
        left out (its cubic slope is zero on 8-bit images): the `bpda=cubic` surrogate."""
        return self.code(x, cubic_round, lambda v: v)

    def code(self, x, rnd, rnd_input):
        p = rnd_input(x.clamp(0, 1) * 255)
        return codec(p, self.luma, self.chroma, ycbcr=self.ycbcr, subsample=self.subsample,
                     rnd=rnd, rnd_pixels=rnd) / 255

    def extra_repr(self):
        return (f"quality={self.quality}, ycbcr={self.ycbcr}, subsample={self.subsample}, "
                f"bpda={self.bpda}")


def _uses_ycbcr(args, C: int) -> bool:
    return args["color"] == "ycbcr" or (args["color"] == "auto" and C == 3)


def _jpeg_infer(inp, args, ctx):
    if args["color"] == "ycbcr" and inp.C != 3:
        raise KindError("E335", f"color=ycbcr needs 3 (RGB) channels, got {inp.C}", param="color",
                        hint="use color=channels to code each channel as a grey image")
    if args["subsample"] and not _uses_ycbcr(args, inp.C):
        raise KindError("E335", f"chroma subsampling needs YCbCr, i.e. 3 channels and color=auto or "
                        f"ycbcr; got {inp.C} channel(s), color={args['color']}", param="subsample")
    return inp


def _jpeg_surrogate(module: JPEG, x):
    return x if module.bpda == "identity" else module.smooth(x)


register_op("jpeg", lambda args, inp, out: JPEG(args["quality"], _uses_ycbcr(args, inp.C),
                                                 args["subsample"], args["bpda"]),
            accepts=("image",), infer=_jpeg_infer, differentiable=False, surrogate=_jpeg_surrogate,
            family="lossy", params=[
                Param("quality", "int", 75, low=1, high=100, doc="IJG quality (tables scaled as libjpeg)"),
                Param("color", "choice", "auto", choices=("auto", "ycbcr", "channels"),
                      doc="auto: YCbCr for 3 channels, else each channel as grey; channels: every "
                          "channel as grey with the luminance table"),
                Param("subsample", "bool", False, doc="4:2:0 chroma subsampling (YCbCr only)"),
                Param("bpda", "choice", "identity", choices=("identity", "cubic"),
                      doc="attack-view gradient: identity, or the codec with cubic rounding (Shin & Song 2017)"),
            ], doc="""jpeg(quality=75, color=auto, subsample=false, bpda=identity): JPEG encode + decode.

    Baseline JPEG as libjpeg/Pillow do it: 8-bit input, JFIF YCbCr for RGB (grey for 1 channel),
    8x8 DCT, IJG luminance/chrominance tables scaled by quality, rounded coefficients and 8-bit
    output; no chroma subsampling unless `subsample`. Not differentiable: the attack view passes
    the identity gradient (BPDA), or with bpda=cubic the gradient of the same codec with
    round(x) replaced by round(x) + (x - round(x))^3 (Shin & Song 2017).
    jpeg(75) -> smallcnn""")
