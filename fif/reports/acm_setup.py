"""The ACM report's fixed choices, shared by its tables (fif/reports/acm.py), claims and file
measurements: seeds, budgets, attack labels as `fif eval` prints them, oracle probes, Table 3's
rows and the knob variants.

    seed_dir(Path("runs"), 1)   ->  runs/acm/seed1
"""

from __future__ import annotations

from pathlib import Path

SEEDS = (0, 1)
EPS = (0.1, 0.2, 0.3)
FGSM, MIFGSM = "fgsm", "mifgsm"
PGD = "pgd(steps=40, step=0.01)"
TARGETED = "pgd(steps=100, step=0.01, targeted=True)"
ATTACKS = ((FGSM, "FGSM"), (MIFGSM, "MI-FGSM"), (PGD, "PGD"))
# The perturbation-only oracle of the paper's section 2: drop pixels or wavelet bands of eta.
PROBES = ("droppixels(0.8)", "droppixels(0.5)", "dwt(haar) -> <LL: zero> -> idwt", "dwt(haar) -> <LH: zero> -> idwt",
          "dwt(haar) -> <HL: zero> -> idwt", "dwt(haar) -> <HH: zero> -> idwt",
          "dwt(haar) -> <LL, LH, HL: zero> -> idwt")
# Table 3: which bands are compressed (HH, HL, LH, LL); `plain` is the control with none.
ABLATION = (("defense", "✓✓✓✓"), ("keep_hh", "✗✓✓✓"), ("keep_hl", "✓✗✓✓"), ("keep_lh", "✓✓✗✓"),
            ("keep_ll", "✓✓✓✗"), ("keep_high", "✗✗✗✓"), ("plain", "✗✗✗✗"))
KNOBS = (("sigma0", "sigma = 0"), ("sigma1", "sigma = 1"), ("sigma5", "sigma = 5"), ("defense", "sigma = 20 (as acm.fif)"),
         ("binary", "sigma = 20, sign codes at inference"), ("noisy", "sigma = 20, noise kept at inference"),
         ("narrow_ll", "sigma = 20, LL path 4 channels wide"))


def seed_dir(runs: Path, seed: int) -> Path:
    return runs / "acm" / f"seed{seed}"


def probe_label(source: str) -> str:
    """How `fif eval --probe SOURCE` names its rows."""
    return f"probe: {source}"
