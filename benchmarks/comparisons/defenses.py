"""3. Each shipped recipe's defense, compiled by fif, against the same network written by hand
(benchmarks/comparisons/twins.py): time of a forward pass and of a forward+backward pass."""

from __future__ import annotations

import torch

from ..harness import ROOT, Config, Row, interleaved
from . import RECIPES
from .twins import make_twin

TITLE = "Each recipe's defense compiled by fif against the same network written by hand: time"
NOTE = ("`fif.load_recipe(recipes/NAME.fif).compile()` against the plain nn.Module in "
        "benchmarks/comparisons/twins.py with fif's weights copied in (`max diff`: largest "
        "|fif - twin| on the same input and the same random draw). Inputs are the recipes' own "
        "digits shape, 1x28x28 (pafilt's U-Net needs sides that are 4 short of a multiple of 16 and "
        "DIR's attention is quadratic in the 2x2 patches, so ImageNet-sized inputs do not apply). "
        "fwd: `torch.no_grad`, eval mode, the defense as deployed. fwd+bwd: what an adaptive attack "
        "differentiates, the attack view (BPDA through bitdepth's rounding), gradients for the input "
        "and every weight. Batches 32 and 256 (quick: 64). jpeg_ensemble is not in the table: its "
        "defense, nnjpeg(50, table=search), runs only with the table its `fif search` writes (a trained "
        "classifier, 1344 tables tried, a coefficient order measured on data), and its JPEG is compared "
        "against kornia and Pillow in the jpeg comparison.")
PEERS: list[str] = []


def _grad(model, x, g):
    params = [p for p in model.parameters() if p.requires_grad]

    def run():
        xi = x.detach().requires_grad_(True)
        out = model(xi)
        torch.autograd.grad((out * g).sum(), [xi, *params], allow_unused=True)
    return run


def run(cfg: Config):
    import fif
    batches = cfg.pick([32, 256], [64], [2])
    for recipe in cfg.pick(RECIPES, RECIPES, ("tiny", "dir")):
        pipeline = fif.load_recipe(ROOT / "recipes" / f"{recipe}.fif").compile().eval()
        twin = make_twin(recipe, pipeline).eval()
        for batch in batches:
            gen = torch.Generator().manual_seed(batch)
            x = torch.rand(batch, *pipeline.input_shape, generator=gen)
            g = torch.randn(batch, *pipeline.input_shape, generator=gen)
            with torch.no_grad():
                torch.manual_seed(0)
                ours = pipeline(x)
                torch.manual_seed(0)
                diff = float((ours - twin(x)).abs().max())
                times = interleaved({"fif": lambda: pipeline(x), "twin": lambda: twin(x)}, cfg)
            case = f"{recipe} {batch}x{'x'.join(map(str, pipeline.input_shape))}"
            yield Row("defenses", case, "fwd ms", times["fif"] * 1e3, "hand-written", times["twin"] * 1e3,
                      note=f"max diff {diff:.1e}", target=("ratio", 1.05))
            both = interleaved({"fif": _grad(pipeline.attack_view(), x, g),
                                "twin": _grad(_Attack(twin), x, g)}, cfg)
            yield Row("defenses", case, "fwd+bwd ms", both["fif"] * 1e3, "hand-written", both["twin"] * 1e3,
                      target=("ratio", 1.05))


class _Attack(torch.nn.Module):
    """The twin as an attacker differentiates it (twin.attack), with the twin's parameters."""

    def __init__(self, twin):
        super().__init__()
        self.twin = twin

    def forward(self, x):
        return self.twin.attack(x)
