"""`fif report NAME`: write reports/NAME.md from the runs its commands made (`--run` makes them).

    fif report acm --run
    fif report dir --run --jobs 2      # independent commands side by side
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ..cli_support import fail_cleanly


@click.command("report")
@click.argument("name", required=False)
@click.option("--run", "run_", is_flag=True, help="Run the report's commands first (finished ones are skipped).")
@click.option("--force", is_flag=True, help="With --run: rerun finished commands too.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="With --run: how many commands may run at once (those that do not need each other).")
@click.option("--runs", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where the runs are (and go).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Report file (default reports/NAME.md).")
@click.option("--list", "list_", is_flag=True, help="List the reports fif can write.")
@fail_cleanly
def report_cmd(name, run_, force, jobs, runs, out, list_):
    """Write the paper report NAME (its commands, tables and the paper's claims checked)."""
    from . import REPORTS, get_report
    from .framework import run_steps, write_report
    if list_ or name is None:
        for key in sorted(REPORTS):
            spec = get_report(key)
            click.echo(f"{key:<14} {spec.title}")
        return
    spec = get_report(name)
    runs_path = Path(runs)
    if run_:
        run_steps(spec, runs_path, force=force, jobs=jobs, echo=lambda s: click.echo(s, err=True))
    target = Path(out) if out else Path("reports") / f"{name}.md"
    command = "fif report " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else f"fif report {name}"
    path = write_report(spec, runs_path, target, command)
    click.echo(f"wrote {path}")
