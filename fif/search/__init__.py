"""The NN-favoured JPEG table search (Zhang & Gao, ICCVW 2021, Algorithm 1): `fif search RECIPE`.

    from fif.search.run import run_search
    run_search(fif.load_recipe("recipes/jpeg_ensemble.fif"))      # runs/jpeg_ensemble/search/table.json

fif.search.params declares the recipe's `search { ... }` settings (torch-free), fif.search.algorithm
the grid and the choice rule, fif.search.run the run on a recipe's data. `nnjpeg(table=search)`
reads the result: `fif train` from beside its train folder (<out>/../search/table.json, which is
<runs>/<recipe>/search/table.json by default), `fif eval` from <runs>/<recipe>/search/table.json.
"""

from __future__ import annotations

from pathlib import Path

RESULT = "table.json"


def search_result(recipe, runs=None) -> Path:
    """<runs>/<recipe>/search/table.json: where `fif search` writes and `fif eval --runs` reads."""
    return Path(runs if runs is not None else "runs") / recipe.name / "search" / RESULT

