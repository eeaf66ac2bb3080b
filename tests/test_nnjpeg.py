"""`nnjpeg` (Zhang & Gao's NN-favoured JPEG as one op) and the delta' order of the DCT positions."""

import json

import numpy as np
import pytest
import torch

import fif
from fif.compiler import CompileEnv
from fif.ops import dct_kernels as dk
from fif.ops.dct_stats import coefficient_spread, delta_ratio, ratio_order
from fif.ops.jpeg_tables import nn_favoured_table, quality_table
from fif.ops.nnjpeg import NNJPEG, read_table


def _rand(shape, batch=2, seed=0, dtype=torch.float32):
    return torch.rand(batch, *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _inner(p):
    (node,) = [m for m in p.modules() if getattr(m, "op", None) == "nnjpeg"]
    return node.inner


def _error(src, shape=(1, 16, 16), env=None):
    with pytest.raises(fif.FifError) as info:
        fif.compile(src, input_shape=shape, env=env)
    return info.value.code, info.value.column


def test_without_8_bit_rounding_it_is_the_blockdct_part_map():
    """nnjpeg is the recipe-level blockdct/quantize pipeline, plus real JPEG's 8-bit pixels."""
    x = _rand((3, 24, 16), dtype=torch.float64)
    a = fif.compile("nnjpeg(50, eight_bit=false)", input_shape=(3, 24, 16)).double()
    b = fif.compile("blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct -> clamp",
                    input_shape=(3, 24, 16)).double()
    torch.testing.assert_close(a(x), b(x))
    order = list(range(63, -1, -1))
    a = fif.compile(f"nnjpeg(50, split=3, of=8, af=30, order={order}, eight_bit=false)", input_shape=(3, 24, 16))
    b = fif.compile(f"blockdct(8, split=3, order={order}) -> <OF: quantize(8), AF: quantize(30)> -> iblockdct "
                    "-> clamp", input_shape=(3, 24, 16))
    torch.testing.assert_close(a.double()(x), b.double()(x))


def test_8_bit_in_and_out_like_real_jpeg():
    x = (_rand((3, 20, 12)) * 255).round() / 255
    y = fif.compile("nnjpeg(30)", input_shape=(3, 20, 12))(x)
    assert y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close(y * 255, (y * 255).round(), atol=1e-4, rtol=0)
    # the input is rounded to 8 bits first: images that round alike code alike
    torch.testing.assert_close(fif.compile("nnjpeg(30)", input_shape=(3, 20, 12))(x + 0.4 / 255), y)


@pytest.mark.parametrize("quality,steps", [(90, (3, 10)), (80, (6, 20)), (70, (10, 30)), (60, (13, 40)),
                                           (50, (16, 50)), (40, (20, 63)), (30, (27, 83))])
def test_quality_scales_both_steps_as_the_spec_table_says(quality, steps):
    inner = _inner(fif.compile(f"nnjpeg({quality})", input_shape=(1, 8, 8)))
    t = np.array(inner.table).reshape(8, 8)
    i, j = np.indices((8, 8))
    assert set(t[i + j < 5]) == {steps[0]} and set(t[i + j >= 5]) == {steps[1]}
    assert inner.table == quality_table(nn_favoured_table(5, 16, 50), quality)


def test_order_and_split_choose_the_of_positions():
    order = list(range(63, -1, -1))                   # the highest frequencies most original-favoured
    inner = _inner(fif.compile(f"nnjpeg(50, split=2, of=7, af=90, order={order})", input_shape=(1, 8, 8)))
    assert [p for p in range(64) if inner.table[p] == 7] == [61, 62, 63]


def test_ycbcr_equals_rgb_on_grey_digits_and_differs_on_colour():
    """A grey image is R = G = B: its Y is the grey value and its chroma is flat, so coding in YCbCr
    with the same table gives back exactly what coding the grey channel does."""
    digits = fif.data.mnist5k().images[::250]
    for q in (90, 50, 30):
        rgb = fif.compile(f"nnjpeg({q})", input_shape=(1, 28, 28))(digits)
        ycc = fif.compile(f"nnjpeg({q}, color=ycbcr)", input_shape=(1, 28, 28))(digits)
        torch.testing.assert_close(rgb, ycc, atol=0, rtol=0)
    colour = _rand((3, 16, 16))
    rgb = fif.compile("nnjpeg(30)", input_shape=(3, 16, 16))(colour)
    ycc = fif.compile("nnjpeg(30, color=ycbcr)", input_shape=(3, 16, 16))(colour)
    assert (rgb - ycc).abs().max() > 0.02


def test_surrogates():
    x, w = _rand((3, 16, 16)), _rand((3, 16, 16), seed=5) - 0.5
    p = fif.compile("nnjpeg(50)", input_shape=(3, 16, 16))
    x1 = x.clone().requires_grad_(True)
    (p(x1) * w).sum().backward()
    assert x1.grad.abs().sum() == 0                         # rounding: no true gradient
    x2 = x.clone().requires_grad_(True)
    (p.attack_view()(x2) * w).sum().backward()
    torch.testing.assert_close(x2.grad, w)                  # BPDA: identity backward
    c = fif.compile("nnjpeg(50, bpda=cubic)", input_shape=(3, 16, 16)).attack_view()
    x3 = x.clone().requires_grad_(True)
    (c(x3) * w).sum().backward()
    assert torch.isfinite(x3.grad).all() and not torch.allclose(x3.grad, w)


def _table_file(path, split=3, of=8, af=40, order=None):
    path.write_text(json.dumps({"table": {"split": split, "of": of, "af": af,
                                          "order": order or list(dk.natural_order(8))[::-1]}}))
    return path


def test_table_search_is_read_from_the_run_and_waits_outside_one(tmp_path):
    src = "nnjpeg(70, table=search)"
    waiting = fif.compile(src, input_shape=(1, 8, 8))                      # fif compile: no run known
    with pytest.raises(fif.FifError) as e:
        waiting(torch.rand(1, 1, 8, 8))
    assert e.value.code == "E426"
    found = _table_file(tmp_path / "table.json")
    inner = _inner(fif.compile(src, input_shape=(1, 8, 8), env=CompileEnv(search=str(found))))
    assert inner.base == read_table(found) and inner.from_file == str(found)
    assert inner.table == quality_table(nn_favoured_table(3, 8, 40, read_table(found)["order"]), 70)
    with pytest.raises(fif.FifError) as e:                                 # a run, but no search yet
        fif.compile(src, input_shape=(1, 8, 8), env=CompileEnv(search=str(tmp_path / "none.json")))
    assert e.value.code == "E426"


def test_table_file_relative_to_the_recipe(tmp_path):
    _table_file(tmp_path / "t.json", split=2, of=5, af=60)
    inner = _inner(fif.compile('nnjpeg(table="t.json")', input_shape=(1, 8, 8), env=CompileEnv(base=str(tmp_path))))
    assert sorted(set(inner.table)) == [5, 60]
    (tmp_path / "bad.json").write_text('{"table": {"split": 2}}')
    with pytest.raises(fif.FifError) as e:
        fif.compile('nnjpeg(table="bad.json")', input_shape=(1, 8, 8), env=CompileEnv(base=str(tmp_path)))
    assert e.value.code == "E402"


@pytest.mark.parametrize("src,shape,code,column", [
    ("nnjpeg(50, split=5, table=search)", (1, 16, 16), "E225", 18),
    ('nnjpeg(table="nope.json")', (1, 16, 16), "E401", 14),
    ("nnjpeg(order=[0, 1, 2])", (1, 16, 16), "E224", 14),
    ("nnjpeg(color=ycbcr)", (2, 16, 16), "E335", 14),
    ("nnjpeg(subsample=true)", (3, 16, 16), "E335", 18),
    ("nnjpeg(101)", (1, 16, 16), "E224", 8),
    ("nnjpeg(split=15)", (1, 16, 16), "E224", 14),
])
def test_errors_are_positioned(src, shape, code, column):
    assert _error(src, shape) == (code, column)


# ---- the delta' order ---------------------------------------------------------------------------

def _images_from_coefficients(spread: dict, n_images: int, seed: int) -> torch.Tensor:
    """Single-block 8x8 images whose DCT coefficient at position p is Gaussian with std spread[p]
    (pixel scale, before the level shift); others are 0."""
    g = torch.Generator().manual_seed(seed)
    c = torch.zeros(n_images, 1, 1, 1, 64, dtype=torch.float64)
    for p, s in spread.items():
        c[..., p] = torch.randn(n_images, 1, 1, 1, generator=g, dtype=torch.float64) * s
    return dk.block_idct(c, 8, (8, 8))


def test_delta_order_puts_the_smallest_perturbation_to_benign_ratio_first():
    benign_spread = {p: 40.0 for p in range(64)}
    benign_spread.update({9: 200.0, 18: 80.0})         # images vary most at (1, 1) and (2, 2)
    perturbation_spread = {p: 4.0 for p in range(64)}
    perturbation_spread.update({0: 40.0, 1: 20.0, 63: 0.5})
    benign = (_images_from_coefficients(benign_spread, 4000, 0) + 128) / 255
    perturbation = _images_from_coefficients(perturbation_spread, 4000, 1) / 255
    stats = delta_ratio(benign, perturbation)
    r = stats["ratio"]
    assert stats["benign"][9] == pytest.approx(200, rel=0.05) and stats["perturbation"][0] == pytest.approx(40, rel=0.05)
    order = ratio_order(r)
    assert order[:3] == (63, 9, 18)             # ratios 0.5/40, 4/200, 4/80; the rest 4/40 or more
    assert order[-2:] == (1, 0)                 # the perturbation dominates DC and (0, 1)
    assert [r[p] for p in order] == sorted(r)


def test_flat_ratio_gives_the_natural_order_and_spread_pools_channels():
    assert ratio_order([1.0] * 64) == dk.natural_order(8)
    x = _rand((3, 16, 16), batch=5, dtype=torch.float64)
    s = coefficient_spread(x)
    c = dk.block_dct(x * 255, 8).reshape(-1, 64)
    torch.testing.assert_close(s, c.std(0, unbiased=False))
    assert delta_ratio(torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 8))["ratio"] == [0.0] * 64
