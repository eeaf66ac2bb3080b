"""Progress bars for every long loop (rich), quiet when FIF_QUIET=1, when output is not a terminal,
and in every torchrun process but rank 0 (one bar per run).

    for batch in track(loader, "epoch 1/3", total=len(loader)): ...
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")

console = Console(stderr=True)


def enabled() -> bool:
    return (os.environ.get("FIF_QUIET", "") != "1" and os.environ.get("RANK", "0") == "0"
            and sys.stderr.isatty())


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[status]}"),
                    console=console, transient=True, disable=not enabled())


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar."""
    with _progress() as bar:
        task = bar.add_task(description, total=total if total is not None else _len(items), status="")
        for item in items:
            yield item
            bar.advance(task)


@contextmanager
def bar(description: str, total: int):
    """A bar you advance by hand, with a status text: `with bar("train", n) as step: step(loss=0.1)`."""
    with _progress() as progress:
        task = progress.add_task(description, total=total, status="")

        def step(n: int = 1, **status):
            text = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in status.items())
            progress.update(task, advance=n, status=text)

        yield step


def _len(items):
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None
