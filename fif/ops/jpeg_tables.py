"""Quantization tables for JPEG-style compression: the IJG standard tables, the IJG quality
scaling, and the NN-favoured two-step table of Zhang & Gao (ICCVW 2021).

    quality_table(LUMA, 75)                                  # what libjpeg (and Pillow) use at quality 75
    t = quality_table(nn_favoured_table(split=5), 70)        # t[0], t[63] == 10, 30: OF and AF steps

Tables are 64 entries, row-major (i*8 + j), natural (not zig-zag) order.
"""

from __future__ import annotations

from . import dct_kernels as dk

# ITU-T T.81 Annex K, tables K.1 and K.2 (also libjpeg's std_luminance/chrominance_quant_tbl).
LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)
CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
)


def quality_scale(quality: int) -> int:
    """IJG percentage scale for quality 1..100: 5000 // q below 50, else 200 - 2q (libjpeg's integers)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in [1, 100], got {quality}")
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def quality_table(base, quality: int) -> tuple[int, ...]:
    """The table libjpeg makes from `base` at `quality`: clamp(floor((Q*scale + 50) / 100), 1, 255).

    The 255 cap is libjpeg's force_baseline, which Pillow sets. Quality 50 gives `base` back.
    """
    scale = quality_scale(quality)
    return tuple(min(255, max(1, (q * scale + 50) // 100)) for q in base)


def nn_favoured_table(split: int = 5, of: int = 16, af: int = 50, order=None) -> tuple[int, ...]:
    """Zhang & Gao's table: step `of` on the first #{i + j < split} positions of `order`, `af` elsewhere.

    With the defaults it is the table of RECIPES.md section 2.2 (16 on i + j <= 4, 50 elsewhere).
    """
    order = dk.natural_order(8) if order is None else tuple(order)
    low = set(order[:dk.split_count(8, split)])
    return tuple(of if pos in low else af for pos in range(64))
