"""The comparisons `benchmarks/run.py` runs, one module each, in this order.

A module has `TITLE` (one line), `NOTE` (how it measures, for results.md), `PEERS` (the pip names
of the libraries it compares against) and `run(cfg) -> iterator of harness.Row`. A peer that is not
installed gives rows that say so instead of numbers.
"""

from __future__ import annotations

import importlib

# the shipped recipes (recipes/*.fif) but jpeg_ensemble, whose nnjpeg(table=search) runs only with its
# `fif search` result
RECIPES = ("acm", "bitdepth", "bitdepth_sr", "dir", "pafilt", "probe", "tiny")

COMPARISONS = {
    "dwt": "dwt",              # 1. dwt + idwt against pywt, ptwt, pytorch_wavelets
    "jpeg": "jpeg",            # 2. JPEG and block DCT + quantize against kornia and Pillow
    "defenses": "defenses",    # 3. each recipe's compiled defense against a hand-written twin: time
    "memory": "memory",        # 3 + 7. the same twins: peak memory of a forward pass and a training step
    "pgd": "attacks",          # 4. PGD-20 against torchattacks, the attack loop's overhead
    "eval": "evaluation",      # 4. fif eval against the same evaluation by hand with torchattacks
    "eot": "eot",              # 5. EOT: one batched pass against a loop of passes
    "startup": "startup",      # 6. parse + check + build, cold and warm; command-line startup
    "compile": "compiled",     # 8. eager against torch.compile
}


def load(name: str):
    return importlib.import_module(f"{__name__}.{COMPARISONS[name]}")


def skipped(comparison: str, case: str, unit: str, peer: str, why: str):
    """The row for a peer that cannot run here."""
    from ..harness import Row
    return Row(comparison, case, unit, None, peer, None, note=f"skipped: {why}")
