"""Training losses: weighted sums of terms, each a per-sample value averaged over the batch.

    loss = l1                                  # defense output vs the clean image
    loss = mse(sl) + mse(m, min_eps=0.1)       # the output of `let sl` / `let m` on the stage input
    loss = 0.9 * ce(clean) + 0.1 * ce(input)   # cross-entropy through defense + classifier
    loss = ce(target=clean_pred)               # against the classifier's label for the clean image
    loss = l1 + feature(layer=logits)          # HGD-style: classifier features, defended vs clean
    loss = ce + 2 * rep(eps=8/255, steps=5)    # DIR: KL robust-representation loss

Terms:
  l1(on=output, views=false), mse(...): |f - clean| (squared for mse), mean over pixels; f is the
      stage's output (the defense applied to the input), or, with a `let` name, that named
      sub-pipeline applied to the stage input. Defense stages only. `views`: the loss of each
      view a `masks` block restores, before they are combined, averaged over the views (DIR's
      per-view pre-training loss, Zhou et al. ICML 2023 Eq. 2; the last masks block when there
      are several, the output itself when there is none); the same forward pass as the output.
  ce(on=input, target=label): cross-entropy of classifier(defended image); on=input uses the
      stage input, on=clean the clean image; target=label (the dataset's), clean_pred (the
      classifier's argmax on the clean image) or clean_soft (its softmax).
  feature(layer=logits, on=input): L1 between the classifier's activations at module `layer`
      (a name from classifier.named_modules(), e.g. features.3; `logits` is the output) for the
      defended image and for the clean image (a forward hook; the clean side has no gradient).
  rep(eps=8/255, steps=5, step=eps/4, on=input, kl=trades): DIR's robust-representation term
      (Zhou et al., ICML 2023, Eq. 4-5). x~ is the defended image; an inner maximisation finds
      delta in the L-inf eps-ball around x~ that maximises the KL from a 0.001-Gaussian start
      with `steps` signed-gradient steps (projected into the ball, clamped to [0, 1]); the term
      is then that KL, summed over classes, at x~ + stopgrad(delta), with gradients through both
      branches (x~ and x~ + delta). kl=trades: KL(h(x~) || h(x~ + delta)), the public code's and
      TRADES's form; kl=eq4: KL(h(x~ + delta) || h(x~)), Eq. 4-5 as written.
Every term takes `min_eps=E` (routing): it counts only the samples whose adversarial eps is >= E
(a batch with none gives the term 0). With `params = classifier` the "defended image" is the
input itself: the stage trains the classifier, and l1/mse are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..syntax import nodes as n
from .optim import SettingError

from .params import KL_FORMS, LOSS_CATALOG, LOSSES, NEEDS_CLASSIFIER, TARGETS  # noqa: E402,F401  (torch-free)
DEFAULTS: dict[str, dict] = {name: {p.name: p.default for p in ps} for name, ps in LOSSES.items()}


@dataclass
class StepData:
    """One batch as the losses see it: clean images, stage inputs, labels, per-sample eps."""

    clean: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    eps: torch.Tensor


class Forward:
    """The forward passes of one step, each run once and shared by the terms that need it."""

    def __init__(self, data: StepData, *, pipeline: nn.Module | None, classifier: nn.Module | None):
        self.data, self.pipeline, self.classifier = data, pipeline, classifier
        self._memo: dict = {}

    def _once(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def defended(self, on: str) -> torch.Tensor:
        """The image the classifier sees: the defense applied to the input (or to the clean image);
        the image itself when the stage trains the classifier."""
        img = self.data.x if on == "input" else self.data.clean
        if self.pipeline is None:
            return img
        return self._once(("defended", on), lambda: self.pipeline(img))

    def output(self, on: str) -> torch.Tensor:
        if on == "output":
            return self.defended("input")
        return self._once(("let", on), lambda: self.pipeline.shared[on](self.data.x))

    def views(self) -> torch.Tensor:
        """[K, N, ...]: what the (last) masks block of the defense restores from each of its K views
        of the stage input, before it combines them; [1, N, ...] (the output) when there is none.
        One forward pass, shared with `defended("input")`."""
        def run():
            from ..run_context import DEPLOYED
            collected: list = []
            out = self.pipeline(self.data.x, ctx=DEPLOYED.with_values(views=collected))
            self._memo.setdefault(("defended", "input"), out)
            return collected[-1] if collected else out.unsqueeze(0)
        return self._once("views", run)

    def logits(self, on: str) -> torch.Tensor:
        return self._once(("logits", on), lambda: self.classifier(self.defended(on)))

    def reference(self) -> torch.Tensor:
        """The classifier's logits for the clean, undefended image (no gradient)."""
        def run():
            with torch.no_grad():
                return self.classifier(self.data.clean)
        return self._once("reference", run)


def _distance(f: Forward, a, power: int) -> torch.Tensor:
    if a.get("views"):
        return (f.views() - f.data.clean).abs().pow(power).flatten(2).mean(2).mean(0)
    return (f.output(a["on"]) - f.data.clean).abs().pow(power).flatten(1).mean(1)


def _l1(f: Forward, a) -> torch.Tensor:
    return _distance(f, a, 1)


def _mse(f: Forward, a) -> torch.Tensor:
    return _distance(f, a, 2)


def _ce(f: Forward, a) -> torch.Tensor:
    logits = f.logits(a["on"])
    if a["target"] == "label":
        return F.cross_entropy(logits, f.data.y, reduction="none")
    ref = f.reference()
    if a["target"] == "clean_pred":
        return F.cross_entropy(logits, ref.argmax(1), reduction="none")
    return -(F.softmax(ref, 1) * F.log_softmax(logits, 1)).sum(1)


def _activation(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    store = {}

    def hook(_module, _inputs, output):
        store["out"] = output.clone()  # a copy: the next layer may be an in-place ReLU

    handle = layer.register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    return store["out"]


def _feature(f: Forward, a) -> torch.Tensor:
    if a["layer"] == "logits":
        mine, ref = f.logits(a["on"]), f.reference()
    else:
        layer = dict(f.classifier.named_modules())[a["layer"]]
        mine = _activation(f.classifier, layer, f.defended(a["on"]))
        with torch.no_grad():
            ref = _activation(f.classifier, layer, f.data.clean)
    return (mine - ref).abs().flatten(1).mean(1)


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(p) || softmax(q)) per sample."""
    logp = F.log_softmax(p_logits, 1)
    return (logp.exp() * (logp - F.log_softmax(q_logits, 1))).sum(1)


def _rep_kl(clean_logits, pert_logits, form: str) -> torch.Tensor:
    """The robust-representation KL per sample in the chosen direction (see `rep`)."""
    return _kl(clean_logits, pert_logits) if form == "trades" else _kl(pert_logits, clean_logits)


def _rep(f: Forward, a) -> torch.Tensor:
    eps, steps, form = float(a["eps"]), int(a["steps"]), a.get("kl", "trades")
    step = eps / 4 if a["step"] is None else float(a["step"])
    xt = f.defended(a["on"])
    base = xt.detach()
    with torch.no_grad():
        p0 = f.classifier(base)
    xa = (base + 0.001 * torch.randn_like(base)).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        with torch.enable_grad():
            kl = _rep_kl(p0, f.classifier(xa), form).sum()
            (g,) = torch.autograd.grad(kl, xa)
        xa = torch.min(torch.max(xa.detach() + step * g.sign(), base - eps), base + eps).clamp(0, 1)
    delta = (xa - base).detach()
    return _rep_kl(f.logits(a["on"]), f.classifier(xt + delta), form)


FUNCTIONS: dict[str, Callable[[Forward, dict], torch.Tensor]] = {
    "l1": _l1, "mse": _mse, "ce": _ce, "feature": _feature, "rep": _rep}


@dataclass
class Term:
    """One weighted term of a stage's loss."""

    label: str
    name: str
    weight: float
    args: dict
    min_eps: float = 0.0
    fn: Callable = field(default=None, repr=False)

    def value(self, f: Forward) -> tuple[torch.Tensor, int]:
        """(mean over the samples it counts, how many it counts)."""
        per = self.fn(f, self.args)
        if self.min_eps <= 0:
            return per.mean(), per.shape[0]
        mask = (f.data.eps >= self.min_eps - 1e-12).to(per.dtype)
        count = int(mask.sum())
        return (per * mask).sum() / max(count, 1), count


def _name_arg(v):
    if isinstance(v, n.Call) and not v.args:
        return v.name
    if isinstance(v, str):
        return v
    from ..syntax.printer import expr
    raise SettingError(f"expected a name here, got {expr(v) if hasattr(v, 'span') else v!r}")


def _label(name: str, args: dict) -> str:
    shown = [(f"{v}" if k == "on" else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
             for k, v in args.items() if DEFAULTS[name].get(k, object()) != v]
    return name + (f"({', '.join(shown)})" if shown else "")


def build_terms(loss, *, trains: str, pipeline=None, classifier: nn.Module | None = None,
                eps_values: list[float] | None = None) -> list[Term]:
    """The stage's `loss` (a list of recipe LossTerms) as Terms, checked against what the stage
    trains ('defense' or 'classifier'), the pipeline's `let`s, the classifier's layers and the
    adversarial eps values (None when the inputs are not adversarial). Raises SettingError."""
    from ..errors import did_you_mean
    terms, seen = [], {}
    for t in loss:
        if t.name not in DEFAULTS:
            raise SettingError(f"unknown loss '{t.name}'", did_you_mean(t.name, DEFAULTS))
        args = dict(DEFAULTS[t.name])
        for k, v in t.args.items():
            if k not in args:
                raise SettingError(f"loss {t.name} has no setting '{k}'",
                                   did_you_mean(k, args) or f"its settings are {', '.join(args)}")
            args[k] = _name_arg(v) if k in ("on", "target", "layer", "kl") else v
        if not isinstance(t.weight, (int, float)) or t.weight != t.weight:
            raise SettingError(f"the weight of {t.name} must be a number")
        if t.name in ("l1", "mse"):
            if trains == "classifier":
                raise SettingError(f"{t.name} compares a defense's output with the clean image; this stage "
                                   "trains the classifier, which outputs logits",
                                   "give it a loss such as `loss = ce` (l1 is the default when a stage names none)")
            if args["on"] != "output":
                if args["views"]:
                    raise SettingError(f"{t.name}(views) compares the views of the defense's masks block; "
                                       f"it takes no `on`", f"write {t.name}(views)")
                _check_let(args["on"], pipeline)
        elif args["on"] not in ("input", "clean"):
            raise SettingError(f"{t.name}(on=...) is input or clean, got '{args['on']}'")
        if t.name == "ce" and args["target"] not in TARGETS:
            raise SettingError(f"ce(target=...) is one of {', '.join(TARGETS)}, got '{args['target']}'",
                               did_you_mean(args["target"], TARGETS))
        if t.name == "feature" and args["layer"] != "logits" and classifier is not None:
            layers = [name for name, _ in classifier.named_modules() if name]
            if args["layer"] not in layers:
                raise SettingError(f"the classifier has no layer '{args['layer']}'",
                                   did_you_mean(args["layer"], layers) or f"its layers: logits, {', '.join(layers)}")
        if t.name == "rep":
            if args["kl"] not in KL_FORMS:
                raise SettingError(f"rep(kl=...) is one of {', '.join(KL_FORMS)}, got '{args['kl']}'",
                                   did_you_mean(args["kl"], KL_FORMS))
            for k, lo in (("eps", 0.0), ("steps", 1), ("step", 0.0)):
                v = args[k]
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo):
                    raise SettingError(f"rep({k}=...) must be a number >= {lo:g}, got {v!r}")
        min_eps = args.pop("min_eps")
        if isinstance(min_eps, bool) or not isinstance(min_eps, (int, float)) or min_eps < 0:
            raise SettingError(f"min_eps must be a number >= 0, got {min_eps!r}")
        if min_eps > 0:
            if eps_values is None:
                raise SettingError(f"{t.name}(min_eps=...) routes samples by their adversarial eps, but this "
                                   "stage's inputs are not adversarial", "use inputs = adversarial(eps=[...])")
            if not any(e >= min_eps for e in eps_values):
                raise SettingError(f"{t.name}(min_eps={min_eps:g}) would count no sample: the largest eps "
                                   f"is {max(eps_values):g}")
        label = _label(t.name, {**args, **({"min_eps": min_eps} if min_eps else {})})
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label += f"#{seen[label]}"
        terms.append(Term(label, t.name, float(t.weight), args, float(min_eps), FUNCTIONS[t.name]))
    if not terms:
        raise SettingError("the stage has no loss", "e.g. loss = l1")
    return terms


def _check_let(name: str, pipeline) -> None:
    from ..errors import did_you_mean
    shared = dict(pipeline.plan.shared) if pipeline is not None else {}
    if name not in shared:
        raise SettingError(f"'{name}' is not a `let` used by this defense",
                           did_you_mean(name, shared) or "l1(NAME) compares the output of `let NAME` "
                           "(applied to the stage input) with the clean image; `l1` alone uses the defense's output")
    step, want = shared[name], pipeline.plan.input_kind.shape
    if tuple(step.inp.shape if hasattr(step.inp, "shape") else ()) != want or \
            tuple(step.out.shape if hasattr(step.out, "shape") else ()) != want:
        raise SettingError(f"`let {name}` takes {step.inp} to {step.out}; a loss on it needs an image "
                           f"of the input's shape {list(want)} in and out")


def needs_classifier(loss) -> bool:
    return any(t.name in NEEDS_CLASSIFIER for t in loss)


def evaluate(terms: list[Term], f: Forward) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, int]]]:
    """(weighted total, {label: (value, samples counted)})."""
    parts, total = {}, None
    for t in terms:
        v, count = t.value(f)
        parts[t.label] = (v, count)
        total = t.weight * v if total is None else total + t.weight * v
    return total, parts
