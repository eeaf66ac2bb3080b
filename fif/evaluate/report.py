"""Write an evaluation: results.json, results.csv, report.md (paper-shaped tables) and
accuracy_vs_eps.png, with the recipe, seed, versions and git commit recorded.

    write_report(results, Path("runs/bitdepth/eval"))
"""

from __future__ import annotations

import csv
import io
import json
import platform
import subprocess
import sys
from pathlib import Path

from ..models import atomic_write

COLUMNS = ["defense", "attack", "eps", "threat", "accuracy", "n", "seconds", "norm", "psnr", "ssim", "sanity"]


def versions() -> dict:
    import numpy
    import torch
    from .. import __version__
    return {"fif": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__}


def git_commit(where: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=where or Path.cwd())
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def write_report(results: dict, out: Path, command: str | None = None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    record = {"recipe": results["recipe"], "seed": results["seed"], "versions": versions(),
              "git": git_commit(Path(results["file"]).parent if results["file"] != "<string>" else None),
              "command": command or " ".join(sys.argv), **{k: v for k, v in results.items() if k not in ("recipe", "seed")}}
    paths = {name: out / name for name in ("results.json", "results.csv", "report.md", "accuracy_vs_eps.png")}
    atomic_write(paths["results.json"], json.dumps(record, indent=2, default=float).encode())
    atomic_write(paths["results.csv"], _csv(results["rows"]).encode())
    atomic_write(paths["report.md"], markdown(record).encode())
    _plot(results, paths["accuracy_vs_eps.png"])
    return paths


def _csv(rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS + ["attacks"], extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _pct(v) -> str:
    return f"{100 * v:.1f}"


def tables(results: dict) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per threat model: header and rows, defenses as rows, attack@eps as columns (percent)."""
    rows = [r for r in results["rows"] if not r.get("sanity")]
    clean = {r["defense"]: r["accuracy"] for r in rows if r["threat"] == "clean"}
    defenses = list(dict.fromkeys(r["defense"] for r in rows if r["threat"] not in ("probe", "overall")))
    labels = results.get("labels", {})
    threats = list(dict.fromkeys(r["threat"] for r in rows if r["threat"] not in ("clean",)))
    threats.sort(key=lambda t: t != "overall")  # the number to trust comes first
    out = {}
    for threat in threats:
        sub = [r for r in rows if r["threat"] == threat]
        cols = list(dict.fromkeys((r["attack"], r["eps"]) for r in sub))
        cols.sort(key=lambda c: (c[0] == "worst", 0))
        index = {(r["defense"], r["attack"], r["eps"]): r["accuracy"] for r in sub}
        names = [d for d in dict.fromkeys(r["defense"] for r in sub)] if threat == "probe" else defenses
        short = short_labels([a for a, _ in cols])
        header = ["defense", "clean"] + [f"{short[a]} {e:g}" for a, e in cols]
        body = []
        for d in names:
            body.append([_cell(labels.get(d, d)), _pct(clean[d]) if d in clean else "-"] +
                        [_pct(index[(d, a, e)]) if (d, a, e) in index else "-" for a, e in cols])
        out[threat] = (header, body)
    return out


def _cell(text: str, width: int = 60) -> str:
    """A table cell for a defense: its source in backticks, shortened when long."""
    head, sep, rest = text.partition(": ")
    # `variant: source`; a defense's own line may hold `: ` inside a part map (`<HH: zero>`)
    name, sep, source = (head, sep, rest) if sep and head.isidentifier() and head != "probe" else ("", "", text)
    if len(source) > width:
        source = source[: width - 3] + "..."
    source = source.replace("|", "\\|")
    return f"{name}: `{source}`" if sep else f"`{source}`"


def short_labels(labels) -> dict[str, str]:
    """`pgd(steps=40, step=0.01)` -> `pgd` for table headers, unless two labels share a name."""
    names = [label.split("(")[0] for label in labels]
    return {label: name if names.count(name) == 1 or label == name else label
            for label, name in zip(labels, names)}


def _md_table(header, body) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


_THREAT_TEXT = {
    "overall": "Overall: per image, the worst case over every L-inf attack and every threat model below "
               "(but known and representation). An attacker who can run the adaptive attack can run the "
               "others too, so this is the number to trust.",
    "graybox": "Gray-box: the attack sees the classifier(s) only, without the defense's transforms; the "
               "whole model classifies the result.",
    "whitebox": "White-box: true gradients through the defense as deployed (zero through rounding).",
    "adaptive": "Adaptive: BPDA (surrogate gradients through non-differentiable ops) + EOT over random ops. "
                "The number to trust.",
    "transfer": "Transfer: examples made on a surrogate classifier of another architecture and seed.",
    "bpda": "BPDA + EOT: the whole defense passes the identity gradient backward (the classifier's gradient "
            "at the defended image), averaged over the defense's random draws.",
    "known": "Known draws: the attacker knows the defense's random draw (its masks) and the defense uses that "
             "draw to classify (DIR Eq. 8). Not part of `overall`.",
    "representation": "Representation: the attack perturbs the restored image defense(x) within eps and the "
                      "classifier alone classifies it (DIR Eq. 9). Not part of `overall`.",
    "probe": "Probe: a pipeline applied to the perturbation only, x + P(x_adv - x), classifier alone (graybox attacks).",
}


def markdown(record: dict) -> str:
    lines = [f"# fif eval: {record['recipe']}", ""]
    lines.append(f"Recipe `{record['file']}`, {record['n']} test images, seed {record['seed']}, "
                 f"device {record['device']}, {record['seconds']:.0f} s. Accuracy in %.")
    lines.append("")
    lines.append("Defenses:")
    lines.append("")
    for k, v in record["sources"].items():
        lines.append(f"- `{k}`: `{v}`" + (f" (weights: `{record['weights'][k]}`)" if k in record["weights"] else ""))
    lines.append("")
    graybox = record.get("graybox", {})
    if graybox and any(v != "classifier" for v in graybox.values()):
        lines.append("What the gray-box attacker sees (each model's classifiers without their transforms):")
        lines.append("")
        lines += [f"- `{k}`: `{v}`" for k, v in graybox.items()]
        lines.append("")
    if record["warnings"]:
        lines.append("## Warnings: likely gradient masking")
        lines.append("")
        lines += [f"- {w}" for w in record["warnings"]]
        lines.append("")
    for threat, (header, body) in tables(record).items():
        lines.append(f"## {threat}")
        lines.append("")
        lines.append(_THREAT_TEXT.get(threat, ""))
        lines.append("")
        lines.append(_md_table(header, body))
        lines.append("")
    lines.append("Attacks: " + "; ".join(f"`{a}`" for a in record["attacks"]) + ". "
                 "`worst`: a sample counts as robust only if every L-inf attack at that eps failed on it. "
                 "L2 attacks (cw) use the l2_eps budgets.")
    lines.append("")
    sanity = [r for r in record["rows"] if r.get("sanity")]
    if sanity:
        lines.append("## Sanity: unbounded attack")
        lines.append("")
        lines.append(f"PGD at eps {sanity[0]['eps']:g} can reach any image; a defense that is not masking "
                     "gradients should fall to about 0% here.")
        lines.append("")
        lines.append(_md_table(["defense", "threat", "accuracy"],
                               [[r["defense"], r["threat"], _pct(r["accuracy"])] for r in sanity]))
        lines.append("")
    quality = [r for r in record["rows"] if "psnr" in r and r["threat"] == "clean"]
    if quality:
        lines.append("## Image quality of defended clean images")
        lines.append("")
        lines.append(_md_table(["defense", "PSNR (dB)", "SSIM"],
                               [[r["defense"], f"{r['psnr']:.2f}", f"{r['ssim']:.4f}"] for r in quality]))
        lines.append("")
    lines += _attacked_quality(record["rows"])
    lines.append("## Reproduce")
    lines.append("")
    lines.append(f"```\n{record['command']}\n```")
    lines.append("")
    lines.append(f"Versions: {', '.join(f'{k} {v}' for k, v in record['versions'].items())}; git {record['git']}.")
    return "\n".join(lines) + "\n"


def _attacked_quality(rows: list[dict]) -> list[str]:
    """PSNR / SSIM of defended attacked images against the clean ones, and the means the defense's
    ops reported (diagnostics), per defense and attack, eps and threat."""
    attacked = [r for r in rows if "psnr" in r and r["threat"] != "clean"]
    if not attacked:
        return []
    keys = list(dict.fromkeys(k for r in attacked for k in r.get("diagnostics", {})))
    lines = ["## Image quality of defended attacked images", "",
             "PSNR and SSIM against the clean image" + (f"; means of {', '.join(keys)} as the defense reported "
                                                        "them" if keys else "") + ".", ""]
    body = [[r["defense"], r["attack"], r["threat"], f"{r['eps']:g}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}"]
            + [f"{r.get('diagnostics', {})[k]:.4f}" if k in r.get("diagnostics", {}) else "-" for k in keys]
            for r in attacked]
    lines.append(_md_table(["defense", "attack", "threat", "eps", "PSNR (dB)", "SSIM", *keys], body))
    lines.append("")
    return lines


def _plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in results["rows"] if not r.get("sanity") and r["threat"] not in ("clean", "probe")]
    threats = list(dict.fromkeys(r["threat"] for r in rows))
    clean = {r["defense"]: r["accuracy"] for r in results["rows"] if r["threat"] == "clean"}
    fig, axes = plt.subplots(1, max(1, len(threats)), figsize=(4.2 * max(1, len(threats)), 3.6),
                             sharey=True, squeeze=False)
    for ax, threat in zip(axes[0], threats):
        for d in dict.fromkeys(r["defense"] for r in rows):
            pts = sorted((r["eps"], r["accuracy"]) for r in rows
                         if r["defense"] == d and r["threat"] == threat and r["attack"] == "worst")
            if not pts:
                continue
            xs = [0.0] + [p[0] for p in pts]
            ys = [clean.get(d, float("nan"))] + [p[1] for p in pts]
            ax.plot(xs, [100 * v for v in ys], marker="o", label=d)
        ax.set_title(threat)
        ax.set_xlabel("eps (L-inf)")
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy %, worst case over attacks")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"{results['recipe']}: accuracy against eps")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
