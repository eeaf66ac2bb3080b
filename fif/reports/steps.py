"""Running a report's commands: each in a fresh process, finished ones skipped, times recorded, and
independent ones side by side (`--jobs`, or several `fif report NAME --run` sharing one runs folder).

    fif report dir --run --jobs 2      # seed 0 and seed 1 train and evaluate at the same time

A step may start once the steps it needs are finished (`Step.needs`: the files they leave; by
default every earlier step, so a spec that says nothing runs in order). A running step holds a lock
file (`<runs>/<report>/locks/`), so a second process takes other steps, and a lock whose process has
died is taken over. An interrupted `fif train` step continues from its checkpoint (`--resume`).
`<runs>/<report>/steps.json` records each command's wall and CPU seconds.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

POLL_SECONDS = 5.0
TRAIN_CHECKPOINT = "checkpoint.safetensors"   # fif.train.run.CHECKPOINT, named here without importing torch


def run_steps(spec, runs: Path, *, force: bool = False, jobs: int = 1, echo=print,
              poll: float = POLL_SECONDS) -> list[dict]:
    """Run the spec's unfinished commands, up to `jobs` at once, and return each with its times."""
    from ..errors import error
    runs = Path(runs)
    steps = spec.steps(runs)
    folder = runs / spec.name
    record = folder / "steps.json"
    maker = {s.done: i for i, s in enumerate(steps)}
    needs = [[maker.get(d, d) for d in (s.needs if s.needs is not None else [p.done for p in steps[:i]])]
             for i, s in enumerate(steps)]
    ran, running, failed = set(), set(), []
    state = threading.Lock()

    def finished(i: int, recorded: dict) -> bool:
        if i in ran:
            return True
        return not force and Path(steps[i].done).exists() and steps[i].command in recorded

    def ready(i: int, recorded: dict) -> bool:
        return all(finished(d, recorded) if isinstance(d, int) else Path(d).exists() for d in needs[i])

    def worker():
        while True:
            with state:
                if failed:
                    return
                recorded = _read(record)
                pending = [i for i in range(len(steps)) if not finished(i, recorded) and i not in running]
                if not pending:
                    return
                take = next((i for i in pending if ready(i, recorded) and _lock(folder, steps[i])), None)
                if take is None:
                    waiting = running or any(_held(folder, steps[i]) for i in pending)
                    if not waiting:
                        missing = [d for d in needs[pending[0]] if isinstance(d, str) and not Path(d).exists()]
                        failed.append(error("E431", f"the report's command {steps[pending[0]].command} needs "
                                            f"{', '.join(missing) or 'a step that cannot finish'}, which no step makes",
                                            hint="a report spec bug: give the step the `needs` its steps make"))
                        return
                else:
                    running.add(take)
                    echo(f"running: {steps[take].command}")
            if take is None:
                time.sleep(poll)
                continue
            try:
                took = _run(steps[take])
            except Exception as exc:  # noqa: BLE001 - handed to the caller after the other workers stop
                with state:
                    failed.append(exc)
                return
            finally:
                _unlock(folder, steps[take])
            with state:
                _record(record, steps[take].command, took)
                ran.add(take)
                running.discard(take)

    recorded = _read(record)
    for i, s in enumerate(steps):
        if finished(i, recorded):
            echo(f"done already: {s.command}")
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    recorded = _read(record)
    return [{"command": s.command, **recorded.get(s.command, {})} for s in steps]


def resumed_args(args: tuple[str, ...]) -> tuple[str, ...]:
    """A `fif train ... --out DIR` that left a checkpoint in DIR (it was interrupted) continues from it."""
    if args[:1] == ("train",) and "--out" in args and "--resume" not in args:
        out = Path(args[args.index("--out") + 1])
        if (out / TRAIN_CHECKPOINT).is_file():
            return (*args, "--resume")
    return args


def _run(step) -> dict:
    """Run one step's command and measure it: wall seconds and the CPU seconds of its process tree."""
    from ..errors import error
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "fif", *resumed_args(step.args)])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise error("E431", f"the report's command failed (exit {proc.returncode}): {step.command}",
                    hint="fix what it printed above, then rerun fif report --run (finished steps are kept)")
    return {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _lock_path(folder: Path, step) -> Path:
    return folder / "locks" / (hashlib.sha1(step.command.encode()).hexdigest()[:16] + ".lock")


def _lock(folder: Path, step) -> bool:
    """Take the step's lock; False when a live process holds it. A dead holder's lock is taken over."""
    path = _lock_path(folder, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _held(folder, step):
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": step.command}, f)
        return True
    return False


def _held(folder: Path, step) -> bool:
    """Whether a live process holds the step's lock (a lock from another host counts as live)."""
    try:
        holder = json.loads(_lock_path(folder, step).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlock(folder: Path, step) -> None:
    _lock_path(folder, step).unlink(missing_ok=True)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        return {}


@contextmanager
def _exclusive(path: Path):
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _record(path: Path, command: str, took: dict) -> None:
    """Add one command's times to steps.json; other processes may write it too, so merge under a lock."""
    from ..models import atomic_write_json
    with _exclusive(path):
        steps = _read(path)
        steps[command] = took
        atomic_write_json(path, steps)
