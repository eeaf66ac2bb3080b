"""The fast paths of fif's 2-D DWT (fif.ops.wavelet_kernels): dense per-level matrices for small sides,
plain 2x2-block arithmetic for Haar on even sizes, and the per-device tensor cache they share.

    ll, lh, hl, hh = _analysis_mm(x, "db4", "symmetric")    # one level, x [N, C, H, W], H, W <= 128
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pywt
import torch

_TENSORS: dict = {}


def _cached(key, make):
    t = _TENSORS.get(key)
    if t is None:
        t = _TENSORS[key] = make()
    return t


# ------------------------------------------------------------------ small sides: matrices
@lru_cache(maxsize=512)
def _analysis_matrix(n: int, wavelet: str, mode: str) -> np.ndarray:
    """[2m, n]: rows 0..m-1 map a length-n signal to its approximation, rows m..2m-1 to its detail."""
    approx, detail = pywt.dwt(np.eye(n), wavelet, mode=mode, axis=0)
    return np.concatenate([approx, detail])


@lru_cache(maxsize=512)
def _synthesis_matrix(m: int, wavelet: str, mode: str) -> np.ndarray:
    """[L, 2m]: pywt.idwt of each unit coefficient vector, approximation first; L is pywt's output length."""
    eye = np.eye(2 * m)
    return pywt.idwt(eye[:m], eye[m:], wavelet, mode=mode, axis=0)


def _matrix(make, n: int, wavelet: str, mode: str, like: torch.Tensor) -> torch.Tensor:
    return _cached((make.__name__, n, wavelet, mode, like.dtype, like.device),
                   lambda: torch.as_tensor(make(n, wavelet, mode), dtype=like.dtype, device=like.device))


def _analysis_mm(x: torch.Tensor, wavelet: str, mode: str):
    """One 2-D DWT level as two matrix products: (ll, lh, hl, hh), views of one [N, C, 2h, 2w] tensor."""
    N, C, H, W = x.shape
    ah = _matrix(_analysis_matrix, H, wavelet, mode, x)
    aw = _matrix(_analysis_matrix, W, wavelet, mode, x)
    h, w = ah.shape[0] // 2, aw.shape[0] // 2
    y = (x.reshape(N * C * H, W) @ aw.T).view(N * C, H, 2 * w)      # along W: (lo | hi) x w
    y = (ah @ y).view(N, C, 2, h, 2, w)                             # along H: (lo | hi) x h
    (ll, hl), (lh, hh) = (half.unbind(3) for half in y.unbind(2))
    return ll, lh, hl, hh


def _synthesis_mm(ll, lh, hl, hh, wavelet: str, mode: str, size: tuple[int, int]) -> torch.Tensor:
    """One 2-D inverse level as two matrix products, cropped to `size` (at most pywt's length)."""
    N, C, h, w = lh.shape
    sh = _matrix(_synthesis_matrix, h, wavelet, mode, lh)[: size[0]]
    sw = _matrix(_synthesis_matrix, w, wavelet, mode, lh)[: size[1]]
    y = torch.cat([torch.cat([ll, hl], -1), torch.cat([lh, hh], -1)], -2).reshape(N * C, 2 * h, 2 * w)
    y = sh @ y                                                       # along H
    return (y.reshape(-1, 2 * w) @ sw.T).view(N, C, size[0], size[1])  # along W


# ------------------------------------------------------------------ Haar fast path
# With the two-tap Haar filters and an even size no mode pads anything, so one level is plain
# arithmetic on the four pixels of each 2x2 block (several times faster than the convolutions on
# CPU; benchmarks/comparisons/dwt.py compares it with pywt, ptwt and pytorch_wavelets).
def _haar_even(x: torch.Tensor) -> bool:
    return x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0


def _haar_split(x: torch.Tensor):
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    ab, cd, a_b, c_d = a + b, c + d, a - b, c - d
    return (ab + cd) / 2, (ab - cd) / 2, (a_b + c_d) / 2, (a_b - c_d) / 2   # LL, LH, HL, HH


def _haar_merge(ll, lh, hl, hh) -> torch.Tensor:
    s, t, u, v = ll + lh, ll - lh, hl + hh, hl - hh
    a, b, c, d = (s + u) / 2, (s - u) / 2, (t + v) / 2, (t - v) / 2
    if not (torch.is_grad_enabled() and any(x.requires_grad for x in (a, b, c, d))):
        # no graph to record: each 2x2 block written in place, one pass instead of three stacks
        N, C, h, w = a.shape
        out = torch.empty(N, C, 2 * h, 2 * w, dtype=a.dtype, device=a.device)
        pixels = out.view(N, C, h, 2, w, 2)
        pixels[:, :, :, 0, :, 0], pixels[:, :, :, 0, :, 1] = a, b
        pixels[:, :, :, 1, :, 0], pixels[:, :, :, 1, :, 1] = c, d
        return out
    top = torch.stack([a, b], -1).flatten(-2)       # interleave along W (stacks: a faster backward)
    bottom = torch.stack([c, d], -1).flatten(-2)
    return torch.stack([top, bottom], -2).flatten(-3, -2)   # interleave along H
