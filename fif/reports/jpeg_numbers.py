"""What the jpeg_ensemble report reads: the recipe's entries, the paper's numbers, the verdicts'
thresholds, and accuracies out of the merged runs (fif.reports.jpeg_ensemble writes the report).

    r = Results.load([Path("runs/jpeg_ensemble/eval/results.json")])
    mean_acc(r, "ensemble", "bim", "graybox")      # I-FGSM accuracy, mean over the eps measured
"""

from __future__ import annotations

import statistics

from .framework import UNTESTED, Results, Verdict

RECIPE = "recipes/jpeg_ensemble.fif"
NAME = "jpeg_ensemble"

# The recipe's entries, in the paper's row order, with how the tables name them.
ROWS = (("none", "no defense"), ("jpeg75", "JPEG (75)"), ("defense", "the table alone (M's nnjpeg(50))"),
        ("ycbcr", "the table in YCbCr"), ("m90", "M90 alone"), ("m70", "M70 alone"), ("m50", "M50 alone"),
        ("m30", "M30 alone"), ("ensemble", "**ensemble** (mean softmax)"), ("voted", "ensemble, majority vote"),
        ("raw_m", "ensemble, M on the raw image"), ("fast_at", "Fast AT (FGSM training, control)"))
MEMBERS = ("m90", "m70", "m50", "m30")          # highest quality first
LINF = ("fgsm", "bim", "deepfool")              # the paper's Table 2 attacks besides C&W (L2)

# Thresholds of the verdicts (fractions of accuracy). With 200 digits one image is half a point.
SAME = 0.01      # "at least as well", "not better": within 1 point
KEEPS = 0.75     # BPDA "keeps most of its accuracy": the paper's 60 of 78 is 77%

# The paper's numbers (ImageNet, ResNet-v2-50 gray-box, Inception-v4 BPDA; eps in /255).
PAPER_T2 = {"none": ("65.4", "17.5 / 14.4 / 13.2", "15.1 / 12.4 / 9.5", "9.7", "9.3"),
            "jpeg75": ("60.5", "41.1 / 29.4 / 21.1", "57.1 / 51.6 / 50.0", "60.0", "60.3"),
            "ensemble": ("66.5", "56.4 / 43.1 / 28.2", "68.0 / 65.2 / 64.8", "67.1", "65.4")}
PAPER_T3 = {"none": ("78", "0"), "jpeg75": ("74", "1"), "ensemble": ("78", "60")}


def rows_of(r: Results, threat: str | None = None) -> list[dict]:
    return [row for row in r.rows if not row.get("sanity") and (threat is None or row["threat"] == threat)]


def eps_of(r: Results, attack: str, threat: str = "graybox") -> list[float]:
    """The budgets an attack ran at, smallest first (L2 for cw)."""
    return sorted({row["eps"] for row in rows_of(r, threat) if row["attack"].split("(")[0] == attack})


def linf_eps(r: Results) -> list[float]:
    """The L-inf budgets measured (every attack but C&W), smallest first."""
    return sorted({row["eps"] for row in rows_of(r) if row["threat"] != "clean"
                   and row["attack"].split("(")[0] not in ("none", "cw")})


def mean_acc(r: Results, defense: str, attack: str, threat: str = "graybox", eps=None) -> float | None:
    """Accuracy averaged over the budgets (all measured ones unless `eps` says which)."""
    values = [r.acc(defense, attack, e, threat) for e in (eps if eps is not None else eps_of(r, attack, threat))]
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def search_record(r: Results) -> dict | None:
    """The table search the evaluated entries read (results.json keeps a copy)."""
    for rec in r.records:
        if rec.get("search"):
            return rec["search"]
    return None


def missing(what: str = "not measured") -> Verdict:
    return Verdict(UNTESTED, what + "; run `fif report jpeg_ensemble --run`")


def pts(v: float) -> str:
    return f"{100 * v:+.1f} points"


def of_count(split: int) -> int:
    return sum(1 for i in range(8) for j in range(8) if i + j < split)


def position(p: int) -> str:
    return f"({p // 8},{p % 8})"
