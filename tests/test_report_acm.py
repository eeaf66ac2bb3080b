"""`fif report acm`: its commands, and a render from made-up runs (every table and claim is
computed; verdicts follow the numbers)."""

import json
from pathlib import Path

import pytest

from fif.reports import FAILS, HOLDS, get_report
from fif.reports.acm_setup import ABLATION, EPS, FGSM, KNOBS, MIFGSM, PGD, PROBES, TARGETED, probe_label
from fif.reports.framework import render

SPEC = get_report("acm")


def test_steps_train_and_evaluate_each_seed_with_its_own_folders():
    cmds = [s.command for s in SPEC.steps(Path("runs"))]
    for seed in (0, 1):
        assert f"fif train recipes/acm.fif --seed {seed} --out runs/acm/seed{seed}/acm/train" in cmds
        assert any(c.startswith(f"fif eval recipes/acm.fif --runs runs/acm/seed{seed} --seed {seed} --only defense")
                   for c in cmds)
        assert f"fif train recipes/acm400.fif --seed {seed} --out runs/acm/seed{seed}/acm400/train" in cmds
    assert sum("acm_knobs" in c for c in cmds) == 2                       # one seed of the knobs
    assert all(Path(p).name == "results.json" for ps in SPEC.evals(Path("runs")).values() for p in ps)


def _rows(names, attacks, acc):
    rows = []
    for d in names:
        rows.append({"defense": d, "attack": "none", "eps": 0.0, "threat": "clean", "accuracy": 0.97, "psnr": 25.0})
        for e in EPS:
            for t in ("graybox", "adaptive"):
                for a in attacks:
                    rows.append({"defense": d, "attack": a, "eps": e, "threat": t, "accuracy": acc(d, a, e, t),
                                 "target_hit": 0.1, "passed": 0.5})
            for t in ("graybox", "adaptive", "overall"):
                rows.append({"defense": d, "attack": "worst", "eps": e, "threat": t, "accuracy": acc(d, "worst", e, t)})
    return rows


def _acc(d, a, e, t):
    if d == "none":
        return 0.0
    base = {"defense": 0.8, "at": 0.7, "keep_high": 0.3, "plain": 0.1}.get(d, 0.6)
    return base - (0.3 if t == "adaptive" else 0.0) - e / 10


@pytest.fixture
def made_up_runs(tmp_path):
    def write(path, recipe, seed, rows):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"recipe": recipe, "seed": seed, "n": 100, "device": "cpu", "rows": rows}))
    for s in (0, 1):
        base = tmp_path / "acm" / f"seed{s}"
        main = _rows(["none", "defense", "at"], [FGSM, MIFGSM, PGD, TARGETED], _acc)
        for p in PROBES:
            main += [{"defense": probe_label(p), "attack": a, "eps": e, "threat": "probe", "accuracy": 0.05}
                     for a in (FGSM, MIFGSM, PGD, TARGETED) for e in EPS]
        write(base / "acm/eval/results.json", "acm", s, main)
        write(base / "acm/eval_pgd/results.json", "acm", s, _rows(["none"] + [n for n, _ in ABLATION], [PGD], _acc))
        write(base / "acm400/eval/results.json", "acm400", s, _rows(["none", "defense"], [PGD], _acc))
    write(tmp_path / "acm/seed0/acm_knobs/eval/results.json", "acm_knobs", 0,
          _rows(["none"] + [n for n, _ in KNOBS], [PGD], _acc))
    return tmp_path


def test_render_has_the_paper_shaped_tables_and_a_verdict_per_claim(made_up_runs):
    md = render(SPEC, made_up_runs, "fif report acm")
    for title in ("Table 2 at MNIST scale", "Table 2 in the paper", "Full access", "Table 3 at MNIST scale",
                  "Table 3 in the paper", "knobs", "400 digits", "oracle", "Training and clean reconstruction",
                  "Post-tanh codes"):
        assert title in md, title
    assert "| ✗ | ✗ | ✗ | ✓ | keep_high | 97.0 ± 0.0 | 25.0 ± 0.0 | -50.0 ± 0.0 |" in md   # deltas from all bands
    claims = md.split("## The paper's claims, checked here")[1]
    assert claims.count("| **") == len(SPEC.claims)
    lines = {line.split(" |")[0][2:]: line for line in claims.splitlines() if line.startswith("| ")}
    assert f"**{HOLDS}**" in lines["ACM lifts gray-box PGD accuracy far above no defense"]
    assert f"**{HOLDS}**" in lines["Leaving the high bands uncompressed is worst (Table 3)"]
    assert f"**{FAILS}**" in lines["Full access (targeted PGD, random target, 100 iterations) leaves ACM about its "
                                   "gray-box accuracy"]            # 30 points lower through ACM in the made-up runs

