"""Classical denoisers: `median` (k x k median filter) and `shrink` (wavelet soft-threshold denoising).

    median(3) -> smallcnn
    shrink(db1, levels=2, rule=bayes) -> clamp -> smallcnn

`shrink` runs on fif's own DWT (fif.ops.wavelet_kernels, equal to pywt.wavedec2/waverec2).
"""

from __future__ import annotations

import math

import pywt
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import KindError, Param, register_op
from . import wavelet_kernels as wk

_WAVELETS = tuple(pywt.wavelist(kind="discrete"))


class Median(nn.Module):
    """k x k median of every pixel's neighbourhood, per channel, reflect padding; one unfold, no loops."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        k, p = self.k, self.k // 2
        N, C, H, W = x.shape
        windows = F.pad(x, (p, p, p, p), mode="reflect").unfold(2, k, 1).unfold(3, k, 1)
        return windows.reshape(N, C, H, W, k * k).median(-1).values

    def extra_repr(self):
        return f"k={self.k}"


def _median_infer(inp, args, ctx):
    k = args["k"]
    if k % 2 == 0:
        raise KindError("E224", f"median needs an odd window, got k={k}", param="k", hint=f"use k={k + 1}")
    if k // 2 >= min(inp.H, inp.W):
        raise KindError("E330", f"a {k}x{k} median needs sides above {k // 2} for reflect padding, "
                        f"got {inp.H}x{inp.W}", param="k", hint="use a smaller k")
    return inp


register_op("median", lambda args, inp, out: Median(args["k"]), infer=_median_infer, family="lossy",
            params=[Param("k", "int", 3, low=1, high=15, doc="window side (odd)")],
            doc="""median(k=3): k x k median filter per channel, reflect padding (feature squeezing).

    Xu et al., Feature Squeezing, NDSS 2018. Differentiable as torch defines it: the gradient
    goes to the pixel each median selects (piecewise linear, like max pooling), so the deployed
    and attack views share that true gradient; no BPDA surrogate is needed.
    median(3) -> smallcnn""")


def _median_of_last(v: torch.Tensor) -> torch.Tensor:
    """numpy's median over the last dim (the mean of the two middle values for an even count)."""
    s = v.sort(-1).values
    n = s.shape[-1]
    return (s[..., (n - 1) // 2] + s[..., n // 2]) / 2


class Shrink(nn.Module):
    """DWT, threshold every detail band per sample and channel, inverse DWT.

    The threshold is computed without gradient (detached); soft/hard thresholding itself is
    differentiable in the coefficients, so the whole op is differentiable in x.
    """

    def __init__(self, wavelet: str, levels: int, rule: str, mode: str, sigma, pad: str, size):
        super().__init__()
        self.wavelet, self.levels, self.rule, self.mode = wavelet, levels, rule, mode
        self.sigma, self.pad, self.size = sigma, pad, tuple(size)

    def thresholds(self, details) -> list[list[torch.Tensor]]:
        """[N, C, 1, 1] thresholds per band, coarsest level first (like `details`)."""
        with torch.no_grad():
            finest_hh = details[-1][2]
            if self.sigma is None:
                sigma = _median_of_last(finest_hh.abs().flatten(2)) / 0.6745
                sigma = sigma[..., None, None]
            else:
                sigma = torch.full(finest_hh.shape[:2] + (1, 1), float(self.sigma),
                                   dtype=finest_hh.dtype, device=finest_hh.device)
            if self.rule == "visu":
                t = sigma * math.sqrt(2 * math.log(self.size[0] * self.size[1]))
                return [[t] * 3 for _ in details]
            eps = torch.finfo(finest_hh.dtype).eps
            var = sigma ** 2
            return [[var / (band.pow(2).mean((-2, -1), keepdim=True) - var).clamp_min(eps).sqrt()
                     for band in level] for level in details]

    def forward(self, x):
        ll, details = wk.dwt2(x, self.wavelet, self.levels, self.pad)
        thresholds = self.thresholds(details)
        kept = [tuple(self._threshold(b, t) for b, t in zip(level, ts))
                for level, ts in zip(details, thresholds)]
        sizes = wk.level_sizes(*self.size, self.wavelet, self.levels, self.pad)
        return wk.idwt2(ll, kept, self.wavelet, self.pad, sizes)

    def _threshold(self, band, t):
        if self.mode == "soft":
            return band - torch.maximum(torch.minimum(band, t), -t)   # sign(b) max(|b| - t, 0)
        return band * (band.abs() >= t).to(band.dtype)

    def extra_repr(self):
        return f"wavelet={self.wavelet}, levels={self.levels}, rule={self.rule}, mode={self.mode}"


def _shrink_infer(inp, args, ctx):
    wavelet, levels = args["wavelet"], args["levels"]
    most = pywt.dwt_max_level(min(inp.H, inp.W), pywt.Wavelet(wavelet).dec_len)
    if levels > most:
        raise KindError("E331", f"{wavelet} on {inp.H}x{inp.W} allows at most {most} level(s), got {levels}",
                        param="levels" if most else "wavelet",
                        hint="use fewer levels or a shorter wavelet (db1)")
    return inp.with_shape(kind="features")


register_op("shrink", lambda args, inp, out: Shrink(args["wavelet"], args["levels"], args["rule"], args["mode"],
                                                     args["sigma"], args["pad"], (inp.H, inp.W)),
            infer=_shrink_infer, family="lossy", params=[
                Param("wavelet", "choice", "db1", choices=_WAVELETS, doc="any pywavelets discrete wavelet"),
                Param("levels", "int", 2, low=1, high=8, doc="decomposition levels"),
                Param("rule", "choice", "bayes", choices=("bayes", "visu"),
                      doc="BayesShrink (per band) or VisuShrink (universal threshold)"),
                Param("mode", "choice", "soft", choices=("soft", "hard"), doc="thresholding"),
                Param("sigma", "float", None, low=0.0, doc="noise std; default: estimated per image"),
                Param("pad", "choice", "symmetric", choices=wk.MODES, doc="signal extension of the DWT"),
            ], doc="""shrink(wavelet=db1, levels=2, rule=bayes, mode=soft, sigma, pad=symmetric): wavelet threshold denoising.

    Every detail band of every sample and channel is thresholded, LL kept. Noise sigma: the
    median absolute finest diagonal (HH1) coefficient / 0.6745, per sample and channel.
    BayesShrink: t = sigma^2 / sqrt(max(mean(band^2) - sigma^2, eps)) per band (Chang, Yu &
    Vetterli 2000); VisuShrink: t = sigma sqrt(2 ln(H W)) (Donoho & Johnstone 1994). Like
    skimage's denoise_wavelet, except that skimage leaves exact zeros out of the median: here a
    clean image with flat regions (MNIST's background) can estimate sigma = 0 and pass unchanged.
    Thresholds are detached; the rest is differentiable. The result is features (clamp it).
    shrink(db1, levels=2, rule=bayes) -> clamp -> smallcnn""")
