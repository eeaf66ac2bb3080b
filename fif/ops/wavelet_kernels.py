"""Pure-torch 2-D discrete wavelet transform (DWT) and inverse, exact against pywt.

Filters come from pywavelets; the transform itself is a pair of separable strided
convolutions per level (channels folded into the batch), so it runs on any device and
dtype and is differentiable.  Results match ``pywt.wavedec2`` / ``pywt.waverec2``
(``axes=(-2, -1)``) for every pywt padding mode.

Example::

    ll, details = dwt2(x, "db2", levels=2); y = idwt2(ll, details, "db2", sizes=level_sizes(*x.shape[-2:], "db2", 2))
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pywt
import torch
import torch.nn.functional as F

__all__ = ["MODES", "check_wavelet", "coeff_len", "level_sizes", "dwt2", "idwt2"]

MODES = ("zero", "constant", "symmetric", "reflect", "periodic", "smooth",
         "antisymmetric", "antireflect", "periodization")
_NEEDS_TWO = ("reflect", "antireflect")  # pywt requires a signal length > 1 for these


# ----------------------------------------------------------------------------- checks
def check_wavelet(name) -> None:
    """Raise ValueError unless ``name`` is a discrete wavelet known to pywt."""
    if not isinstance(name, str) or name not in pywt.wavelist(kind="discrete"):
        raise ValueError(f"unknown wavelet {name!r}: expected one of pywt.wavelist(kind='discrete'), "
                         "e.g. 'haar', 'db2', 'sym4', 'coif1', 'bior2.2'")


def _check_mode(mode) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown padding mode {mode!r}: expected one of {MODES}")


@lru_cache(maxsize=None)
def _filter_len(wavelet: str) -> int:
    check_wavelet(wavelet)
    return pywt.Wavelet(wavelet).dec_len


def coeff_len(n: int, wavelet: str, mode: str) -> int:
    """Length of the DWT coefficients of a length-``n`` signal (as pywt.dwt_coeff_len)."""
    _check_mode(mode)
    flen = _filter_len(wavelet)
    if n < 1:
        raise ValueError(f"signal length must be >= 1, got {n}")
    return (n + 1) // 2 if mode == "periodization" else (n + flen - 1) // 2


def level_sizes(H: int, W: int, wavelet: str, levels: int, mode: str) -> list[tuple[int, int]]:
    """Input size of every DWT level, ordered COARSEST FIRST (last entry is ``(H, W)``).

    This is exactly the order ``idwt2(..., sizes=...)`` expects (one entry per level,
    matching ``details``), so ``idwt2(*dwt2(x, w, L, m), w, m, level_sizes(H, W, w, L, m))``
    reconstructs ``x`` at its original (possibly odd) size.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    out, h, w = [], H, W
    for _ in range(levels):
        out.append((h, w))
        h, w = coeff_len(h, wavelet, mode), coeff_len(w, wavelet, mode)
    return out[::-1]


def _check_size(n: int, wavelet: str, levels: int, mode: str, axis: str) -> None:
    need = 2 if mode in _NEEDS_TWO else 1
    m = n
    for lev in range(levels):
        if m < need:
            smallest = next(s for s in range(need, 10 ** 6)
                            if all(v >= need for v in _chain(s, wavelet, levels, mode)))
            raise ValueError(f"input {axis}={n} is too small for {levels} level(s) of '{wavelet}' "
                             f"in mode '{mode}' (level {lev + 1} input would be {m} < {need}); "
                             f"the smallest {axis} that works is {smallest}")
        m = coeff_len(m, wavelet, mode)


def _chain(n, wavelet, levels, mode):
    out = []
    for _ in range(levels):
        out.append(n)
        n = coeff_len(n, wavelet, mode)
    return out


# ------------------------------------------------------------------ boundary extension
@lru_cache(maxsize=None)
def _ext_plan(n: int, left: int, right: int, mode: str):
    """Describe the extension of a length-n signal by (left, right) samples.

    Returns ('index', idx, sign|None) when every extended sample is +-one input sample,
    else ('matrix', cols, ML, MR): left/right parts are ML @ x[cols], MR @ x[cols].
    """
    eye = np.eye(n)

    def side(p, rows):  # rows: extension seen from this side's edge outward (edge first)
        if mode == "zero":
            return np.zeros((p, n))
        if mode == "constant" or (mode == "smooth" and n < 2):
            return np.repeat(rows[:1], p, axis=0)
        if mode == "periodic":  # rows is the signal ordered from the edge inward
            return rows[[(-1 - k) % n for k in range(p)]]
        if mode == "smooth":
            k = np.arange(1, p + 1)[:, None]
            return rows[0] + k * (rows[0] - rows[1])
        e = rows  # reflection-type modes: grow iteratively by mirroring the current edge
        ext = np.zeros((0, n))
        while ext.shape[0] < p:
            full = np.vstack([ext[::-1], e]) if ext.shape[0] else e
            m = full.shape[0]
            q = min(p - ext.shape[0], m if mode in ("symmetric", "antisymmetric") else m - 1)
            if mode == "symmetric":
                new = full[:q]
            elif mode == "antisymmetric":
                new = -full[:q]
            elif mode == "reflect":
                new = full[1:q + 1]
            else:  # antireflect
                new = 2 * full[0] - full[1:q + 1]
            ext = np.vstack([ext, new])
        return ext[:p]

    ml = side(left, eye[:: 1])[::-1] if left else np.zeros((0, n))
    mr = side(right, eye[::-1]) if right else np.zeros((0, n))
    full = np.vstack([ml, eye, mr])
    nnz = (full != 0).sum(1)
    if mode != "zero" and np.all(nnz == 1) and np.all(np.abs(full).sum(1) == 1):
        idx = np.abs(full).argmax(1)
        sign = full[np.arange(full.shape[0]), idx]
        return ("index", idx, None if np.all(sign > 0) else sign)
    cols = np.flatnonzero(np.abs(np.vstack([ml, mr])).sum(0))
    return ("matrix", cols, ml[:, cols], mr[:, cols])


_TENSORS: dict = {}


def _cached(key, make):
    t = _TENSORS.get(key)
    if t is None:
        t = _TENSORS[key] = make()
    return t


def _pad(x: torch.Tensor, left: int, right: int, mode: str, dim: int) -> torch.Tensor:
    """Extend ``x`` along ``dim`` (-1 or -2) by (left, right) samples, pywt style."""
    if left == 0 and right == 0:
        return x
    n = x.shape[dim]
    if mode == "zero":
        return F.pad(x, (left, right) if dim == -1 else (0, 0, left, right))
    plan = _ext_plan(n, left, right, mode)
    dev, dt = x.device, x.dtype
    if plan[0] == "index":
        idx = _cached(("idx", n, left, right, mode, dev), lambda: torch.as_tensor(plan[1], device=dev))
        y = x.index_select(dim, idx)
        if plan[2] is not None:
            sign = _cached(("sgn", n, left, right, mode, dev, dt),
                           lambda: torch.as_tensor(plan[2], device=dev, dtype=dt))
            y = y * (sign if dim == -1 else sign[:, None])
        return y
    _, cols, ml, mr = plan
    key = ("mat", n, left, right, mode, dev, dt)
    c, l_, r_ = _cached(key, lambda: (torch.as_tensor(cols, device=dev),
                                      torch.as_tensor(ml, device=dev, dtype=dt),
                                      torch.as_tensor(mr, device=dev, dtype=dt)))
    xs = x.index_select(dim, c)
    if dim == -1:
        parts = [xs @ l_.T, x, xs @ r_.T]
    else:
        parts = [l_ @ xs, x, r_ @ xs]
    return torch.cat(parts, dim)


def _wrap_pad(x: torch.Tensor, left: int, right: int, dim: int) -> torch.Tensor:
    """Circular extension along ``dim`` (any width, wraps as often as needed)."""
    n = x.shape[dim]
    idx = _cached(("wrap", n, left, right, x.device),
                  lambda: torch.arange(-left, n + right, device=x.device) % n)
    return x.index_select(dim, idx)


# --------------------------------------------------------------------------- filters
def _filters(wavelet: str, dtype, device):
    """(dec_w, dec_h, rec_w, rec_h) conv weights for (lo, hi), cached per dtype/device."""
    def make():
        w = pywt.Wavelet(wavelet)
        dec = torch.tensor(np.stack([w.dec_lo, w.dec_hi])[:, ::-1].copy(), dtype=dtype, device=device)
        rec = torch.tensor(np.stack([w.rec_lo, w.rec_hi]), dtype=dtype, device=device)
        flen = dec.shape[-1]
        return (dec.view(2, 1, 1, flen), dec.view(2, 1, flen, 1),
                rec.view(2, 1, 1, flen), rec.view(2, 1, flen, 1))
    return _cached(("filt", wavelet, dtype, device), make)


# -------------------------------------------------------------------------- one level
def _analysis(x: torch.Tensor, wavelet: str, mode: str) -> torch.Tensor:
    """One 2-D DWT level: x [B,1,H,W] -> [B, 2 (H: lo/hi), 2 (W: lo/hi), h, w]."""
    dec_w, dec_h, _, _ = _filters(wavelet, x.dtype, x.device)
    flen = dec_w.shape[-1]
    B = x.shape[0]
    for dim, weight, stride in ((-2, dec_h, (2, 1)), (-1, dec_w, (1, 2))):
        if mode == "periodization":
            if x.shape[dim] % 2:  # pywt repeats the last sample to make the length even
                x = torch.cat([x, x.narrow(dim, x.shape[dim] - 1, 1)], dim)
            x = _wrap_pad(x, flen // 2 - 1, flen // 2 - 1, dim)
        else:  # full convolution (F-1 on each side), keeping odd outputs
            x = _pad(x, flen - 2, flen - 1, mode, dim)
        x = F.conv2d(x, weight, stride=stride)  # [b, 2, ., .]
        x = x.reshape(-1, 1, *x.shape[-2:])
    return x.view(B, 2, 2, *x.shape[-2:])


def _synthesis(c: torch.Tensor, wavelet: str, mode: str) -> torch.Tensor:
    """One 2-D inverse level: c [B, 2 (H), 2 (W), h, w] -> [B, 1, H', W']."""
    _, _, rec_w, rec_h = _filters(wavelet, c.dtype, c.device)
    flen = rec_w.shape[-1]
    B = c.shape[0]
    x = c.reshape(B * 2, 2, *c.shape[-2:])
    for dim, weight, stride in ((-1, rec_w, (1, 2)), (-2, rec_h, (2, 1))):
        n = x.shape[dim]
        if mode == "periodization":
            p = -(-flen // 4)
            x = _wrap_pad(x, p, p, dim)
            start = flen // 2 - 1 + 2 * p
            length = 2 * n
        else:
            start, length = flen - 2, 2 * n - flen + 2
        x = F.conv_transpose2d(x, weight, stride=stride)  # sums lo + hi contributions
        x = x.narrow(dim, start, length)
        if dim == -1:
            x = x.reshape(B, 2, *x.shape[-2:])
    return x


# ------------------------------------------------------------------------ public API
def dwt2(x: torch.Tensor, wavelet: str = "haar", levels: int = 1, mode: str = "symmetric"):
    """Multi-level 2-D DWT of ``x`` [N,C,H,W]; returns ``(ll, [(lh, hl, hh), ...])``.

    ``details`` is ordered like ``pywt.wavedec2``: coarsest level first.  lh/hl/hh are
    pywt's cH (horizontal), cV (vertical) and cD (diagonal) details.
    """
    check_wavelet(wavelet)
    _check_mode(mode)
    if not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
    if not torch.is_tensor(x) or x.dim() != 4:
        raise ValueError(f"dwt2 expects a 4-D tensor [N, C, H, W], got shape "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"dwt2 expects a floating-point tensor, got {x.dtype}")
    N, C, H, W = x.shape
    _check_size(H, wavelet, levels, mode, "H")
    _check_size(W, wavelet, levels, mode, "W")
    a = x.reshape(N * C, 1, H, W)
    details = []
    for _ in range(levels):
        c = _analysis(a, wavelet, mode)
        h, w = c.shape[-2:]
        details.append(tuple(c[:, i, j].reshape(N, C, h, w) for i, j in ((1, 0), (0, 1), (1, 1))))
        a = c[:, 0, 0].unsqueeze(1)
    return a.reshape(N, C, *a.shape[-2:]), details[::-1]


def idwt2(ll: torch.Tensor, details, wavelet: str = "haar", mode: str = "symmetric", sizes=None):
    """Inverse of :func:`dwt2`, equal to ``pywt.waverec2``.

    ``sizes``: optional list of (H, W), one per level, COARSEST FIRST (same order as
    ``details`` and as returned by :func:`level_sizes`); each level's output is cropped to
    it, which makes odd original sizes round-trip exactly.
    """
    check_wavelet(wavelet)
    _check_mode(mode)
    if not torch.is_tensor(ll) or ll.dim() != 4:
        raise ValueError("idwt2 expects ll as a 4-D tensor [N, C, h, w]")
    details = list(details)
    if sizes is not None:
        sizes = [tuple(int(v) for v in s) for s in sizes]
        if len(sizes) != len(details):
            raise ValueError(f"sizes has {len(sizes)} entries but there are {len(details)} levels")
    N, C = ll.shape[:2]
    a = ll
    for lev, d in enumerate(details):
        if len(d) != 3:
            raise ValueError("each details entry must be a (lh, hl, hh) tuple")
        shape = tuple(d[0].shape)
        if any(tuple(t.shape) != shape for t in d) or len(shape) != 4 or shape[:2] != (N, C):
            raise ValueError(f"level {lev}: detail tensors must all have shape [N, C, h, w] "
                             f"matching ll's N, C; got {[tuple(t.shape) for t in d]}")
        diff = (a.shape[-2] - shape[-2], a.shape[-1] - shape[-1])
        if lev == 0 and diff != (0, 0) or not all(v in (0, 1) for v in diff):
            raise ValueError(f"level {lev}: approximation shape {tuple(a.shape[-2:])} is incompatible "
                             f"with detail shape {shape[-2:]}")
        a = a[..., : shape[-2], : shape[-1]]
        c = torch.stack([torch.stack([a, d[1]], 2), torch.stack([d[0], d[2]], 2)], 2)
        h, w = shape[-2:]
        a = _synthesis(c.reshape(N * C, 2, 2, h, w), wavelet, mode)
        a = a.reshape(N, C, *a.shape[-2:])
        if sizes is not None:
            sh, sw = sizes[lev]
            if sh > a.shape[-2] or sw > a.shape[-1]:
                raise ValueError(f"sizes[{lev}]={sizes[lev]} exceeds the reconstructed size "
                                 f"{tuple(a.shape[-2:])}; sizes must be ordered coarsest first")
            a = a[..., :sh, :sw]
    return a
