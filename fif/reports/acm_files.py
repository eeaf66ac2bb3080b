"""What the ACM report measures from the runs' files rather than from `fif eval`: the training logs
(steps, final L1, seconds) beside the clean accuracy and PSNR the evaluations measured, and the
histogram of the post-tanh codes of every trained net (the paper's Figure 9).

    tables = diagnostics(Path("runs"), results)
"""

from __future__ import annotations

import json
from pathlib import Path

from .acm_setup import ABLATION, KNOBS, SEEDS, seed_dir
from .framework import Results, Table

# The codes' histogram bins (edges of tanh values) and what counts as "near +-1".
EDGES = (-1.0, -0.9, -0.5, 0.0, 0.5, 0.9, 1.0)
NEAR = 0.9
N_IMAGES = 100


def _train_log(folder: Path) -> dict[str, dict]:
    """{target: {steps, loss (mean of the last epoch), seconds}} from a run's log.jsonl."""
    out: dict[str, dict] = {}
    path = folder / "log.jsonl"
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        t = out.setdefault(r["target"], {"steps": 0, "seconds": 0.0, "epochs": {}})
        t["steps"] += 1
        t["seconds"] += r["seconds"]
        t["epochs"].setdefault(r["epoch"], []).append(r["loss"])
    for t in out.values():
        last = t["epochs"][max(t["epochs"])]
        t["loss"] = sum(last) / len(last)
    return out


def _fmt(values: list[float], spec: str) -> str:
    return " / ".join(format(v, spec) for v in values) if values else "-"


def _training(runs: Path, res: Results) -> Table:
    groups = {"acm": res.group("ablation"), "acm400": res.group("small"), "acm_knobs": res.group("knobs")}
    names = {"acm": [n for n, _ in ABLATION], "acm400": ["defense"],
             "acm_knobs": [n for n, _ in KNOBS]}
    rows = []
    for recipe, targets in names.items():
        logs = [(s, _train_log(seed_dir(runs, s) / recipe / "train")) for s in SEEDS]
        logs = [(s, log) for s, log in logs if log]
        for name in targets:
            got = [log[name] for _, log in logs if name in log]
            r = groups[recipe]
            rows.append([f"{recipe}: {name}", _fmt([g["steps"] for g in got], "d"), _fmt([g["loss"] for g in got], ".4f"),
                         _fmt([g["seconds"] for g in got], ".0f"), r.cell(name),
                         _fmt([v for v in r.values(name, "none", 0.0, "clean", "psnr")], ".1f")])
    none = res.group("main").cell("none")
    return Table("Training and clean reconstruction (one value per seed, seed 0 first)",
                 ["recipe: variant", "steps", "final L1", "training s", "benign acc %", "PSNR dB"], rows,
                 note=f"The classifier alone: {none}% benign accuracy. final L1 is the mean loss of the last epoch; "
                      "training s is the optimizer steps' time (wall clock, on a shared machine). The paper trains "
                      "4x10^5 steps or more; these runs are far shorter, so the PSNR of ACM(x) against x is the "
                      "check that the codes carry the image.")


def code_stats(pipeline, x) -> tuple[list[float], float, float]:
    """(shares of the post-tanh code values, all high bands, no noise, in the EDGES bins; PSNR of
    the net's output; PSNR when every code is replaced by random signs): if the second PSNR is
    not much lower, the codes carry nothing and the net works from LL alone."""
    import torch
    from ..evaluate.metrics import psnr
    blocks = [m for m in pipeline.modules() if type(m).__name__ == "ChannelCompress"]
    codes = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: codes.append(torch.tanh(mod.compress(inp[0])).flatten()))
             for m in blocks]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        pipeline.eval()
        try:
            true = float(psnr(pipeline(x, generator=g), x).mean())
        finally:
            for h in hooks:
                h.remove()
        for m in blocks:  # an instance attribute shadows the method until deleted
            m.encode = lambda z, ctx=None, m=m: torch.sign(torch.randn(m.compress(z).shape, generator=g))
        try:
            scrambled = float(psnr(pipeline(x, generator=g), x).mean())
        finally:
            for m in blocks:
                del m.encode
    if not codes:
        return [], true, scrambled
    c = torch.cat(codes)
    edges = torch.tensor(EDGES)
    idx = torch.bucketize(c, edges[1:-1], right=True)
    return (torch.bincount(idx, minlength=len(EDGES) - 1).float() / c.numel()).tolist(), true, scrambled


def _codes(runs: Path, res: Results) -> Table:
    from ..loading import load
    from ..recipe import load_recipe
    from ..runtime import recipe_data
    try:
        _, test = recipe_data(load_recipe("recipes/acm.fif"))
        x = test.images[:N_IMAGES]
    except Exception as e:  # noqa: BLE001  (the table says why it is empty)
        return Table("Post-tanh codes", ["net"], [[f"not measured: {e}"]])
    nets = [(f"acm: defense (sigma 20), seed {s}", seed_dir(runs, s) / "acm/train/defense.safetensors") for s in SEEDS]
    nets += [(f"acm400: defense, seed {s}", seed_dir(runs, s) / "acm400/train/defense.safetensors") for s in SEEDS]
    nets += [(f"acm_knobs: {n} ({k})", seed_dir(runs, 0) / f"acm_knobs/train/{n}.safetensors") for n, k in KNOBS]
    rows, near = [], {}
    for label, path in nets:
        if not path.is_file():
            continue
        shares, true, scrambled = code_stats(load(path), x)
        near[label] = shares[0] + shares[-1]
        rows.append([label] + [f"{100 * v:.1f}" for v in shares] + [f"{100 * near[label]:.1f}", f"{true:.1f}",
                                                                    f"{scrambled:.1f}"])
    res.extra["codes_near"] = near
    bins = [f"[{a:g}, {b:g})" for a, b in zip(EDGES[:-2], EDGES[1:-1])] + [f"[{EDGES[-2]:g}, 1]"]
    return Table(f"Post-tanh codes of the high bands (the paper's Figure 9), % of values, {len(x)} test images",
                 ["net"] + bins + [f"near ±1 (|code| >= {NEAR:g})", "PSNR dB", "PSNR, random codes"], rows,
                 note="tanh of the code before any noise or sign; the paper: with noise most values sit near -1 or 1, "
                      "without they spread over (-1, 1). The last column replaces every code by random signs: the "
                      "drop from the PSNR before it is what the high bands' codes carry.")


def diagnostics(runs: Path, res: Results) -> list[Table]:
    return [_training(runs, res), _codes(runs, res)]
