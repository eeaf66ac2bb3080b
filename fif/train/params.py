"""What a recipe's training stages may name, with their typed parameters: losses, optimizers,
schedules and training inputs. Torch-free, so `fif.load_recipe` binds a `train` section without importing torch.

    loss = l1 + 0.5 * ce(target=clean_pred); optim = adam(lr=2e-4); schedule = cosine(warmup=100)
"""

from __future__ import annotations

from ..attacks.params import ATTACK_CATALOG
from ..registry import REQUIRED, Catalog, Param

TARGETS = ("label", "clean_pred", "clean_soft")
KL_FORMS = ("trades", "eq4")
NEEDS_CLASSIFIER = ("ce", "feature", "rep")

# Every term's parameters; a positional argument is `on`. Bound when the recipe is loaded.
_MIN_EPS = Param("min_eps", "float", 0.0, low=0.0, high=1.0,
                 doc="count only the samples whose adversarial eps is >= min_eps")
_ON_OUTPUT = Param("on", "str", "output", doc="output (the defense's), or the name of a `let` it uses")
_VIEWS = Param("views", "bool", False, doc="the mean loss of each view a masks block restores (DIR Eq. 2)")
_ON_INPUT = Param("on", "choice", "input", choices=("input", "clean"), doc="defend the stage input or the clean image")
LOSSES: dict[str, tuple[Param, ...]] = {
    "l1": (_ON_OUTPUT, _VIEWS, _MIN_EPS),
    "mse": (_ON_OUTPUT, _VIEWS, _MIN_EPS),
    "ce": (_ON_INPUT, Param("target", "choice", "label", choices=TARGETS,
                            doc="label (the dataset's), clean_pred or clean_soft (the classifier's)"), _MIN_EPS),
    "feature": (_ON_INPUT, Param("layer", "str", "logits", doc="a classifier module such as features.3, or logits"),
                _MIN_EPS),
    "rep": (_ON_INPUT, Param("eps", "float", 8 / 255, low=0.0, high=1.0, doc="L-inf radius of the inner maximisation"),
            Param("steps", "int", 5, low=1, doc="inner steps"),
            Param("step", "float", None, low=0.0, high=1.0, doc="inner step size (default eps/4)"),
            Param("kl", "choice", "trades", choices=KL_FORMS,
                  doc="trades: KL(h(x~) || h(x~+delta)) (the code, TRADES); eq4: KL(h(x~+delta) || h(x~))"),
            _MIN_EPS),
}
LOSS_CATALOG = Catalog("loss", lambda: LOSSES)


def _lr(default: float) -> Param:
    return Param("lr", "float", default, low=0.0, low_open=True, doc="learning rate")


def _decay(default: float) -> Param:
    return Param("weight_decay", "float", default, low=0.0, doc="L2 weight decay")


_ADAM = (Param("betas", "list[float]", (0.9, 0.999), low=0.0, high=1.0, high_open=True, size=2,
               doc="decay rates of the moment estimates"),
         Param("eps", "float", 1e-8, low=0.0, doc="added to the denominator"))
_AMSGRAD = Param("amsgrad", "bool", False, doc="the AMSGrad variant")

# The optimizers and schedules a stage names, with their parameters (bound when the recipe is loaded).
OPTIMIZER_PARAMS: dict[str, tuple[Param, ...]] = {
    "sgd": (_lr(0.01), Param("momentum", "float", 0.0, low=0.0), _decay(0.0),
            Param("nesterov", "bool", False, doc="Nesterov momentum (needs momentum > 0, dampening 0)"),
            Param("dampening", "float", 0.0, low=0.0)),
    "adam": (_lr(1e-3), *_ADAM, _decay(0.0), _AMSGRAD),
    "adamw": (_lr(1e-3), *_ADAM, _decay(0.01), _AMSGRAD),
}

_WARMUP = Param("warmup", "float", 0.0, low=0.0, doc="linear warm-up over the first W steps (epochs)")
_PER = Param("per", "choice", "step", choices=("step", "epoch"), doc="counts are in steps or in epochs")
_GAMMA = Param("gamma", "float", 0.1, low=0.0, doc="the factor the rate is multiplied by")
_MIN_LR = Param("min_lr", "float", 0.0, low=0.0, doc="the rate at the stage's end")
SCHEDULE_PARAMS: dict[str, tuple[Param, ...]] = {
    "constant": (_WARMUP, _PER),
    "step": (Param("every", "float", REQUIRED, low=0.0, low_open=True), _GAMMA, _WARMUP, _PER),
    "multistep": (Param("milestones", "float|list[float]", REQUIRED, low=0.0), _GAMMA, _WARMUP, _PER),
    "exp": (Param("gamma", "float", REQUIRED, low=0.0, doc="the factor per step (epoch)"), _WARMUP, _PER),
    "cosine": (_MIN_LR, _WARMUP, _PER),
    "linear": (_MIN_LR, Param("start", "float", 0.0, low=0.0, doc="when the decline starts"), _WARMUP, _PER),
    "warmup": (Param("steps", "float", REQUIRED, low=0.0, doc="warm-up length"), _PER),
}
OPTIMIZER_CATALOG = Catalog("optimizer", lambda: OPTIMIZER_PARAMS)
SCHEDULE_CATALOG = Catalog("schedule", lambda: SCHEDULE_PARAMS)


KINDS = ("clean", "noisy", "pipeline", "adversarial")

# The input kinds a recipe names, with their parameters (bound when the recipe is loaded). Other
# keywords of `adversarial` are the attack's: adversarial(attack=pgd, eps=0.3, steps=10).
# How `eps` may be drawn instead of from a list: adversarial(eps=uniform(0, 0.3)).
EPS_DRAWS: dict[str, tuple[Param, ...]] = {
    "uniform": (Param("low", "float", REQUIRED, low=0.0, high=1.0, doc="smallest eps"),
                Param("high", "float", REQUIRED, low=0.0, high=1.0, doc="largest eps")),
}
EPS_DRAW_CATALOG = Catalog("eps draw", lambda: EPS_DRAWS)

INPUTS: dict[str, tuple[Param, ...]] = {
    "clean": (),
    "noisy": (Param("sigma", "float|list[float]", REQUIRED, low=0.0,
                    doc="noise standard deviation; with a list, each sample draws one"),
              Param("clip", "bool", True, doc="clip the noisy image to [0, 1]")),
    "adversarial": (Param("attack", "call", "pgd", catalog=ATTACK_CATALOG, doc="any L-inf attack, with its settings"),
                    Param("eps", "float|list[float]|call", REQUIRED, low=0.0, high=1.0, catalog=EPS_DRAW_CATALOG,
                          doc="budgets; each sample draws one (0 keeps the clean image), from the list "
                              "or uniformly: uniform(low, high)"),
                    Param("against", "choice", "classifier", choices=("classifier", "defense"),
                          doc="attack the classifier, or the defense's attack view then the classifier")),
}
INPUT_CATALOG = Catalog("inputs kind", lambda: INPUTS)
