"""Per-coefficient statistics of the 8x8 block DCT, and the paper's delta' order of the 64 positions.

    stats = delta_ratio(clean, x_adv - clean)            # per position: spread of the perturbation / of the images
    order = ratio_order(stats["ratio"])                  # positions i*8 + j, smallest ratio first
    nnjpeg(50, split=5, order=[...order...])            # OF = the 15 most original-favoured positions

Zhang & Gao, ICCVW 2021, section 3.2 Step 1: for every coefficient position (i, j), delta^b is the
standard deviation of the benign images' DCT coefficient and delta^a that of the adversarial
perturbation's; delta' = delta^a / delta^b measures how much of the coefficient is perturbation.
Sorted increasingly, the first positions are the original-favoured (OF) band. Statistics pool every
block of every channel of every image (one table serves all RGB channels, as in the paper), on the
pixel scale (x * 255, level shift 128 for the images; the perturbation has none). Uses the one
block DCT of fif.ops.dct_kernels.
"""

from __future__ import annotations

import math

import torch

from . import dct_kernels as dk


def coefficient_spread(x: torch.Tensor, size: int = 8, scale: float = 255.0, shift: float = 0.0) -> torch.Tensor:
    """Standard deviation of each of the size*size block-DCT coefficients of x [N, C, H, W] over
    all blocks, channels and images: [size*size], row-major i*size + j. float64."""
    c = dk.block_dct(x.double() * scale - shift, size)
    return c.reshape(-1, size * size).std(0, unbiased=False)


def delta_ratio(benign: torch.Tensor, perturbation: torch.Tensor, size: int = 8, scale: float = 255.0,
                shift: float = 128.0) -> dict:
    """The paper's delta' per position, and its parts: {"benign", "perturbation", "ratio"}, each a
    list of size*size floats (row-major). `benign`: images in [0, 1]; `perturbation`: x_adv - x of
    adversarial examples (not necessarily of the same images). A position where the images never
    vary (benign spread 0) gets ratio inf, or 0 if the perturbation does not vary there either."""
    b = coefficient_spread(benign, size, scale, shift)
    a = coefficient_spread(perturbation, size, scale, 0.0)
    ratio = []
    for pa, pb in zip(a.tolist(), b.tolist()):
        ratio.append(pa / pb if pb > 0 else (math.inf if pa > 0 else 0.0))
    return {"benign": b.tolist(), "perturbation": a.tolist(), "ratio": ratio}


def ratio_order(ratio, size: int = 8) -> tuple[int, ...]:
    """Positions sorted by increasing ratio (the most original-favoured first); equal ratios keep
    the natural zig-zag order, so a flat ratio gives the natural order back."""
    rank = {pos: r for r, pos in enumerate(dk.natural_order(size))}
    if len(ratio) != size * size:
        raise ValueError(f"ratio needs {size * size} values, got {len(ratio)}")
    return tuple(sorted(range(size * size), key=lambda pos: (ratio[pos], rank[pos])))
