"""The pieces every comparison shares: settings, interleaved timing, result rows, the machine, tables.

    times = interleaved({"fif": run_fif, "ptwt": run_ptwt}, cfg)     # {"fif": median s, ...}
    yield Row("dwt", "haar L1 64x32x32x32", "fwd ms", times["fif"] * 1e3, "ptwt", times["ptwt"] * 1e3)

Timing: every contender runs `warmup` times, then `repeats` rounds in which each contender runs once,
the order reversed every other round, so a burst of load from other processes hits all sides alike;
the median of each side's times is reported. Ratios are fif / other: below 1 means fif is faster.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]   # the repository: fif is imported from here


@dataclass
class Config:
    """quick: fewer sizes and repeats; tiny: the smallest sizes, for the test that keeps the harness
    from rotting (numbers meaningless)."""

    quick: bool = False
    repeats: int = 7
    warmup: int = 2
    tiny: bool = False
    budget: float = 0.0      # seconds of timed rounds to aim for: short calls get more repeats
    cap: float = 0.0         # and at most about this long: long calls get fewer (but 3 or more)

    @classmethod
    def make(cls, quick: bool = False, tiny: bool = False, repeats: int | None = None) -> "Config":
        if tiny:
            return cls(quick=True, repeats=repeats or 1, warmup=0, tiny=True)
        if quick:
            return cls(quick=True, repeats=repeats or 3, warmup=1, budget=0.5, cap=20.0)
        return cls(repeats=repeats or 9, warmup=2, budget=2.0, cap=60.0)

    def pick(self, full, quick, tiny=None):
        """The setting for this run: `tiny` (default: `quick`) in the test, `quick` with --quick."""
        if self.tiny:
            return quick if tiny is None else tiny
        return quick if self.quick else full


@dataclass
class Row:
    """One measurement of fif against one other contender (or against an absolute target).

    target: ("ratio", v) means fif / other <= v; ("abs", v) means fif <= v (in `unit`);
    None: no target, the row is information."""

    comparison: str
    case: str
    unit: str
    fif: float | None
    other: str = "-"
    other_value: float | None = None
    note: str = ""
    target: tuple[str, float] | None = None

    @property
    def ratio(self) -> float | None:
        if self.fif is None or not self.other_value:
            return None
        return self.fif / self.other_value

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        kind, value = self.target
        got = self.ratio if kind == "ratio" else self.fif
        return None if got is None else got <= value

    def target_text(self) -> str:
        if self.target is None:
            return ""
        kind, value = self.target
        return f"<= {value:g}" if kind == "ratio" else f"<= {value:g} {self.unit}"


# ------------------------------------------------------------------------------------------- timing
MAX_REPEATS = 200


def interleaved(contenders: dict[str, Callable[[], object]], cfg: Config,
                repeats: int | None = None) -> dict[str, float]:
    """Median seconds per call of each contender, run in alternating order (module docstring).
    At least `repeats` rounds, more (up to MAX_REPEATS) when a round is short, so that the timed
    rounds take about cfg.budget seconds: microsecond calls get a steady median too; fewer (not
    under 3) when `repeats` rounds would take more than cfg.cap seconds."""
    repeats = repeats or cfg.repeats
    names = list(contenders)
    round_time = 0.0
    for _ in range(cfg.warmup):
        t0 = time.perf_counter()
        for name in names:
            contenders[name]()
        round_time = time.perf_counter() - t0
    if cfg.budget and round_time > 0:
        repeats = max(repeats, min(MAX_REPEATS, int(cfg.budget / round_time)))
    if cfg.cap and round_time > 0:
        repeats = min(repeats, max(3, int(cfg.cap / round_time)))
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


# ------------------------------------------------------------------------------------ subprocesses
def child_env(**extra: str) -> dict[str, str]:
    """The environment for a measuring child process: fif from this repository, the parent's thread
    count, large allocations returned to the OS at once (so a resident-memory peak is the peak of
    live tensors, not of memory malloc kept from an earlier phase)."""
    import torch
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    env["MALLOC_TRIM_THRESHOLD_"] = "65536"
    env.update(extra)
    return env


def run_json(args: list[str], timeout: float = 600, **env: str) -> dict:
    """Run a child Python (`python ARGS`) that prints one JSON object on its last line."""
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                         cwd=ROOT, env=child_env(**env))
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({out.returncode}): {out.stderr.strip()[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# Resident-memory peaks (Linux): the high-water mark is reset, the current size read, the work run,
# and the new high-water mark read; the difference is what the work needed on top of what was live.
def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_peak_mb(work: Callable[[], object]) -> float:
    """Peak resident memory (MB) that `work` adds over what is resident when it starts. Needs Linux
    (/proc/self/clear_refs resets VmHWM); call it in a fresh child process (child_env)."""
    import gc
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kb("VmRSS")
    work()
    return (_status_kb("VmHWM") - base) / 1024


# -------------------------------------------------------------------------------------- the machine
def machine() -> dict[str, str]:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return {"cpu": cpu, "cores": f"{os.cpu_count()} ({usable} usable)", "load": load,
            "python": platform.python_version(), "torch": torch.__version__,
            "threads": str(torch.get_num_threads()), "system": f"{platform.system()} {platform.release()}",
            "commit": _git("rev-parse", "--short", "HEAD") + (" (uncommitted changes)" if _git("status", "--porcelain", "--", "fif", "benchmarks") else "")}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of the peer libraries ('not installed' for the missing ones)."""
    from importlib import metadata
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# ------------------------------------------------------------------------------------------ tables
HEADER = ("comparison", "case", "unit", "fif", "other", "other value", "fif/other", "target", "met?", "note")


def cells(row: Row) -> list[str]:
    met = {True: "yes", False: "NO", None: ""}[row.met]
    return [row.comparison, row.case, row.unit, fmt(row.fif), row.other, fmt(row.other_value),
            fmt(row.ratio, 3), row.target_text(), met, row.note]


def text_table(rows: list[Row]) -> str:
    table = [list(HEADER)] + [cells(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER) - 1)]
    lines = []
    for k, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
        if k == 0:
            lines.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |")
    return "\n".join(lines)


@dataclass
class Summary:
    """What the run prints and writes around the table."""

    command: str
    info: dict[str, str]
    peers: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    load_after: str = ""
