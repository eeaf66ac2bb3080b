"""EOT gradient: one batched forward of N copies (fif.attacks.loss_grad) against a loop of N passes.

    python benchmarks/bench_eot.py [--device cpu|cuda] [--batch 64] [--repeats 5] [--threads T]

A small CNN with a Gaussian-noise input layer (a randomised defense), a batch of 64 1x28x28
images, N = 1, 8, 32 draws. Both sides compute the same estimator: the input gradient of the
cross-entropy averaged over N noise draws. Prints the median time of each and the ratio loop/batched.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fif.attacks import loss_grad  # noqa: E402


class NoisyCNN(nn.Module):
    def __init__(self, sigma: float = 0.1):
        super().__init__()
        self.sigma = sigma
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 6 * 6, 10))

    def forward(self, x):
        return self.net(x + self.sigma * torch.randn_like(x))


def looped(model, x, y, n):
    """The EOT estimator written as N separate forward/backward passes."""
    total = torch.zeros_like(x)
    for _ in range(n):
        total += loss_grad(model, x, y, "ce", eot=1)[1]
    return total / n


def batched(model, x, y, n):
    return loss_grad(model, x, y, "ce", eot=n)[1]


def timed(fn, device, repeats) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    args = parser.parse_args(argv)
    print("rerun: python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = NoisyCNN().to(device).eval()
    x = torch.rand(args.batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}x1x28x28, median of {args.repeats}")
    print(f"{'N':>4} {'batched (ms)':>13} {'loop (ms)':>10} {'loop/batched':>13}")
    for n in (1, 8, 32):
        t_batched = timed(lambda: batched(model, x, y, n), device, args.repeats)
        t_loop = timed(lambda: looped(model, x, y, n), device, args.repeats)
        print(f"{n:>4} {t_batched * 1e3:>13.2f} {t_loop * 1e3:>10.2f} {t_loop / t_batched:>13.2f}")


if __name__ == "__main__":
    main()
