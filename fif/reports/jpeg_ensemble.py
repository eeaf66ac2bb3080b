"""Zhang & Gao, ICCVW 2021 (NN-favoured JPEG + noisy training + ensemble) on the shipped digits.

    fif report jpeg_ensemble --run     # fif search, fif train, fif eval of recipes/jpeg_ensemble.fif, then
                                       # writes reports/jpeg_ensemble.md

Tables in the paper's shapes: Table 2 (gray-box FGSM, I-FGSM, DeepFool, C&W), Table 3 (white-box
BPDA: fif's adaptive threat, through all five members' compressions at once), the overall worst
case, the controls, and the table search (Algorithm 1) with its grid; then the claims of RECIPES.md
section 2.5, each checked against the numbers.
"""

from __future__ import annotations

from pathlib import Path

from .framework import FAILS, HOLDS, UNTESTED, Claim, ReportSpec, Results, Step, Table, Verdict, pct
from .jpeg_numbers import (KEEPS, LINF, MEMBERS, NAME, PAPER_T2, PAPER_T3, RECIPE, ROWS, SAME, eps_of, linf_eps,
                           mean_acc, missing, of_count, position, pts, search_record)


def make_spec(recipe: str = RECIPE) -> ReportSpec:
    """The report of `recipe` (a copy of recipes/jpeg_ensemble.fif keeps its name, so its runs
    are <runs>/jpeg_ensemble/...; a reduced copy checks the report end to end)."""

    def steps(runs: Path) -> list[Step]:
        base = runs / NAME
        return [Step(("search", recipe, "--runs", str(runs)), done=str(base / "search" / "table.json"), label="search"),
                Step(("train", recipe, "--out", str(base / "train")), done=str(base / "train" / "classifier_7.safetensors"),
                     label="train"),
                Step(("eval", recipe, "--runs", str(runs), "--out", str(base / "eval")),
                     done=str(base / "eval" / "results.json"), label="eval")]

    return ReportSpec(name=NAME, title="NN-favoured JPEG, noisy training and an ensemble: Zhang & Gao on MNIST",
                      paper="Zhang & Gao: Countering Adversarial Examples: Combining Input Transformation and "
                            "Noisy Training, ICCVW 2021 (Tables 2-3, Algorithm 1, Figs. 4-6)",
                      steps=steps, evals=lambda runs: [runs / NAME / "eval" / "results.json"],
                      tables=tables, claims=CLAIMS, intro=INTRO, discussion=discussion)


# --- tables ----------------------------------------------------------------------------------------

def _present(r: Results):
    names = {row["defense"] for row in r.rows}
    return [(d, label) for d, label in ROWS if d in names]


def _cells(r, d, attack, threat, eps):
    return " / ".join(r.cell(d, attack, e, threat) for e in eps)


def tables(r: Results) -> list[Table]:
    eps, l2 = linf_eps(r), eps_of(r, "cw")
    big, big_l2 = (eps[-1] if eps else 0.0), (l2[-1] if l2 else 0.0)
    e_text = " / ".join(f"{e:g}" for e in eps)
    t2 = Table("Table 2 shape, gray-box: accuracy % (the attack sees the classifier(s) only)",
               ["defense", "no attack", f"FGSM ε {e_text}", f"I-FGSM ε {e_text}", f"DeepFool ε={big:g}",
                f"C&W L2={big_l2:g}"],
               [[label, r.cell(d), _cells(r, d, "fgsm", "graybox", eps), _cells(r, d, "bim", "graybox", eps),
                 r.cell(d, "deepfool", big, "graybox"), r.cell(d, "cw", big_l2, "graybox")] for d, label in _present(r)]
               + [[f"*paper: {label}*", *PAPER_T2[d]] for d, label in ROWS if d in PAPER_T2],
               note="The paper's DeepFool and C&W are unbounded; fif bounds them, so the largest budget stands in "
                    "(every budget is in runs/jpeg_ensemble/eval/report.md). The gray-box attacker of an ensemble "
                    "attacks the averaged softmax of its classifiers without their compressions. Paper rows: "
                    "ImageNet, ResNet-v2-50, ε = 2/4/8 (FGSM) and 2/3/4 (I-FGSM) in /255.")
    t3 = Table("Table 3 shape, white-box BPDA (fif's adaptive threat): accuracy %",
               ["defense", "benign", *[f"BPDA I-FGSM ε={e:g}" for e in eps],
                *[f"adaptive worst ε={e:g}" for e in eps]],
               [[label, r.cell(d), *[r.cell(d, "bim", e, "adaptive") for e in eps],
                 *[r.cell(d, "worst", e, "adaptive") for e in eps]] for d, label in _present(r)]
               + [[f"*paper: {label}*", PAPER_T3[d][0], f"{PAPER_T3[d][1]} (one ε)", *[""] * (2 * len(eps) - 1)]
                  for d, label in ROWS if d in PAPER_T3],
               note="BPDA: each non-differentiable step (every member's nnjpeg, JPEG's rounding, the vote) passes "
                    "the identity gradient backward, and the attack differentiates the whole model, e.g. the "
                    "averaged softmax of all five members at once. Nothing is random at test time, so no EOT. "
                    "\"Adaptive worst\": a digit counts only if FGSM, I-FGSM and DeepFool all fail on it. "
                    "Paper: Inception-v4, 1000 iterations of Athalye et al.'s attack, one budget.")
    t4 = Table("Overall worst case: accuracy % when every attack under both threats is tried on each digit",
               ["defense", "no attack", *[f"overall ε={e:g}" for e in eps]],
               [[label, r.cell(d), *[r.cell(d, "worst", e, "overall") for e in eps]] for d, label in _present(r)],
               note="An attacker who can run the adaptive attack can run the gray-box one too: a digit counts "
                    "only if it survives FGSM, I-FGSM and DeepFool under both threats. This is the number to trust.")
    return [t2, t3, t4, *_search_tables(r)]


def _search_tables(r: Results) -> list[Table]:
    s = search_record(r)
    if s is None:
        return []
    d, c, st = s["data"], s["chosen"], s["settings"]
    out = [Table("The table search (Algorithm 1): result",
                 ["", "split k (OF coefficients)", "OF step", "AF step", "benign", "adversarial"],
                 [["no compression", "", "", "", pct(d["benign_accuracy"]), pct(d["adversarial_accuracy"])],
                  ["**chosen**", f"{c['split']} ({of_count(c['split'])})", str(c["of"]), str(c["af"]),
                   pct(c["benign"]), pct(c["adversarial"])]]
                 + [[f"best with OF step {o}", f"{p['split']} ({of_count(p['split'])})", str(o), str(p["af"]),
                     pct(p["benign"]), pct(p["adversarial"])] for o, p in _best_per(s, "of")]
                 + [["the paper's table (k=5, 16, AF 51 on this grid)", "5 (15)", "16", "51",
                     *[pct(p[k]) for k in ("benign", "adversarial")]] for p in s["points"]
                    if (p["split"], p["of"], p["af"]) == (5, 16, 51)],
                 note=f"{d['benign']} benign digits ({d['source']}) and {d['adversarial']} {st['attack']['name'].upper()} "
                      f"examples at ε={st['eps']:g} made from correctly classified ones ({d['fooled']} fool the plain "
                      f"classifier). {len(s['points'])} tables: k in {s['grid']['split']}, OF steps {s['grid']['of']} "
                      f"(searched: a departure from the paper, which fixes 16), AF steps {s['grid']['af'][0]}..."
                      f"{s['grid']['af'][-1]}. A table qualifies if benign accuracy drops by less than "
                      f"{100 * st['max_drop']:g} point(s); {sum(p['qualifies'] for p in s['points'])} do. Coefficient "
                      f"order: {st['order']}.")]
    rows = []
    for k, p in _best_per(s, "split"):
        rows.append([str(k), str(of_count(k)), f"{p['of']}/{p['af']}", pct(p["benign"]), pct(p["adversarial"])])
    out.append(Table("The grid: the best qualifying table for each split k", ["k", "OF coefficients",
                     "OF/AF step", "benign", "adversarial"], rows))
    ratio = s["delta"]["ratio"]
    first = ", ".join(position(p) for p in s["order"][:of_count(c["split"])])
    out.append(Table("delta' = spread of the perturbation / spread of the digits, per DCT position (i = row)",
                     ["i \\ j", *[str(j) for j in range(8)]],
                     [[str(i), *["inf" if ratio[i * 8 + j] is None else f"{ratio[i * 8 + j]:.3g}" for j in range(8)]]
                      for i in range(8)],
                     note=f"The chosen OF band (the {of_count(c['split'])} smallest δ′): {first}."))
    return out


def _best_per(s: dict, key: str):
    best = {}
    for p in s["points"]:
        if p["qualifies"] and (p[key] not in best or (p["adversarial"], p["benign"]) >
                               (best[p[key]]["adversarial"], best[p[key]]["benign"])):
            best[p[key]] = p
    return sorted(best.items())


# --- the claims ------------------------------------------------------------------------------------

def _table_benign(r):
    a, b = r.acc("defense"), r.acc("jpeg75")
    if None in (a, b):
        return missing()
    return Verdict(HOLDS if a >= b - SAME else FAILS,
                   f"clean: table {pct(a)}, JPEG-75 {pct(b)} (at least as well: within {100 * SAME:g} point)")


def _vs_jpeg(attacks):
    def check(r):
        diffs = {a: (mean_acc(r, "defense", a), mean_acc(r, "jpeg75", a)) for a in attacks}
        if any(None in v for v in diffs.values()):
            return missing()
        text = "; ".join(f"{a} {pct(t)} vs {pct(j)}" for a, (t, j) in diffs.items())
        better = [t > j for t, j in diffs.values()]
        return Verdict(HOLDS if all(better) else FAILS, f"gray-box, mean over ε: table vs JPEG-75: {text}")
    return check


def _fgsm_exception(r):
    t, j = mean_acc(r, "defense", "fgsm"), mean_acc(r, "jpeg75", "fgsm")
    if None in (t, j):
        return missing()
    return Verdict(HOLDS if t <= j + SAME else FAILS,
                   f"gray-box FGSM, mean over ε: table {pct(t)}, JPEG-75 {pct(j)} (holds if the table is not "
                   f"better by more than {100 * SAME:g} point)")


def _rgb_ycbcr(r):
    same = [(row["attack"], row["eps"], row["threat"]) for row in r.rows if row["defense"] == "ycbcr"]
    if not same:
        return Verdict(UNTESTED, "grey digits; the ycbcr variant was not evaluated")
    equal = all(r.acc("ycbcr", a, e, t) == r.acc("defense", a, e, t) for a, e, t in same)
    return Verdict(UNTESTED, "grey digits: R = G = B, so Y is the digit and the chroma is flat, and "
                   "nnjpeg(color=ycbcr) codes exactly what the RGB path does; the two rows are "
                   + ("identical in every cell, as they must be" if equal else "NOT identical: a bug to look at")
                   + "; test it on colour data")


def _members_tradeoff(r):
    clean = [r.acc(m) for m in MEMBERS]
    adv = [mean_acc(r, m, "bim") for m in MEMBERS]
    if None in clean + adv:
        return missing()
    falls = all(b <= a + SAME for a, b in zip(clean, clean[1:]))
    rises = all(b >= a - SAME for a, b in zip(adv, adv[1:]))
    return Verdict(HOLDS if falls and rises else FAILS,
                   "M90 → M30: clean " + " → ".join(pct(v) for v in clean) + "; gray-box I-FGSM, mean over ε, "
                   + " → ".join(pct(v) for v in adv) + f" (each step may go the wrong way by {100 * SAME:g} point)")


def _ensemble_vs_jpeg(r):
    pairs = [(a, e, r.acc("ensemble", a, e, "graybox"), r.acc("jpeg75", a, e, "graybox"))
             for a in ("fgsm", "bim") for e in linf_eps(r)]
    if not pairs or any(None in p[2:] for p in pairs):
        return missing()
    worst = min(pairs, key=lambda p: p[2] - p[3])
    return Verdict(HOLDS if all(p[2] > p[3] for p in pairs) else FAILS,
                   f"gray-box FGSM and I-FGSM at every ε; the closest: {worst[0]} ε={worst[1]:g}, ensemble "
                   f"{pct(worst[2])}, JPEG-75 {pct(worst[3])}")


def _ensemble_benign(r):
    e, m = r.acc("ensemble"), r.acc("none")
    if None in (e, m):
        return missing()
    return Verdict(HOLDS if e >= m - SAME else FAILS, f"clean: ensemble {pct(e)}, base model M {pct(m)} "
                   f"(at or above: within {100 * SAME:g} point)")


def _ensemble_vs_members(r):
    attacks = ("fgsm", "bim", "deepfool")
    score = {d: [mean_acc(r, d, a) for a in attacks] for d in ("ensemble", "defense", *MEMBERS)}
    if any(None in v for v in score.values()):
        return missing()
    mean = {d: sum(v) / len(v) for d, v in score.items()}
    best = max((d for d in mean if d != "ensemble"), key=mean.get)
    return Verdict(HOLDS if mean["ensemble"] >= mean[best] else FAILS,
                   f"gray-box FGSM, I-FGSM and DeepFool, mean over ε: ensemble {pct(mean['ensemble'])}, the best "
                   f"single member ({best}) {pct(mean[best])}")


def _bpda(r):
    eps = linf_eps(r)
    if not eps or r.acc("ensemble", "bim", eps[-1], "adaptive") is None:
        return missing()
    clean = r.acc("ensemble")
    text = ", ".join(f"ε={e:g}: {pct(r.acc('ensemble', 'bim', e, 'adaptive'))}" for e in eps)
    kept = r.acc("ensemble", "bim", eps[-1], "adaptive") / max(clean, 1e-9)
    return Verdict(HOLDS if kept >= KEEPS else FAILS,
                   f"ensemble clean {pct(clean)}; BPDA I-FGSM {text}; at ε={eps[-1]:g} it keeps {kept:.0%} of its "
                   f"clean accuracy (the paper: 60 of 78 = 77%; holds at {KEEPS:.0%} or more)")


def _fast_at_robust(r):
    eps = linf_eps(r)
    f, e = mean_acc(r, "fast_at", "worst", "overall", eps), mean_acc(r, "ensemble", "worst", "overall", eps)
    if None in (f, e):
        return missing()
    return Verdict(HOLDS if f > e else FAILS, f"overall worst case, mean over ε: Fast AT {pct(f)}, ensemble {pct(e)}")


def _noisy_clean(r):
    f, e = r.acc("fast_at"), r.acc("ensemble")
    if None in (f, e):
        return missing()
    return Verdict(HOLDS if e > f else FAILS, f"clean: ensemble {pct(e)}, Fast AT {pct(f)}")


CLAIMS = [
    Claim("table-benign", "The NN-favoured table keeps benign accuracy at least as well as JPEG-75",
          "Fig. 5; Table 2 (whole method): 66.5 vs 60.5", _table_benign),
    Claim("table-adv", "The table alone beats JPEG-75 against I-FGSM, DeepFool and C&W (gray-box)",
          "Fig. 5 (no numbers printed)", _vs_jpeg(("bim", "deepfool", "cw"))),
    Claim("table-fgsm", "…but not against FGSM", "Fig. 5: 'except against FGSM'", _fgsm_exception),
    Claim("rgb-ycbcr", "Quantising in RGB beats YCbCr with the same table (except slightly at QS < 20)",
          "Fig. 4: about 2x the defence at QS > 20", _rgb_ycbcr),
    Claim("members", "Lower-quality members defend better but lose benign accuracy",
          "Fig. 6 (no numbers printed)", _members_tradeoff),
    Claim("own-quality", "Each M_q is best on images of its own quality", "Fig. 6(a)",
          lambda r: Verdict(UNTESTED, "the recipe shows each member its own quality only; the 5 x 8 matrix of "
                                      "Fig. 6 would need a variant per (member, quality)")),
    Claim("ensemble-jpeg", "The ensemble beats JPEG-75 under FGSM and I-FGSM (gray-box)",
          "Table 2: 56.4/43.1/28.2 vs 41.1/29.4/21.1; 68.0/65.2/64.8 vs 57.1/51.6/50.0", _ensemble_vs_jpeg),
    Claim("ensemble-benign", "The ensemble's benign accuracy is at or above the base model's",
          "Table 2: 66.5 vs 65.4", _ensemble_benign),
    Claim("ensemble-members", "The ensemble beats every single member (not claimed by the paper; measured)",
          "not claimed (Fig. 6 tests members alone)", _ensemble_vs_members),
    Claim("bpda", "BPDA through all five members keeps most of the ensemble's accuracy",
          "Table 3: 60% (benign 78%)", _bpda),
    Claim("fast-at-robust", "Fast AT at an equal budget is more robust than noisy training",
          "Table 1: PGD 43.46 vs 40.06 (ε=2, 15 vs 14 epochs)", _fast_at_robust),
    Claim("noisy-clean", "…while noisy training keeps more clean accuracy", "Table 1: 65.10 vs 60.90", _noisy_clean),
]


# --- why -------------------------------------------------------------------------------------------

def discussion(r: Results) -> str:
    eps = linf_eps(r)
    if not eps or r.acc("ensemble") is None:
        return "Nothing measured yet."
    n = min(rec.get("n", 0) for rec in r.records)
    out = [f"With {n} test digits, one digit is {100 / max(n, 1):.1f} points and an accuracy near 50% has a "
           f"standard error of about {100 * (0.25 / max(n, 1)) ** 0.5:.1f} points."]
    g, a = mean_acc(r, "ensemble", "bim", "graybox"), mean_acc(r, "ensemble", "bim", "adaptive")
    if None not in (g, a):
        out.append(f"**Gray-box against BPDA.** Averaged over ε, I-FGSM leaves the ensemble {pct(g)} when the "
                   f"attacker sees only the classifiers and {pct(a)} when it differentiates through the five "
                   f"compressions with BPDA ({pts(a - g)}). " + (
                       "The compressions are close to the identity on the scale of the perturbation, so the identity "
                       "backward is a good approximation of all five at once: the paper's argument that no single "
                       "f(·) fits five g(·)s does not survive here." if a < g - 0.1 else
                       "Here the adaptive attack gains little over the gray-box one."))
    s = search_record(r)
    if s is not None:
        c = s["chosen"]
        out.append(f"**The searched table.** On the held-out digits the search kept split {c['split']} "
                   f"({of_count(c['split'])} OF coefficients), OF step {c['of']} and AF step {c['af']}: "
                   f"{pct(c['adversarial'])} on its FGSM examples at ε={s['settings']['eps']:g} against "
                   f"{pct(s['data']['adversarial_accuracy'])} without compression, for a benign drop of "
                   f"{pts(c['drop'])}. Those are the examples the table was chosen on; the tables above are the "
                   "test digits, unseen by the search.")
    return "\n\n".join(out)


INTRO = f"""
The paper compresses each image with a JPEG whose quantisation table has two steps, a small one on the
"original-favoured" (OF) DCT coefficients and a large one on the rest, ordered by how much of each coefficient
is perturbation (δ′); it fine-tunes a chain of classifiers on compressed, noisy images (M → M90 → … → M30) and
averages the softmax of M, M90, M70, M50 and M30, each behind its own compression. Here all of it runs on the
shipped MNIST digits with a small CNN ({RECIPE}): `fif search` runs Algorithm 1 on held-out digits and writes
the table that every `nnjpeg(q, table=search)` of the recipe reads; `fif train` fine-tunes the chain;
`fif eval` attacks every entry gray-box (the classifiers only, as the paper's Table 2) and adaptively (BPDA
through every compression, the paper's Table 3).

**ε.** The paper's ε = 2-8/255 hardly move an MNIST CNN; here ε = 0.1, 0.2, 0.3 play its columns (0.3 its
8/255), C&W has L2 budgets 1, 2, 3. Its rule QS_OF = 16·255·ε would give 408-1224 at these ε and erase the
digits, so the search also tries OF steps (8, 16, 32, 64), a stated departure; the AF grid and the split grid
are the paper's. "Mean over ε" below averages the three budgets.

**Verdicts.** "At least as well", "not better", "at or above": within {100 * SAME:g} point. BPDA "keeps most":
{KEEPS:.0%} or more of the clean accuracy, as the paper's 60 of 78.
"""

SPEC = make_spec()
