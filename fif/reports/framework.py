"""Reports under `reports/`, written by a command and never by hand.

    fif report acm --run        # runs the report's commands (skipping finished ones), then writes reports/acm.md
    fif report acm              # rewrites reports/acm.md from the runs already on disk

A report spec names its paper, the exact commands that produce its numbers (each `fif train` or
`fif eval` run, with its own output folder), the paper-shaped tables, and the paper's claims. Each
claim is checked against the measured numbers and gets a verdict, "holds", "does not hold" or "not
tested here", with the number that decides it. The report opens with the commands and how long
each took (measured when `--run` ran it, recorded in `<runs>/<report>/steps.json`). A spec may end
with a discussion written from the measured numbers (why the verdicts come out as they do).
"""

from __future__ import annotations

import json
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "not tested here"


@dataclass(frozen=True)
class Step:
    """One command of a report: `fif train ...` or `fif eval ...`. `done` is the file it leaves when
    finished (a step whose file exists is skipped by --run unless --force)."""

    args: tuple[str, ...]
    done: str
    label: str = ""

    @property
    def command(self) -> str:
        return "fif " + " ".join(shlex.quote(a) for a in self.args)


@dataclass(frozen=True)
class Verdict:
    status: str          # HOLDS, FAILS or UNTESTED
    evidence: str        # the number that decides it, or why it was not tested


@dataclass(frozen=True)
class Claim:
    """A claim of the paper, in our words; `paper` is the paper's number; `check` decides it here."""

    id: str
    statement: str
    paper: str
    check: Callable[["Results"], Verdict]


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(self.header) + " |")
        lines.append("|" + "---|" * len(self.header))
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"


@dataclass
class ReportSpec:
    name: str
    title: str
    paper: str
    steps: Callable[[Path], list[Step]]          # runs folder -> the commands
    evals: Callable[[Path], list[Path]]          # runs folder -> the results.json files to merge
    tables: Callable[["Results"], list[Table]]
    claims: list[Claim] = field(default_factory=list)
    intro: str = ""
    discussion: Callable[["Results"], str] | None = None  # after the claims: why they come out so, from the numbers


class Results:
    """The rows of several `fif eval` runs (seeds), merged: accuracies as mean and spread."""

    def __init__(self, records: list[dict]):
        self.records = records
        self.rows = [dict(r, run=i) for i, rec in enumerate(records) for r in rec["rows"]]

    @classmethod
    def load(cls, paths: list[Path]) -> "Results":
        records = []
        for p in paths:
            if not Path(p).is_file():
                from ..errors import error
                raise error("E430", f"no evaluation results at {p}", file=str(p),
                            hint="run the report's commands first: fif report NAME --run")
            records.append(json.loads(Path(p).read_text(encoding="utf-8")))
        return cls(records)

    def values(self, defense: str, attack: str, eps: float, threat: str, key: str = "accuracy") -> list[float]:
        short = attack.split("(")[0]
        out = [r[key] for r in self.rows if r["defense"] == defense and r["threat"] == threat
               and abs(r["eps"] - eps) < 1e-9 and (r["attack"] == attack or r["attack"].split("(")[0] == short)
               and key in r and not r.get("sanity")]
        return out

    def acc(self, defense: str, attack: str = "none", eps: float = 0.0, threat: str = "clean") -> float | None:
        """Mean accuracy over runs (None when not measured)."""
        v = self.values(defense, attack, eps, threat)
        return statistics.fmean(v) if v else None

    def spread(self, defense: str, attack: str = "none", eps: float = 0.0, threat: str = "clean") -> float:
        v = self.values(defense, attack, eps, threat)
        return statistics.pstdev(v) if len(v) > 1 else 0.0

    def cell(self, defense: str, attack: str = "none", eps: float = 0.0, threat: str = "clean") -> str:
        """`97.5` for one run, `97.5 ± 0.4` for several; `-` when not measured."""
        v = self.values(defense, attack, eps, threat)
        if not v:
            return "-"
        mean = 100 * statistics.fmean(v)
        return f"{mean:.1f}" if len(v) == 1 else f"{mean:.1f} ± {100 * statistics.pstdev(v):.1f}"

    @property
    def runs(self) -> int:
        return len(self.records)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def run_steps(spec: ReportSpec, runs: Path, *, force: bool = False, echo=print) -> list[dict]:
    """Run the spec's commands in fresh processes, skipping finished ones; record their times."""
    record_path = runs / spec.name / "steps.json"
    done = _read_steps(record_path)
    for step in spec.steps(runs):
        if not force and Path(step.done).exists() and step.command in done:
            echo(f"done already: {step.command}")
            continue
        echo(f"running: {step.command}")
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fif", *step.args])
        if proc.returncode != 0:
            from ..errors import error
            raise error("E431", f"the report's command failed (exit {proc.returncode}): {step.command}",
                        hint="fix what it printed above, then rerun fif report --run (finished steps are kept)")
        done[step.command] = {"seconds": round(time.perf_counter() - t0, 1), "at": _now()}
        _write_steps(record_path, done)
    return [{"command": s.command, **done.get(s.command, {})} for s in spec.steps(runs)]


def _now() -> str:
    import datetime
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _read_steps(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_steps(path: Path, steps: dict) -> None:
    from ..models import atomic_write_json
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, steps)


def render(spec: ReportSpec, runs: Path, command: str) -> str:
    """The report's Markdown: commands with times, tables, then each claim with its verdict."""
    results = Results.load(spec.evals(runs))
    steps = _read_steps(runs / spec.name / "steps.json")
    lines = [f"# {spec.title}", "", f"Paper: {spec.paper}", ""]
    lines += ["Written by `" + command + "`; do not edit by hand. The numbers come from these commands "
              "(times measured when they ran, on the machine named below):", "", "```"]
    total = 0.0
    for step in spec.steps(runs):
        took = steps.get(step.command, {}).get("seconds")
        total += took or 0.0
        lines.append(f"{step.command}" + (f"    # {took:.0f} s" if took is not None else "    # time not recorded"))
    lines += ["```", "", f"Total: {total / 60:.1f} min. " + _machine(results), ""]
    if spec.intro:
        lines += [spec.intro.strip(), ""]
    for table in spec.tables(results):
        lines.append(table.markdown())
    lines += ["## The paper's claims, checked here", "", "| claim | paper | here | verdict |", "|---|---|---|---|"]
    counts = {HOLDS: 0, FAILS: 0, UNTESTED: 0}
    for claim in spec.claims:
        v = claim.check(results)
        counts[v.status] += 1
        lines.append(f"| {claim.statement} | {claim.paper} | {v.evidence} | **{v.status}** |")
    lines += ["", f"{counts[HOLDS]} hold, {counts[FAILS]} do not hold, {counts[UNTESTED]} not tested here "
              f"({results.runs} evaluation run(s) merged; ± is the spread over runs).", ""]
    if spec.discussion is not None:
        lines += ["## Why", "", spec.discussion(results).strip(), ""]
    return "\n".join(lines)


def _machine(results: Results) -> str:
    if not results.records:
        return ""
    rec = results.records[0]
    v = rec.get("versions", {})
    return (f"Device {rec.get('device', '?')}, torch {v.get('torch', '?')}, fif {v.get('fif', '?')}, "
            f"git {str(rec.get('git'))[:10]}; {rec.get('n', '?')} test images per run.")


def write_report(spec: ReportSpec, runs: Path, out: Path, command: str) -> Path:
    from ..models import atomic_write
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, render(spec, runs, command).encode())
    return out
