"""Reports that merge several kinds of evaluation: groups of results.json files, diagnostics
measured from a run's files, and the reason behind a verdict."""

import json

from fif.reports import HOLDS, Claim, Results, ReportSpec, Step, Table, Verdict
from fif.reports.framework import render


def _write(path, recipe, acc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"recipe": recipe, "device": "cpu", "n": 10, "rows": [
        {"defense": "defense", "attack": "pgd", "eps": 0.3, "threat": "graybox", "accuracy": acc}]}))
    return path


def test_groups_keep_evaluations_of_one_kind_together(tmp_path):
    files = {"main": [_write(tmp_path / "a/results.json", "r", 0.5), _write(tmp_path / "b/results.json", "r", 0.7)],
             "small": [_write(tmp_path / "c/results.json", "r400", 0.1)]}
    r = Results.load(files)
    assert r.runs == 2                 # "main", when there is one, is what a spec sees by default
    assert r.group("main").cell("defense", "pgd", 0.3, "graybox") == "60.0 ± 10.0"
    assert r.group("small").acc("defense", "pgd", 0.3, "graybox") == 0.1
    assert r.of("r400").runs == 1 and r.group("nothing").acc("defense", "pgd", 0.3, "graybox") is None


def test_diagnostics_tables_and_reasons_are_rendered(tmp_path):
    files = {"main": [_write(tmp_path / "a/results.json", "r", 0.5)]}

    def diagnostics(runs, results):
        results.extra["codes"] = 0.97
        return [Table("Codes", ["share"], [[f"{results.extra['codes']:.2f}"]])]

    spec = ReportSpec(
        name="demo", title="Demo", paper="P",
        steps=lambda runs: [Step(("compile", "-e", "id"), done=str(runs / "x"))],
        evals=lambda runs: files, tables=lambda r: [], diagnostics=diagnostics,
        claims=[Claim("c", "codes saturate", "most near +-1",
                      lambda r: Verdict(HOLDS, f"{r.extra['codes']:.2f}", why="the noise pushes codes out"))])
    md = render(spec, tmp_path, "fif report demo")
    assert "### Codes" in md and "| 0.97 |" in md
    assert "| codes saturate | most near +-1 | 0.97 | **holds** |" in md
    assert "- **codes saturate** (holds): the noise pushes codes out" in md


def test_steps_record_wall_and_cpu_time(tmp_path):
    from fif.reports.framework import run_steps
    files = {"main": [_write(tmp_path / "a/results.json", "r", 0.5)]}
    spec = ReportSpec(name="demo", title="Demo", paper="P",
                      steps=lambda runs: [Step(("compile", "-e", "id"), done=str(runs / "x"))],
                      evals=lambda runs: files, tables=lambda r: [])
    (step,) = run_steps(spec, tmp_path, echo=lambda s: None)
    assert step["seconds"] > 0 and step["cpu_seconds"] > 0
    md = render(spec, tmp_path, "fif report demo")
    assert "s CPU)" in md and "min wall" in md and "min CPU" in md
