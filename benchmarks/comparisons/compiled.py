"""8. Each recipe's defense eager against `torch.compile` of the same module."""

from __future__ import annotations

import time
import warnings

import torch

from ..harness import ROOT, Config, Row, interleaved
from . import RECIPES

TITLE = "Eager against torch.compile, each recipe's defense"
NOTE = ("`torch.compile(pipeline)` (inductor, default mode) against the same fif.Pipeline run eagerly, "
        "batch 256 of 1x28x28 (quick: 64; only bitdepth and tiny, forward only, as compiling takes tens "
        "of seconds on a loaded CPU). `fif/other` is eager over compiled: above 1 means compiling "
        "pays. The note gives the first call's time (compilation included); inductor caches compiled "
        "graphs on disk, so a second run of the benchmark compiles faster. A defense that fails to "
        "compile is reported as skipped.")
PEERS: list[str] = []


def _grad(model, x, g):
    def run():
        xi = x.detach().requires_grad_(True)
        torch.autograd.grad((model(xi) * g).sum(), xi)
    return run


def run(cfg: Config):
    import fif
    if cfg.tiny:   # the harness test: no compiler run
        yield Row("compile", "probe (tiny test)", "ms", None, "torch.compile", None, note="skipped in the tiny test")
        return
    recipes = cfg.pick(RECIPES, ("bitdepth", "tiny"))
    batch = cfg.pick(256, 64)
    passes = cfg.pick(("fwd", "fwd+bwd"), ("fwd",))
    warnings.simplefilter("ignore")
    for recipe in recipes:
        pipeline = fif.load_recipe(ROOT / "recipes" / f"{recipe}.fif").compile().eval()
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(batch, *pipeline.input_shape, generator=gen)
        g = torch.randn(x.shape, generator=gen)
        case = f"{recipe} {batch}x{'x'.join(map(str, pipeline.input_shape))}"
        for kind in passes:
            torch._dynamo.reset()
            try:
                compiled = torch.compile(pipeline)
                t0 = time.perf_counter()
                if kind == "fwd":
                    with torch.no_grad():
                        compiled(x)
                    contenders = {"eager": lambda: pipeline(x), "compiled": lambda: compiled(x)}
                else:
                    _grad(compiled, x, g)()
                    contenders = {"eager": _grad(pipeline, x, g), "compiled": _grad(compiled, x, g)}
                first = time.perf_counter() - t0
            except Exception as e:  # no compiler, an unsupported op, ...
                yield Row("compile", case, f"{kind} ms", None, "torch.compile", None,
                          note=f"skipped: torch.compile failed: {type(e).__name__}: {str(e)[:120]}")
                continue
            if kind == "fwd":
                with torch.no_grad():
                    times = interleaved(contenders, cfg)
            else:
                times = interleaved(contenders, cfg)
            yield Row("compile", case, f"{kind} ms", times["eager"] * 1e3, "torch.compile", times["compiled"] * 1e3,
                      note=f"first compiled call {first:.1f} s")
    torch._dynamo.reset()
