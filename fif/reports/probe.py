"""The ACM paper's "oracle" probes (Niu et al. 2020, section 2) on the shipped digits.

    fif report probe --run      # runs the probes (a few minutes on 2 CPU cores), writes reports/probe.md

A probe is a pipeline P applied to a known perturbation only: the classifier alone sees
x + P(x_adv - x) (`fif eval --probe`, gray-box FGSM and PGD). Spatial probes zero a random share of
the perturbation's pixels or 4x4 patches (`droppixels(0.8)`, `droppatches(0.8, patch=4)`);
frequency probes zero Haar DWT bands of it (`dwt(haar) -> <LL, LH, HL: zero> -> idwt`).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .framework import FAILS, HOLDS, UNTESTED, Claim, ReportSpec, Results, Step, Table, Verdict, pct
from .probe_numbers import (BAND_SETS, LITTLE, MOST, PAPER_ATTACKED, PAPER_CLEAN, PAPER_SPATIAL, PAPER_TABLE1,
                            PATCH, PROBES, RECIPE, SAME, SHARES, SLACK, STRONG, attacked, back_text, band_backs,
                            bands, clean, eps_list, given_back, label, mean_back, missing, patches, pixels,
                            points, probed, strong)


def _steps(runs: Path) -> list[Step]:
    out = runs / "probe" / "eval"
    args = ("eval", RECIPE, *[a for p in PROBES for a in ("--probe", p)], "--out", str(out))
    return [Step(args, done=str(out / "results.json"), label="probes")]


# --- tables ----------------------------------------------------------------------------------------

def _tables(r: Results) -> list[Table]:
    eps = eps_list(r)
    cols = [f"ε={e:g}" for e in eps]
    base = Table("Nothing removed: clean and attacked accuracy (%)",
                 ["attack", "no attack", *cols, "paper: clean; ε = 8/4/2/1 (/255)"],
                 [[name, r.cell("none"), *[r.cell("none", a, e, "graybox") for e in eps],
                   f"{PAPER_CLEAN}; {PAPER_ATTACKED[a]}"] for name, a in (("FGSM", "fgsm"), ("PGD", "pgd"))],
                 note="Gray-box attacks on the classifier alone; the probes below remove part of exactly "
                      "these perturbations.")
    tables = [base]
    for name, attack, fig in (("FGSM", "fgsm", "Fig. 2"), ("PGD", "pgd", "Fig. 3")):
        header = ["share of η removed"] + [f"ε={e:g} {how}" for e in eps for how in ("pixels", "patches")]
        rows = [["0% (attacked)"] + [r.cell("none", attack, e, "graybox") for e in eps for _ in (0, 1)]]
        rows += [[f"{s:.0%}"] + [r.cell(label(p(s)), attack, e, "probe") for e in eps for p in (pixels, patches)]
                 for s in SHARES]
        rows.append(["100% (clean)"] + [r.cell("none") for _ in eps for _ in (0, 1)])
        tables.append(Table(f"Spatial removal, {name} (paper {fig}): accuracy % after zeroing a random share "
                            f"of the perturbation", header, rows,
                            note=f"pixels: `{pixels(0.5)}` and so on, each pixel of η zeroed with probability = "
                                 f"share; patches: `{patches(0.5)}`, each {PATCH}x{PATCH} patch likewise. "
                                 + PAPER_SPATIAL[attack]))
    for name, attack in (("PGD", "pgd"), ("FGSM", "fgsm")):
        paper = name == "PGD"
        header = ["bands of η removed", *cols] + (["paper: ε = 8/4/2/1 (/255)"] if paper else [])
        rows = [["none (attacked)", *[r.cell("none", attack, e, "graybox") for e in eps]]
                + ([PAPER_ATTACKED[attack]] if paper else [])]
        rows += [[" + ".join(b), *[r.cell(label(bands(b)), attack, e, "probe") for e in eps]]
                 + ([PAPER_TABLE1[b]] if paper else []) for b in BAND_SETS]
        rows.append(["all (clean)", *[r.cell("none") for _ in eps]] + ([PAPER_CLEAN] if paper else []))
        title = (f"Frequency removal, {name} (paper Table 1)" if paper else
                 f"Frequency removal, {name} (the paper: 'similar results', in its supplement)")
        tables.append(Table(title + ": accuracy % after zeroing Haar DWT bands of the perturbation",
                            header, rows, note="`dwt(haar) -> <LL, LH, HL: zero> -> idwt` removes LL + LH + HL "
                                               "and keeps HH. LH: horizontal detail, HL: vertical, HH: diagonal."))
    return tables


# --- the paper's claims ----------------------------------------------------------------------------

def _spatial_80(r: Results) -> Verdict:
    eps = eps_list(r)
    if not eps or given_back(r, pixels(0.8), "fgsm", eps[0]) is None:
        return missing()
    back = given_back(r, pixels(0.8), "fgsm", eps[0])
    return Verdict(HOLDS if back < LITTLE else FAILS,
                   f"FGSM {back_text(r, pixels(0.8), 'fgsm', eps[0])} (little: under {LITTLE:.0%})")


def _spatial_50(r: Results) -> Verdict:
    top = eps_list(r)[:2]
    gains = {e: probed(r, pixels(0.5), "fgsm", e) - attacked(r, "fgsm", e) for e in top
             if probed(r, pixels(0.5), "fgsm", e) is not None and attacked(r, "fgsm", e) is not None}
    if len(gains) < 2:
        return missing()
    text = "; ".join(f"ε={e:g}: {pct(attacked(r, 'fgsm', e))} → {pct(probed(r, pixels(0.5), 'fgsm', e))} "
                     f"({points(g)})" for e, g in gains.items())
    return Verdict(HOLDS if max(gains.values()) < SAME else FAILS,
                   f"FGSM, 50% removed, {text} (almost none: under {100 * SAME:.0f} points)")


def _spatial_small(r: Results) -> Verdict:
    s = strong(r)
    if not s or probed(r, pixels(0.8), "fgsm", s[-1]) is None:
        return missing("no eps with undefended PGD accuracy under 5%")
    e = s[-1]
    gap = clean(r) - probed(r, pixels(0.8), "fgsm", e)
    return Verdict(HOLDS if gap >= 0.10 else FAILS,
                   f"FGSM ε={e:g} (the smallest strong ε), 80% removed: {pct(probed(r, pixels(0.8), 'fgsm', e))}, "
                   f"{100 * gap:.1f} points below clean {pct(clean(r))} (a big gap: 10 points or more)")


def _fgsm_resists(r: Results) -> Verdict:
    s, probes = strong(r), [pixels(x) for x in SHARES]
    f, p = mean_back(r, probes, "fgsm", s), mean_back(r, probes, "pgd", s)
    if not s or None in (f, p):
        return missing()
    return Verdict(HOLDS if f < p - SAME else FAILS,
                   f"share of the lost accuracy given back by 30/50/80% pixel removal, mean over ε in "
                   f"{{{', '.join(f'{e:g}' for e in s)}}}: FGSM {f:.0%}, PGD {p:.0%} (holds if FGSM's is lower "
                   f"by over {100 * SAME:.0f} points)")


def _patch_same(r: Results) -> Verdict:
    s = strong(r)
    diffs = {(x, e): probed(r, patches(x), "fgsm", e) - probed(r, pixels(x), "fgsm", e)
             for x in SHARES for e in s
             if probed(r, patches(x), "fgsm", e) is not None and probed(r, pixels(x), "fgsm", e) is not None}
    if not diffs:
        return missing()
    mean = statistics.fmean(abs(d) for d in diffs.values())
    (x, e), d = max(diffs.items(), key=lambda kv: abs(kv[1]))
    return Verdict(HOLDS if mean < SAME else FAILS,
                   f"FGSM, patches minus pixels over 30/50/80% and ε in {{{', '.join(f'{e:g}' for e in s)}}}: "
                   f"{100 * mean:.1f} points apart on average, at most {points(d)} ({x:.0%} at ε={e:g}) "
                   f"(no difference: under {100 * SAME:.0f} points on average)")


def _single_band(r: Results) -> Verdict:
    backs = band_backs(r, BAND_SETS[:4])
    if backs is None:
        return missing()
    per_band = {b: max((v, e) for (bb, e), v in backs.items() if bb == b) for b in BAND_SETS[:4]}
    text = "; ".join(f"{b[0]} up to {v:.0%} (ε={e:g}, {pct(probed(r, bands(b), 'pgd', e))})"
                     for b, (v, e) in per_band.items())
    return Verdict(HOLDS if max(backs.values()) < LITTLE else FAILS,
                   f"PGD, share of the lost accuracy back at the strong ε: {text} (little: under {LITTLE:.0%})")


def _ll_first(r: Results) -> Verdict:
    s = strong(r)
    accs = {(b, e): probed(r, bands(b), "pgd", e) for b in BAND_SETS[:4] for e in s}
    if not s or None in accs.values():
        return missing()
    worst = min(s, key=lambda e: accs[(("LL",), e)] - max(accs[(b, e)] for b in BAND_SETS[1:4]))
    best_high = max(BAND_SETS[1:4], key=lambda b: accs[(b, worst)])
    ok = all(accs[(("LL",), e)] > max(accs[(b, e)] for b in BAND_SETS[1:4]) for e in s)
    return Verdict(HOLDS if ok else FAILS,
                   f"PGD, LL removed against the best single high band removed, at the strong ε where they are "
                   f"closest (ε={worst:g}): LL {pct(accs[(('LL',), worst)])}, {best_high[0]} "
                   f"{pct(accs[(best_high, worst)])} (holds if LL is higher at every strong ε)")


def _keep_hh(r: Results) -> Verdict:
    backs = band_backs(r, [BAND_SETS[4]])
    if backs is None:
        return missing()
    (b, e), v = min(backs.items(), key=lambda kv: kv[1])
    return Verdict(HOLDS if v >= MOST else FAILS,
                   f"PGD, the least at the strong ε: {back_text(r, bands(b), 'pgd', e)} (clean {pct(clean(r))}; "
                   f"most: {MOST:.0%} or more)")


def _high_only(r: Results) -> Verdict:
    backs = band_backs(r, [BAND_SETS[5]])
    if backs is None:
        return missing()
    (b, e), v = max(backs.items(), key=lambda kv: kv[1])
    return Verdict(HOLDS if v < LITTLE else FAILS,
                   f"PGD, the most at the strong ε: {back_text(r, bands(b), 'pgd', e)} (little: under {LITTLE:.0%})")


def _falls_with_eps(r: Results) -> Verdict:
    eps = sorted(eps_list(r))
    rises = []
    for p in PROBES:
        for attack in ("fgsm", "pgd"):
            accs = [probed(r, p, attack, e) for e in eps]
            if None in accs:
                return missing()
            rises += [(b - a, p, attack, e) for a, b, e in zip(accs, accs[1:], eps[1:])]
    worst = max(rises)
    return Verdict(HOLDS if worst[0] <= SLACK else FAILS,
                   f"{len(PROBES)} probes x FGSM, PGD over ε {', '.join(f'{e:g}' for e in eps)}: from one ε to "
                   f"the next, accuracy changes by at most {points(worst[0])} (`{worst[1]}`, {worst[2]}, at "
                   f"ε={worst[3]:g}; a rise of up to {100 * SLACK:.0f} points is allowed)")


_LATENT = ("the latent probe needs a trained ComDefend-style encoder E and removes parts of E(x*) - E(x); "
           "`fif eval --probe` acts on the image perturbation only")

CLAIMS = [
    Claim("spatial-80", "Removing 80% of an FGSM perturbation's pixels at random restores little at the largest ε",
          "ε=8: 11% → 17% (clean 79%), 9% back", _spatial_80),
    Claim("spatial-50", "Removing 50% of the pixels gives almost no gain at the two largest ε",
          "no gain at ε = 8 and 4 (Fig. 2)", _spatial_50),
    Claim("spatial-small-eps", "At the smallest ε, removing 80% helps but stays far below benign accuracy",
          "ε=1: nearly 30 points below 79%", _spatial_small),
    Claim("fgsm-resists", "Spatial removal gives back less against FGSM than against PGD",
          "Fig. 3, no numbers printed", _fgsm_resists),
    Claim("patch-same", "Removing the perturbation patch-wise instead of pixel-wise makes no difference",
          "no effect (§2.1.2, no numbers printed)", _patch_same),
    Claim("single-band", "Removing any one DWT band (LL, LH, HL or HH) of a PGD perturbation restores little",
          "LL 2-18%, LH/HL/HH 0-2% (Table 1)", _single_band),
    Claim("ll-first", "Of the single bands, removing LL restores the most",
          "LL 2/3/6/18% vs at most 2% (Table 1)", _ll_first),
    Claim("keep-hh", "Removing LL + LH + HL (keeping only HH) restores most of the accuracy",
          "70-72% of 79%, about 89% back (Table 1)", _keep_hh),
    Claim("high-only", "Removing all three high bands (LH + HL + HH) restores little",
          "'not enough' (Fig. 4, no numbers printed)", _high_only),
    Claim("falls-with-eps", "Whatever is removed, the larger ε, the lower the accuracy",
          "every curve of Figs. 2-4 and Table 1", _falls_with_eps),
    Claim("latent-pgd", "Zeroing 25% of the latent perturbation gives no gain; 75% reaches only about 48% (PGD)",
          "Fig. 5", lambda r: Verdict(UNTESTED, _LATENT)),
    Claim("latent-fgsm", "Zeroing 80% of the latent perturbation of FGSM at ε=2 adds only 25.9 points",
          "Fig. 6", lambda r: Verdict(UNTESTED, _LATENT)),
]


# --- why -------------------------------------------------------------------------------------------

def _discussion(r: Results) -> str:
    eps, s = eps_list(r), strong(r)
    if not eps or clean(r) is None:
        return "Nothing measured yet."
    big, small = eps[0], eps[-1]
    n = min(rec.get("n", 0) for rec in r.records)
    seconds = {kind: sum(row.get("seconds", 0.0) for row in r.rows if row["threat"] in kinds)
               for kind, kinds in (("attacks", ("graybox",)), ("probes", ("probe",)))}
    out = [f"With {n} digits, an accuracy near 50% has a standard error of about {100 * (0.25 / max(n, 1)) ** 0.5:.1f} "
           f"points; the thresholds of the verdicts are wider than that. Of the evaluation's time, making the "
           f"attacks took {seconds['attacks']:.0f} s (almost all of it PGD) and the {len(PROBES)} probes over both "
           f"attacks and every ε {seconds['probes']:.0f} s."]
    halves = [(e, h) for e in eps for h in eps if abs(h - e / 2) < 1e-9
              and probed(r, pixels(0.5), "fgsm", e) is not None and attacked(r, "fgsm", h) is not None]
    if halves:
        diffs = [abs(probed(r, pixels(0.5), "fgsm", e) - attacked(r, "fgsm", h)) for e, h in halves]
        pairs = "; ".join(f"half of the pixels of an ε={e:g} perturbation removed: {pct(probed(r, pixels(0.5), 'fgsm', e))}, "
                          f"FGSM at ε={h:g}: {pct(attacked(r, 'fgsm', h))}" for e, h in halves)
        out.append(
            "**Removing pixels at random shrinks the perturbation.** FGSM's perturbation is ε·sign(g), so if the "
            "classifier answers a perturbation about linearly, keeping a random half of its pixels acts like FGSM "
            f"at ε/2. {'It does here' if max(diffs) < SAME else 'Here that holds only roughly'}: {pairs}. The "
            "paper's numbers fit the same account: 80% removed at ε=8/255 leaves 17%, and FGSM at ε=1 and 2/255 "
            "(around 8 × 0.2 = 1.6) leaves 16.4% and 11.0% (its Table 2).")
    left, weak = probed(r, pixels(0.8), "fgsm", big), attacked(r, "fgsm", small)
    if left is not None and weak is not None:
        size = f"{(1 - 0.8) * big:.2g}"
        than = "even at the larger" if small > (1 - 0.8) * big + 1e-9 else "at"
        out.append(
            "So what decides the spatial verdicts is how small a perturbation still fools the classifier. The "
            f"ResNet-152 is fooled at ε=1/255. Removing 80% of an ε={big:g} perturbation leaves, by the same "
            f"account, an ε of about {size}; this CNN still classifies {pct(weak)} of the digits under FGSM "
            f"{than} ε={small:g}, and {pct(left)} survive what is left. "
            + ("That is why removal restores far more here than in the paper: what differs is not the "
               "perturbation but how small a one fools the classifier." if _spatial_80(r).status == FAILS else
               "Even so, what is left is enough to fool it, as in the paper."))
    patch = _patch_same(r)
    if patch.status != UNTESTED:
        gaps = [probed(r, pixels(x), "pgd", e) - probed(r, patches(x), "pgd", e) for x in SHARES for e in s]
        out.append("**Patches or pixels.** " + (
            "For a response that is about linear only the expected share removed matters, not its shape, and "
            "that is what FGSM shows (see the claim above)." if patch.status == HOLDS else
            "The shape of what is removed matters here beyond the share removed (see the claim above).")
            + (f" Against PGD, {PATCH}x{PATCH} patches give back {100 * statistics.fmean(gaps):.1f} points less than "
               f"pixels on average over the same shares and ε (at most {100 * max(gaps):.1f}), so there the "
               "shape of what is removed matters a little." if gaps and None not in gaps
               and statistics.fmean(gaps) >= 0.02 else ""))
    if s and None not in (attacked(r, "fgsm", s[-1]), mean_back(r, [pixels(0.8)], "pgd", s)):
        f, p = mean_back(r, [pixels(x) for x in SHARES], "fgsm", s), mean_back(r, [pixels(x) for x in SHARES], "pgd", s)
        if f is not None and p is not None and f > p:
            out.append(
                "**FGSM or PGD.** Removal gives back more against FGSM than against PGD here, the reverse of the "
                "paper, which puts it down to FGSM's larger distortion. Per unit of size PGD is the stronger "
                f"perturbation on these digits (undefended, at ε={s[-1]:g}: PGD {pct(attacked(r, 'pgd', s[-1]))}, "
                f"FGSM {pct(attacked(r, 'fgsm', s[-1]))}), so a shrunk PGD perturbation still does more.")
    hh = given_back(r, bands(BAND_SETS[4]), "pgd", big)
    ll = given_back(r, bands(("LL",)), "pgd", big)
    high = [given_back(r, bands(b), "pgd", big) for b in BAND_SETS[1:4]]
    if None not in (hh, ll, *high):
        text = (f"**Frequency bands.** Keeping only HH, a pattern that alternates sign within every 2x2 block, gives "
                f"back {hh:.0%} of the lost accuracy at ε={big:g} (PGD) here and about 89% in the paper: "
                + ("neither classifier answers much to the finest diagonal detail. " if hh >= MOST else
                   "here it does not, unlike the paper. "))
        if ll > max(high) and ll >= LITTLE:
            text += (f"Unlike the paper, removing LL alone gives back much here ({ll:.0%} at ε={big:g}, against "
                     f"at most {max(high):.0%} for one high band; the paper: 2% against 0%). We think an MNIST CNN's "
                     "gradient, and so a perturbation that follows it, is coarse, blobs along the strokes that the "
                     "2x2 averages in LL carry, while no single band of the paper's ImageNet perturbations carries "
                     "enough of them for its removal to matter. We did not measure the energy per band.")
        elif ll > max(high):
            text += "As in the paper, LL matters more than any single high band, and no single band is enough."
        out.append(text)
    return "\n\n".join(out)


INTRO = f"""
The paper's section 2 asks how much of a known adversarial perturbation η = x* − x a denoiser would have to
remove: it zeroes parts of η and classifies x + P(η). Here each such P runs as `fif eval --probe` on the
shipped MNIST digits ({RECIPE}: its first test digits, the small CNN of recipes/bitdepth.fif, gray-box
FGSM and PGD with 40 steps of 0.01). Spatial probes zero each pixel of η, or each {PATCH}x{PATCH} patch, with
probability 30, 50 or 80%, one draw per digit (`droppixels`, `droppatches`); frequency probes zero Haar DWT
bands of η. x + P(η) is clipped to [0, 1].

**ε.** The paper attacks an ImageNet ResNet-152 at ε = 1, 2, 4 and 8/255, where its undefended PGD accuracy is
0-0.5%; such budgets hardly move an MNIST CNN. Here ε = 0.3 plays the paper's 8/255 and 0.2, 0.15 and 0.1
its smaller columns, largest first like the paper's Table 1. The paper's claims are about attacks that
succeed, so each claim is checked at the *strong* ε, those where undefended PGD leaves at most
{STRONG:.0%}; the weaker ε stay in the tables for context.

**Verdicts.** "Given back" is (accuracy after the probe − attacked accuracy) / (clean − attacked accuracy):
0 is nothing, 1 is all of it. "Restores little": under {LITTLE:.0%} given back; "most": {MOST:.0%} or more;
"no gain" and "no difference": under {100 * SAME:.0f} points. The latent-space probes of the paper's §2.3
need its ComDefend-style encoder and are not tested here.
"""

SPEC = ReportSpec(
    name="probe",
    title="Removing parts of the perturbation: the ACM paper's oracle probes on MNIST",
    paper="Niu, Chen, Li, Yang, Li, Yi: Adaptive Compression and reconstruction Model (ACM), arXiv 2012.09384, "
          "section 2 (Fig. 2-6, Table 1)",
    steps=_steps,
    evals=lambda runs: [runs / "probe" / "eval" / "results.json"],
    tables=_tables,
    claims=CLAIMS,
    intro=INTRO,
    discussion=_discussion,
)
