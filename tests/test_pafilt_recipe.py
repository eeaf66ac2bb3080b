"""recipes/pafilt.fif (AdvFilter / PA-Filt): it compiles, a reduced copy trains both stages and the
baselines, the variants made of the defense's lets are evaluated with its trained weights, and the
`pafilt` report turns the results into tables and verdicts."""

import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fif
from fif.cli import main
from fif.models import read_weights
from fif.reports import FAILS, HOLDS, UNTESTED, Results, get_report
from fif.reports.framework import render

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "pafilt.fif"

# The real recipe with small data, one epoch of a few steps, tiny networks and short attacks.
REDUCE = [(r"mnist5k\(train=4000, test=1000, seed=0\)", "mnist5k(train=300, test=100, seed=0)"),
          (r"epochs=5", "epochs=1"), (r"epochs = \d+", "epochs = 1"), (r"limit = 4000", "limit = 32"),
          (r"batch = 32", "batch = 16"), (r"widths=\[[^\]]*\]", "widths=[2, 4, 4, 4, 4]"),
          (r"pgd\(steps=10\)", "pgd(steps=2)"), (r"pgd\(steps=40\)", "pgd(steps=2)"), (r"n = 200", "n = 8")]


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("FIF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FIF_QUIET", "1")
    yield


def _reduced(tmp_path) -> Path:
    text = RECIPE.read_text()
    for pattern, repl in REDUCE:
        text, count = re.subn(pattern, repl, text)
        assert count, f"the recipe no longer has {pattern!r}; update REDUCE"
    path = tmp_path / "pafilt.fif"
    path.write_text(text)
    return path


def test_the_recipe_compiles_with_every_variant():
    result = CliRunner().invoke(main, ["compile", str(RECIPE)])
    assert result.exit_code == 0, result.output
    for word in ("ufuse", "kpencoder", "kpdecoder", "kpfilter", "sl_out (defense", "pafilt_adv (model"):
        assert word in result.output


def test_the_stages_train_what_the_paper_trains():
    """Stage 1 trains the Y-Net (encoder and both decoders), not the fusion; stage 2 only the fusion."""
    from fif.train.stages import declared_lets, defense_params
    recipe = fif.load_recipe(RECIPE)
    p = recipe.compile("defense", input_shape=(1, 28, 28))
    ynet, fusion = recipe.train[0], recipe.train[1]
    ids = lambda ps: {id(q) for q in ps}  # noqa: E731
    lets = declared_lets(recipe)
    fusion_weights = ids(p.shared["pafilt"].parameters())
    ynet_weights = set().union(*(ids(p.shared[name].parameters()) for name in ("enc", "sl", "m")))
    assert ids(defense_params(p, ynet, lets)[0]) == ynet_weights
    assert ids(defense_params(p, fusion, lets)[0]) == fusion_weights
    assert [t.args.get("min_eps", 0.0) for t in ynet.loss] == [0.0, 0.1]
    assert fusion.loss[0].name == "ce" and fusion.loss[0].args["target"] == "clean_pred"
    sl_only = recipe.compile("sl_out", input_shape=(1, 28, 28))
    assert defense_params(sl_only, ynet, lets)[1] is not None   # skipped: its loss names m


def test_a_reduced_copy_trains_evaluates_and_reports(tmp_path):
    from fif.evaluate import run_eval, write_report
    from fif.evaluate.runner import prepare
    from fif.train import run_training
    recipe = fif.load_recipe(_reduced(tmp_path))
    runs = tmp_path / "runs"
    s = run_training(recipe, out=runs / "pafilt" / "train", seed=0)
    assert [(d["target"], d["stage"]) for d in s["stages"]] == [
        ("defense", "ynet"), ("defense", "fusion"), ("filt_img", "filt_img"), ("filt_sem", "filt_sem"),
        ("filt_large", "filt_large"), ("add_img", "add_img"), ("add_sem", "add_sem")]
    assert s["untrained"] == ["sl_out", "m_out"]
    log = [json.loads(line) for line in (runs / "pafilt" / "train" / "log.jsonl").read_text().splitlines()]
    assert set(log[0]["terms"]) == {"l1(sl)", "l1(m, min_eps=0.1)"}
    tensors, _ = read_weights(runs / "pafilt" / "train" / "defense.safetensors")
    defense = recipe.compile("defense", input_shape=(1, 28, 28))
    assert len([k for k in tensors if k.startswith("shared.enc.")]) == len(list(defense.shared["enc"].parameters()))
    assert len(tensors) == len(list(defense.parameters()))   # the encoder is stored once

    setup = prepare(recipe, n=8, threats=["graybox"], runs=runs)
    trained = setup.entries["defense"].defense.shared
    for name in ("sl_out", "m_out", "pafilt_adv"):
        entry = setup.entries[name]
        pipeline = entry.defense if entry.defense is not None else entry.model
        for let in ("enc", "sl" if name != "m_out" else "m"):
            for a, b in zip(pipeline.shared[let].state_dict().values(), trained[let].state_dict().values()):
                assert torch.equal(a, b), (name, let)
    assert "defense.safetensors (let sl, enc)" in setup.weights["sl_out"]

    results = run_eval(recipe, eps=[0.1], threats=["graybox", "transfer"], runs=runs)
    rows = [r for r in results["rows"]
            if r["defense"] == "defense" and r["threat"] == "graybox" and r["attack"] != "worst"]
    assert rows and {"psnr", "ssim"} <= set(rows[0]) and set(rows[0]["diagnostics"]) == {"U1", "U2", "W"}
    assert 0 <= rows[0]["diagnostics"]["W"] <= 1
    write_report(results, runs / "pafilt" / "eval")
    md = render(get_report("pafilt"), runs, "fif report pafilt")
    assert "### Table 4 shape" in md and "| PA-Filt (fused) |" in md and "mean W" in md
    assert "**not tested here**" in md   # only eps 0.1 was run


def _synthetic(acc: dict) -> Results:
    rows = [{"defense": d, "attack": "pgd(steps=40)" if e else "none", "eps": e, "threat": "graybox" if e else "clean",
             "accuracy": a} for (d, e), a in acc.items()]
    return Results([{"rows": rows}])


def test_claim_checks_decide_by_the_numbers():
    claims = {c.id: c for c in get_report("pafilt").claims}
    eps = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3)
    acc = {(d, e): 0.5 for d in ("filt_img", "add_img", "filt_sem", "add_sem", "defense", "m_out") for e in eps}
    acc.update({("filt_img", e): 0.6 for e in eps[:4]})
    acc.update({("filt_sem", e): 0.6 for e in eps})
    assert claims["filt-beats-add"].check(_synthetic(acc)).status == HOLDS
    acc.update({("filt_img", e): 0.4 for e in eps[:4]})
    assert claims["filt-beats-add"].check(_synthetic(acc)).status == FAILS
    acc.update({("m_out", 0.05): 0.7, ("m_out", 0.1): 0.6})
    v = claims["fused-below-m"].check(_synthetic(acc))
    assert v.status == HOLDS and "eps 0.05: 50.0% vs m 70.0%" in v.evidence
    assert claims["filt-adv"].check(_synthetic(acc)).status == UNTESTED
