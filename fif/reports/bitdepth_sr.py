"""Report: bit-depth reduction + EDSR-style reconstruction (Zhang, Xu, Pei & Yang, PeerJ CS 2021),
reproduced on the shipped MNIST digits by `recipes/bitdepth_sr.fif` (spec: shared/RECIPES.md 4).

    fif report bitdepth_sr --run

Two seeds: each trains the three reconstruction networks (`fif train --seed S`) and evaluates every
entry (`fif eval --seed S`). Tables follow the paper's Table 1 (MNIST, eps = 0.15, gray-box) and
its Fig. 6 sweep, with the adaptive (BPDA) and overall worst-case rows beside them.
"""

from __future__ import annotations

from pathlib import Path

from .framework import FAILS, HOLDS, UNTESTED, Claim, Results, ReportSpec, Step, Table, Verdict
from .bitdepth_sr_discussion import discussion
from .framework import pct as _p

RECIPE = "recipes/bitdepth_sr.fif"
NAME = "bitdepth_sr"
SEEDS = (0, 1)
EPS = (0.1, 0.15, 0.2, 0.3)
MID = 0.15   # the paper's "median value" for MNIST (Table 1)

# (entry, how the tables name it)
ROWS = [
    ("none", "small CNN, no defense"),
    ("defense", "small CNN + bitdepth(2) -> EDSR"),
    ("lenet", "LeNet, no defense"),
    ("lenet_defended", "LeNet + the same bitdepth(2) -> EDSR"),
    ("bitdepth_only", "control: bitdepth(2) alone"),
    ("sr_only", "control: EDSR alone (no quantiser)"),
    ("bits", "k as bits: bitdepth(2, bits=true) -> EDSR (4 levels)"),
    ("adv_trained", "PGD-trained small CNN, no defense"),
]
DEFENSES = ("defense", "bitdepth_only", "sr_only", "bits")  # image -> image entries (PSNR/SSIM)

# The paper's Table 1 (MNIST, eps = 0.15): clean, FGSM, BIM, DeepFool, C&W, in %.
PAPER_TABLE1 = [
    ("paper: ResNet-50, no defense", (99, 48, 9, 18, 3)),
    ("paper: ResNet-50 + defense", (99, 98, 99, 99, 99)),
    ("paper: LeNet, no defense", (99, 38, 2, 9, 3)),
    ("paper: LeNet + defense", (99, 98, 98, 98, 98)),
]


def l2_budget(r: Results) -> float | None:
    """The C&W L2 budget the runs used (the recipe's eval l2_eps; the largest when several)."""
    budgets = [x["eps"] for x in r.rows if x["attack"].split("(")[0] == "cw"]
    return max(budgets) if budgets else None


def _seed_dir(runs: Path, seed: int) -> Path:
    return runs / NAME / f"seed{seed}"


def steps(runs: Path) -> list[Step]:
    out = []
    for s in SEEDS:
        d = _seed_dir(runs, s)
        train = d / NAME / "train"   # where `fif eval --runs d` looks for the trained weights
        out.append(Step(("train", RECIPE, "--seed", str(s), "--out", str(train)),
                        done=str(train / "defense.safetensors"), label=f"train, seed {s}"))
        out.append(Step(("eval", RECIPE, "--seed", str(s), "--runs", str(d), "--out", str(d / "eval")),
                        done=str(d / "eval" / "results.json"), label=f"eval, seed {s}"))
    return out


def evals(runs: Path) -> list[Path]:
    return [_seed_dir(runs, s) / "eval" / "results.json" for s in SEEDS]


# ---- tables ---------------------------------------------------------------------------------------

def _table1(r: Results, threat: str) -> Table:
    l2 = l2_budget(r) or 0.0
    rows = []
    for name, label in ROWS:
        rows.append([label, r.cell(name), r.cell(name, "fgsm", MID, threat), r.cell(name, "bim", MID, threat),
                     r.cell(name, "deepfool", MID, threat), r.cell(name, "cw", l2, threat),
                     r.cell(name, "pgd", MID, threat), r.cell(name, "worst", MID, threat),
                     r.cell(name, "worst", MID, "overall")])
    if threat == "graybox":
        rows += [[label, *map(str, nums), "", "", ""] for label, nums in PAPER_TABLE1]
    header = ["model", "clean", f"FGSM {MID}", f"BIM {MID}", f"DeepFool {MID}", f"C&W L2 {l2:g}", f"PGD {MID}",
              "worst of the L-inf attacks", "**overall worst**"]
    what = {"graybox": "gray-box (the attack sees the classifier only; how the paper reports)",
            "adaptive": "adaptive (BPDA: identity gradient through the rounding; gradients through the EDSR)"}[threat]
    return Table(f"Table 1 shape: MNIST, eps = {MID}, {what}", header, rows,
                 note="Accuracy % on the first test images, mean ± spread over the seeds. `overall worst`: per "
                      "image, robust only if every L-inf attack failed under every threat model (gray-box and "
                      "adaptive), the number to trust. C&W is L2-bounded (not an eps column); DeepFool is "
                      "clipped to the eps ball. The paper's rows are ResNet-50/LeNet on full MNIST.")


def _sweep(r: Results, attack: str, threat: str, title: str) -> Table:
    rows = [[label, r.cell(name), *[r.cell(name, attack, e, threat) for e in EPS]] for name, label in ROWS]
    return Table(title, ["model", "clean", *[f"eps {e:g}" for e in EPS]], rows)


def _quality(r: Results) -> Table:
    rows = []
    for name, label in ROWS:
        if name in DEFENSES:
            rows.append([label, _mean_cell(r, name, "psnr", "{:.1f} dB"), _mean_cell(r, name, "ssim", "{:.3f}"),
                         r.cell(name)])
    return Table("Restored clean test images against the originals", ["defense", "PSNR", "SSIM", "clean accuracy %"],
                 rows, note="The paper reports no PSNR/SSIM for MNIST; it says the reconstruction restores the image "
                            "quality that compression loses.")


def _sanity(r: Results) -> Table:
    rows = []
    for name, label in ROWS:
        vals = [x["accuracy"] for x in r.rows if x.get("sanity") and x["defense"] == name and x["threat"] == "adaptive"]
        if vals:
            rows.append([label, f"{100 * sum(vals) / len(vals):.1f}"])
    return Table("Sanity: adaptive PGD with an unbounded budget (eps = 1)", ["model", "accuracy %"], rows,
                 note="A working attack ends near 0%: anything higher would mean the attack, not the defense, failed.")


def _mean_cell(r: Results, name: str, key: str, fmt: str) -> str:
    v = r.values(name, "none", 0.0, "clean", key=key)
    return fmt.format(sum(v) / len(v)) if v else "-"


def _setup(r: Results) -> Table:
    """What ran, read from the first run: the training stage from the train manifest's recipe
    text, the evaluated pipelines and attacks from the evaluation record."""
    rec = r.records[0]
    rows = [["test images", str(rec.get("n", "?"))], ["threat models", ", ".join(rec.get("threats", []))],
            ["attacks", "; ".join(f"`{a}`" for a in rec.get("attacks", []))]]
    stage = _train_section(rec)
    if stage:
        rows.insert(0, ["training (every learnable entry)", "; ".join(f"`{line}`" for line in stage)])
    sources = rec.get("sources", {})
    rows += [[f"entry `{name}`", _code_lines(sources[name])] for name, _ in ROWS if name in sources]
    return Table("Setup, as run", ["what", "setting"], rows)


def _code_lines(text: str) -> str:
    """A pipeline's text in one table cell: each line (a `let`, then the pipeline) as code."""
    return "; ".join(f"`{' '.join(line.split())}`" for line in text.strip().splitlines() if line.strip())


def _train_section(rec: dict) -> list[str]:
    """The lines of the recipe's train section, from the manifest beside the trained defense."""
    import json
    weights = rec.get("weights", {}).get("defense")
    manifest = Path(weights).parent / "manifest.json" if weights else None
    if manifest is None or not manifest.is_file():
        return []
    from ..recipe import recipe_from_text
    text = json.loads(manifest.read_text(encoding="utf-8")).get("recipe_text", "")
    recipe = recipe_from_text(text)
    section = next(e for e in recipe.program.recipes[0].entries if getattr(e, "kind", None) == "train")
    lines = text.splitlines()[section.span.line - 1:(section.span.end_line or section.span.line)]
    body = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith(("#", "train", "stage", "}"))]
    return body


def tables(r: Results) -> list[Table]:
    return [
        _setup(r),
        _table1(r, "graybox"),
        _table1(r, "adaptive"),
        _sweep(r, "fgsm", "graybox", "Fig. 6 shape: FGSM, gray-box, accuracy % against eps"),
        _sweep(r, "bim", "graybox", "Fig. 6 shape: BIM (10 steps), gray-box, accuracy % against eps"),
        _sweep(r, "pgd", "adaptive", "PGD (20 steps), adaptive (BPDA), accuracy % against eps"),
        _sweep(r, "worst", "overall", "Overall worst case (every L-inf attack, gray-box and adaptive), accuracy % "
                                      "against eps"),
        _quality(r),
        _sanity(r),
    ]


# ---- claims ---------------------------------------------------------------------------------------

def _at_least(values: dict[str, float | None], floor: float) -> Verdict:
    """HOLDS when every measured value is >= floor (fractions); the evidence lists them."""
    if any(v is None for v in values.values()):
        return Verdict(UNTESTED, "not measured: " + ", ".join(k for k, v in values.items() if v is None))
    text = ", ".join(f"{k} {_p(v)}" for k, v in values.items())
    return Verdict(HOLDS if all(v >= floor for v in values.values()) else FAILS, text)


def _clean_kept(r: Results) -> Verdict:
    base, dfn = r.acc("none"), r.acc("defense")
    return Verdict(HOLDS if dfn >= base - 0.01 else FAILS, f"{_p(base)} without, {_p(dfn)} with the defense")


# How far under its own clean accuracy a defended classifier may fall for a claim of the paper's
# "attacks no longer matter" kind to hold here. The paper's own drops are 0-2 points; at this scale
# (classifiers at 95-98% clean, not 99%) the absolute numbers cannot match, the drop can.
DROP = 0.03


def _within_clean(got: dict, what: str) -> Verdict:
    clean = got.pop("clean")
    if clean is None or any(v is None for v in got.values()):
        return Verdict(UNTESTED, "not measured")
    low = [k for k, v in got.items() if v < clean - DROP]
    text = f"clean {_p(clean)}; {what}: " + ", ".join(f"{k} {_p(v)}" for k, v in got.items())
    return Verdict(FAILS if low else HOLDS,
                   text + (f" ({', '.join(low)} more than {100 * DROP:.0f} points under clean)" if low else ""))


def _table1_row(entry: str):
    def check(r: Results) -> Verdict:
        l2 = l2_budget(r) or 0.0
        return _within_clean({
            "clean": r.acc(entry), "FGSM": r.acc(entry, "fgsm", MID, "graybox"),
            "BIM": r.acc(entry, "bim", MID, "graybox"), "DeepFool": r.acc(entry, "deepfool", MID, "graybox"),
            "C&W": r.acc(entry, "cw", l2, "graybox")}, f"gray-box at eps {MID}")
    return check


def _strong_end(r: Results) -> Verdict:
    none = {"FGSM": r.acc("none", "fgsm", 0.3, "graybox"), "BIM": r.acc("none", "bim", 0.3, "graybox")}
    v = _within_clean({"clean": r.acc("defense"), "FGSM": r.acc("defense", "fgsm", 0.3, "graybox"),
                       "BIM": r.acc("defense", "bim", 0.3, "graybox")}, "gray-box at eps 0.3")
    if v.status == UNTESTED or None in none.values():
        return v
    return Verdict(v.status, v.evidence + f" (without the defense FGSM {_p(none['FGSM'])}, BIM {_p(none['BIM'])})")


def _bitdepth_small_eps(r: Results) -> Verdict:
    clean, parts = r.acc("none"), []
    ok = True
    for atk in ("fgsm", "bim"):
        none, bd = r.acc("none", atk, 0.1, "graybox"), r.acc("bitdepth_only", atk, 0.1, "graybox")
        if None in (clean, none, bd):
            return Verdict(UNTESTED, "not measured")
        ok &= bd - none >= 0.5 * (clean - none)
        parts.append(f"{atk.upper()} 0.1: {_p(none)} -> {_p(bd)}")
    return Verdict(HOLDS if ok else FAILS, "; ".join(parts) + " (holds when half the lost accuracy comes back)")


def _bitdepth_declines(r: Results) -> Verdict:
    lo, hi = r.acc("bitdepth_only", "bim", 0.1, "graybox"), r.acc("bitdepth_only", "bim", 0.3, "graybox")
    lo_a, hi_a = r.acc("bitdepth_only", "pgd", 0.1, "adaptive"), r.acc("bitdepth_only", "pgd", 0.3, "adaptive")
    if None in (lo, hi, lo_a, hi_a):
        return Verdict(UNTESTED, "not measured")
    return Verdict(HOLDS if hi < lo - 0.02 else FAILS,
                   f"gray-box BIM {_p(lo)} at 0.1, {_p(hi)} at 0.3 (adaptive PGD {_p(lo_a)} -> {_p(hi_a)})")


def _reconstruction_quality(r: Results) -> Verdict:
    sr = r.values("defense", "none", 0.0, "clean", key="psnr")
    bd = r.values("bitdepth_only", "none", 0.0, "clean", key="psnr")
    if not sr or not bd:
        return Verdict(UNTESTED, "not measured")
    a, b = sum(sr) / len(sr), sum(bd) / len(bd)
    clean_sr, clean_bd = r.acc("defense"), r.acc("bitdepth_only")
    ok = a > b + 1.0 and clean_sr >= clean_bd - 0.005
    return Verdict(HOLDS if ok else FAILS, f"PSNR {b:.1f} dB -> {a:.1f} dB; clean accuracy {_p(clean_bd)} -> "
                                           f"{_p(clean_sr)}")


def _compression_helps(r: Results) -> Verdict:
    with_q = r.acc("defense", "worst", 0.3, "overall")
    without = r.acc("sr_only", "worst", 0.3, "overall")
    g_with, g_without = r.acc("defense", "bim", 0.3, "graybox"), r.acc("sr_only", "bim", 0.3, "graybox")
    if None in (with_q, without, g_with, g_without):
        return Verdict(UNTESTED, "not measured")
    return Verdict(HOLDS if with_q > without + 0.1 else FAILS,
                   f"overall worst at 0.3: {_p(without)} without the quantiser, {_p(with_q)} with it "
                   f"(gray-box BIM {_p(g_without)} vs {_p(g_with)})")


def _beats_adversarial_training(r: Results) -> Verdict:
    d, a = r.acc("defense", "bim", MID, "graybox"), r.acc("adv_trained", "bim", MID, "graybox")
    od, oa = r.acc("defense", "worst", MID, "overall"), r.acc("adv_trained", "worst", MID, "overall")
    if None in (d, a, od, oa):
        return Verdict(UNTESTED, "not measured")
    return Verdict(HOLDS if d > a else FAILS, f"gray-box BIM {MID}: {_p(d)} vs {_p(a)} for the PGD-trained CNN "
                                              f"(overall worst: {_p(od)} vs {_p(oa)})")


def _minimal_attacks_do_not_discriminate(r: Results) -> Verdict:
    l2 = l2_budget(r) or 0.0
    return _at_least({"bit depth alone, DeepFool": r.acc("bitdepth_only", "deepfool", MID, "graybox"),
                      "bit depth alone, C&W": r.acc("bitdepth_only", "cw", l2, "graybox"),
                      "EDSR alone, DeepFool": r.acc("sr_only", "deepfool", MID, "graybox"),
                      "EDSR alone, C&W": r.acc("sr_only", "cw", l2, "graybox")}, 0.9)


def _graybox_overstates(r: Results) -> Verdict:
    g, o = r.acc("defense", "worst", 0.3, "graybox"), r.acc("defense", "worst", 0.3, "overall")
    a = r.acc("defense", "pgd", 0.3, "adaptive")
    if None in (g, o, a):
        return Verdict(UNTESTED, "not measured")
    return Verdict(HOLDS if o < g - 0.05 else FAILS, f"eps 0.3: worst gray-box {_p(g)}, adaptive PGD {_p(a)}, "
                                                     f"overall worst {_p(o)}")


def _bits_reading(r: Results) -> Verdict:
    lv, bt = r.acc("defense", "worst", 0.3, "overall"), r.acc("bits", "worst", 0.3, "overall")
    if None in (lv, bt):
        return Verdict(UNTESTED, "not measured")
    return Verdict(HOLDS if bt < lv - 0.1 else FAILS, f"overall worst at 0.3: {_p(lv)} with 2 levels, {_p(bt)} "
                                                      f"with 2 bits (4 levels)")


def _untested(why: str):
    return lambda r: Verdict(UNTESTED, why)


CLAIMS = [
    Claim("clean", "The defense leaves clean accuracy unchanged (MNIST)", "99% -> 99% (ResNet-50)", _clean_kept),
    Claim("table1-cnn", "With the defense, gray-box FGSM, BIM, DeepFool and C&W barely lower accuracy at eps "
          "0.15 (Table 1; holds when each is within 3 points of the defended clean accuracy)",
          "99 clean; 98 / 99 / 99 / 99 (ResNet-50)", _table1_row("defense")),
    Claim("table1-lenet", "The same defense, trained against another classifier, works in front of LeNet "
          "(transferability, Table 1; within 3 points of clean)", "99 clean; 98 / 98 / 98 / 98 (LeNet)",
          _table1_row("lenet_defended")),
    Claim("strong-end", "Even at the strongest attack FGSM and BIM barely lower accuracy (Fig. 6; here eps 0.3, "
          "within 3 points of clean)", "FGSM 20 -> 97, BIM 5 -> 98 (99 clean)", _strong_end),
    Claim("bitdepth-small-eps", "Bit-depth reduction alone restores much of the accuracy under FGSM and BIM at "
          "small eps (Fig. 3)", "Fig. 3 (curves, no table)", _bitdepth_small_eps),
    Claim("bitdepth-declines", "Bit depth alone: as the attack grows, the defense declines (Fig. 3)",
          "Fig. 3 (curves)", _bitdepth_declines),
    Claim("reconstruction", "The reconstruction network restores the quality compression loses, without losing "
          "accuracy (PSNR up by > 1 dB, clean accuracy not lower)", "stated, no MNIST numbers",
          _reconstruction_quality),
    Claim("compression", "Compression is what removes the perturbation: the same network without the quantiser "
          "defends far less (spec 4.5 control; overall worst at 0.3, > 10 points)", "implied by the design",
          _compression_helps),
    Claim("vs-adv-training", "The defense beats adversarial training (Table 4, F-MNIST; here MNIST gray-box BIM "
          "at 0.15 against a PGD-trained CNN)", "87/86 vs 76/63 (BIM, F-MNIST)", _beats_adversarial_training),
    Claim("minimal-attacks", "Not the paper's claim (spec 4.5): DeepFool and C&W do not tell methods apart; even "
          "bit depth alone or EDSR alone keeps >= 90% under them", "98-99% for every method in Table 4",
          _minimal_attacks_do_not_discriminate),
    Claim("adaptive", "Not claimed by the paper, which reports gray-box only: the gray-box numbers overstate the "
          "defense (overall worst > 5 points under the gray-box worst case at eps 0.3)", "no adaptive attack",
          _graybox_overstates),
    Claim("bits", "Spec 4.1: reading k = 2 as bits (4 levels) weakens the MNIST defense a lot (> 10 points, "
          "overall worst at 0.3)", "k = 2 on MNIST, reading not stated", _bits_reading),
    Claim("fmnist-cifar", "F-MNIST (k = 4, eps 0.05) and CIFAR-10 (eps 0.005) results, Tables 2-3",
          "89/85/85/89/89 and 79/68/59/72/72 (ResNet-50)", _untested("only the shipped MNIST digits here")),
    Claim("resnet-googlenet", "ResNet-50 and GoogLeNet as classifiers", "Table 1",
          _untested("a small CNN and LeNet on CPU; ResNet-50/GoogLeNet not trained here")),
]

INTRO = """
The recipe, recipes/bitdepth_sr.fif, is the paper's method at CPU scale: the shipped MNIST digits
(4,000 to train; the first test digits to evaluate), k = 2 grey levels as in the paper's MNIST
setting, an EDSR at scale 1 (no up-sampler) trained with MSE to map bitdepth(FGSM(x, eps)) back to x
with eps drawn uniformly in [0, 0.3] per sample against the small CNN, then the unchanged
classifier. The paper trains on 60,000 digits and tests ResNet-50, LeNet and GoogLeNet on 10,000;
only its gray-box numbers exist, so they are what the claims below are checked against. The
adaptive threat attacks the whole pipeline with the rounding's gradient replaced by the identity
(BPDA) and true gradients through the EDSR; nothing in these pipelines is random, so EOT is not
needed. The setup table below is read from the runs themselves (the train manifest's recipe text
and the evaluation's record).
"""

def _discussion(r: Results) -> str:
    return discussion(r, mid=MID, l2=l2_budget(r) or 0.0)


SPEC = ReportSpec(
    name=NAME,
    title="Bit-depth reduction + EDSR reconstruction (Zhang et al., PeerJ CS 2021), reproduced on MNIST",
    paper="Zhang, Xu, Pei & Yang, Adversarial example defense based on image reconstruction, PeerJ Computer "
          "Science 2021 (shared/papers/003_647946890df9be66.txt; spec shared/RECIPES.md section 4)",
    steps=steps, evals=evals, tables=tables, claims=CLAIMS, intro=INTRO, discussion=_discussion)
