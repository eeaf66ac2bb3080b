"""`fif eval RECIPE`: robust accuracy tables from one command.

    fif eval recipes/bitdepth.fif --n 200 --attack pgd --threat adaptive
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..cli_support import fail_cleanly


@click.command("eval")
@click.argument("recipe")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default runs/<recipe>/eval).")
@click.option("--attack", "attacks", multiple=True, help="Only these attacks (repeatable).")
@click.option("--eps", "eps", multiple=True, type=float, help="Only these L-inf budgets (repeatable).")
@click.option("--threat", "threats", multiple=True,
              type=click.Choice(["graybox", "whitebox", "adaptive", "transfer"]), help="Only these threat models.")
@click.option("--n", type=click.IntRange(min=1), help="Number of test images.")
@click.option("--probe", "probes", multiple=True, help="A pipeline applied to the perturbation only, e.g. "
              "'dwt -> <LL, LH, HL: zero> -> idwt' (repeatable).")
@click.option("--runs", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where `fif train` wrote its runs.")
@click.option("--seed", type=int, help="Attack seed (default: the recipe's).")
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Evaluate only this defense or variant (repeatable; the no-defense baseline always runs).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@fail_cleanly
def eval_cmd(recipe, out, attacks, eps, threats, n, probes, runs, seed, only, device):
    """Evaluate RECIPE's defense and variants against attacks under threat models."""
    from ..recipe import load_recipe
    from .report import tables, write_report
    from .runner import run_eval
    r = load_recipe(recipe)
    results = run_eval(r, attacks=list(attacks) or None, eps=list(eps) or None, threats=list(threats) or None,
                       n=n, device=device, probes=list(probes), runs=Path(runs), seed=seed,
                       only=list(only) or None)
    folder = Path(out) if out else Path(runs) / r.name / "eval"
    command = "fif eval " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else f"fif eval {recipe}"
    paths = write_report(results, folder, command=command)
    console = Console(width=None if sys.stdout.isatty() else 160)
    for threat, (header, body) in tables(results).items():
        worst = [i for i, h in enumerate(header) if h.startswith("worst") or i < 2]
        table = Table(title=f"{threat}: accuracy % (worst case over attacks)", title_justify="left")
        for i in worst:
            table.add_column(header[i], justify="right" if i else "left")
        for row in body:
            table.add_row(*[row[i] for i in worst])
        console.print(table)
    for w in results["warnings"]:
        console.print(f"[bold yellow]warning:[/] {w}")
    console.print(f"{len(results['rows'])} rows in {results['seconds']:.0f} s; wrote " +
                  ", ".join(str(p) for p in paths.values()))
