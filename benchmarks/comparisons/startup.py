"""6. Parse + check + build time of each recipe, cold (a new process) and warm (the plan cached), and
the command line's startup: `fif --help` and `fif fmt --check RECIPE` (both torch-free).

    python -m benchmarks.comparisons.startup RECIPE      # the child: one JSON line
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from ..harness import ROOT, Config, Row, child_env, run_json
from . import RECIPES

TITLE = "Compile time of each recipe (cold, warm) and command-line startup"
NOTE = ("Cold: in a new process, after `import torch` (1-3 s here, torch's own, reported separately), "
        "`fif.load_recipe(path).compile()`: import fif, parse, bind, check, plan, build the defense "
        "with fresh weights. Warm: `recipe.compile()` again in that process (plan cached; the build "
        "still makes fresh weights), median of 5; `reload` is `fif.load_recipe(path).compile()` again "
        "(parse and bind again, plan cached). Startup: wall time of `python -m fif --help` and "
        "`python -m fif fmt --check recipes/NAME.fif` as subprocesses, median of the repeats, with "
        "the children's CPU time beside it (wall time on a loaded machine includes waiting for a core).")
PEERS: list[str] = []


def run(cfg: Config):
    recipes = cfg.pick(RECIPES, RECIPES, ("tiny",))
    for recipe in recipes:
        got = run_json(["-m", "benchmarks.comparisons.startup", recipe])
        yield Row("startup", f"{recipe}: cold compile", "ms", got["cold"] * 1e3,
                  note=f"import torch {got['torch']:.2f} s, not counted; first load_recipe {got['load'] * 1e3:.0f} ms; "
                       f"of the cold time, {got['gc_full'] * 1e3:.0f} ms in Python's full garbage collections "
                       f"({got['gc_full_n']}: they walk every object torch's import made)",
                  target=("abs", 300.0))
        yield Row("startup", f"{recipe}: warm compile", "ms", got["warm"] * 1e3,
                  note=f"reload + compile {got['reload'] * 1e3:.1f} ms; {got['weights']} weights, whose "
                       f"random draws alone take {got['draw'] * 1e3:.1f} ms",
                  target=("abs", 5.0))
    runs = cfg.pick(7, 5, 1)
    for args in (["--help"], ["fmt", "--check", "recipes/pafilt.fif"]):
        wall, cpu = _command(args, runs)
        yield Row("startup", "fif " + " ".join(args), "s", wall, note=f"CPU {cpu:.2f} s", target=("abs", 0.3))


def _command(args: list[str], runs: int) -> tuple[float, float]:
    import resource
    walls, cpus = [], []
    env = child_env()
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "fif", *args], capture_output=True, text=True, cwd=ROOT,
                             env=env, timeout=120)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        if out.returncode != 0:
            raise RuntimeError(f"fif {' '.join(args)} failed: {out.stderr[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def child(recipe: str) -> dict:
    import gc
    t0 = time.perf_counter()
    import torch  # (torch's import is not fif's)
    full: list[float] = []   # the full (generation-2) collections that run inside the cold phase
    started = 0.0

    def watch(phase, info):
        nonlocal started
        if info["generation"] == 2:
            if phase == "start":
                started = time.perf_counter()
            else:
                full.append(time.perf_counter() - started)
    gc.callbacks.append(watch)
    t1 = time.perf_counter()
    import fif
    path = ROOT / "recipes" / f"{recipe}.fif"
    loaded = fif.load_recipe(path)
    t2 = time.perf_counter()
    pipeline = loaded.compile()
    t3 = time.perf_counter()
    gc.callbacks.remove(watch)
    weights = sum(p.numel() for p in pipeline.parameters())
    draw = []   # the floor of a build with fresh weights: one normal draw per weight
    for _ in range(5):
        s = time.perf_counter()
        torch.empty(weights).normal_()
        draw.append(time.perf_counter() - s)
    warm, reload = [], []
    for _ in range(5):
        s = time.perf_counter()
        loaded.compile()
        warm.append(time.perf_counter() - s)
        s = time.perf_counter()
        fif.load_recipe(path).compile()
        reload.append(time.perf_counter() - s)
    return {"torch": t1 - t0, "load": t2 - t1, "cold": t3 - t1, "warm": statistics.median(warm),
            "reload": statistics.median(reload), "weights": weights, "draw": statistics.median(draw),
            "gc_full": sum(full), "gc_full_n": len(full)}


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])))
