"""Block DCT kernels: the orthonormal 2-D DCT-II on non-overlapping n x n blocks, as matrix products.

The one DCT implementation in fif: `blockdct`/`iblockdct` and `jpeg` all use it. Pure torch,
vectorised over every block at once (one [n*n, n*n] matrix product for all blocks, which can also
put the coefficients in zig-zag order), any device and floating dtype, differentiable.

    c = block_dct(x, 8)              # [N, C, H, W] -> [N, C, Hb, Wb, 64], coefficient i*8+j last
    x = block_idct(c, 8, (H, W))     # the exact inverse, cropped back to H x W

Sides that are not multiples of n are edge-replicated up to the next multiple before the
transform (as JPEG encoders do) and cropped after the inverse, so the round trip is exact.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

__all__ = ["dct_matrix", "block_matrix", "block_dct", "block_idct", "blocks_of", "natural_order", "split_count"]


@lru_cache(maxsize=None)
def _dct_rows(n: int) -> tuple[tuple[float, ...], ...]:
    """Rows of the orthonormal DCT-II matrix D (D @ D.T = I): D[k, i] = a_k cos(pi (2i + 1) k / 2n)."""
    rows = []
    for k in range(n):
        a = math.sqrt((1 if k == 0 else 2) / n)
        rows.append(tuple(a * math.cos(math.pi * (2 * i + 1) * k / (2 * n)) for i in range(n)))
    return tuple(rows)


_MATRICES: dict = {}


def dct_matrix(n: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """The n x n orthonormal DCT-II matrix, cached per (n, dtype, device)."""
    key = (n, dtype, torch.device(device))
    m = _MATRICES.get(key)
    if m is None:
        # Built in float64, then cast: the float32 matrix is the rounded exact one.
        m = torch.tensor(_dct_rows(n), dtype=torch.float64).to(dtype=dtype, device=device)
        _MATRICES[key] = m
    return m


def blocks_of(size: int, n: int) -> int:
    """Blocks along a side of `size` pixels (the last one edge-padded)."""
    return -(-size // n)


def block_matrix(n: int, dtype=torch.float32, device="cpu", order: tuple[int, ...] | None = None) -> torch.Tensor:
    """The 2-D DCT of one flattened n x n block as one [n*n, n*n] matrix, kron(D, D): coefficient
    k*n + l of block b (row-major pixels i*n + j) is (K @ b)[k*n + l] = (D b D^T)[k, l]. With `order`,
    its rows are taken in that order (coefficients come out in `order`). Cached."""
    key = ("kron", n, dtype, torch.device(device), order)
    m = _MATRICES.get(key)
    if m is None:
        d = torch.tensor(_dct_rows(n), dtype=torch.float64)
        k = torch.kron(d, d)
        if order is not None:
            k = k[list(order)]
        m = _MATRICES[key] = k.to(dtype=dtype, device=device)
    return m


def block_dct(x: torch.Tensor, n: int = 8, order: tuple[int, ...] | None = None) -> torch.Tensor:
    """2-D DCT-II of every n x n block of x [N, C, H, W] -> [N, C, Hb, Wb, n*n], coefficients
    row-major (i*n + j) or, given `order`, in that order. One matrix product for all blocks."""
    N, C, H, W = x.shape
    hb, wb = blocks_of(H, n), blocks_of(W, n)
    if hb * n != H or wb * n != W:
        x = F.pad(x, (0, wb * n - W, 0, hb * n - H), mode="replicate")
    b = x.reshape(N, C, hb, n, wb, n).transpose(3, 4).reshape(N, C, hb, wb, n * n)
    return b @ block_matrix(n, x.dtype, x.device, order).T


def block_idct(c: torch.Tensor, n: int, size: tuple[int, int], order: tuple[int, ...] | None = None) -> torch.Tensor:
    """Inverse of `block_dct` (same `order`): [N, C, Hb, Wb, n*n] -> [N, C, H, W], cropped to size = (H, W)."""
    N, C, hb, wb, _ = c.shape
    b = c @ block_matrix(n, c.dtype, c.device, order)      # orthonormal: the inverse is the transpose
    x = b.reshape(N, C, hb, wb, n, n).transpose(3, 4).reshape(N, C, hb * n, wb * n)
    H, W = size
    return x[..., :H, :W]


@lru_cache(maxsize=None)
def natural_order(n: int) -> tuple[int, ...]:
    """Block positions i*n + j by anti-diagonal i + j, ties in JPEG's zig-zag order.

    For n = 8 this is the JPEG zig-zag scan: 0, 1, 8, 16, 9, 2, 3, 10, 17, 24, ...
    """
    cells = [(i, j) for i in range(n) for j in range(n)]
    cells.sort(key=lambda ij: (ij[0] + ij[1], ij[0] if (ij[0] + ij[1]) % 2 else -ij[0]))
    return tuple(i * n + j for i, j in cells)


def split_count(n: int, split: int) -> int:
    """How many of the n*n positions lie on the first `split` anti-diagonals: #{(i, j): i + j < split}."""
    return sum(1 for i in range(n) for j in range(n) if i + j < split)
