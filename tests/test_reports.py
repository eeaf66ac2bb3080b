"""Reports are written by a command: the commands with their measured times, tables from the
runs, and each paper claim with a verdict decided by a measured number."""

import json

import pytest
from click.testing import CliRunner

import fif
from fif.cli import main
from fif.reports import FAILS, HOLDS, UNTESTED, Claim, Results, ReportSpec, Step, Table, Verdict
from fif.reports.framework import render, run_steps


def _rows(acc_none, acc_def):
    return [{"defense": "none", "attack": "none", "eps": 0.0, "threat": "clean", "accuracy": 0.98},
            {"defense": "none", "attack": "pgd(steps=10)", "eps": 0.3, "threat": "graybox", "accuracy": acc_none},
            {"defense": "defense", "attack": "pgd(steps=10)", "eps": 0.3, "threat": "graybox", "accuracy": acc_def},
            {"defense": "defense", "attack": "pgd(steps=10)", "eps": 1.0, "threat": "adaptive", "accuracy": 0.0,
             "sanity": True}]


def _spec(tmp_path):
    for seed, acc in ((0, 0.80), (1, 0.70)):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(
            {"rows": _rows(0.02, acc), "device": "cpu", "versions": {"torch": "x", "fif": "y"}, "git": "abc", "n": 100}))

    def gain(r):
        d = r.acc("defense", "pgd", 0.3, "graybox") - r.acc("none", "pgd", 0.3, "graybox")
        return Verdict(HOLDS if d > 0.3 else FAILS, f"+{100 * d:.1f} points")

    claims = [Claim("gain", "the defense lifts gray-box PGD accuracy", "+60 points", gain),
              Claim("never", "a claim about ImageNet", "79%", lambda r: Verdict(UNTESTED, "grey digits only")),
              Claim("fails", "the defense is perfect", "100%",
                    lambda r: Verdict(HOLDS if r.acc("defense", "pgd", 0.3, "graybox") > 0.99 else FAILS,
                                      f"{100 * r.acc('defense', 'pgd', 0.3, 'graybox'):.1f}%"))]
    return ReportSpec(
        name="demo", title="Demo report", paper="Someone et al. 2020",
        steps=lambda runs: [Step(("compile", "-e", "id"), done=str(runs / "never-made"))],
        evals=lambda runs: [tmp_path / "seed0" / "results.json", tmp_path / "seed1" / "results.json"],
        tables=lambda r: [Table("PGD", ["defense", "eps 0.3"], [[d, r.cell(d, "pgd", 0.3, "graybox")]
                                                                 for d in ("none", "defense")])],
        claims=claims)


def test_results_merge_runs_into_mean_and_spread(tmp_path):
    spec = _spec(tmp_path)
    r = Results.load(spec.evals(tmp_path))
    assert r.runs == 2
    assert r.acc("defense", "pgd", 0.3, "graybox") == pytest.approx(0.75)
    assert r.cell("defense", "pgd", 0.3, "graybox") == "75.0 ± 5.0"
    assert r.acc("defense", "pgd", 1.0, "adaptive") is None      # sanity rows are not results
    assert r.cell("defense", "fgsm", 0.3, "graybox") == "-"


def test_render_lists_commands_with_times_tables_and_verdicts(tmp_path):
    spec = _spec(tmp_path)
    steps = run_steps(spec, tmp_path, echo=lambda s: None)
    assert steps[0]["command"] == "fif compile -e id" and steps[0]["seconds"] >= 0
    md = render(spec, tmp_path, "fif report demo")
    assert "fif compile -e id    # " in md and " s" in md
    assert "| none | 2.0 ± 0.0 |" in md and "| defense | 75.0 ± 5.0 |" in md
    assert "| the defense lifts gray-box PGD accuracy | +60 points | +73.0 points | **holds** |" in md
    assert "**not tested here**" in md and "**does not hold**" in md
    assert "1 hold, 1 do not hold, 1 not tested here (2 evaluation run(s) merged" in md


def test_a_resumed_training_says_its_time_counts_only_the_last_part(tmp_path):
    out = tmp_path / "train"
    out.mkdir()
    spec = _spec(tmp_path)
    spec.steps = lambda runs: [Step(("train", "r.fif", "--out", str(out)), done=str(out / "w.safetensors"))]
    assert "from a checkpoint" not in render(spec, tmp_path, "fif report demo")   # no manifest yet
    (out / "manifest.json").write_text(json.dumps({"started": "T0", "finished": "T1", "resumes": [{"at": "T"}]}))
    md = render(spec, tmp_path, "fif report demo")
    assert "# time not recorded; resumed 1x from a checkpoint" in md and "from T0 to T1" in md


def test_discussion_follows_the_claims_and_reads_the_numbers(tmp_path):
    spec = _spec(tmp_path)
    spec.discussion = lambda r: f"The defense kept {100 * r.acc('defense', 'pgd', 0.3, 'graybox'):.0f}%."
    md = render(spec, tmp_path, "fif report demo")
    assert md.index("## The paper's claims") < md.index("## Why, as far as we can tell") < md.index("kept 75%.")


def test_missing_results_is_a_positioned_error(tmp_path):
    spec = _spec(tmp_path)
    spec.evals = lambda runs: [tmp_path / "nowhere" / "results.json"]
    with pytest.raises(fif.FifError) as e:
        render(spec, tmp_path, "fif report demo")
    assert e.value.code == "E430"


def test_unknown_report_is_E432_with_the_list():
    result = CliRunner().invoke(main, ["report", "acn"])
    assert result.exit_code == 1 and "error[E432]" in result.output


def test_warnings_the_evaluations_raised_are_shown_before_the_tables_once(tmp_path):
    spec = _spec(tmp_path)
    for seed in (0, 1):  # both runs raise the same warning; it is listed once
        path = tmp_path / f"seed{seed}" / "results.json"
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "warnings": ["defense: clean accuracy 9.5% is at chance"]}))
    md = render(spec, tmp_path, "fif report demo")
    assert md.count("- defense: clean accuracy 9.5% is at chance") == 1
    assert md.index("### Warnings from the evaluations") < md.index("| none | 2.0 ± 0.0 |")
