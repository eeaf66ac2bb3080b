"""Block DCT (`blockdct`/`iblockdct`), `quantize`, the JPEG tables and the `jpeg` op, against
numpy and against Pillow's libjpeg encoder and decoder."""

import io
import math

import numpy as np
import pytest
import torch

import fif
from fif.ops import dct_kernels as dk
from fif.ops.jpeg import JPEG
from fif.ops.jpeg_tables import CHROMA, LUMA, nn_favoured_table, quality_table


def _rand(shape, batch=2, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, *shape, generator=g, dtype=dtype)


def _error(src, shape):
    with pytest.raises(fif.FifError) as info:
        fif.compile(src, input_shape=shape)
    return info.value.code, info.value.column


# ---- the DCT itself -----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_dct_matrix_is_the_orthonormal_dct_ii(n):
    d = dk.dct_matrix(n, torch.float64).numpy()
    np.testing.assert_allclose(d @ d.T, np.eye(n), atol=1e-12)
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ref = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.where(k == 0, np.sqrt(1 / n), np.sqrt(2 / n))
    np.testing.assert_allclose(d, ref, atol=1e-12)


def test_block_dct_transforms_each_block_on_its_own():
    x = _rand((2, 16, 24), dtype=torch.float64)
    c = dk.block_dct(x, 8)
    assert c.shape == (2, 2, 2, 3, 64)
    d = dk.dct_matrix(8, torch.float64)
    block = x[1, 0, 8:16, 16:24]
    torch.testing.assert_close(c[1, 0, 1, 2].view(8, 8), d @ block @ d.T)
    assert c[1, 0, 1, 2, 0] == pytest.approx(block.sum().item() / 8)   # DC = 8 x mean


def test_block_dct_edge_replicates_partial_blocks():
    x = _rand((1, 10, 13), dtype=torch.float64)
    c = dk.block_dct(x, 8)
    padded = torch.nn.functional.pad(x, (0, 3, 0, 6), mode="replicate")
    torch.testing.assert_close(c, dk.block_dct(padded, 8))
    torch.testing.assert_close(dk.block_idct(c, 8, (10, 13)), x)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
def test_one_matrix_product_is_the_separable_transform(dtype, tol):
    """block_dct is one [64, 64] product for all blocks (kron(D, D), rows in `order` when given):
    the transform D @ b @ D.T of every block that it replaced (1.3-1.6x faster, benchmarks/
    comparisons/jpeg.py), to rounding, and block_idct undoes it in any order."""
    x = _rand((3, 16, 24), dtype=dtype) * 255 - 128
    d = dk.dct_matrix(8, dtype)
    ref = (d @ x.reshape(2, 3, 2, 8, 3, 8).transpose(3, 4) @ d.T).reshape(2, 3, 2, 3, 64)
    torch.testing.assert_close(dk.block_dct(x, 8), ref, rtol=0, atol=tol)
    order = dk.natural_order(8)
    coeffs = dk.block_dct(x, 8, order)
    torch.testing.assert_close(coeffs, ref[..., list(order)], rtol=0, atol=tol)
    torch.testing.assert_close(dk.block_idct(coeffs, 8, (16, 24), order), x, rtol=0, atol=tol)
    torch.testing.assert_close(dk.block_idct(ref, 8, (16, 24)), x, rtol=0, atol=tol)


# ---- blockdct / iblockdct -----------------------------------------------------------------------

@pytest.mark.parametrize("src,shape", [
    ("blockdct -> iblockdct", (1, 28, 28)),
    ("blockdct -> iblockdct", (3, 32, 32)),
    ("blockdct(split=1) -> iblockdct", (2, 13, 21)),
    ("blockdct(split=14) -> iblockdct", (4, 8, 8)),
    ("blockdct(4, split=3) -> iblockdct", (3, 9, 17)),
    ("blockdct(16, split=20, scale=1, shift=0) -> iblockdct", (1, 16, 40)),
    ("blockdct(2, split=1, order=[3, 1, 2, 0]) -> iblockdct", (1, 5, 6)),
])
def test_blockdct_then_inverse_is_exact(src, shape):
    p = fif.compile(src, input_shape=shape)
    assert p.output_shape == shape
    x = _rand(shape, batch=3)
    assert (p(x) - x).abs().max() < 1e-5


def test_of_af_counts_for_every_split():
    assert [dk.split_count(8, k) for k in range(1, 16)] == [1, 3, 6, 10, 15, 21, 28, 36, 43, 49, 54, 58, 61, 63, 64]
    for k in range(1, 15):
        count = dk.split_count(8, k)
        p = fif.compile(f"blockdct(split={k})", input_shape=(3, 28, 20))
        assert p.output_shape == {"OF": (3 * count, 4, 3), "AF": (3 * (64 - count), 4, 3)}
        of = set(dk.natural_order(8)[:count])
        assert of == {i * 8 + j for i in range(8) for j in range(8) if i + j < k}


def test_natural_order_is_the_jpeg_zigzag():
    assert dk.natural_order(8)[:15] == (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4)
    assert sorted(dk.natural_order(8)) == list(range(64))


def test_parts_are_coefficient_channels_in_order():
    """OF channel c*k + m holds coefficient order[m] of image channel c, one value per block."""
    x = _rand((2, 16, 8), dtype=torch.float64)
    order = list(range(63, -1, -1))
    p = fif.compile(f"blockdct(split=2, order={order})", input_shape=(2, 16, 8)).double()
    parts = p(x)
    c = dk.block_dct(x * 255 - 128, 8)                              # [N, C, 2, 1, 64]
    torch.testing.assert_close(parts["OF"][:, 1 * 3 + 2], c[:, 1, :, :, 61])
    torch.testing.assert_close(parts["AF"][:, 0 * 61 + 0], c[:, 0, :, :, 60])


def test_constant_image_has_only_a_dc_coefficient_on_the_pixel_scale():
    x = torch.full((1, 1, 8, 8), 0.5)
    parts = fif.compile("blockdct", input_shape=(1, 8, 8))(x)
    assert parts["OF"][0, 0, 0, 0].item() == pytest.approx(8 * (0.5 * 255 - 128), abs=1e-4)
    assert parts["OF"][0, 1:].abs().max() < 1e-4 and parts["AF"].abs().max() < 1e-4


@pytest.mark.parametrize("src,code,column", [
    ("blockdct(split=15)", "E224", 16),
    ("blockdct(4, split=7)", "E224", 19),
    ("blockdct(2, 1, order=[0, 1, 2])", "E224", 22),
    ("blockdct(2, 1, order=[0, 1, 1, 3])", "E224", 22),
    ("blockdct(scale=0)", "E224", 16),
    ("dwt -> iblockdct", "E303", 8),
    ("blockdct -> <OF: conv(2)> -> iblockdct", "E332", 30),
    ("blockdct -> <AF: dwt> -> iblockdct", "E304", 26),
    ("blockdct -> clamp", "E301", 13),
])
def test_blockdct_errors_are_positioned(src, code, column):
    assert _error(src, (1, 16, 16)) == (code, column)


# ---- quantize and the tables --------------------------------------------------------------------

def test_quantize_rounds_or_floors_to_multiples_of_the_step():
    x = torch.tensor([[[[-1.3, -0.2, 0.0, 0.26, 0.74, 1.0]]]])
    q = fif.compile("quantize(0.5)", input_shape=(1, 1, 6))(x)
    torch.testing.assert_close(q, torch.tensor([[[[-1.5, 0.0, 0.0, 0.5, 0.5, 1.0]]]]))
    f = fif.compile("quantize(0.5, round=false)", input_shape=(1, 1, 6))(x)
    torch.testing.assert_close(f, torch.tensor([[[[-1.5, -0.5, 0.0, 0.0, 0.5, 1.0]]]]))
    assert _error("quantize(0)", (1, 4, 4)) == ("E224", 10)


def test_nn_favoured_parts_quantization_equals_the_table():
    """`<OF: quantize(16), AF: quantize(50)>` on blockdct parts is quantization with Zhang & Gao's table."""
    x = _rand((3, 24, 16), dtype=torch.float64)
    p = fif.compile("blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct",
                    input_shape=(3, 24, 16)).double()
    q = torch.tensor(nn_favoured_table(5, 16, 50), dtype=torch.float64)
    c = dk.block_dct(x * 255 - 128, 8)
    want = (dk.block_idct(torch.round(c / q) * q, 8, (24, 16)) + 128) / 255
    torch.testing.assert_close(p(x), want)


def test_nn_favoured_table_is_16_on_the_first_five_diagonals():
    t = np.array(nn_favoured_table()).reshape(8, 8)
    i, j = np.indices((8, 8))
    assert (t[i + j <= 4] == 16).all() and (t[i + j > 4] == 50).all()


@pytest.mark.parametrize("quality,steps", [(90, (3, 10)), (80, (6, 20)), (70, (10, 30)), (60, (13, 40)),
                                           (50, (16, 50)), (40, (20, 63)), (30, (27, 83))])
def test_quality_scaling_of_the_nn_favoured_table(quality, steps):
    t = quality_table(nn_favoured_table(split=5, of=16, af=50), quality)
    assert set(t) == set(steps) and (t[0], t[63]) == steps


def test_quality_scaling_of_the_ijg_tables():
    assert quality_table(LUMA, 50) == LUMA and quality_table(CHROMA, 50) == CHROMA
    assert set(quality_table(LUMA, 100)) == {1}
    assert max(quality_table(LUMA, 1)) == 255                  # baseline tables cap at 255
    assert quality_table(LUMA, 75)[:3] == (8, 6, 5)            # libjpeg's table at q75
    assert quality_table(LUMA, 10)[0] == 80 and quality_table(LUMA, 7)[0] == (16 * 714 + 50) // 100


# ---- jpeg against Pillow ------------------------------------------------------------------------

def _pillow(img: np.ndarray, quality: int, subsampling: int = 0) -> np.ndarray:
    from PIL import Image
    mode = "L" if img.ndim == 2 else "RGB"
    buf = io.BytesIO()
    Image.fromarray(img, mode).save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert(mode))


def _ours(img: np.ndarray, quality: int, subsample=False) -> np.ndarray:
    x = torch.from_numpy(img).double() / 255
    x = x[None, None] if img.ndim == 2 else x.permute(2, 0, 1)[None]
    y = JPEG(quality, img.ndim == 3, subsample, "identity")(x)
    y = (y[0] * 255).round().to(torch.uint8)
    return y[0].numpy() if img.ndim == 2 else y.permute(1, 2, 0).numpy()


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def _digits():
    images = fif.data.mnist5k().images[::625, 0]                       # 8 digits, 28x28
    return (images * 255).round().to(torch.uint8).numpy()


def _smooth_rgb():
    """Two random smooth colour images, 45x61 (not multiples of 8)."""
    g = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 6, 7, generator=g)
    x = torch.nn.functional.interpolate(base, size=(45, 61), mode="bicubic", align_corners=False).clamp(0, 1)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("quality", [10, 50, 90])
@pytest.mark.parametrize("images", ["digits", "smooth_rgb", "smooth_rgb_420"])
def test_jpeg_matches_pillow(images, quality):
    """fif's jpeg and Pillow's (libjpeg) encode + decode lose the same: the PSNR to the original
    differs by little, and the two outputs are close to each other.

    Measured (20 digits and 3 smooth 45x61 RGB images, qualities 10/30/50/75/90/95; gap = PSNR(fif)
    - PSNR(Pillow) against the original):
      digits (grey):  mean gap -0.004 .. -0.019 dB, largest |gap| 0.21 dB (q95); fif vs Pillow >= 40.7 dB
      RGB 4:4:4:      mean gap -0.007 .. +0.024 dB, largest |gap| 0.05 dB;       fif vs Pillow >= 46.7 dB
      RGB 4:2:0:      mean gap -0.162 .. +0.008 dB, largest |gap| 0.19 dB;       fif vs Pillow >= 37.1 dB
    The residue comes from libjpeg's fixed-point DCT (islow) and colour arithmetic; fif's are exact.
    Bounds asserted: mean |gap| < 0.1 dB (0.25 with 4:2:0), every |gap| < 0.5 dB, outputs >= 35 dB apart.
    """
    subsample = images.endswith("_420")
    imgs = _digits() if images == "digits" else _smooth_rgb()
    gaps, agreement = [], []
    for img in imgs:
        ours, theirs = _ours(img, quality, subsample), _pillow(img, quality, 2 if subsample else 0)
        gaps.append(_psnr(img, ours) - _psnr(img, theirs))
        agreement.append(_psnr(ours, theirs))
    assert abs(np.mean(gaps)) < (0.25 if subsample else 0.1), gaps
    assert max(abs(g) for g in gaps) < 0.5, gaps
    assert min(agreement) > 35, agreement
    assert _psnr(imgs[0], _ours(imgs[0], quality, subsample)) < math.inf     # it did compress


def test_jpeg_op_gives_8_bit_images():
    x = _rand((3, 20, 12), batch=2)
    for src in ["jpeg(30)", "jpeg(30, color=channels)", "jpeg(30, subsample)"]:
        y = fif.compile(src, input_shape=(3, 20, 12))(x)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        torch.testing.assert_close(y * 255, (y * 255).round(), atol=1e-4, rtol=0)
    grey = fif.compile("jpeg(30)", input_shape=(1, 20, 12))(x[:, :1])
    torch.testing.assert_close(grey, fif.compile("jpeg(30, color=channels)", input_shape=(3, 20, 12))(x)[:, :1])


def test_jpeg_quality_100_is_nearly_lossless_and_low_quality_is_not():
    x = (_rand((3, 32, 32), batch=2) * 255).round() / 255
    err = {q: (fif.compile(f"jpeg({q})", input_shape=(3, 32, 32))(x) - x).abs().mean().item() for q in (100, 50, 5)}
    assert err[100] < 2 / 255 < err[50] < err[5]


@pytest.mark.parametrize("src,code,column", [
    ("jpeg(color=ycbcr)", "E335", 12),
    ("jpeg(50, subsample=true)", "E335", 20),
    ("jpeg(50, subsample=1, color=channels)", "E335", 20),
    ("jpeg(101)", "E224", 6),
    ("conv(1) -> jpeg", "E301", 12),
])
def test_jpeg_errors_are_positioned(src, code, column):
    shape = (3, 16, 16) if "channels" in src else (1, 16, 16)
    assert _error(src, shape) == (code, column)


def _grad(view, x, w):
    x = x.clone().requires_grad_(True)
    (view(x) * w).sum().backward()
    return x.grad


def test_jpeg_surrogates():
    """Deployed: zero gradient. Attack view: identity (default), or the cubic-rounding codec's."""
    x = _rand((3, 16, 16), batch=2)
    w = _rand((3, 16, 16), batch=2, seed=5) - 0.5
    p = fif.compile("jpeg(50)", input_shape=(3, 16, 16))
    assert _grad(p, x, w).abs().sum() == 0
    torch.testing.assert_close(_grad(p.attack_view(), x, w), w)
    c = fif.compile("jpeg(50, bpda=cubic)", input_shape=(3, 16, 16))
    with torch.no_grad():
        torch.testing.assert_close(c.attack_view()(x), c(x))                # forward is the true codec
    g = _grad(c.attack_view(), x, w)
    assert torch.isfinite(g).all() and g.abs().sum() > 0 and not torch.allclose(g, w)


def test_cli_lists_the_new_ops_and_compiles_jpeg_before_a_classifier():
    from click.testing import CliRunner
    from fif.cli import main
    listing = CliRunner().invoke(main, ["ops"])
    assert listing.exit_code == 0
    for op in ("blockdct", "iblockdct", "quantize", "jpeg", "median", "shrink", "edsr"):
        assert f"│ {op} " in listing.output, op
    result = CliRunner().invoke(main, ["compile", "-e", "jpeg(75) -> smallcnn", "--input-shape", "1,28,28"])
    assert result.exit_code == 0, result.output
    assert "image[1,28,28] -> logits[10]" in result.output
