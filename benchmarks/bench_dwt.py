"""Time fif.ops.wavelet_kernels (torch dwt2 + idwt2) against pywt (wavedec2 + waverec2).

pywt is run as a user would: a Python loop over the batch, one [C, H, W] image per call.
Prints a table of median times (ms) and the pywt / torch ratio (> 1: torch is faster).
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import pywt
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without install
from fif.ops.wavelet_kernels import dwt2, idwt2, level_sizes

SHAPES = [(64, 32, 28, 28), (16, 3, 224, 224)]
WAVELETS = ["haar", "db4"]


def _median_ms(fn, repeats: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        fn()
        sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--levels", type=int, default=2)
    ap.add_argument("--mode", default="symmetric")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print("rerun: " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), pywt {pywt.__version__}, "
          f"device={dev}, dtype={args.dtype}, levels={args.levels}, mode={args.mode}, "
          f"median of {args.repeats} after {args.warmup} warm-up")
    head = f"{'shape':<20} {'wavelet':<8} {'torch ms':>10} {'pywt ms':>10} {'pywt/torch':>11} {'max|err|':>9}"
    print(head)
    print("-" * len(head))
    warnings.simplefilter("ignore")
    for shape in SHAPES:
        x = torch.randn(*shape, dtype=dtype, device=dev)
        xn = x.cpu().numpy()
        for wavelet in WAVELETS:
            sizes = level_sizes(shape[2], shape[3], wavelet, args.levels, args.mode)

            def run_torch():
                ll, d = dwt2(x, wavelet, args.levels, args.mode)
                return idwt2(ll, d, wavelet, args.mode, sizes=sizes)

            def run_pywt():
                out = []
                for img in xn:
                    c = pywt.wavedec2(img, wavelet, mode=args.mode, level=args.levels, axes=(-2, -1))
                    out.append(pywt.waverec2(c, wavelet, mode=args.mode, axes=(-2, -1)))
                return out

            with torch.no_grad():
                t_torch = _median_ms(run_torch, args.repeats, args.warmup, sync)
                err = (run_torch() - x).abs().max().item()
            t_pywt = _median_ms(run_pywt, args.repeats, args.warmup, lambda: None)
            print(f"{'x'.join(map(str, shape)):<20} {wavelet:<8} {t_torch:>10.2f} {t_pywt:>10.2f} "
                  f"{t_pywt / t_torch:>11.2f} {err:>9.1e}")


if __name__ == "__main__":
    main()
