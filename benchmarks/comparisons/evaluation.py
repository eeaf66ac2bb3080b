"""4. `fif eval` of a small recipe against the same evaluation written by hand with torchattacks:
attacked images per second."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..harness import ROOT, Config, Row, interleaved
from . import skipped

TITLE = "fif eval of recipes/bitdepth.fif against the same evaluation by hand with torchattacks"
NOTE = ("The evaluation `fif eval recipes/bitdepth.fif --only defense --attack pgd --eps 0.3 --threat "
        "graybox --threat adaptive --no-sanity --n N` runs (fif.evaluate.run_eval, in this process; "
        "writing the report files is left out): the recipe's classifier loaded from fif's cache "
        "(trained first if missing, not timed), clean accuracy, PGD-40 (step 0.01) on the classifier "
        "(gray-box: judged with and without bitdepth(2)) and through the attack view (adaptive: BPDA), "
        "PSNR/SSIM of the defended images. The twin does the same with torchattacks.PGD, a "
        "straight-through bitdepth and fif's psnr/ssim functions. Rate: attacked images (2 attacks x N) "
        "per second; interleaved repeats.")
PEERS = ["torchattacks"]
EPS, STEPS, STEP = 0.3, 40, 0.01


class _BitDepth(nn.Module):
    """bitdepth(2) by hand; `bpda`: the identity gradient through the rounding."""

    def __init__(self, bpda: bool = False):
        super().__init__()
        self.bpda = bpda

    def forward(self, x):
        y = torch.round(x.clamp(0, 1))
        return x + (y - x).detach() if self.bpda else y


def _by_hand(recipe, n: int, torchattacks) -> dict:
    from fif.evaluate.metrics import psnr, ssim
    from fif.runtime import recipe_classifier, recipe_data
    train, test = recipe_data(recipe)
    x, y = test.images[:n], test.labels[:n]
    clf = recipe_classifier(recipe, train, test).eval()
    defended, bpda = nn.Sequential(_BitDepth(), clf).eval(), nn.Sequential(_BitDepth(True), clf).eval()
    batch = recipe.eval.batch

    def attack(model, seed):
        torch.manual_seed(seed)
        atk = torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=STEPS, random_start=True)
        return torch.cat([atk(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)])

    def acc(model, images):
        with torch.no_grad():
            return float((model(images).argmax(1) == y).float().mean())

    def quality(images):
        with torch.no_grad():
            d = _BitDepth()(images)
            return float(psnr(d, x).clamp(max=100).mean()), float(ssim(d, x).mean())
    out = {"clean": (acc(clf, x), acc(defended, x)), "q_clean": quality(x)}
    gray = attack(clf, 0)
    out["graybox"] = (acc(clf, gray), acc(defended, gray), quality(gray))
    adaptive = attack(bpda, 1)
    out["adaptive"] = (acc(defended, adaptive), quality(adaptive))
    return out


def run(cfg: Config):
    import fif
    from fif.evaluate.runner import run_eval
    from fif.runtime import recipe_classifier, recipe_data
    try:
        import torchattacks
    except ImportError as e:
        torchattacks, why = None, f"not installed ({e.name})"
    os.environ.setdefault("FIF_QUIET", "1")
    n = cfg.pick(500, 100, 4)
    recipe = fif.load_recipe(ROOT / "recipes" / "bitdepth.fif")
    recipe_classifier(recipe, *recipe_data(recipe))     # trained once and cached if missing: not timed
    runs = tempfile.mkdtemp(prefix="fif-bench-runs-")
    case = f"bitdepth(2), pgd-{STEPS}, {n} images"

    def ours():
        return run_eval(recipe, attacks=["pgd"], eps=[EPS], threats=["graybox", "adaptive"], n=n,
                        only=["defense"], sanity=False, runs=Path(runs))
    if torchattacks is None:
        yield skipped("eval", case, "s", "by hand + torchattacks", why)
        return
    contenders = {"fif": ours, "by hand": lambda: _by_hand(recipe, n, torchattacks)}
    rate = {k: 2 * n / v for k, v in interleaved(contenders, cfg).items()}   # each call: a whole evaluation
    # higher is better here: the ratio column is fif's time over the other's (other rate / fif rate)
    yield Row("eval", case, "s", 2 * n / rate["fif"], "by hand + torchattacks", 2 * n / rate["by hand"],
              note=f"attacked images/s: fif {rate['fif']:.0f}, by hand {rate['by hand']:.0f}",
              target=("ratio", 1.0))
