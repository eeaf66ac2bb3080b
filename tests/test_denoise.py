"""`median` and `shrink` against numpy / pywavelets references."""

import numpy as np
import pytest
import pywt
import torch

import fif


def _rand(shape, batch=2, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, *shape, generator=g, dtype=dtype)


def _error(src, shape):
    with pytest.raises(fif.FifError) as info:
        fif.compile(src, input_shape=shape)
    return info.value.code, info.value.column


# ---- median -------------------------------------------------------------------------------------

def _median_ref(img: np.ndarray, k: int) -> np.ndarray:
    """k x k median of a 2-D array, numpy 'reflect' padding (the edge is not repeated)."""
    p = k // 2
    padded = np.pad(img, p, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k))
    return np.median(windows.reshape(*img.shape, k * k), axis=-1)


@pytest.mark.parametrize("k,shape", [(3, (1, 8, 8)), (3, (3, 11, 7)), (5, (2, 9, 12)), (1, (1, 4, 4))])
def test_median_equals_numpy(k, shape):
    x = _rand(shape)
    y = fif.compile(f"median({k})", input_shape=shape).double()(x)
    want = np.stack([[_median_ref(c, k) for c in img] for img in x.numpy()])
    np.testing.assert_allclose(y.numpy(), want, atol=0)


def test_median_removes_salt_and_pepper_and_keeps_images():
    x = torch.full((1, 1, 9, 9), 0.5)
    x[0, 0, 4, 4], x[0, 0, 2, 6] = 1.0, 0.0
    p = fif.compile("median", input_shape=(1, 9, 9))
    torch.testing.assert_close(p(x), torch.full_like(x, 0.5))
    assert p.output_kind.kind == "image"


def test_median_gradient_goes_to_the_selected_pixel():
    """median is piecewise linear: each output's gradient is 1 on the pixel it selected."""
    x = _rand((1, 6, 6), batch=1).requires_grad_(True)
    p = fif.compile("median", input_shape=(1, 6, 6)).double()
    y = p(x)
    y[0, 0, 2, 3].backward()
    g = x.grad[0, 0]
    assert g.sum() == 1 and g.max() == 1
    (i, j), = torch.nonzero(g).tolist()
    assert x[0, 0, i, j] == y[0, 0, 2, 3] and abs(i - 2) <= 1 and abs(j - 3) <= 1


@pytest.mark.parametrize("src,shape,code,column", [
    ("median(4)", (1, 8, 8), "E224", 8),
    ("median(k=7)", (1, 3, 8), "E330", 10),
])
def test_median_errors(src, shape, code, column):
    assert _error(src, shape) == (code, column)


# ---- shrink -------------------------------------------------------------------------------------

def _shrink_ref(img: np.ndarray, wavelet, levels, rule, mode, pad, sigma=None) -> np.ndarray:
    """Wavelet threshold denoising of one 2-D channel with pywt, written from the papers:
    sigma = median(|HH1|) / 0.6745; BayesShrink t = sigma^2 / sqrt(max(mean(band^2) - sigma^2, eps))
    per band; VisuShrink t = sigma sqrt(2 ln(pixels)); LL untouched."""
    coeffs = pywt.wavedec2(img, wavelet, mode=pad, level=levels)
    if sigma is None:
        sigma = np.median(np.abs(coeffs[-1][2])) / 0.6745
    out = [coeffs[0]]
    for level in coeffs[1:]:
        bands = []
        for band in level:
            if rule == "visu":
                t = sigma * np.sqrt(2 * np.log(img.size))
            else:
                t = sigma ** 2 / np.sqrt(max(np.mean(band ** 2) - sigma ** 2, np.finfo(band.dtype).eps))
            bands.append(pywt.threshold(band, t, mode=mode))
        out.append(tuple(bands))
    return pywt.waverec2(out, wavelet, mode=pad)[: img.shape[0], : img.shape[1]]


@pytest.mark.parametrize("wavelet,levels,rule,mode,pad,shape", [
    ("db1", 2, "bayes", "soft", "symmetric", (1, 16, 16)),
    ("db1", 3, "visu", "soft", "symmetric", (3, 24, 20)),
    ("db2", 2, "bayes", "hard", "symmetric", (2, 17, 23)),
    ("sym4", 1, "visu", "hard", "periodization", (1, 20, 18)),
    ("bior2.2", 2, "bayes", "soft", "reflect", (1, 28, 28)),
])
def test_shrink_equals_pywt_reference(wavelet, levels, rule, mode, pad, shape):
    x = _rand(shape) + 0.2 * torch.randn(2, *shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    src = f"shrink('{wavelet}', levels={levels}, rule={rule}, mode={mode}, pad={pad})"
    y = fif.compile(src, input_shape=shape).double()(x)
    want = np.stack([[_shrink_ref(c, wavelet, levels, rule, mode, pad) for c in img] for img in x.numpy()])
    assert y.shape == x.shape
    np.testing.assert_allclose(y.numpy(), want, atol=1e-10)


def test_shrink_with_a_given_sigma_equals_reference():
    x = _rand((1, 16, 16))
    y = fif.compile("shrink(db2, levels=1, sigma=0.05)", input_shape=(1, 16, 16)).double()(x)
    want = np.stack([[_shrink_ref(c, "db2", 1, "bayes", "soft", "symmetric", sigma=0.05) for c in img]
                     for img in x.numpy()])
    np.testing.assert_allclose(y.numpy(), want, atol=1e-10)


def test_shrink_removes_noise():
    g = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.interpolate(torch.rand(4, 1, 4, 4, generator=g), size=(32, 32), mode="bilinear")
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)
    for rule in ("bayes", "visu"):
        out = fif.compile(f"shrink(db2, levels=2, rule={rule})", input_shape=(1, 32, 32))(noisy)
        assert (out - clean).pow(2).mean() < 0.6 * (noisy - clean).pow(2).mean(), rule


def test_shrink_thresholds_are_detached():
    """The gradient is that of thresholding with the thresholds held fixed: with the estimated
    sigma put in as a constant, the gradients are equal."""
    x = _rand((1, 16, 16), batch=1)
    coeffs = pywt.wavedec2(x[0, 0].numpy(), "db1", mode="symmetric", level=2)
    sigma = float(np.median(np.abs(coeffs[-1][2])) / 0.6745)
    w = _rand((1, 16, 16), batch=1, seed=9)
    grads = []
    for src in ["shrink", f"shrink(sigma={sigma!r})"]:
        xi = x.clone().requires_grad_(True)
        (fif.compile(src, input_shape=(1, 16, 16)).double()(xi) * w).sum().backward()
        grads.append(xi.grad)
    torch.testing.assert_close(grads[0], grads[1])
    assert not torch.allclose(grads[0], w)                        # thresholding changed the gradient


def test_shrink_is_differentiable_with_fixed_thresholds():
    p = fif.compile("shrink(db2, levels=1, rule=visu, sigma=0.02)", input_shape=(1, 10, 10)).double()
    x = _rand((1, 10, 10), batch=1).requires_grad_(True)
    assert torch.autograd.gradcheck(p, (x,), eps=1e-7, atol=1e-5)


@pytest.mark.parametrize("src,shape,code,column", [
    ("shrink(db1, levels=4)", (1, 8, 8), "E331", 20),
    ("shrink(db4, levels=1)", (1, 6, 6), "E331", 8),
    ("shrink(wavelet=nope)", (1, 8, 8), "E226", 16),
])
def test_shrink_errors(src, shape, code, column):
    assert _error(src, shape) == (code, column)


def test_shrink_gives_features():
    assert fif.compile("shrink", input_shape=(1, 28, 28)).output_kind.kind == "features"
    assert fif.compile("shrink -> clamp -> smallcnn", input_shape=(1, 28, 28)).output_shape == (10,)
