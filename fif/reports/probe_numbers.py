"""What the probe report measures: the probes of the ACM paper's section 2, the thresholds of its
verdicts, and reading accuracies out of the merged runs (fif.reports.probe writes the report).

    r = Results.load([Path("runs/probe/eval/results.json")])
    given_back(r, "droppixels(0.8)", "fgsm", 0.3)     # share of the lost accuracy the probe gives back
"""

from __future__ import annotations

import statistics

from ..api import format as fif_format
from .framework import UNTESTED, Results, Verdict, pct

RECIPE = "recipes/probe.fif"
SHARES = (0.3, 0.5, 0.8)         # the paper's range, 30-80% of the perturbation removed
PATCH = 4                        # 4x4 patches: 49 of them cover a 28x28 digit
BAND_SETS = (("LL",), ("LH",), ("HL",), ("HH",), ("LL", "LH", "HL"), ("LH", "HL", "HH"))

# Thresholds of the verdicts, as fractions of accuracy.
STRONG = 0.05   # claims are checked at the eps where undefended PGD leaves at most 5% (the paper: 0-0.5%)
LITTLE = 0.25   # "restores little": gives back under a quarter of the accuracy the attack took
MOST = 0.75     # "restores most": gives back at least three quarters of it
SAME = 0.05     # "no gain", "no difference": under 5 points
SLACK = 0.02    # accuracy may rise by up to 2 points with eps before "falls as eps grows" fails

# The paper's numbers (ImageNet, ResNet-152): Table 2's no-defence row and Table 1, eps = 8/4/2/1 /255.
PAPER_CLEAN = "78.9"
PAPER_ATTACKED = {"fgsm": "10.9 / 9.6 / 11.0 / 16.4", "pgd": "0.0 / 0.1 / 0.2 / 0.5"}
PAPER_SPATIAL = {"fgsm": "Paper, FGSM ε=8: 11% → 17% with 80% removed, almost no gain with 50% at ε=8 and 4.",
                 "pgd": "Paper: Fig. 3 compares FGSM with PGD; it prints no numbers."}
PAPER_TABLE1 = {("LL",): "2 / 3 / 6 / 18", ("LH",): "0 / 0 / 1 / 2", ("HL",): "0 / 0 / 1 / 2",
                ("HH",): "0 / 0 / 1 / 1", ("LL", "LH", "HL"): "70 / 70 / 70 / 72",
                ("LH", "HL", "HH"): "not printed (Fig. 4: 'not enough')"}


def pixels(share: float) -> str:
    return f"droppixels({share:g})"


def patches(share: float) -> str:
    return f"droppatches({share:g}, patch={PATCH})"


def bands(names) -> str:
    return f"dwt(haar) -> <{', '.join(names)}: zero> -> idwt"


PROBES = [pixels(s) for s in SHARES] + [patches(s) for s in SHARES] + [bands(b) for b in BAND_SETS]


def label(probe: str) -> str:
    """The defense name `fif eval` gives a probe's rows."""
    return "probe: " + fif_format(probe).strip()


# --- reading the numbers ---------------------------------------------------------------------------

def eps_list(r: Results) -> list[float]:
    """The measured budgets, largest first (the paper's column order)."""
    return sorted({row["eps"] for row in r.rows if row["threat"] == "probe"}, reverse=True)


def clean(r: Results) -> float | None:
    return r.acc("none")


def attacked(r: Results, attack: str, e: float) -> float | None:
    return r.acc("none", attack, e, "graybox")


def probed(r: Results, probe: str, attack: str, e: float) -> float | None:
    return r.acc(label(probe), attack, e, "probe")


def given_back(r: Results, probe: str, attack: str, e: float) -> float | None:
    """The share of the accuracy the attack took that the probe gives back: 0 nothing, 1 all."""
    c, a, p = clean(r), attacked(r, attack, e), probed(r, probe, attack, e)
    if None in (c, a, p) or c - a < 0.01:
        return None
    return (p - a) / (c - a)


def strong(r: Results) -> list[float]:
    """The eps at which the undefended attack is as strong as at every eps of the paper."""
    return [e for e in eps_list(r) if (a := attacked(r, "pgd", e)) is not None and a <= STRONG]


def missing(what: str = "not measured") -> Verdict:
    return Verdict(UNTESTED, what + "; run `fif report probe --run`")


def points(v: float) -> str:
    return f"{100 * v:+.1f} points"


def back_text(r, probe, attack, e) -> str:
    return (f"ε={e:g}: {pct(attacked(r, attack, e))} → {pct(probed(r, probe, attack, e))}, "
            f"{given_back(r, probe, attack, e):.0%} of the lost accuracy back")


def mean_back(r: Results, probes, attack: str, eps) -> float | None:
    v = [given_back(r, p, attack, e) for p in probes for e in eps]
    return statistics.fmean(v) if v and None not in v else None


def band_backs(r: Results, sets) -> dict[tuple, float] | None:
    s = strong(r)
    backs = {(b, e): given_back(r, bands(b), "pgd", e) for b in sets for e in s}
    return backs if s and None not in backs.values() else None
