"""Keeps benchmarks/ from rotting: the harness imports and one comparison runs once at a tiny size.
No timing is asserted (DESIGN section 7: speed is measured by benchmarks/run.py, side by side)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_harness_runs_one_tiny_comparison():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.comparisons import COMPARISONS, load
        from benchmarks.harness import Config, Summary, machine, text_table
        from benchmarks.run import results_markdown, run_comparisons
    finally:
        sys.path.remove(str(ROOT))
    assert {"dwt", "jpeg", "defenses", "memory", "pgd", "eval", "eot", "startup", "compile"} <= set(COMPARISONS)
    for name in COMPARISONS:
        module = load(name)
        assert module.TITLE and module.NOTE and callable(module.run)
    rows, notes = run_comparisons(["dwt"], Config.make(tiny=True), echo=lambda *a: None)
    assert rows and "(failed)" not in {r.case for r in rows}
    errors = [r for r in rows if r.unit == "max err"]
    assert errors and all(r.fif is not None and r.met for r in errors)   # coefficients within 1e-5 of pywt
    assert any(r.unit == "fwd ms" and r.other == "pywt" and r.fif > 0 for r in rows)
    summary = Summary("python benchmarks/run.py --only dwt", machine(), {"PyWavelets": "x"}, rows, notes, 1.0, "0, 0, 0")
    assert "dwt" in text_table(rows)
    text = results_markdown(summary, quick=True)
    assert text.startswith("# fif against") and "Quick run" in text and "| dwt |" in text


def test_the_startup_child_separates_the_garbage_collection_and_the_weight_draws():
    import json
    import subprocess
    out = subprocess.run([sys.executable, "-m", "benchmarks.comparisons.startup", "tiny"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["weights"] > 0 and got["draw"] > 0
    assert got["gc_full_n"] >= 0 and 0 <= got["gc_full"] <= got["cold"]
    assert got["load"] <= got["cold"]


def test_each_twin_computes_what_fif_compiles_and_differentiates_it_the_same():
    """benchmarks/comparisons/twins.py: every recipe's hand-written defense, fif's weights copied in,
    gives fif's output and fif's attack-view input gradient (BPDA included) on the same draws."""
    import torch

    import fif
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.comparisons import RECIPES
        from benchmarks.comparisons.twins import make_twin
    finally:
        sys.path.remove(str(ROOT))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 28, 28, generator=gen)
    g = torch.randn(x.shape, generator=gen)
    for recipe in RECIPES:
        pipeline = fif.load_recipe(ROOT / "recipes" / f"{recipe}.fif").compile().eval()
        twin = make_twin(recipe, pipeline).eval()
        outs, grads = [], []
        for forward, attack in ((pipeline, pipeline.attack_view()), (twin, twin.attack)):
            torch.manual_seed(1)
            with torch.no_grad():
                outs.append(forward(x))
            xi = x.clone().requires_grad_(True)
            torch.manual_seed(1)
            grads.append(torch.autograd.grad((attack(xi) * g).sum(), xi)[0])
        assert (outs[0] - outs[1]).abs().max() <= 1e-5, recipe
        torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4, msg=lambda m: f"{recipe}: {m}")
