"""`blockdct` and `iblockdct`: the 8x8 block DCT as a value made of two parts, OF and AF.

    blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct -> clamp

Zhang & Gao, ICCVW 2021 (NN-favoured JPEG): OF (original-favoured) holds the low coefficients of
every block, AF (adversarial-favoured) the rest. With the natural order OF = {(i, j): i + j < split}:
1, 3, 6, 10, 15, 21, 28, 36, 43, 49, 54, 58, 61, 63 coefficients for split = 1..14 (size 8).

Part representation: coefficient channels. OF is features[C*k, Hb, Wb], AF features[C*(n*n - k),
Hb, Wb], with Hb = ceil(H/n), Wb = ceil(W/n) blocks; channel c*k + m holds the m-th OF coefficient
(in `order`) of image channel c, one value per block. So a conv on a part mixes the frequencies of
one block, never unrelated blocks.

Value scale: coefficients are those of x*scale - shift; with the defaults (255, 128) an image in
[0, 1] is transformed as pixel values in [0, 255] shifted by -128, as in JPEG, so the paper's steps
(16, 50) read as written. Sides that are not multiples of `size` are edge-replicated up to one and
cropped again by iblockdct (exact).
"""

from __future__ import annotations

import torch
from torch import nn

from ..kinds import PartsKind, TensorKind
from ..registry import KindError, Param, register_op
from . import dct_kernels as dk

PARTS = ("OF", "AF")


class BlockDCT(nn.Module):
    def __init__(self, size: int, order: tuple[int, ...], count: int, scale: float, shift: float):
        super().__init__()
        self.size, self.count, self.scale, self.shift = size, count, scale, shift
        self.order = tuple(order)

    def forward(self, x):
        c = dk.block_dct(x * self.scale - self.shift, self.size, self.order)   # [N, C, Hb, Wb, n*n] in order
        c = c.permute(0, 1, 4, 2, 3)                                           # [N, C, n*n, Hb, Wb]
        N, C, _, hb, wb = c.shape
        k = self.count
        return {"OF": c[:, :, :k].reshape(N, C * k, hb, wb), "AF": c[:, :, k:].reshape(N, -1, hb, wb)}

    def extra_repr(self):
        return f"size={self.size}, count={self.count}, scale={self.scale:g}, shift={self.shift:g}"


class InverseBlockDCT(nn.Module):
    def __init__(self, size: int, order: tuple[int, ...], channels: int, scale: float, shift: float, hw):
        super().__init__()
        self.size, self.channels, self.scale, self.shift, self.hw = size, channels, scale, shift, tuple(hw)
        self.order = tuple(order)

    def forward(self, parts):
        of, af = parts["OF"], parts["AF"]
        N, _, hb, wb = of.shape
        C = self.channels
        c = torch.cat([of.reshape(N, C, -1, hb, wb), af.reshape(N, C, -1, hb, wb)], 2)
        c = c.permute(0, 1, 3, 4, 2)                                  # [N, C, Hb, Wb, n*n] in order
        return (dk.block_idct(c, self.size, self.hw, self.order) + self.shift) / self.scale

    def extra_repr(self):
        return f"size={self.size}, scale={self.scale:g}, shift={self.shift:g}"


def _order(args) -> tuple[int, ...]:
    n = args["size"]
    order = args["order"]
    if order is None:
        return dk.natural_order(n)
    if sorted(order) != list(range(n * n)):
        raise KindError("E224", f"order must list each of the {n * n} block positions 0..{n * n - 1} "
                        f"(i*{n} + j) once, got {len(order)} entries"
                        + ("" if len(order) != n * n else " with repeats"), param="order",
                        hint="leave it out for the natural (zig-zag diagonal) order")
    return tuple(order)


def _blockdct_infer(inp: TensorKind, args, ctx):
    n, split = args["size"], args["split"]
    if split > 2 * n - 2:
        raise KindError("E224", f"split must leave AF some coefficients: at most {2 * n - 2} for size {n}, "
                        f"got {split}", param="split")
    if args["scale"] == 0:
        raise KindError("E224", "scale must not be 0 (the inverse divides by it)", param="scale")
    order = _order(args)
    k = dk.split_count(n, split)
    hb, wb = dk.blocks_of(inp.H, n), dk.blocks_of(inp.W, n)
    parts = (("OF", TensorKind("features", inp.C * k, hb, wb)),
             ("AF", TensorKind("features", inp.C * (n * n - k), hb, wb)))
    meta = (("size", n), ("split", split), ("count", k), ("order", order), ("scale", args["scale"]),
            ("shift", args["shift"]), ("source", inp))
    return PartsKind(parts, "blockdct", meta)


register_op("blockdct", lambda args, inp, out: BlockDCT(args["size"], out.get("order"), out.get("count"),
                                                         args["scale"], args["shift"]),
            infer=_blockdct_infer, family="transform", params=[
                Param("size", "int", 8, low=2, high=16, doc="block side n"),
                Param("split", "int", 5, low=1, high=30,
                      doc="OF = the first #{i + j < split} positions in `order` (at most 2*size - 2)"),
                Param("order", "list[int]", None, low=0,
                      doc="block positions i*size + j, most original-favoured first (the paper's "
                          "increasing delta'); default: natural zig-zag diagonal order"),
                Param("scale", "float", 255.0, doc="coefficients are those of x*scale - shift"),
                Param("shift", "float", 128.0, doc="level shift subtracted after scaling"),
            ], doc="""blockdct(size=8, split=5, order, scale=255, shift=128): orthonormal block DCT into parts OF and AF.

    OF holds the first #{i + j < split} coefficients of every block in `order`, AF the others, as
    coefficient channels [C*count, ceil(H/size), ceil(W/size)]; sides not multiples of size are
    edge-replicated. Coefficients are of x*255 - 128, so JPEG-style steps apply as written.
    Zhang & Gao, ICCVW 2021.
    blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct -> clamp""")


def _iblockdct_infer(inp: PartsKind, args, ctx):
    if inp.origin != "blockdct":
        raise KindError("E303", f"iblockdct needs the parts blockdct made, got parts made by {inp.origin}",
                        hint=f"use the inverse of {inp.origin}")
    src = inp.get("source")
    n, k = inp.get("size"), inp.get("count")
    want = {"OF": src.C * k, "AF": src.C * (n * n - k)}
    hb, wb = dk.blocks_of(src.H, n), dk.blocks_of(src.W, n)
    for name, kind in inp.parts:
        if not isinstance(kind, TensorKind):
            raise KindError("E304", f"part {name} is {kind}, but iblockdct needs a tensor for it")
        if kind.C != want[name]:
            raise KindError("E332", f"iblockdct needs part {name} with {want[name]} coefficient channels "
                            f"like blockdct made, got {kind.C}", hint="keep each part's channel count")
        if (kind.H, kind.W) != (hb, wb):
            raise KindError("E333", f"iblockdct needs part {name} at {hb}x{wb} blocks like blockdct made, "
                            f"got {kind.H}x{kind.W}", hint="keep each part's size")
    return src.with_shape(kind="features")


register_op("iblockdct", lambda args, inp, out: InverseBlockDCT(
                inp.get("size"), inp.get("order"), inp.get("source").C, inp.get("scale"), inp.get("shift"),
                (inp.get("source").H, inp.get("source").W)),
            accepts=("parts",), infer=_iblockdct_infer, family="transform",
            doc="""iblockdct: invert blockdct (same size, order, scale and shift); features of the original shape.

    The result is features: after a lossy edit it may leave [0, 1], so clamp to get an image.
    blockdct -> <AF: zero> -> iblockdct -> clamp""")
