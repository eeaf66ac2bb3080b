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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .steps import run_steps  # noqa: F401 - the command runner has its own module; callers import it from here

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "not tested here"


@dataclass(frozen=True)
class Step:
    """One command of a report: `fif train ...` or `fif eval ...`. `done` is the file it leaves when
    finished (a step whose file exists is skipped by --run unless --force). `needs` lets independent
    steps run side by side (reports/steps.py)."""

    args: tuple[str, ...]
    done: str
    label: str = ""
    needs: tuple[str, ...] | None = None   # the files of the steps it needs; None: every earlier step's

    @property
    def command(self) -> str:
        return "fif " + " ".join(shlex.quote(a) for a in self.args)


@dataclass(frozen=True)
class Verdict:
    status: str          # HOLDS, FAILS or UNTESTED
    evidence: str        # the number that decides it, or why it was not tested
    why: str = ""        # what we think explains it (listed under the claims table)


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
    evals: Callable[[Path], "list[Path] | dict[str, list[Path]]"]   # the results.json files to merge,
    # or named groups of them ({"main": [...], "draws": [...]}: Results.group(name); "main", when
    # there is one, is what the tables and claims see by default, else every group together)
    tables: Callable[["Results"], list[Table]]
    claims: list[Claim] = field(default_factory=list)
    intro: str = ""
    discussion: Callable[["Results"], str] | None = None   # why the verdicts came out so, from the numbers
    # runs folder, results -> tables measured from the runs' files (trained weights, logs), shown
    # before the tables; may put numbers in results.extra for the claims
    diagnostics: Callable[[Path, "Results"], list[Table]] | None = None


class Results:
    """The rows of several `fif eval` runs (seeds), merged: accuracies as mean and spread."""

    def __init__(self, records: list[dict], groups: "dict[str, Results] | None" = None):
        self.records = records
        self.extra: dict = {}  # numbers a spec's diagnostics measured, for its claims
        self.rows = [dict(r, run=i) for i, rec in enumerate(records) for r in rec["rows"]]
        self.groups = groups or {}

    def of(self, recipe: str) -> "Results":
        """The runs of one recipe (in any group), for a report that merges several recipes' evaluations."""
        every = {id(rec): rec for rec in self.records}
        for g in self.groups.values():
            every.update({id(rec): rec for rec in g.records})
        out = Results([rec for rec in every.values() if rec.get("recipe") == recipe])
        out.extra = self.extra
        return out

    def group(self, name: str) -> "Results":
        """The runs a spec's `evals` listed under `name` (evaluations of one kind, one per seed)."""
        out = self.groups.get(name) or Results([])   # a group with no runs measures nothing
        out.extra = self.extra
        return out

    @classmethod
    def load(cls, paths) -> "Results":
        """From a list of results.json files, or named groups of them (a file may be in several)."""
        if isinstance(paths, dict):
            groups = {name: cls.load(list(p)) for name, p in paths.items()}
            if "main" in groups:
                return cls(groups["main"].records, groups)
            every = [dict(rec, group=name) for name, g in groups.items() for rec in g.records]
            return cls(every, groups)
        records = []
        for p in paths:
            if not Path(p).is_file():
                from ..errors import error
                raise error("E430", f"no evaluation results at {p}", file=str(p),
                            hint="run the report's commands first: fif report NAME --run")
            records.append(json.loads(Path(p).read_text(encoding="utf-8")))
        return cls(records)

    def values(self, defense: str, attack: str, eps: float, threat: str, key: str = "accuracy") -> list[float]:
        """One value per run. `attack` is a row's exact label (`pgd(steps=100, targeted=True)`) or,
        when no row has that label, an attack name (`pgd`) matching any settings of it."""
        rows = [r for r in self.rows if r["defense"] == defense and r["threat"] == threat
                and abs(r["eps"] - eps) < 1e-9 and key in r and not r.get("sanity")]
        exact = [r[key] for r in rows if r["attack"] == attack]
        if exact:
            return exact
        short = attack.split("(")[0]
        return [r[key] for r in rows if r["attack"].split("(")[0] == short]

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


def render(spec: ReportSpec, runs: Path, command: str) -> str:
    """The report's Markdown: commands with times, tables, then each claim with its verdict."""
    results = Results.load(spec.evals(runs))
    steps = _read_steps(runs / spec.name / "steps.json")
    lines = [f"# {spec.title}", "", f"Paper: {spec.paper}", ""]
    lines += ["Written by `" + command + "`; do not edit by hand. The numbers come from these commands "
              "(times measured when they ran, on the machine named below):", "", "```"]
    total = cpu = 0.0
    for step in spec.steps(runs):
        took, used = (steps.get(step.command, {}).get(k) for k in ("seconds", "cpu_seconds"))
        total, cpu = total + (took or 0.0), cpu + (used or 0.0)
        when = "    # time not recorded" if took is None else f"    # {took:.0f} s" + (
            f" ({used:.0f} s CPU)" if used is not None else "")
        lines.append(f"{step.command}{when}{_resumed(step)}")
    lines += ["```", "", f"Total: {total / 60:.1f} min wall, {cpu / 60:.1f} min CPU. " + _machine(results), ""]
    if spec.intro:
        lines += [spec.intro.strip(), ""]
    several = len({rec.get("recipe") for rec in results.records}) > 1   # then say which recipe warned
    warnings = list(dict.fromkeys((f"{rec.get('recipe')}: " if several else "") + w
                                  for rec in results.records for w in rec.get("warnings", [])))
    if warnings:
        lines += ["### Warnings from the evaluations", "", "Read these before any table: `fif eval` raised "
                  "them about the runs below.", ""] + [f"- {w}" for w in warnings] + [""]
    tables = (spec.diagnostics(runs, results) if spec.diagnostics else []) + spec.tables(results)
    for table in tables:
        lines.append(table.markdown())
    lines += ["## The paper's claims, checked here", "", "| claim | paper | here | verdict |", "|---|---|---|---|"]
    counts = {HOLDS: 0, FAILS: 0, UNTESTED: 0}
    reasons = []
    for claim in spec.claims:
        v = claim.check(results)
        counts[v.status] += 1
        lines.append(f"| {claim.statement} | {claim.paper} | {v.evidence} | **{v.status}** |")
        if v.why:
            reasons.append(f"- **{claim.statement}** ({v.status}): {v.why}")
    lines += ["", f"{counts[HOLDS]} hold, {counts[FAILS]} do not hold, {counts[UNTESTED]} not tested here "
              f"({results.runs} evaluation run(s) merged; ± is the spread over runs).", ""]
    if reasons:
        lines += ["### Why, as far as we can tell", ""] + reasons + [""]
    if spec.discussion is not None:
        lines += ["## Why, as far as we can tell", "", spec.discussion(results).strip(), ""]
    return "\n".join(lines)


def _machine(results: Results) -> str:
    if not results.records:
        return ""
    rec = results.records[0]
    v = rec.get("versions", {})
    return (f"Device {rec.get('device', '?')}, torch {v.get('torch', '?')}, fif {v.get('fif', '?')}, "
            f"git {str(rec.get('git'))[:10]}; {rec.get('n', '?')} test images per run.")


def _resumed(step: Step) -> str:
    """For a `fif train --out DIR` that continued from a checkpoint: its time above counts only the
    last part, so say so, with the span its manifest recorded."""
    if step.args[:1] != ("train",) or "--out" not in step.args:
        return ""
    manifest = Path(step.args[step.args.index("--out") + 1]) / "manifest.json"
    try:
        m = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return ""
    if not m.get("resumes"):
        return ""
    return (f"; resumed {len(m['resumes'])}x from a checkpoint, so the time counts only the last part "
            f"(the training ran from {m.get('started', '?')} to {m.get('finished', '?')})")


def _read_steps(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_report(spec: ReportSpec, runs: Path, out: Path, command: str) -> Path:
    from ..models import atomic_write
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, render(spec, runs, command).encode())
    return out

