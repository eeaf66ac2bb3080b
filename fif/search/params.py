"""The settings of a recipe's `search { ... }` section (the table search, fif.search), declared
torch-free so the binder checks them when the recipe loads.

    search { attack = fgsm; eps = 0.1; split = [1, 2, 3, 4, 5, 6]; af = [10, 30, 50]; of = [8, 16] }
"""

from __future__ import annotations

from ..registry import Param

# Zhang & Gao's Algorithm 1 grid: k in range(1, 15), QS_AF in range(1, 121, 5); QS_OF fixed at 16.
PAPER_SPLITS = tuple(range(1, 15))
PAPER_AF = tuple(range(1, 121, 5))
# Not the paper's: QS_OF searched too (RECIPES.md 2.5), around its 16, because its rule
# QS_OF = 16 * 255 * eps gives 400-1200 at the digits' eps and would erase them.
OF_STEPS = (8, 16, 32, 64)


def search_params() -> tuple[Param, ...]:
    """`search { ... }`: the table search of Zhang & Gao's Algorithm 1 on the recipe's data."""
    from ..attacks import ATTACK_CATALOG
    return (
        Param("attack", "call", "fgsm", catalog=ATTACK_CATALOG,
              doc="the attack making the adversarial examples (the paper's ablations: FGSM), graybox"),
        Param("eps", "float", 0.1, low=0.0, high=1.0, low_open=True, doc="its L-inf budget"),
        Param("images", "int", 1000, low=1, doc="benign images (the paper: 1000)"),
        Param("adversarial", "int", 200, low=1,
              doc="adversarial examples, made from the first correctly classified benign images (the paper: 200)"),
        Param("source", "choice", "holdout", choices=("holdout", "train"),
              doc="holdout: images in neither the training nor the test split; train: the training split"),
        Param("split", "list[int]", PAPER_SPLITS, low=1, high=14, doc="the partitions k tried (OF = i + j < k)"),
        Param("af", "list[int]", PAPER_AF, low=1, high=255, doc="the AF steps tried"),
        Param("of", "list[int]", OF_STEPS, low=1, high=255,
              doc="the OF steps tried (the paper fixes 16 = 16 * 255 * eps at eps = 0.004)"),
        Param("max_drop", "float", 0.01, low=0.0, high=1.0,
              doc="a table qualifies if benign accuracy drops by less than this"),
        Param("order", "choice", "delta", choices=("delta", "natural"),
              doc="delta: positions by increasing delta' on this data (the paper); natural: i + j"),
        Param("color", "choice", "rgb", choices=("rgb", "ycbcr"), doc="how nnjpeg codes the images"),
        Param("batch", "int", 500, low=1, doc="images per forward pass"),
    )
