"""`dwt` and `idwt`: the 2-D discrete wavelet transform as torch convolutions, exact against pywt.

    dwt(haar) -> <HH, HL, LH: zero> -> idwt

Part names, one level: LL (approximation), LH (horizontal detail, pywt cH), HL (vertical, cV),
HH (diagonal, cD). With `levels=k`: LL is the coarsest approximation and each detail band carries
its level, 1 the finest: LH1, HL1, HH1, ..., LHk, HLk, HHk.
"""

from __future__ import annotations

from torch import nn

from ..kinds import PartsKind, TensorKind
from ..registry import KindError, Param, register_op
from . import wavelet_kernels as wk

import pywt

_WAVELETS = tuple(pywt.wavelist(kind="discrete"))
BANDS = ("LH", "HL", "HH")


def part_names(levels: int) -> list[str]:
    if levels == 1:
        return ["LL", *BANDS]
    return ["LL"] + [f"{b}{lev}" for lev in range(levels, 0, -1) for b in BANDS]


class DWT(nn.Module):
    def __init__(self, wavelet: str, levels: int, mode: str):
        super().__init__()
        self.wavelet, self.levels, self.mode = wavelet, levels, mode
        self.names = part_names(levels)

    def forward(self, x):
        ll, details = wk.dwt2(x, self.wavelet, self.levels, self.mode)
        out = {"LL": ll}
        for i, (lh, hl, hh) in enumerate(details):
            lev = self.levels - i
            suffix = "" if self.levels == 1 else str(lev)
            out["LH" + suffix], out["HL" + suffix], out["HH" + suffix] = lh, hl, hh
        return out

    def extra_repr(self):
        return f"wavelet={self.wavelet}, levels={self.levels}, mode={self.mode}"


class IDWT(nn.Module):
    def __init__(self, wavelet: str, levels: int, mode: str, sizes):
        super().__init__()
        self.wavelet, self.levels, self.mode, self.sizes = wavelet, levels, mode, sizes

    def forward(self, parts):
        details = []
        for lev in range(self.levels, 0, -1):
            suffix = "" if self.levels == 1 else str(lev)
            details.append((parts["LH" + suffix], parts["HL" + suffix], parts["HH" + suffix]))
        return wk.idwt2(parts["LL"], details, self.wavelet, self.mode, self.sizes)

    def extra_repr(self):
        return f"wavelet={self.wavelet}, levels={self.levels}, mode={self.mode}"


def _dwt_infer(inp: TensorKind, args, ctx):
    wavelet, levels, mode = args["wavelet"], args["levels"], args["mode"]
    h, w = inp.H, inp.W
    sizes = []
    for lev in range(1, levels + 1):
        if (h % 2 or w % 2) and not args["allow_odd"]:
            where = "" if lev == 1 else f" at level {lev}"
            raise KindError("E331", f"dwt needs even sizes{where}, got {h}x{w}",
                            param="levels" if lev > 1 else None,
                            hint="resize or crop the input to a multiple of "
                                 f"{2 ** levels}, use fewer levels, or pass allow_odd")
        try:
            nh, nw = wk.coeff_len(h, wavelet, mode), wk.coeff_len(w, wavelet, mode)
        except ValueError as e:
            raise KindError("E331", f"dwt cannot split {h}x{w}: {e}") from None
        if nh < 1 or nw < 1:
            raise KindError("E331", f"dwt level {lev} leaves nothing of {h}x{w}", param="levels")
        sizes.append((h, w))
        h, w = nh, nw
    band = TensorKind("features", inp.C, h, w)
    parts = [("LL", band)]
    for lev in range(levels, 0, -1):
        H, W = sizes[lev - 1]
        k = TensorKind("features", inp.C, wk.coeff_len(H, wavelet, mode), wk.coeff_len(W, wavelet, mode))
        suffix = "" if levels == 1 else str(lev)
        parts += [(b + suffix, k) for b in BANDS]
    meta = (("wavelet", wavelet), ("levels", levels), ("mode", mode), ("sizes", tuple(sizes[::-1])),
            ("source", inp))
    return PartsKind(tuple(parts), "dwt", meta)


register_op("dwt", lambda args, inp, out: DWT(args["wavelet"], args["levels"], args["mode"]),
            infer=_dwt_infer, family="transform", params=[
                Param("wavelet", "choice", "haar", choices=_WAVELETS, doc="any pywavelets discrete wavelet"),
                Param("levels", "int", 1, low=1, high=8, doc="decomposition levels"),
                Param("mode", "choice", "periodization", choices=wk.MODES,
                      doc="signal extension; periodization halves sizes exactly"),
                Param("allow_odd", "bool", False, doc="accept odd sizes (band sizes then round up)"),
            ], doc="""dwt(wavelet=haar, levels=1, mode=periodization): split into wavelet bands LL, LH, HL, HH.

    Filters come from pywavelets and run as stride-2 convolutions on any device; results equal
    pywt.wavedec2. LH = horizontal detail (pywt cH), HL = vertical (cV), HH = diagonal (cD);
    multi-level parts are LL, LH1..HHk (1 = finest).
    dwt(db2, levels=2) -> <HH1: zero> -> idwt""")


def _idwt_infer(inp: PartsKind, args, ctx):
    if inp.origin != "dwt":
        raise KindError("E303", f"idwt needs the parts dwt made, got parts made by {inp.origin}",
                        hint=f"use the inverse of {inp.origin}")
    for name, k in inp.parts:
        src = inp.get("source")
        if not isinstance(k, TensorKind):
            raise KindError("E304", f"part {name} is {k}, but idwt needs a tensor for it")
        if k.C != src.C:
            raise KindError("E332", f"idwt needs every part with {src.C} channels like dwt made, "
                            f"but {name} has {k.C}", hint="keep each part's channel count")
    ref = dict(_dwt_infer(inp.get("source"), {"wavelet": inp.get("wavelet"), "levels": inp.get("levels"),
                                              "mode": inp.get("mode"), "allow_odd": True}, ctx).parts)
    for name, k in inp.parts:
        if (k.H, k.W) != (ref[name].H, ref[name].W):
            raise KindError("E333", f"idwt needs part {name} at {ref[name].H}x{ref[name].W} like dwt made, "
                            f"got {k.H}x{k.W}", hint="keep each part's size")
    src = inp.get("source")
    return src


register_op("idwt", lambda args, inp, out: IDWT(inp.get("wavelet"), inp.get("levels"), inp.get("mode"),
                                                [tuple(s) for s in inp.get("sizes")]),
            accepts=("parts",), infer=_idwt_infer, family="transform",
            doc="""idwt: invert dwt, with the wavelet, levels and mode dwt used; back to the original size.

    dwt -> <LL: downup> -> idwt""")
