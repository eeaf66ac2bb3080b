"""How long `fif train recipes/dir.fif` + `fif eval recipes/dir.fif` take, estimated from a short run.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/dir_timing.py [recipes/dir.fif]     # ~3 min

Runs a copy of the recipe with the real model sizes but a few optimizer steps per stage (two
batches of its images, one epoch), one classifier epoch, and a few test images with attacks of a
few steps (the unbounded-eps sanity rows are estimated from the PGD rows); then scales each measured piece by what the real recipe does (images x epochs per stage,
classifier epochs, test images, attack steps). It reports process CPU seconds with one thread, so
a machine that other jobs keep busy still gives a fair number, and a 2-core estimate (CPU seconds
/ 1.5: what a second intra-op thread typically buys on these small tensors, an assumption).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

SPEEDUP_2_CORES = 1.5
STEPS_HERE = 4          # attack steps in the timing copy (the recipe's 20 are scaled from it)
N_HERE = 20             # test images in the timing copy


def timing_copy(text: str) -> str:
    """The recipe with two batches a stage, one epoch, one classifier epoch, fewer test images and
    attack steps; model sizes untouched."""
    def sub(pat, rep):
        nonlocal text
        text, k = re.subn(pat, rep, text)
        if not k:
            raise SystemExit(f"timing_copy: no match for {pat!r}; update benchmarks/dir_timing.py")
    sub(r"(classifier = \w+\([^\n]*?)epochs=\d+", r"\1epochs=1")
    sub(r"limit = \d+", "limit = 128")
    sub(r"(stage \w+ \{[^}]*?)epochs = \d+", r"\1epochs = 1")
    sub(r"steps=20", f"steps={STEPS_HERE}")
    sub(r"\bn = \d+", f"n = {N_HERE}")
    sub(r"(eval \{[^}]*?)batch = \d+", rf"\1batch = {N_HERE}")
    return text


def main(path: str = "recipes/dir.fif") -> None:
    from fif.evaluate.runner import run_eval
    from fif.recipe import load_recipe, recipe_from_text
    from fif.train import run_training
    torch.set_num_threads(1)
    full = load_recipe(path)
    work = Path(tempfile.mkdtemp(prefix="fif-dir-timing-"))
    os.environ.setdefault("FIF_CACHE", str(work / "cache"))
    os.environ.setdefault("FIF_QUIET", "1")
    copy = work / "dir.fif"
    copy.write_text(timing_copy(Path(path).read_text()))
    small = recipe_from_text(copy.read_text(), str(copy))

    wall, cpu = time.perf_counter(), time.process_time()
    from fif.runtime import recipe_classifier, recipe_data
    train_ds, test_ds = recipe_data(small)
    recipe_classifier(small, train_ds, test_ds)
    clf_wall = time.perf_counter() - wall
    summary = run_training(small, out=work / "runs" / small.name / "train", seed=0)
    import fif.evaluate.runner as runner
    runner._sanity = lambda setup, threats: []   # estimated below from the PGD rows it repeats
    results = run_eval(small, runs=work / "runs")
    busy = (time.process_time() - cpu) / (time.perf_counter() - wall)   # CPU share this process got

    est: dict[str, float] = {"classifier": clf_wall * full.classifier.epochs}
    stages = {s.name: s for s in full.train}
    rows = [json.loads(line) for line in (work / "runs" / small.name / "train" / "log.jsonl").read_text().splitlines()]
    for d in summary["stages"]:
        mine = [r["seconds"] for r in rows if r["stage"] == d["stage"] and r["target"] == d["target"]]
        s = stages[d["stage"]]
        images = min(s.limit or len(train_ds), len(train_ds))
        per_image = sum(mine[1:] or mine) / max(1, len(mine[1:] or mine)) / s.batch   # the first step warms up
        est[f"train {d['stage']} [{d['target']}]"] = per_image * images * s.epochs
    n_full = full.eval.n
    for r in results["rows"]:
        if r["threat"] in ("clean", "overall") or r["attack"] == "worst":
            continue
        scale = n_full / r["n"] * (1 if r.get("sanity") else 20 / STEPS_HERE)
        key = f"eval {r['threat']}"
        est[key] = est.get(key, 0.0) + r["seconds"] * scale
        if r["threat"] in ("whitebox", "adaptive") and r["attack"].startswith("pgd") and r["defense"] != "none":
            # the sanity rows: PGD with 40 steps at eps 1 on min(n, 200) images, same EOT
            est["eval sanity"] = est.get("eval sanity", 0.0) + r["seconds"] * scale * 40 / 20 * min(n_full, 200) / n_full
    total_wall = sum(est.values())
    print(f"measured on this machine with {busy:.0%} of a core on average (other jobs share it)")
    for k, v in sorted(est.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<40} {v * busy / 60:7.1f} CPU-min")
    cpu_total = total_wall * busy
    print(f"total: {cpu_total / 60:.0f} CPU-min with one thread; about {cpu_total / SPEEDUP_2_CORES / 60:.0f} min "
          f"on 2 idle cores")


if __name__ == "__main__":
    main(*sys.argv[1:])
