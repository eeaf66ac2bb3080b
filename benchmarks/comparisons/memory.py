"""3 and 7. Peak memory of each recipe's compiled defense against its hand-written twin: a forward
pass, a forward+backward pass, and one training step. Measured as resident memory (RSS) in a fresh
child process per contender: torch's CPU allocator has no peak counter, and tracemalloc sees only
Python's own allocations, not tensors.

    python -m benchmarks.comparisons.memory RECIPE fif|twin BATCH     # the child (fif or twin first)
"""

from __future__ import annotations

import json
import os
import sys

from ..harness import ROOT, Config, Row, rss_peak_mb, run_json
from . import RECIPES

TITLE = "Peak memory of a forward pass, a forward+backward pass and a training step: fif against the twin"
NOTE = ("Resident memory (RSS), not tracemalloc (which does not see tensors) and not torch.profiler "
        "(whose CPU memory events are per op): glibc told to return large blocks to the system at once (MALLOC_MMAP_THRESHOLD_=65536), both "
        "contenders in one fresh child process per recipe (which goes first alternates), "
        "then per phase: Linux's high-water mark reset (/proc/self/clear_refs), the phase run, "
        "peak minus the resident size before it. Phases after one warm-up of each: a forward pass "
        "(no_grad, eval), a forward+backward pass of the attack view (input and weight gradients), "
        "a training step (train mode, L1 loss to the clean image from a noisy one, backward, Adam "
        "step; the second step, so Adam's state is already there). Recipes without weights have no "
        "training step. Batch 256 of 1x28x28 (quick: 64); below 4 MB no verdict (page-level noise).")
PEERS: list[str] = []
PHASES = (("fwd", "fwd MB"), ("fwd+bwd", "fwd+bwd MB"), ("train step", "train step MB"))


SMALL_MB = 4.0   # below this, page-level noise: no verdict


def run(cfg: Config):
    batch = cfg.pick(256, 64, 4)
    recipes = cfg.pick(RECIPES, RECIPES, ("tiny",))
    from concurrent.futures import ThreadPoolExecutor
    # each child measures its own resident memory, so two can run at once
    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(run_json, ["-m", "benchmarks.comparisons.memory", recipe,
                                       "fif" if i % 2 == 0 else "twin", str(batch)])  # who goes first alternates
                for i, recipe in enumerate(recipes)]
    for recipe, job in zip(recipes, jobs):
        got = job.result()
        for phase, unit in PHASES:
            ours, theirs = got["fif"].get(phase), got["twin"].get(phase)
            if ours is None:
                continue
            small = max(ours, theirs) < SMALL_MB
            yield Row("memory", f"{recipe} {batch}x1x28x28", unit, ours, "hand-written", theirs,
                      note=f"below {SMALL_MB:g} MB: no verdict" if small else "",
                      target=None if small else ("ratio", 1.05))


def child(recipe: str, first: str, batch: int) -> dict:
    """Both contenders in one process, `first` measured first, each phase after its own warm-up."""
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    import fif

    from .twins import make_twin
    pipeline = fif.load_recipe(ROOT / "recipes" / f"{recipe}.fif").compile()
    twin = make_twin(recipe, pipeline)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=gen)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    g = torch.randn(x.shape, generator=gen)
    models = {"fif": (pipeline, pipeline.attack_view()), "twin": (twin, twin.attack)}
    out = {}
    for who in (first, "twin" if first == "fif" else "fif"):
        out[who] = _phases(*models[who], x, noisy, g)
    return out


def _phases(model, attack, x, noisy, g) -> dict:
    import torch
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3) if params else None

    def forward():
        with torch.no_grad():
            model(x)

    def forward_backward():
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad((attack(xi) * g).sum(), [xi, *params], allow_unused=True)

    def step():
        opt.zero_grad(set_to_none=True)
        (model(noisy) - x).abs().mean().backward()
        opt.step()

    out = {}
    model.eval()
    for name, work in (("fwd", forward), ("fwd+bwd", forward_backward)):
        work()
        out[name] = rss_peak_mb(work)
    if opt is not None:
        model.train()
        step()
        out["train step"] = rss_peak_mb(step)
        opt.zero_grad(set_to_none=True)
    return out


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
