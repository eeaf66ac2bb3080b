"""1. dwt + idwt (a round trip) against pywt, ptwt and pytorch_wavelets, with each one's coefficients
checked against pywt in float64."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..harness import Config, Row, interleaved
from . import skipped

TITLE = "dwt + idwt round trip: fif.ops.wavelet_kernels against pywt, ptwt, pytorch_wavelets"
NOTE = ("Mode `symmetric` (pywt's default, the one mode all four support; fif's `dwt` op defaults to "
        "`periodization`, which ptwt lacks). float32 inputs uniform in [0, 1]. pywt runs batched on "
        "numpy arrays with `axes=(-2, -1)`, forward only; the torch libraries run forward "
        "(`torch.no_grad`) and forward+backward (gradient of a fixed random projection of the round "
        "trip's output). `err` is the largest |coefficient - pywt's in float64| over all bands of the "
        "forward transform. The target row compares against the fastest peer of that case.")
PEERS = ["PyWavelets", "ptwt", "pytorch-wavelets"]
MODE = "symmetric"
SIZES = {"acm": (64, 32, 32, 32), "mnist": (256, 1, 28, 28), "imagenet": (16, 3, 224, 224)}


def _peers(wavelet: str, levels: int):
    """{name: (forward -> pywt-ordered coefficients, round trip)} for the installed torch peers."""
    out, missing = {}, {}
    try:
        import ptwt
        out["ptwt"] = (lambda x: _flat(ptwt.wavedec2(x, wavelet, level=levels, mode=MODE)),
                       lambda x: ptwt.waverec2(ptwt.wavedec2(x, wavelet, level=levels, mode=MODE), wavelet))
    except ImportError as e:
        missing["ptwt"] = f"not installed ({e.name})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pytorch_wavelets import DWTForward, DWTInverse
        fwd, inv = DWTForward(J=levels, wave=wavelet, mode=MODE), DWTInverse(wave=wavelet, mode=MODE)

        def coeffs(x):
            yl, yh = fwd(x)
            return [yl] + [h[:, :, b] for h in yh[::-1] for b in range(3)]
        out["pytorch_wavelets"] = (coeffs, lambda x: inv(fwd(x)))
    except ImportError as e:
        missing["pytorch_wavelets"] = f"not installed ({e.name})"
    return out, missing


def _flat(coeffs) -> list:
    """pywt-style [cA, (cH, cV, cD), ...] -> [cA, cH, cV, cD, ...] (coarsest first)."""
    return [coeffs[0]] + [band for level in coeffs[1:] for band in level]


def _fif(wavelet: str, levels: int, shape):
    from fif.ops.wavelet_kernels import dwt2, idwt2, level_sizes
    sizes = level_sizes(shape[2], shape[3], wavelet, levels, MODE)

    def coeffs(x):
        ll, details = dwt2(x, wavelet, levels, MODE)
        return [ll] + [band for d in details for band in d]
    return coeffs, lambda x: idwt2(*dwt2(x, wavelet, levels, MODE), wavelet, MODE, sizes=sizes)


def _err(coeffs: list, ref: list) -> float:
    return max(float(np.abs(np.asarray(c.detach() if torch.is_tensor(c) else c, dtype=np.float64) - r).max())
               for c, r in zip(coeffs, ref))


def _backward(round_trip, x, g):
    def run():
        xi = x.detach().requires_grad_(True)
        (round_trip(xi) * g).sum().backward()
    return run


def run(cfg: Config):
    import pywt
    sizes = cfg.pick(list(SIZES.items()), list(SIZES.items()), [("tiny", (2, 1, 16, 16))])
    wavelets = cfg.pick(["haar", "db4"], ["haar", "db4"], ["db4"])
    level_list = cfg.pick([1, 3], [1, 3], [2])
    warnings.simplefilter("ignore", UserWarning)
    for label, shape in sizes:
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(*shape, generator=gen)
        xn = x.numpy()
        for wavelet in wavelets:
            for levels in level_list:
                case = f"{wavelet} L{levels} {label} {'x'.join(map(str, shape))}"
                ref = _flat(pywt.wavedec2(xn.astype(np.float64), wavelet, mode=MODE, level=levels, axes=(-2, -1)))
                fif_coeffs, fif_rt = _fif(wavelet, levels, shape)
                peers, missing = _peers(wavelet, levels)
                with torch.no_grad():
                    errs = {"fif": _err(fif_coeffs(x), ref)}
                    errs.update({k: _err(c(x), ref) for k, (c, _) in peers.items()})
                errs["pywt"] = _err(_flat(pywt.wavedec2(xn, wavelet, mode=MODE, level=levels, axes=(-2, -1))), ref)
                yield Row("dwt", case, "max err", errs["fif"], "pywt (float64)", None,
                          note=f"pywt float32: {errs['pywt']:.1e}", target=("abs", 1e-5))

                def pywt_rt():
                    c = pywt.wavedec2(xn, wavelet, mode=MODE, level=levels, axes=(-2, -1))
                    return pywt.waverec2(c, wavelet, mode=MODE, axes=(-2, -1))
                with torch.no_grad():
                    fwd = {"fif": lambda: fif_rt(x), "pywt": pywt_rt,
                           **{k: (lambda rt=rt: rt(x)) for k, (_, rt) in peers.items()}}
                    times = interleaved(fwd, cfg)
                yield from _rows(case, "fwd ms", times, errs, missing)
                g = torch.randn(*shape, generator=gen)
                both = {"fif": _backward(fif_rt, x, g), **{k: _backward(rt, x, g) for k, (_, rt) in peers.items()}}
                yield from _rows(case, "fwd+bwd ms", interleaved(both, cfg), errs, missing)


def _rows(case, unit, times, errs, missing):
    others = {k: v for k, v in times.items() if k != "fif"}
    fastest = min(others, key=others.get) if others else None
    for name, t in others.items():
        yield Row("dwt", case, unit, times["fif"] * 1e3, name, t * 1e3,
                  note=f"err fif {errs['fif']:.1e}, {name} {errs[name]:.1e}" + (" (fastest peer)" if name == fastest else ""),
                  target=("ratio", 1.0) if name == fastest else None)
    for name, why in missing.items():
        yield skipped("dwt", case, unit, name, why)
