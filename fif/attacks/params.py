"""What a recipe may set on each attack, declared once and torch-free, so `fif.load_recipe` binds
`eval { attacks = [pgd(steps=40, step=0.01)] }` without importing torch (a typo fails in a fraction
of a second). `eps` and `seed` are set by fif itself.

    pgd(steps=40, step=0.01, restarts=2)
"""

from __future__ import annotations

from ..registry import Catalog, Param

LOSSES = ("ce", "margin", "dlr")

EOT = Param("eot", "int", 1, low=1, doc="gradient averaged over this many random draws, in one batched pass")
TARGETED = Param("targeted", "bool", False, doc="move towards class y instead of away from it")
STEP = Param("step", "float", None, low=0.0, high=1.0, doc="step size (default: the attack's own rule)")


def steps_param(default: int, doc: str = "iterations") -> Param:
    return Param("steps", "int", default, low=1, doc=doc)


def loss_param(allowed=LOSSES, default="ce") -> Param:
    return Param("loss", "choice", default, choices=tuple(allowed),
                 doc="ce: cross-entropy; margin: C&W margin; dlr: Difference of Logits Ratio")


FGSM = (TARGETED, EOT)

BIM = (steps_param(10), STEP, TARGETED, EOT)

PGD = (steps_param(40, "iterations per restart"), STEP,
       Param("random_start", "bool", True, doc="start from a uniform draw in the eps-ball"),
       Param("restarts", "int", 1, low=1, doc="runs; each sample keeps its first success"),
       loss_param(), TARGETED, EOT)

MIFGSM = (steps_param(10), STEP, Param("decay", "float", 1.0, low=0.0, doc="momentum decay factor mu"),
          TARGETED, EOT)

CW = (Param("c", "float", 1.0, low=0.0, low_open=True, doc="first weight of the margin term (searched)"),
      Param("kappa", "float", 0.0, low=0.0, doc="confidence margin"),
      steps_param(100, "Adam steps per value of c"),
      Param("lr", "float", 0.01, low=0.0, low_open=True, doc="Adam learning rate"),
      Param("binary_steps", "int", 5, low=1, doc="binary-search steps over c"),
      TARGETED, EOT)

DEEPFOOL = (steps_param(50), Param("overshoot", "float", 0.02, low=0.0, doc="how far past the boundary to step"),
            Param("num_classes", "int", 10, low=2, doc="the classes with the highest logits considered"), EOT)

APGD = (steps_param(100), Param("restarts", "int", 1, low=1, doc="runs from fresh random starts"),
        loss_param(("ce", "dlr")),
        Param("targets", "int", 0, low=0, doc="0: untargeted; k: APGD-T towards each of the k highest other classes"),
        Param("rho", "float", 0.75, low=0.0, high=1.0, doc="success fraction below which the step halves"),
        Param("alpha", "float", 0.75, low=0.0, high=1.0, low_open=True, doc="momentum weight"), EOT)

SCORE_EOT = Param("eot", "int", 1, low=1,
                  doc="score averaged over this many random draws per query, in one batched pass")
P_INIT = Param("p_init", "float", 0.8, low=0.0, high=1.0, low_open=True,
               doc="fraction of the image the first squares cover (then halved on a schedule)")

SQUARE = (Param("queries", "int", 1000, low=1, doc="model queries per sample, the stripe start included"),
          P_INIT, SCORE_EOT)

AUTOATTACK = (Param("version", "choice", "standard", choices=("standard", "rand"),
                    doc="standard: APGD-CE, APGD-T (DLR), Square; rand: APGD-CE, APGD-DLR (random defenses)"),
              steps_param(100, "APGD iterations per run"),
              Param("restarts", "int", 1, low=1, doc="APGD runs per component (per target for APGD-T)"),
              Param("targets", "int", 3, low=0, doc="APGD-T's target classes (at most K - 1 used); 0 leaves it out"),
              Param("queries", "int", 1000, low=0, doc="Square's queries per sample; 0 leaves it out"),
              P_INIT, Param("eot", "int", 1, low=1, doc="random draws averaged per gradient or query"))


BY_NAME: dict[str, tuple[Param, ...]] = {"fgsm": FGSM, "bim": BIM, "pgd": PGD, "mifgsm": MIFGSM, "cw": CW,
                                        "deepfool": DEEPFOOL, "apgd": APGD, "square": SQUARE,
                                        "autoattack": AUTOATTACK}
ATTACK_CATALOG = Catalog("attack", lambda: BY_NAME, code="E251")
NORMS: dict[str, str] = {name: ("l2" if name == "cw" else "linf") for name in BY_NAME}
