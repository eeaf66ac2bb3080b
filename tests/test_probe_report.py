"""The probe report (fif.reports.probe): its command is a valid `fif eval`, every probe compiles on
the perturbation of a digit, and each claim's verdict follows from the numbers it is given."""

from pathlib import Path

import pytest
import torch

import fif
from fif.cli import main
from fif.reports import FAILS, HOLDS, UNTESTED, Results, get_report
from fif.reports import probe_numbers as pn

ROOT = Path(__file__).resolve().parents[1]
SPEC = get_report("probe")


def _probes(step):
    return [step.args[i + 1] for i, a in enumerate(step.args) if a == "--probe"]


def test_the_command_evaluates_the_shipped_recipe_with_every_probe(tmp_path):
    (step,) = SPEC.steps(tmp_path)
    assert step.args[:2] == ("eval", pn.RECIPE) and step.done == str(tmp_path / "probe" / "eval" / "results.json")
    assert _probes(step) == pn.PROBES and len(pn.PROBES) == 12
    recipe = fif.load_recipe(str(ROOT / pn.RECIPE))
    assert recipe.eval.threat == ["graybox"] and {a.name for a in recipe.eval.attacks} == {"fgsm", "pgd"}
    ctx = main.commands["eval"].make_context("eval", list(step.args[1:]))   # the options parse
    assert list(ctx.params["probes"]) == pn.PROBES


@pytest.mark.parametrize("probe", pn.PROBES)
def test_each_probe_compiles_on_features_and_names_its_rows(probe):
    p = fif.compile(probe, input_shape=(1, 28, 28), kind="features", name="<probe>").eval()
    assert "probe: " + p.source.strip() == pn.label(probe)          # the rows the tables look up
    eta = torch.rand(3, 1, 28, 28) - 0.5                              # a perturbation has both signs
    with torch.no_grad():
        out = p(eta, generator=torch.Generator().manual_seed(0))
    assert out.shape == eta.shape
    kept = out != 0
    assert torch.equal(out[kept], eta[kept]) or probe.startswith("dwt")   # spatial probes only zero pixels


def test_removing_the_detail_bands_keeps_the_block_means():
    p = fif.compile(pn.bands(("LH", "HL", "HH")), input_shape=(1, 28, 28), kind="features")
    eta = torch.rand(2, 1, 28, 28)
    means = torch.nn.functional.avg_pool2d(eta, 2)
    torch.testing.assert_close(p(eta), means.repeat_interleave(2, 2).repeat_interleave(2, 3))


EPS = (0.1, 0.2, 0.3)


def _results(acc):
    """Results of one run from acc(defense_or_probe, attack, eps); `none` is the unremoved attack."""
    rows = [{"defense": "none", "attack": "none", "eps": 0.0, "threat": "clean", "accuracy": 0.9}]
    for attack in ("fgsm", "pgd(steps=40, step=0.01)"):
        short = attack.split("(")[0]
        for e in EPS:
            rows.append({"defense": "none", "attack": attack, "eps": e, "threat": "graybox",
                         "accuracy": acc(None, short, e)})
            rows += [{"defense": pn.label(p), "attack": attack, "eps": e, "threat": "probe",
                      "accuracy": acc(p, short, e)} for p in pn.PROBES]
    return Results([{"rows": rows, "n": 500}])


def _paper_like(probe, attack, e):
    """Attacked accuracy 2%; removal restores little, except keeping only HH (86%)."""
    if probe is None:
        return 0.02
    if probe == pn.bands(("LL", "LH", "HL")):
        return 0.86
    return 0.05 - e / 10 + (0.02 if "LL:" in probe else 0.0)


def _linear(probe, attack, e):
    """Removal shrinks the perturbation: what is left of it acts like a smaller eps."""
    left = {pn.pixels(s): 1 - s for s in pn.SHARES} | {pn.patches(s): 1 - s for s in pn.SHARES}
    scale = left.get(probe, 0.5 if probe else 1.0)
    return max(0.0, 0.9 - 3.2 * scale * e)


def _verdicts(results):
    return {c.id: c.check(results).status for c in SPEC.claims}


def test_paper_like_numbers_make_the_paper_s_claims_hold():
    v = _verdicts(_results(_paper_like))
    for claim in ("spatial-80", "spatial-50", "spatial-small-eps", "single-band", "ll-first", "keep-hh",
                  "high-only", "falls-with-eps", "patch-same"):
        assert v[claim] == HOLDS, claim
    assert v["latent-pgd"] == v["latent-fgsm"] == UNTESTED


def test_a_perturbation_that_shrinks_when_removed_breaks_the_spatial_claims():
    r = _results(_linear)
    v = _verdicts(r)
    assert v["spatial-80"] == v["spatial-50"] == FAILS and v["patch-same"] == HOLDS
    assert pn.strong(r) == [0.3] and pn.eps_list(r) == [0.3, 0.2, 0.1]
    assert pn.given_back(r, pn.pixels(0.8), "fgsm", 0.3) == pytest.approx((0.9 - 3.2 * 0.2 * 0.3 - 0.0) / 0.9)


def test_the_report_renders_from_numbers_alone(tmp_path):
    import json
    out = tmp_path / "probe" / "eval"
    out.mkdir(parents=True)
    r = _results(_linear)
    (out / "results.json").write_text(json.dumps({**r.records[0], "device": "cpu", "versions": {}, "git": "x"}))
    from fif.reports.framework import render
    md = render(SPEC, tmp_path, "fif report probe")
    assert md.count("| **") == len(SPEC.claims) and "## Why, as far as we can tell" in md
    assert "Frequency removal, PGD (paper Table 1)" in md and "| LL + LH + HL |" in md
