"""fif.ops.wavelet_kernels against pywavelets (wavedec2 / waverec2 with axes=(-2, -1))."""
import warnings
import zlib

import numpy as np
import pytest
import pywt
import torch
from hypothesis import given, settings, strategies as st

from fif.ops.wavelet_kernels import MODES, check_wavelet, coeff_len, dwt2, idwt2, level_sizes

WAVELETS = ["haar", "db2", "db4", "sym3", "coif1", "bior2.2", "rbio1.3"]
SIZES = [(16, 16), (17, 13), (28, 28), (9, 32)]
PYWT_MODES = ["zero", "constant", "symmetric", "reflect", "periodic", "smooth",
              "antisymmetric", "antireflect", "periodization"]
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _pywt_dec(x, wavelet, levels, mode):
    with warnings.catch_warnings():  # pywt only warns when the level is "too high"
        warnings.simplefilter("ignore")
        return pywt.wavedec2(x, wavelet, mode=mode, level=levels, axes=(-2, -1))



def _close(got, ref, dtype, scale=None):
    got = got.detach().cpu().double().numpy()
    scale = max(1.0, float(np.abs(ref).max()) if scale is None else scale)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL[dtype] * scale)


def _check_against_pywt(x64, wavelet, levels, mode, dtype):
    x = torch.tensor(x64, dtype=dtype)
    try:
        ref = _pywt_dec(x.double().numpy(), wavelet, levels, mode)
    except ValueError:  # pywt refuses ([anti]reflect on a 1-pixel level): so must we
        with pytest.raises(ValueError, match="too small"):
            dwt2(x, wavelet, levels, mode)
        return False
    ll, details = dwt2(x, wavelet, levels, mode)
    assert ll.dtype == dtype and len(details) == levels
    # rounding errors scale with the largest coefficient anywhere in the decomposition
    # ('smooth' extrapolation can make coarse coefficients much larger than the input)
    big = max(float(np.abs(c).max()) for c in [ref[0]] + [t for lev in ref[1:] for t in lev])
    _close(ll, ref[0], dtype, big)
    for (lh, hl, hh), (ch, cv, cd) in zip(details, ref[1:]):
        _close(lh, ch, dtype, big)
        _close(hl, cv, dtype, big)
        _close(hh, cd, dtype, big)
    # inverse on the same coefficients, no sizes -> waverec2 (with its cropping)
    rec = pywt.waverec2(ref, wavelet, mode=mode, axes=(-2, -1))
    _close(idwt2(ll, details, wavelet, mode), rec, dtype, big)
    return True


def test_modes_cover_pywt():
    assert set(PYWT_MODES) <= set(MODES)
    assert set(MODES) <= set(pywt.Modes.modes)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", PYWT_MODES)
@pytest.mark.parametrize("wavelet", WAVELETS)
def test_matches_pywt(wavelet, mode, size):
    rng = np.random.default_rng(zlib.crc32(f"{wavelet}{mode}{size}".encode()))
    x = rng.standard_normal((2, 3, *size))
    for levels in (1, 2, 3):
        for dtype in (torch.float64, torch.float32):
            _check_against_pywt(x, wavelet, levels, mode, dtype)


@pytest.mark.parametrize("mode", PYWT_MODES)
@pytest.mark.parametrize("wavelet", ["haar", "db2", "bior2.2", "coif1"])
@pytest.mark.parametrize("size", [(17, 13), (9, 32), (5, 3), (16, 16)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_perfect_reconstruction(wavelet, mode, size):
    # every pywt mode is perfect-reconstruction once the output is cropped to the input size
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    for levels in (1, 2, 3):
        try:
            _pywt_dec(x.numpy(), wavelet, levels, mode)
        except ValueError:  # e.g. 'reflect' on a 1-pixel level: we must refuse too
            with pytest.raises(ValueError, match="too small"):
                dwt2(x, wavelet, levels, mode)
            continue
        ll, d = dwt2(x, wavelet, levels, mode)
        sizes = level_sizes(*size, wavelet, levels, mode)
        assert [tuple(t.shape[-2:]) for t, _, _ in d] == [
            (coeff_len(h, wavelet, mode), coeff_len(w, wavelet, mode)) for h, w in sizes]
        y = idwt2(ll, d, wavelet, mode, sizes=sizes)
        scale = float(x.abs().max()) * (100 if mode == "smooth" else 1)
        torch.testing.assert_close(y, x, rtol=0, atol=1e-9 * scale)


def test_level_sizes_and_coeff_len():
    for wavelet in WAVELETS:
        flen = pywt.Wavelet(wavelet).dec_len
        for mode in PYWT_MODES:
            for n in range(1, 40):
                assert coeff_len(n, wavelet, mode) == pywt.dwt_coeff_len(n, flen, mode)
    assert level_sizes(17, 13, "haar", 3, "symmetric") == [(5, 4), (9, 7), (17, 13)]
    assert level_sizes(28, 28, "db2", 1, "periodization") == [(28, 28)]


@pytest.mark.parametrize("mode", ["symmetric", "periodization", "smooth", "antisymmetric"])
def test_gradcheck(mode):
    x = torch.randn(1, 1, 7, 6, dtype=torch.float64, requires_grad=True)

    def fwd(inp):
        ll, d = dwt2(inp, "db2", 2, mode)
        return (ll,) + tuple(t for level in d for t in level)

    assert torch.autograd.gradcheck(fwd, (x,))
    ll, d = dwt2(x.detach(), "db2", 2, mode)
    flat = [ll] + [t for level in d for t in level]
    flat = [t.clone().requires_grad_(True) for t in flat]

    def inv(*ts):
        return idwt2(ts[0], [tuple(ts[1:4]), tuple(ts[4:7])], "db2", mode,
                     sizes=level_sizes(7, 6, "db2", 2, mode))

    assert torch.autograd.gradcheck(inv, tuple(flat))


def test_errors():
    x = torch.randn(1, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown wavelet"):
        dwt2(x, "nope")
    with pytest.raises(ValueError, match="unknown wavelet"):
        check_wavelet("gaus1")  # continuous wavelet: not discrete
    check_wavelet("db4")
    with pytest.raises(ValueError, match="unknown padding mode"):
        dwt2(x, "haar", 1, "wrap")
    with pytest.raises(ValueError, match="levels"):
        dwt2(x, "haar", 0)
    with pytest.raises(ValueError, match="4-D"):
        dwt2(torch.randn(8, 8), "haar")
    with pytest.raises(ValueError, match="smallest W that works is 3"):
        dwt2(torch.randn(1, 1, 8, 2), "haar", 2, "reflect")  # level-2 input would be 1 wide
    with pytest.raises(ValueError, match="unknown wavelet"):
        idwt2(x, [], "nope")
    ll, d = dwt2(x, "haar", 2)
    with pytest.raises(ValueError, match="incompatible"):
        idwt2(ll[..., :1], d, "haar")
    with pytest.raises(ValueError, match="sizes"):
        idwt2(ll, d, "haar", sizes=[(2, 2)])
    with pytest.raises(ValueError, match="shape"):
        idwt2(ll, [(d[0][0], d[0][1][..., :1], d[0][2]), d[1]], "haar")
    with pytest.raises(ValueError, match="too small"):  # 2x2 coefficients cannot come from db4
        idwt2(ll, d[:1], "db4")
    with pytest.raises(ValueError, match="at least 1 pixel"):
        dwt2(torch.randn(1, 1, 0, 4), "haar")


def test_pywt_allowed_small_inputs_work():
    # pywt only warns for "too many" levels; we match it (boundary-dominated but exact)
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 2))
    for mode in PYWT_MODES:
        _check_against_pywt(x, "db4", 3, mode, torch.float64)


def test_filters_cached_and_channel_batched():
    from fif.ops import wavelet_kernels as wk
    a = wk._filters("db2", torch.float32, torch.device("cpu"), 4)
    assert wk._filters("db2", torch.float32, torch.device("cpu"), 4) is a
    x = torch.randn(3, 4, 11, 10)
    ll, d = dwt2(x, "db2", 2)
    ll1, d1 = dwt2(x[1:2, 2:3], "db2", 2)
    torch.testing.assert_close(ll[1:2, 2:3], ll1)
    torch.testing.assert_close(d[0][2][1:2, 2:3], d1[0][2])
    # non-contiguous / channels_last inputs give the same result
    ll2, d2 = dwt2(x.contiguous(memory_format=torch.channels_last), "db2", 2)
    torch.testing.assert_close(ll2, ll)
    llt, _ = dwt2(x.transpose(-1, -2).contiguous().transpose(-1, -2), "db2", 2)
    torch.testing.assert_close(llt, ll)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(2, 40), w=st.integers(2, 40), levels=st.integers(1, 3),
       wavelet=st.sampled_from(["haar", "db3", "sym2", "bior1.3", "coif2"]),
       mode=st.sampled_from(PYWT_MODES), seed=st.integers(0, 2**16))
def test_property_vs_pywt(h, w, levels, wavelet, mode, seed):
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w))
    if not _check_against_pywt(x, wavelet, levels, mode, torch.float64):
        return
    ll, d = dwt2(torch.tensor(x), wavelet, levels, mode)
    y = idwt2(ll, d, wavelet, mode, sizes=level_sizes(h, w, wavelet, levels, mode))
    np.testing.assert_allclose(y.numpy(), x, atol=1e-8 * (1e3 if mode == "smooth" else 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
@pytest.mark.parametrize("mode", ["symmetric", "periodization", "smooth"])
def test_cuda_matches_cpu(mode):
    x = torch.randn(2, 3, 17, 13, dtype=torch.float64)
    ll, d = dwt2(x, "db4", 2, mode)
    llc, dc = dwt2(x.cuda(), "db4", 2, mode)
    assert llc.is_cuda
    torch.testing.assert_close(llc.cpu(), ll)
    for a, b in zip(d, dc):
        for s, t in zip(a, b):
            torch.testing.assert_close(t.cpu(), s)
    sizes = level_sizes(17, 13, "db4", 2, mode)
    torch.testing.assert_close(idwt2(llc, dc, "db4", mode, sizes).cpu(), idwt2(ll, d, "db4", mode, sizes))


@pytest.mark.parametrize("mode", PYWT_MODES)
@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4", "bior2.2"])
def test_matrix_and_convolution_paths_agree(monkeypatch, wavelet, mode):
    """Sides up to MATRIX_MAX run as dense per-level matrices, larger ones as convolutions: the same
    coefficients, reconstruction and gradients either way (the matrices are the speed-up measured
    by benchmarks/comparisons/dwt.py; the convolutions were the only path before)."""
    from fif.ops import wavelet_kernels as wk
    x = torch.randn(2, 3, 17, 22, dtype=torch.float64)
    g = torch.randn(2, 3, 17, 22, dtype=torch.float64)
    sizes = level_sizes(17, 22, wavelet, 2, mode)

    def run():
        xi = x.clone().requires_grad_(True)
        ll, d = dwt2(xi, wavelet, 2, mode)
        flat = [ll] + [t for level in d for t in level]
        y = idwt2(ll, d, wavelet, mode, sizes=sizes)
        (grad,) = torch.autograd.grad((y * g).sum() + sum((t * t).sum() for t in flat), xi)
        return [t.detach() for t in flat] + [y.detach(), grad, idwt2(ll, d, wavelet, mode).detach()]

    fast = run()
    monkeypatch.setattr(wk, "MATRIX_MAX", 0)
    slow = run()
    scale = max(1.0, max(float(t.abs().max()) for t in slow))
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * scale)


def test_large_sides_match_pywt():
    """Above MATRIX_MAX (the convolutions) and across it (levels on both sides of it)."""
    from fif.ops import wavelet_kernels as wk
    x = np.random.default_rng(1).standard_normal((1, 2, wk.MATRIX_MAX + 9, wk.MATRIX_MAX + 2))
    for mode in ("symmetric", "periodization", "zero"):
        assert _check_against_pywt(x, "db2", 2, mode, torch.float64)
    assert _check_against_pywt(x.astype(np.float32), "db4", 3, "symmetric", torch.float32)


def test_haar_inverse_is_the_same_with_and_without_a_graph():
    """Without a graph to record, the Haar inverse writes each 2x2 block in place (one pass instead
    of three stacks: 0.4-0.8x the forward time, benchmarks/comparisons/dwt.py); with one it stacks,
    whose backward is faster. Both give the same numbers, bit for bit, and the gradient is right."""
    x = torch.randn(2, 3, 16, 12, dtype=torch.float64)
    for levels in (1, 3):
        ll, d = dwt2(x, "haar", levels)
        with torch.no_grad():
            fast = idwt2(ll, d, "haar")
        leaves = [ll.clone().requires_grad_(True)] + [tuple(t.clone().requires_grad_(True) for t in lev) for lev in d]
        recorded = idwt2(leaves[0], leaves[1:], "haar")
        assert torch.equal(fast, recorded.detach())
        torch.testing.assert_close(fast, x, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: idwt2(t, [(t, t, t)], "haar"), (torch.randn(1, 1, 3, 4, dtype=torch.float64, requires_grad=True),))


def test_a_wavelet_pipeline_traces_into_one_torch_compile_graph():
    """torch.compile must not stop at pywt inside the DWT (ACM's Haar DWT did: a graph break per level).
    Other wavelets still break once at the first trace, where their per-size matrices are made."""
    import fif
    p = fif.compile("dwt(haar, levels=2) -> idwt", input_shape=(1, 12, 12))
    x = torch.rand(2, 1, 12, 12)
    torch._dynamo.reset()
    try:
        explained = torch._dynamo.explain(p)(x)
    finally:
        torch._dynamo.reset()
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
