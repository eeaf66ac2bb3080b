"""Gradient-masking checks over evaluation rows (Athalye et al. 2018; Carlini et al. 2019).

Two signs that a defense hides its gradient instead of being robust:
- whitebox accuracy far above adaptive (BPDA + EOT) accuracy for the same attack and eps;
- accuracy that does not fall towards zero when eps is unbounded (the sanity rows: PGD at eps 1,
  where any image can be reached), or that rises as eps grows.
"""

from __future__ import annotations

GAP = 0.15          # whitebox - adaptive accuracy that counts as masking
UNBOUNDED_MAX = 0.10  # accuracy allowed at eps = 1 before we call it masking
RISE = 0.05         # accuracy rising by more than this with eps


# Loss-maximising iterative attacks: more budget can only help them. (FGSM's single step and the
# minimal-norm attacks, C&W and DeepFool, may legitimately do worse at a larger eps.)
MONOTONE = ("bim", "pgd", "mifgsm", "apgd", "worst")


def masking_warnings(rows: list[dict]) -> list[str]:
    """One line per defense and sign of masking, naming the largest instance."""
    warnings = []
    index = {(r["defense"], r["attack"], r["eps"], r["threat"]): r for r in rows
             if r["attack"] not in ("none",) and r["threat"] not in ("clean", "probe")}
    gaps: dict[str, list] = {}
    for (d, a, e, t), r in index.items():
        adaptive = index.get((d, a, e, "adaptive"))
        if t == "whitebox" and d != "none" and a != "worst" and adaptive \
                and r["accuracy"] - adaptive["accuracy"] >= GAP:
            gaps.setdefault(d, []).append((r["accuracy"] - adaptive["accuracy"], a, e, r, adaptive))
    for d, found in gaps.items():
        gap, a, e, r, adaptive = max(found, key=lambda f: f[0])
        pairs = sum(1 for key in index if key[0] == d and key[3] == "whitebox" and key[1] != "worst")
        warnings.append(
            f"{d}: whitebox accuracy is far above adaptive in {len(found)} of {pairs} attack/eps pairs, "
            f"most for {a} at eps {e:g} ({r['accuracy']:.1%} against {adaptive['accuracy']:.1%}): "
            f"the defense masks its gradient; trust the adaptive numbers")
    for r in rows:
        if r.get("sanity") and r["accuracy"] > UNBOUNDED_MAX:
            warnings.append(
                f"{r['defense']}: {r['threat']} {r['attack']} with unbounded eps ({r['eps']:g}) leaves "
                f"{r['accuracy']:.1%} accuracy; a working attack reaches ~0% there, so this attack "
                f"does not get through the defense (gradient masking or a broken attack)")
    curves: dict = {}
    for (d, a, e, t), r in index.items():
        if not r.get("sanity") and t in ("whitebox", "adaptive") and a.split("(")[0] in MONOTONE:
            curves.setdefault((d, a, t), []).append((e, r["accuracy"]))
    for (d, a, t), pts in sorted(curves.items()):
        pts.sort()
        for (e0, acc0), (e1, acc1) in zip(pts, pts[1:]):
            if acc1 > acc0 + RISE:
                warnings.append(f"{d}: {t} {a} accuracy rises from {acc0:.1%} at eps {e0:g} to {acc1:.1%} "
                                f"at eps {e1:g}; a stronger attack should never do worse")
                break
    return warnings
