"""`fif eval RECIPE`: robust accuracy tables from one command.

    fif eval recipes/bitdepth.fif --n 200 --attack pgd --threat adaptive
    fif eval recipes/bitdepth.fif --nproc 2          # two processes (torchrun); the same report

The folder gets report.md, results.json, results.csv, the plot, log.jsonl (one line per row as it
is made) and, when `tensorboard` is installed, tensorboard/ (each row's accuracy); under torchrun
only rank 0 writes and prints.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..cli_support import fail_cleanly
from ..recipe_binding import THREATS


@click.command("eval")
@click.argument("recipe")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default runs/<recipe>/eval).")
@click.option("--attack", "attacks", multiple=True, help="Only these attacks (repeatable); a name, or a call "
              "with settings such as 'pgd(steps=100)'.")
@click.option("--eps", "eps", multiple=True, type=float, help="Only these L-inf budgets (repeatable).")
@click.option("--threat", "threats", multiple=True,
              type=click.Choice(list(THREATS)), help="Only these threat models.")
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Only this defense or variant (repeatable); the undefended `none` row is always kept.")
@click.option("--eot", type=click.IntRange(min=1), help="EOT draws for random defenses (default: the recipe's).")
@click.option("--sanity/--no-sanity", default=True, show_default=True,
              help="Run the unbounded-eps PGD rows that show whether attacks get through.")
@click.option("--n", type=click.IntRange(min=1), help="Number of test images.")
@click.option("--probe", "probes", multiple=True, help="A pipeline applied to the perturbation only, e.g. "
              "'dwt -> <LL, LH, HL: zero> -> idwt' (repeatable).")
@click.option("--runs", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where `fif train` wrote its runs.")
@click.option("--seed", type=int, help="Attack seed (default: the recipe's).")
@click.option("--device", default="cpu", show_default=True,
              help="cpu or cuda (under torchrun each process takes the GPU of its LOCAL_RANK).")
@click.option("--amp", is_flag=True, help="bfloat16 autocast on CUDA; attacks keep float32 inputs (an error on CPU).")
@click.option("--nproc", type=int, default=None, metavar="N",
              help="Run N processes with torchrun (one per GPU, or N on the CPU with gloo).")
@fail_cleanly
def eval_cmd(recipe, out, attacks, eps, threats, n, probes, runs, seed, device, only, eot, sanity, amp, nproc):
    """Evaluate RECIPE's defense and variants against attacks under threat models."""
    from .. import distributed as dist
    from ..recipe import load_recipe
    if nproc is not None:
        dist.check_nproc(nproc)
    r = load_recipe(recipe)  # bound and checked before torch loads: a typo costs a fraction of a second
    if nproc is not None and nproc > 1:
        raise SystemExit(dist.launch(nproc, sys.argv[1:]))
    from .report import tables, write_report
    from .runner import run_eval
    folder = Path(out) if out else Path(runs) / r.name / "eval"
    log = RowLog(folder) if dist.is_main() else None
    try:
        results = run_eval(r, attacks=list(attacks) or None, eps=list(eps) or None, threats=list(threats) or None,
                           n=n, device=device, probes=list(probes), runs=Path(runs), seed=seed,
                           only=list(only) or None, eot=eot, sanity=sanity, amp=amp,
                           on_row=log.add if log is not None else None)
    finally:
        if log is not None:
            log.close()
    if not dist.is_main():
        dist.shutdown()
        return
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
    dist.shutdown()


class RowLog:
    """log.jsonl (one line per result row, as it is made) and TensorBoard scalars of an eval run."""

    def __init__(self, folder: Path):
        from ..scalars import Scalars
        folder.mkdir(parents=True, exist_ok=True)
        self.file = open(folder / "log.jsonl", "w", encoding="utf-8")
        self.scalars = Scalars(folder / "tensorboard")
        self.count = 0

    def add(self, row: dict) -> None:
        self.file.write(json.dumps(row, default=str) + "\n")
        self.file.flush()
        self.count += 1
        tag = f"accuracy/{row['defense']}/{row['threat']}/{row['attack']}"
        self.scalars.add(tag, row["accuracy"], int(round(row["eps"] * 1000)))

    def close(self) -> None:
        self.file.close()
        self.scalars.close()
