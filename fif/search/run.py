"""`run_search`: Zhang & Gao's table search (Algorithm 1) on a recipe's data, written to one JSON file
that `nnjpeg(table=search)` reads and the report shows.

    summary = run_search(fif.load_recipe("recipes/jpeg_ensemble.fif"))   # runs/<recipe>/search/table.json

What it does, with the recipe's `search { ... }` settings (fif.search.params):
  1. benign images: the first `images` of the held-out images (in neither the training nor the
     test split; `source = train` takes the training split instead), classified by the recipe's
     classifier as it is (trained and cached like `fif train` and `fif eval` do);
  2. adversarial examples: `attack` at `eps` against that classifier (gray-box), made from the first
     `adversarial` benign images it classifies correctly (Alg. 1 line 8);
  3. the order of the 64 coefficient positions: increasing delta' = spread of the perturbation's
     DCT coefficient / spread of the benign images' (section 3.2 Step 1), on these same images;
     or the natural i + j order (`order = natural`);
  4. every (split k, OF step, AF step) of the grid: nnjpeg at quality 50 (the unscaled table) on
     the benign and on the adversarial images, accuracy of each;
  5. the choice (fif.search.algorithm.choose): best adversarial accuracy among the tables whose
     benign accuracy drops by less than `max_drop`. E427 when none does.
The file records the settings, the counts, delta' per position, the order, every grid point's
(benign, adversarial) accuracy and the chosen table under "table".
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ..errors import FifError, diagnostic
from ..progress import track
from . import algorithm as alg

from . import RESULT, search_result


def _spec(recipe):
    from ..recipe import SearchSpec
    return recipe.search if recipe.search is not None else SearchSpec()


def _images(recipe, spec, train_ds):
    from ..data import holdout
    from ..recipe_models import recipe_dataset
    if spec.source == "train":
        pool, where = train_ds, "the training split"
    else:
        d = recipe.data
        pool, where = holdout(recipe_dataset(recipe), d.train, d.test, d.seed), "the held-out images"
    if len(pool) < spec.images:
        raise FifError(diagnostic(
            "E405", f"the search asks for {spec.images} benign images from {where}, which has {len(pool)}",
            _field_span(recipe, "images"), file=recipe.file, source=recipe.source,
            hint="lower `images`, make the data's train/test split smaller (held-out images are those in "
                 "neither), or use `source = train`"))
    from ..data.store import load  # a streamed pool reads these images only
    return load(pool.images, slice(0, spec.images)), pool.labels[:spec.images], where


def _field_span(recipe, name):
    from ..syntax import nodes as n
    node = recipe.program.recipes[0] if recipe.program is not None and recipe.program.recipes else None
    for e in getattr(node, "entries", ()):
        if isinstance(e, n.Section) and e.kind == "search":
            for f in e.entries:
                if isinstance(f, n.FieldEntry) and f.name == name:
                    return f.value.span
            return e.name_span
    return getattr(node, "name_span", None)


def _finite(values):
    return [None if not math.isfinite(v) else v for v in values]


def run_search(recipe, *, runs=None, out=None, device: str = "cpu", seed: int = 0) -> dict:
    """Run the search and write <out>/table.json (default <runs>/<recipe>/search); return its record."""
    from ..attacks import get_attack
    from ..models import atomic_write_json
    from ..ops import dct_kernels as dk
    from ..ops.dct_stats import delta_ratio, ratio_order
    from ..recipe import Recipe, load_recipe
    from ..runtime import check_device, derive_seed, recipe_classifier, recipe_data
    from ..train.record import command_line, git_commit, now
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    device = check_device(device)
    spec = _spec(recipe)
    out = Path(out) if out is not None else search_result(recipe, runs).parent
    start = time.perf_counter()
    train_ds, test_ds = recipe_data(recipe)
    x, y, where = _images(recipe, spec, train_ds)
    x, y = x.to(device), y.to(device)
    classifier = recipe_classifier(recipe, train_ds, test_ds, device=device)
    with torch.no_grad():
        pred = torch.cat([classifier(x[i:i + spec.batch]).argmax(1) for i in range(0, len(x), spec.batch)])
    right = (pred == y).nonzero().squeeze(1)[:spec.adversarial]
    clean, labels = x[right], y[right]
    info = get_attack(spec.attack.name)
    x_adv = info.fn(classifier, clean, labels, spec.eps, seed=derive_seed(seed, "search"), **spec.attack.params)
    base = float((pred == y).double().mean())
    undefended = alg.accuracy(classifier, x_adv, labels, spec.batch)
    stats = delta_ratio(x, x_adv - clean)
    order = ratio_order(stats["ratio"]) if spec.order == "delta" else dk.natural_order(8)
    points = alg.grid(spec.split, spec.of, spec.af)
    scored = [alg.score(p, classifier, x, y, x_adv, labels, order, ycbcr=spec.color == "ycbcr", batch=spec.batch)
              for p in track(points, "table search", total=len(points))]
    for p in scored:
        p["drop"] = base - p["benign"]
        p["qualifies"] = alg.qualifies(p, base, spec.max_drop)
    best = alg.choose(scored, base, spec.max_drop)
    if best is None:
        least = min(scored, key=lambda p: p["drop"])
        raise FifError(diagnostic(
            "E427", f"no table of the search's grid keeps benign accuracy within {spec.max_drop:g} of "
            f"{base:.4f}; the smallest drop is {least['drop']:.4f} (split {least['split']}, OF {least['of']}, "
            f"AF {least['af']})", _field_span(recipe, "max_drop"), file=recipe.file, source=recipe.source,
            hint="add smaller steps to `of` and `af` (1 is nearly lossless), or allow a larger max_drop"))
    record = {
        "recipe": recipe.name, "file": recipe.file, "seed": seed, "device": device,
        "command": command_line(), "git": git_commit(), "finished": now(),
        "settings": spec.model_dump(),
        "data": {"source": where, "benign": len(x), "adversarial": len(clean),
                 "benign_accuracy": base, "adversarial_accuracy": undefended,
                 "fooled": int(round((1 - undefended) * len(clean)))},
        "delta": {k: _finite(v) for k, v in stats.items()},
        "order": list(order),
        "grid": {"split": list(spec.split), "of": list(spec.of), "af": list(spec.af)},
        "points": scored,
        "chosen": best,
        "table": {"split": best["split"], "of": best["of"], "af": best["af"], "order": list(order)},
        "seconds": round(time.perf_counter() - start, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RESULT, record)
    record["path"] = str(out / RESULT)
    return record
