"""Pure-torch 2-D discrete wavelet transform (DWT) and its inverse, exact against pywt.

Filters come from pywavelets; each level is two separable depthwise convolutions (strided
for analysis, polyphase for synthesis) after a pywt-style boundary extension, or, for sides up to
MATRIX_MAX, two products with dense matrices that pywt itself builds (faster on CPU); it runs on
any device/dtype and is differentiable.  Matches ``pywt.wavedec2`` / ``pywt.waverec2``
(``axes=(-2, -1)``) in every pywt padding mode.

Example::

    ll, d = dwt2(x, "db2", levels=2); y = idwt2(ll, d, "db2", sizes=level_sizes(H, W, "db2", 2, "symmetric"))
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pywt
import torch
import torch.nn.functional as F

from .wavelet_fast import _analysis_mm, _cached, _haar_even, _haar_merge, _haar_split, _synthesis_mm

__all__ = ["MODES", "check_wavelet", "coeff_len", "level_sizes", "dwt2", "idwt2"]

MODES = ("zero", "constant", "symmetric", "reflect", "periodic", "smooth",
         "antisymmetric", "antireflect", "periodization")
_NEEDS_TWO = ("reflect", "antireflect")  # pywt requires a signal length > 1 for these


# ----------------------------------------------------------------------------- checks
_DISCRETE = frozenset(pywt.wavelist(kind="discrete"))   # asking pywt costs ~40 us a call


def check_wavelet(name) -> None:
    """Raise ValueError unless ``name`` is a discrete wavelet known to pywt."""
    if not isinstance(name, str) or name not in _DISCRETE:
        raise ValueError(f"unknown wavelet {name!r}: expected one of pywt.wavelist(kind='discrete'), "
                         "e.g. 'haar', 'db2', 'sym4', 'coif1', 'bior2.2'")


def _check_mode(mode) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown padding mode {mode!r}: expected one of {MODES}")


_FILTER_LEN: dict[str, int] = {}


def _filter_len(wavelet: str) -> int:
    # a plain dict, not lru_cache: torch.compile reads a filled dict as a constant, where it would
    # trace into lru_cache's function and stop at pywt.Wavelet (a graph break at every DWT level)
    n = _FILTER_LEN.get(wavelet)
    if n is None:
        check_wavelet(wavelet)
        n = _FILTER_LEN[wavelet] = pywt.Wavelet(wavelet).dec_len
    return n


def coeff_len(n: int, wavelet: str, mode: str) -> int:
    """Length of the DWT coefficients of a length-``n`` signal (as pywt.dwt_coeff_len)."""
    _check_mode(mode)
    flen = _filter_len(wavelet)
    if n < 1:
        raise ValueError(f"signal length must be >= 1, got {n}")
    return (n + 1) // 2 if mode == "periodization" else (n + flen - 1) // 2


def _chain(n: int, wavelet: str, levels: int, mode: str) -> list[int]:
    """Input length of each level, finest first."""
    out = []
    for _ in range(levels):
        out.append(n)
        n = coeff_len(n, wavelet, mode)
    return out


def level_sizes(H: int, W: int, wavelet: str, levels: int, mode: str) -> list[tuple[int, int]]:
    """Input size of every DWT level, ordered COARSEST FIRST (the last entry is ``(H, W)``).

    This is the order ``idwt2(..., sizes=...)`` takes (one entry per level, aligned with
    ``details``): ``idwt2(ll, d, w, m, sizes=level_sizes(H, W, w, L, m))`` after
    ``ll, d = dwt2(x, w, L, m)`` gives back ``x`` at its original (possibly odd) size.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    return list(zip(_chain(H, wavelet, levels, mode), _chain(W, wavelet, levels, mode)))[::-1]


def _check_size(n: int, wavelet: str, levels: int, mode: str, axis: str) -> None:
    need = 2 if mode in _NEEDS_TWO else 1  # pywt refuses [anti]reflect on 1 sample
    if n < 1:
        raise ValueError(f"input {axis}={n}: the image must be at least 1 pixel")
    lengths = _chain(n, wavelet, levels, mode)
    if min(lengths) < need:
        lev = next(i for i, m in enumerate(lengths) if m < need)
        smallest = next(s for s in range(need, 10 ** 6)
                        if min(_chain(s, wavelet, levels, mode)) >= need)
        raise ValueError(f"input {axis}={n} is too small for {levels} level(s) of '{wavelet}' "
                         f"in mode '{mode}' (level {lev + 1} input would be {lengths[lev]} < {need}); "
                         f"the smallest {axis} that works is {smallest}")


# ------------------------------------------------------------------ boundary extension
@lru_cache(maxsize=None)
def _ext_plan(n: int, left: int, right: int, mode: str):
    """Describe the (left, right) boundary extensions of a length-n signal, pywt style.

    Each side is None, ('index', idx, sign|None) when every new sample is +-one input
    sample, or ('matrix', cols, M) with the new samples = M @ x[cols] ('smooth',
    'antireflect').  Extensions wider than the signal repeat as pywt does.
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
            if q < 1:
                raise ValueError(f"mode '{mode}' needs a signal of length > 1, got {n}")
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

    def describe(m):  # +-1 one-hot rows -> gather (+ sign); otherwise a small matrix
        if m.shape[0] == 0:
            return None
        if np.all((m != 0).sum(1) == 1) and np.all(np.abs(m).sum(1) == 1):
            idx = np.abs(m).argmax(1)
            sign = m[np.arange(m.shape[0]), idx]
            return ("index", idx, None if np.all(sign > 0) else sign)
        cols = np.flatnonzero(np.abs(m).sum(0))
        return ("matrix", cols, m[:, cols])

    return describe(side(left, eye)[::-1]), describe(side(right, eye[::-1]))


def _side(x: torch.Tensor, desc, dim: int, key):
    """Materialise one boundary extension described by :func:`_ext_plan`."""
    dev, dt = x.device, x.dtype
    kind, idx, arr = desc
    idx_t, arr_t = _cached(key + (dev, dt), lambda: (
        torch.as_tensor(idx, device=dev), None if arr is None else torch.as_tensor(arr, device=dev, dtype=dt)))
    xs = x.index_select(dim, idx_t)
    if kind == "index":
        if arr_t is not None:
            xs = xs * (arr_t if dim == -1 else arr_t[:, None])
        return xs
    return xs @ arr_t.T if dim == -1 else arr_t @ xs


def _pad(x: torch.Tensor, left: int, right: int, mode: str, dim: int) -> torch.Tensor:
    """Extend ``x`` along ``dim`` (-1 or -2) by (left, right) samples, pywt style."""
    if left == 0 and right == 0:
        return x
    if mode == "zero":
        return F.pad(x, (left, right) if dim == -1 else (0, 0, left, right))
    n = x.shape[dim]
    dl, dr = _ext_plan(n, left, right, mode)
    parts = [x]
    if dl is not None:
        parts.insert(0, _side(x, dl, dim, ("L", n, left, right, mode)))
    if dr is not None:
        parts.append(_side(x, dr, dim, ("R", n, left, right, mode)))
    return torch.cat(parts, dim)


def _wrap_pad(x: torch.Tensor, left: int, right: int, dim: int, even: bool = False) -> torch.Tensor:
    """Circular extension along ``dim`` (any width).  ``even``: first make an odd length even
    by repeating the last sample (pywt's 'periodization')."""
    n = x.shape[dim]
    period = n + (n % 2 if even else 0)

    def make():
        pos = torch.cat([torch.arange(-left, 0), torch.arange(n, period + right)])
        return (pos % period).clamp(max=n - 1).to(x.device)
    idx = _cached(("wrap", n, left, right, even, x.device), make)
    ext = x.index_select(dim, idx)
    return torch.cat([ext.narrow(dim, 0, left), x, ext.narrow(dim, left, ext.shape[dim] - left)], dim)


# --------------------------------------------------------------------------- filters
def _filters(wavelet: str, dtype, device, groups: int):
    """Depthwise conv weights (dec_h, dec_w, rec_w, rec_h), (lo, hi) pairs repeated per group.

    dec_*: flipped analysis filters for a strided conv2d (cross-correlation).
    rec_*: polyphase synthesis weights [out phase (even, odd), in (lo, hi), F/2]: upsample +
    convolve is computed as two half-length convolutions whose outputs are interleaved.
    Cached per (wavelet, dtype, device, groups).
    """
    def make():
        w = pywt.Wavelet(wavelet)
        dec = torch.tensor(np.stack([w.dec_lo, w.dec_hi])[:, ::-1].copy(), dtype=dtype, device=device)
        rec = np.stack([w.rec_lo, w.rec_hi])  # [in, F]
        poly = np.stack([rec[:, 0::2], rec[:, 1::2]])[:, :, ::-1].copy()  # [phase, in, F/2]
        rec = torch.tensor(poly, dtype=dtype, device=device)
        flen, half = dec.shape[-1], poly.shape[-1]
        return (dec.view(2, 1, flen, 1).repeat(groups, 1, 1, 1),
                dec.view(2, 1, 1, flen).repeat(2 * groups, 1, 1, 1),
                rec.view(2, 2, 1, half).repeat(2 * groups, 1, 1, 1),
                rec.view(2, 2, half, 1).repeat(groups, 1, 1, 1))
    return _cached(("filt", wavelet, dtype, device, groups), make)


# -------------------------------------------------------------------------- one level
def _analysis(x: torch.Tensor, wavelet: str, mode: str) -> torch.Tensor:
    """One 2-D DWT level: x [N,C,H,W] -> [N, C, 2 (H: lo/hi), 2 (W: lo/hi), h, w]."""
    N, C = x.shape[:2]
    dec_h, dec_w, _, _ = _filters(wavelet, x.dtype, x.device, C)
    flen = dec_w.shape[-1]
    for dim, weight, stride, groups in ((-2, dec_h, (2, 1), C), (-1, dec_w, (1, 2), 2 * C)):
        if mode == "periodization":  # odd lengths: pywt repeats the last sample first
            x = _wrap_pad(x, flen // 2 - 1, flen // 2 - 1, dim, even=True)
        else:  # full convolution (F-1 on each side), keeping odd outputs
            x = _pad(x, flen - 2, flen - 1, mode, dim)
        x = F.conv2d(x, weight, stride=stride, groups=groups)  # channels: (c, kH[, kW])
    return x.view(N, C, 2, 2, *x.shape[-2:])


def _synthesis(c: torch.Tensor, wavelet: str, mode: str) -> torch.Tensor:
    """One 2-D inverse level: c [N, C, 2 (H), 2 (W), h, w] -> [N, C, H', W']."""
    N, C = c.shape[:2]
    _, _, rec_w, rec_h = _filters(wavelet, c.dtype, c.device, C)
    flen = 2 * rec_w.shape[-1]
    x = c.reshape(N, 4 * C, *c.shape[-2:])
    for dim, weight, groups in ((-1, rec_w, 2 * C), (-2, rec_h, C)):
        n = x.shape[dim]
        if mode == "periodization":
            p = -(-flen // 4)
            x = _wrap_pad(x, p, p, dim)
            start, length = 2 * p - flen // 2 + 1, 2 * n
        else:  # the 'valid' part of the full convolution of the upsampled coefficients
            start, length = 0, 2 * n - flen + 2
        x = F.conv2d(x, weight, groups=groups)  # channels (group, phase)
        g, (a, b) = x.shape[1] // 2, x.shape[-2:]
        if dim == -1:  # interleave the even/odd phases along W
            x = x.view(N, g, 2, a, b).permute(0, 1, 3, 4, 2).reshape(N, g, a, 2 * b)
        else:
            x = x.view(N, g, 2, a, b).permute(0, 1, 3, 2, 4).reshape(N, g, 2 * a, b)
        x = x.narrow(dim, start, length)
    return x


# ------------------------------------------------------------------ small sides: matrices
# Up to MATRIX_MAX samples a side, one level along one axis is a dense matrix (fif.ops.wavelet_fast)
# that does the boundary extension, the filtering and the down-sampling at once. The matrices come
# from pywt itself, applied to the unit vectors, so every mode is pywt's by construction; a level is
# then two matrix products, several times faster on CPU than the depthwise convolutions above,
# forward and backward (benchmarks/comparisons/dwt.py). Their work per sample grows with the side
# (most entries are zero), so above MATRIX_MAX the convolutions are faster again.
MATRIX_MAX = 128


def _natural_len(m: int, wavelet: str, mode: str) -> int:
    """pywt.idwt's output length for m coefficients."""
    return 2 * m if mode == "periodization" else 2 * m - _filter_len(wavelet) + 2


# ------------------------------------------------------------------------ public API
def dwt2(x: torch.Tensor, wavelet: str = "haar", levels: int = 1, mode: str = "symmetric"):
    """Multi-level 2-D DWT of ``x`` [N,C,H,W]; returns ``(ll, [(lh, hl, hh), ...])``.

    ``details`` is ordered like ``pywt.wavedec2``: coarsest level first.  lh/hl/hh are
    pywt's cH (horizontal), cV (vertical) and cD (diagonal) details.
    """
    check_wavelet(wavelet)
    _check_mode(mode)
    if not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be an integer >= 1, got {levels!r}")
    if not torch.is_tensor(x) or x.dim() != 4:
        raise ValueError(f"dwt2 expects a 4-D tensor [N, C, H, W], got shape "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"dwt2 expects a floating-point tensor, got {x.dtype}")
    H, W = x.shape[-2:]
    _check_size(H, wavelet, levels, mode, "H")
    _check_size(W, wavelet, levels, mode, "W")
    a, details = x, []
    for _ in range(levels):
        if wavelet == "haar" and _haar_even(a):
            ll, lh, hl, hh = _haar_split(a)
            details.append((lh, hl, hh))
            a = ll
            continue
        if max(a.shape[-2:]) <= MATRIX_MAX:
            a, lh, hl, hh = _analysis_mm(a, wavelet, mode)
        else:
            # One unbind, not four selects: its backward stacks the four band gradients in one
            # tensor, where each select's backward would fill a zero tensor of all four bands.
            a, hl, lh, hh = _analysis(a, wavelet, mode).flatten(2, 3).unbind(2)
        details.append((lh, hl, hh))
    return a, details[::-1]


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
        if mode != "periodization" and 2 * min(shape[-2:]) - _filter_len(wavelet) + 2 < 1:
            raise ValueError(f"level {lev}: coefficients of size {shape[-2:]} are too small for "
                             f"'{wavelet}' (filter length {_filter_len(wavelet)}); were they made "
                             "with the same wavelet and mode?")
        a = a[..., : shape[-2], : shape[-1]]
        natural = (_natural_len(shape[-2], wavelet, mode), _natural_len(shape[-1], wavelet, mode))
        size = natural if sizes is None else sizes[lev]
        if size[0] > natural[0] or size[1] > natural[1]:
            raise ValueError(f"sizes[{lev}]={sizes[lev]} exceeds the reconstructed size "
                             f"{natural}; sizes must be ordered coarsest first")
        if wavelet == "haar" and all(v % 2 == 0 for v in size):
            a = _haar_merge(a, d[0], d[1], d[2])
        elif max(natural) <= MATRIX_MAX:
            a = _synthesis_mm(a, d[0], d[1], d[2], wavelet, mode, size)
        else:
            c = torch.stack([a, d[1], d[0], d[2]], 2)   # [N, C, 4, h, w]: (H lo/hi) x (W lo/hi)
            a = _synthesis(c.view(N, C, 2, 2, *c.shape[-2:]), wavelet, mode)
        a = a[..., : size[0], : size[1]]
    return a
