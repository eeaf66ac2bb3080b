"""`nnjpeg`: Zhang & Gao's NN-favoured JPEG (ICCVW 2021) as one op: the two-step OF/AF table,
scaled by quality like IJG JPEG, coded per RGB channel (or in YCbCr), with real JPEG's 8-bit rounding.

    nnjpeg(70)                                   # the default table (k=5, 16/50) at quality 70: steps 10/30
    nnjpeg(50, table=search)                     # the table `fif search` chose for this recipe
    nnjpeg(50, split=5, of=16, af=50, eight_bit=false)
        ==  blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct -> clamp

Why an op and not a `def` of blockdct/quantize: the IJG scaling of the two steps (q70 -> 10, 30)
is integer arithmetic on the arguments, which fif's language does not have, and real JPEG rounds
pixels to 8 bits on the way in and out. The op adds nothing else: its DCT is fif.ops.dct_kernels
(shared with blockdct and jpeg), its tables fif.ops.jpeg_tables, its codec fif.ops.jpeg.codec.

`table=search` reads the recipe's table search (`fif search RECIPE`, fif.search): its chosen
split, steps and coefficient order. `fif train` and `fif eval` give the op that file (beside the
train folder: <runs>/<recipe>/search/table.json); outside a run (fif compile, fif.compile) the op
compiles but refuses to run (E426). `table="file.json"` reads such a file, relative to the recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import FifError, diagnostic
from ..registry import KindError, Param, register_op
from . import dct_kernels as dk
from .jpeg import codec, cubic_round, round_half_away
from .jpeg_tables import nn_favoured_table, quality_table

DEFAULTS = {"split": 5, "of": 16, "af": 50, "order": None}   # RECIPES.md section 2.2's base table
SEARCH = "search"
TABLE_KEYS = ("split", "of", "af", "order")


def read_table(path) -> dict:
    """The base table a search result (or a hand-made file) holds: {split, of, af, order}.
    The file is JSON with a "table" object of those keys (order: 64 positions i*8 + j,
    most original-favoured first); E401 when missing, E402 when malformed."""
    path = Path(path)
    if not path.is_file():
        raise FifError(diagnostic("E401", f"no table file {path}", file=str(path)))
    try:
        t = json.loads(path.read_text(encoding="utf-8"))["table"]
        out = {"split": int(t["split"]), "of": int(t["of"]), "af": int(t["af"]),
               "order": None if t.get("order") is None else tuple(int(i) for i in t["order"])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FifError(diagnostic("E402", f"{path} is not a table file ({type(e).__name__}: {e})", file=str(path),
                                  hint='it needs {"table": {"split": 5, "of": 16, "af": 50, "order": [...64 positions]}}'))
    if not (1 <= out["split"] <= 14 and 1 <= out["of"] <= 255 and 1 <= out["af"] <= 255) or (
            out["order"] is not None and sorted(out["order"]) != list(range(64))):
        raise FifError(diagnostic("E402", f"{path} holds an invalid table {out}", file=str(path),
                                  hint="split in 1..14, steps in 1..255, order a permutation of 0..63"))
    return out


class NNJPEG(nn.Module):
    """The codec; `base` is None while a `table=search` op waits for its search result."""

    def __init__(self, quality: int, base: dict | None, ycbcr: bool, subsample: bool, eight_bit: bool,
                 shift: float, bpda: str, waiting: str | None = None, from_file: str | None = None):
        super().__init__()
        self.from_file = from_file  # the table file read, if any
        self.quality, self.ycbcr, self.subsample, self.eight_bit = quality, ycbcr, subsample, eight_bit
        self.shift, self.bpda, self.waiting = shift, bpda, waiting
        self.base = base
        self.table = None if base is None else quality_table(
            nn_favoured_table(base["split"], base["of"], base["af"], base["order"]), quality)

    def forward(self, x):
        pixels = round_half_away if self.eight_bit else _same
        return self.code(x, round_half_away, pixels, pixels)

    def smooth(self, x):
        """bpda=cubic: every rounding of the codec made differentiable (Shin & Song 2017)."""
        return self.code(x, cubic_round, _same, cubic_round if self.eight_bit else _same)

    def code(self, x, rnd, rnd_input, rnd_pixels):
        if self.table is None:
            raise FifError(diagnostic("E426", f"nnjpeg({self.quality}, table=search) has no table: {self.waiting}",
                                      hint="run `fif search RECIPE` first; `fif train` and `fif eval` then read it"))
        p = rnd_input(x.clamp(0, 1) * 255)
        grey = self.ycbcr and p.shape[1] == 1
        if grey:  # a grey image as RGB with R = G = B: Y is the grey value, Cb and Cr are flat
            p = p.expand(-1, 3, -1, -1)
        out = codec(p, self.table, self.table, ycbcr=self.ycbcr, subsample=self.subsample, rnd=rnd,
                    rnd_pixels=rnd_pixels, shift=self.shift)
        return (out.mean(1, keepdim=True) if grey else out) / 255

    def extra_repr(self):
        t = "waiting for its search result" if self.base is None else \
            f"base split={self.base['split']}, of={self.base['of']}, af={self.base['af']}"
        return f"quality={self.quality}, {t}, ycbcr={self.ycbcr}, eight_bit={self.eight_bit}, bpda={self.bpda}"


def _same(v):
    return v


def table_path(value: str, env) -> Path:
    path = Path(value).expanduser()
    base = getattr(env, "base", None)
    return path if path.is_absolute() or base is None else Path(base) / path


def _infer(inp, args, ctx):
    table = args["table"]
    if table is not None:
        for key in TABLE_KEYS:
            if args[key] is not None:
                raise KindError("E225", f"'{key}' comes from table={table}; give the table or the settings, "
                                "not both", param=key)
        if table != SEARCH and not table_path(table, ctx.env).is_file():
            raise KindError("E401", f"no table file {table_path(table, ctx.env)}", param="table",
                            hint="table=search (this recipe's `fif search` result) or a JSON file from one")
    if args["order"] is not None and sorted(args["order"]) != list(range(64)):
        raise KindError("E224", f"order must list each of the 64 block positions 0..63 (i*8 + j) once, got "
                        f"{len(args['order'])} entries" + ("" if len(args["order"]) != 64 else " with repeats"),
                        param="order", hint="leave it out for the natural (zig-zag diagonal) order")
    if args["color"] == "ycbcr" and inp.C not in (1, 3):
        raise KindError("E335", f"color=ycbcr needs 3 (RGB) or 1 (grey) channels, got {inp.C}", param="color")
    if args["subsample"] and args["color"] != "ycbcr":
        raise KindError("E335", "chroma subsampling needs color=ycbcr", param="subsample")
    return inp


def _base(args, env) -> tuple[dict | None, str | None, str | None]:
    """(the base table, why there is none yet, the file it came from)."""
    table = args["table"]
    if table is None:
        return {k: DEFAULTS[k] if args[k] is None else args[k] for k in TABLE_KEYS}, None, None
    if table != SEARCH:
        path = table_path(table, env)
        return read_table(path), None, str(path)
    found = getattr(env, "search", None)
    if found is None:
        return None, "it is read from the recipe's search result when `fif train` or `fif eval` runs", None
    if not Path(found).is_file():
        raise FifError(diagnostic("E426", f"nnjpeg(table=search): the recipe's table search has not run: "
                                  f"no result at {found}", file=str(found),
                                  hint="run `fif search RECIPE` (with the same --runs) first"))
    return read_table(found), None, str(found)


def _build(args, inp, out, env=None):
    base, waiting, path = _base(args, env)
    return NNJPEG(args["quality"], base, args["color"] == "ycbcr", args["subsample"], args["eight_bit"],
                  args["shift"], args["bpda"], waiting, path)


def _surrogate(module: NNJPEG, x):
    return x if module.bpda == "identity" else module.smooth(x)


register_op("nnjpeg", _build, accepts=("image",), infer=_infer, differentiable=False, surrogate=_surrogate,
            family="lossy", params=[
                Param("quality", "int", 50, low=1, high=100,
                      doc="IJG quality scaling of both steps; 50 gives the base table"),
                Param("split", "int", None, low=1, high=14,
                      doc="OF = the first #{i + j < split} positions of `order` (default 5: 15 coefficients)"),
                Param("of", "int", None, low=1, high=255, doc="step of the OF band at quality 50 (default 16)"),
                Param("af", "int", None, low=1, high=255, doc="step of the AF band at quality 50 (default 50)"),
                Param("order", "list[int]", None, low=0, high=63,
                      doc="positions i*8 + j, most original-favoured first (the paper's increasing delta'); "
                          "default: the natural zig-zag order"),
                Param("table", "str", None,
                      doc="search: this recipe's `fif search` result; or a JSON file of one (replaces "
                          "split, of, af and order)"),
                Param("color", "choice", "rgb", choices=("rgb", "ycbcr"),
                      doc="rgb: each channel coded with the table (the paper); ycbcr: JFIF YCbCr first, "
                          "the same table on Y, Cb and Cr (a grey image is R = G = B)"),
                Param("subsample", "bool", False, doc="4:2:0 chroma subsampling (color=ycbcr only)"),
                Param("eight_bit", "bool", True,
                      doc="round pixels to 8 bits before coding and after decoding, as real JPEG"),
                Param("shift", "float", 128.0, doc="level shift before the DCT (JPEG: 128; 0: FD's code)"),
                Param("bpda", "choice", "identity", choices=("identity", "cubic"),
                      doc="attack-view gradient: identity, or the codec with cubic rounding"),
            ], doc="""nnjpeg(quality=50, split=5, of=16, af=50, order, table, color=rgb, eight_bit=true, bpda=identity): NN-favoured JPEG.

    Zhang & Gao, ICCVW 2021: 8x8 orthonormal DCT of each channel (pixel scale, level shift 128),
    coefficients rounded to multiples of `of` on the OF band (the first #{i + j < split} positions
    of `order`) and of `af` elsewhere, both scaled by IJG quality (q90: 3/10 ... q30: 27/83),
    inverse DCT, 8-bit pixels. Not differentiable: the attack view passes the identity gradient
    (BPDA), or with bpda=cubic the codec's with cubic rounding.
    nnjpeg(70, table=search) -> classifier(member=3)""")
