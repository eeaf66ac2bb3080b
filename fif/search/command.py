"""`fif search RECIPE`: the table search of the recipe's `search { ... }` section (fif.search.run).

    fif search recipes/jpeg_ensemble.fif            # writes runs/jpeg_ensemble/search/table.json
"""

from __future__ import annotations

import click

from ..cli_support import fail_cleanly


@click.command("search")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--runs", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Runs folder: writes <runs>/<recipe>/search/table.json, where `fif train` "
                   "(beside its train folder) and `fif eval --runs` read it.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder instead.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the attack.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@fail_cleanly
def search_cmd(recipe, runs, out, seed, device):
    """Search RECIPE's NN-favoured JPEG table (Zhang & Gao's Algorithm 1) on its data."""
    from ..recipe import load_recipe
    r = load_recipe(recipe)
    from .run import run_search
    rec = run_search(r, runs=runs, out=out, seed=seed, device=device)
    c, d = rec["chosen"], rec["data"]
    qualified = sum(p["qualifies"] for p in rec["points"])
    click.echo(f"searched {len(rec['points'])} tables on {d['benign']} benign and {d['adversarial']} adversarial "
               f"images ({d['source']}) in {rec['seconds']:.0f} s; {qualified} keep benign accuracy within "
               f"{rec['settings']['max_drop']:g}")
    click.echo(f"no defense: benign {100 * d['benign_accuracy']:.1f}%, adversarial {100 * d['adversarial_accuracy']:.1f}%")
    click.echo(f"chosen: split {c['split']} (OF {sum(1 for i in range(8) for j in range(8) if i + j < c['split'])} "
               f"coefficients), OF step {c['of']}, AF step {c['af']}: benign {100 * c['benign']:.1f}%, "
               f"adversarial {100 * c['adversarial']:.1f}%")
    click.echo(f"wrote {rec['path']}")
