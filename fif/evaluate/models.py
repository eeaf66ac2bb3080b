"""The models an evaluation attacks, one per entry of the recipe: `none` (the plain classifier), the
defense and each variant, each a fif.Pipeline that ends in logits, with every weight loaded.

    entries, weights = recipe_entries(recipe, classifier, shape=(1, 28, 28), device="cpu", runs=Path("runs"))
    entries["defense"].model          # defense -> classifier, as deployed
    entries["defense"].graybox        # what a gray-box attacker sees: the classifier(s) alone

Weights: a defense's learnable ops from `fif train` (runs/<recipe>/train/<entry>.safetensors; a
whole-model variant that names `defense`, `defense -> classifier(arch=lenet)`, takes the defense's);
`classifier` ops from the recipe's classifier (member 0, fine-tuned when a stage tuned it) or the
chain members `fif train` wrote (classifier_<i>.safetensors). An entry that no stage trained and
whose every learnable weight sits in `let`s that a trained entry also uses gets those lets'
trained weights: a `let` is one set of weights in a recipe, so `variants { sl_out = sl }` is the
defense's own `sl` branch (AdvFilter's sl, m and fused outputs of one Y-Net), and
`pafilt -> classifier(adversarial=0.3)` the trained PA-Filt in front of another classifier.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..build import OpNode
from ..errors import FifError, diagnostic
from ..recipe_models import (borrows_defense, compile_entry, compile_env, compile_model, is_model,
                              load_entry_weights)
from ..syntax.printer import expr
from ..syntax.printer import expr as show
from ..views import ClassifierView, classifier_view


@dataclass
class Entry:
    """One evaluated model. `defense` is the image -> image pipeline when the entry is a defense
    (for PSNR/SSIM of defended images); `graybox` the gray-box attacker's view of `model`."""

    name: str
    source: str
    model: nn.Module
    graybox: ClassifierView
    defense: nn.Module | None = None
    text: str | None = None   # the entry's own expression, without the lets and defs in front

    @property
    def random(self) -> bool:
        return bool(self.model.random)

    @property
    def label(self) -> str:
        """How tables name it: the expression for the defense, `name: expression` for a variant."""
        shown = self.text or self.source
        if self.name in ("none", "defense", "model"):
            return shown if self.name != "none" else "none"
        return f"{self.name}: {shown}"


def recipe_entries(recipe, classifier: nn.Module, *, shape, device: str, runs: Path | None,
                   tuned: Path | None = None, other=None, only=None) -> tuple[dict[str, Entry], dict[str, str]]:
    """Every entry's model with its weights (or only the entries named in `only`, and `none`),
    and the weight files used (for the report). `other(overrides)` gives the classifier a
    `classifier(adversarial=...)` op names."""
    names = list(recipe.defenses())
    for want in only or ():
        if want not in names and want != "none":
            from ..errors import did_you_mean
            raise FifError(diagnostic("E423", f"--only {want}: the recipe has no defense or variant named '{want}'",
                                      file=recipe.file, hint=did_you_mean(want, names) or f"choose from {', '.join(names)}"))
    from ..search import search_result
    env = compile_env(recipe, shape, classifier.num_classes, search=search_result(recipe, runs))
    weights: dict[str, str] = {}
    if tuned is not None:
        weights["classifier"] = str(tuned)
    members = _Members(recipe, classifier, runs, weights, other)
    baseline = compile_model(recipe, None, shape, env)
    _bind(baseline, members)
    entries = {"none": Entry("none", "classifier", baseline.to(device).eval(), classifier_view(baseline))}
    trained_defense = None
    for which in recipe.defenses():
        if only and which not in only:
            continue
        entry = compile_entry(recipe, which, shape, env)
        if entry.learnable and borrows_defense(recipe, which, entry):  # defense -> classifier(arch=lenet)
            if trained_defense is None:
                trained_defense = compile_entry(recipe, "defense", shape, env)
                weights["defense"] = str(load_trained(recipe, "defense", trained_defense, runs))
            load_entry_weights(trained_defense, entry)
            weights[which] = weights["defense"]
        elif entry.learnable:
            weights[which] = load_entry(recipe, which, entry, runs, lambda w: compile_entry(recipe, w, shape, env))
        model = compile_model(recipe, which, shape, env, entry=entry)
        load_entry_weights(entry, model)
        _bind(model, members)
        model = model.to(device).eval()
        view = classifier_view(model)
        defense = None if is_model(entry) else entry.to(device).eval()
        entries[which] = Entry(which, entry.source.strip(), model, view, defense,
                               text=expr(recipe.defenses()[which]))
    if any(getattr(m, "op", None) == "nnjpeg" and m.inner.from_file == env.search
           for e in entries.values() for m in e.model.modules()):
        weights["search"] = env.search
    return entries, weights


class _Members:
    """Classifier weights by member: 0 the recipe's classifier, i the i-th chain member."""

    def __init__(self, recipe, classifier, runs, weights, other=None):
        self.recipe, self.classifier, self.runs, self.weights = recipe, classifier, runs, weights
        self.other = other
        self._cache: dict = {0: classifier}

    def __call__(self, member: int, overrides: dict | None = None) -> nn.Module:
        if overrides:
            key = repr(sorted(overrides.items()))
            if key not in self._cache:
                self._cache[key] = self.other(overrides)
            return self._cache[key]
        if member not in self._cache:
            from ..models import load_weights
            from ..train import trained_weights
            path = trained_weights(self.recipe, f"classifier_{member}", self.runs)
            if path is None:
                where = (self.runs or Path("runs")) / self.recipe.name / "train" / f"classifier_{member}.safetensors"
                raise FifError(diagnostic(
                    "E421", f"classifier(member={member}) has no trained weights at {where}", file=self.recipe.file,
                    source=self.recipe.source, hint=f"train the recipe's chain stage first: fif train {self.recipe.file}"))
            model = copy.deepcopy(self.classifier)
            load_weights(model, path)
            self.weights[f"classifier_{member}"] = str(path)
            self._cache[member] = model.eval()
        return self._cache[member]


def _bind(model, members: _Members) -> None:
    for module in model.modules():
        if isinstance(module, OpNode) and module.op == "classifier":
            source = members(module.inner.member, module.inner.overrides)
            module.inner.load_state_dict(source.state_dict())
            module.inner.to(next(source.parameters()).device)


def load_entry(recipe, which: str, pipeline, runs: Path | None, compile_other) -> str:
    """Load `which`'s trained weights into `pipeline`: its own file, or else the trained weights of
    the lets it shares with other entries (see the module doc). Returns where they came from.
    compile_other(name) compiles another entry of the recipe."""
    from ..train import trained_weights
    if trained_weights(recipe, which, runs) is not None or not _only_lets_learn(pipeline):
        return str(load_trained(recipe, which, pipeline, runs))
    lent: dict[str, list[str]] = {}
    missing = [name for name, m in pipeline.shared.items() if any(p.requires_grad for p in m.parameters())]
    mine = dict(pipeline.plan.shared)
    for other in recipe.defenses():
        if other == which or not missing or trained_weights(recipe, other, runs) is None:
            continue
        donor = compile_other(other)
        theirs = dict(donor.plan.shared)
        names = [name for name in missing if name in theirs and theirs[name] == mine[name]]
        if not names:
            continue
        path = load_trained(recipe, other, donor, runs)
        for name in names:
            pipeline.shared[name].load_state_dict(donor.shared[name].state_dict())
        lent[str(path)] = names
        missing = [name for name in missing if name not in names]
    if missing:
        path = (runs or Path("runs")) / recipe.name / "train" / f"{which}.safetensors"
        raise FifError(diagnostic(
            "E421", f"'{which}' has learnable weights but no trained checkpoint at {path}, and no trained entry "
            f"uses its let(s) {', '.join(missing)}", file=recipe.file,
            hint=f"train it first: fif train {recipe.file}" + (f" --out {path.parent}" if runs else "")
            + " (a stage must train it, or those lets in another entry)"))
    return "; ".join(f"{path} (let {', '.join(names)})" for path, names in lent.items())


def _only_lets_learn(pipeline) -> bool:
    """Whether every trainable weight of the pipeline lives in its `let`s (none in its own stages)."""
    return not any(p.requires_grad for p in pipeline.root.parameters())


def load_trained(recipe, which: str, pipeline, runs: Path | None) -> Path:
    """Load `fif train`'s weights for `which` into `pipeline`; E421 when there are none, E422 when
    they were trained for another pipeline text."""
    from safetensors import safe_open
    from ..models import load_weights
    from ..train import trained_weights
    path = trained_weights(recipe, which, runs)
    if path is None:
        path = (runs or Path("runs")) / recipe.name / "train" / f"{which}.safetensors"
        raise FifError(diagnostic(
            "E421", f"'{which}' has learnable weights but no trained checkpoint at {path}", file=recipe.file,
            hint=f"train it first: fif train {recipe.file}" + (f" --out {path.parent}" if runs else "")))
    with safe_open(str(path), framework="pt") as f:
        source = (f.metadata() or {}).get("source")
    if source is not None and source.strip() != pipeline.source.strip():
        raise FifError(diagnostic("E422", f"the weights in {path} were trained for another pipeline:\n  {source.strip()}\n"
                                  f"but the recipe's '{which}' is now\n  {pipeline.source.strip()}", file=str(path),
                                  hint=f"retrain: fif train {recipe.file}"))
    load_weights(pipeline, path)
    return path
