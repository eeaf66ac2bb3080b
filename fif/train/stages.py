"""From a recipe's `train` section to the units a run executes, checked before any training.

    train {
      stage denoise { params = defense; inputs = noisy(sigma=0.3); loss = l1; epochs = 2 }
      stage fuse    { params = fusion; freeze = [encoder]; loss = ce(target=clean_pred) }
      stage ladder  { params = classifier; chain = [noise(0.1), bitdepth(4) -> noise(0.1)]
                      loss = 0.9 * ce(clean) + 0.1 * ce(input) }
    }

`params` is `defense` (every learnable weight of the pipeline being trained), the name of a `let`
it uses (that named sub-pipeline, shared weights and all), or `classifier`. `freeze = [name, ...]`
holds lets (defense stages) or classifier modules such as `features` (classifier stages) out of
the optimizer. The defense and every learnable variant are trained, each by the defense stages in
order (a variant that lacks a stage's let skips that stage; `only = [names]` / `skip = [names]`
pick the pipelines a stage trains, e.g. a stage-1-only ablation); `--only NAME` trains one of them.
`draws = step` gives the defense one random draw per training step (DIR's masks, drawn once per
batch and reused by the adversarial inputs, the defended image and the losses); `call`, the
default, draws afresh at every forward pass.
Classifier stages run once, in the first pass, and later stages use the fine-tuned classifier.
`chain = N` (or a list of N input pipelines, one a member) fine-tunes N classifiers in a row,
each starting from the previous one's final weights (the first from the recipe's classifier);
they are saved as classifier_1 .. classifier_N (classifier_0 is the starting point), and the
recipe's classifier itself is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import FifError, diagnostic, did_you_mean
from ..syntax import nodes as n
from .context import stage_error
from .inputs import Inputs, PipelineInputs, make_inputs
from .losses import build_terms, needs_classifier
from .optim import SettingError, make_schedule, optimizer_settings


@dataclass
class Unit:
    """One stage applied to one pipeline (or one chain member): what a loop runs."""

    index: int
    key: str
    target: str | None
    stage: object
    stage_index: int
    trains: str  # "defense" | "classifier"
    member: int | None = None
    terms: list = field(default_factory=list)
    inputs: Inputs | None = None

    @property
    def label(self) -> str:
        who = self.stage.name
        if self.target not in (None, "defense"):
            who += f" [{self.target}]"
        if self.member:
            who += f" #{self.member}"
        return who


def _setting(recipe, stage, field_name, fn):
    try:
        return fn()
    except SettingError as e:
        raise stage_error(recipe, stage.name, field_name, "E423", f"stage '{stage.name}': {e}", e.hint) from None


def loss_lets(stage) -> list[str]:
    """The lets a stage's loss terms name (`l1(sl)`)."""
    from .losses import _name_arg
    out = []
    for t in stage.loss:
        if t.name in ("l1", "mse") and "on" in t.args:
            try:
                name = _name_arg(t.args["on"])
            except SettingError:
                continue
            if name != "output":
                out.append(name)
    return out


def defense_params(pipeline, stage, lets: list[str]):
    """(trainable parameters, why there are none) for a defense stage on `pipeline`."""
    for name in loss_lets(stage):
        if name in lets and name not in pipeline.shared:
            return [], f"its loss uses `let {name}`, which this pipeline does not use"
    if stage.params == "defense":
        owner = pipeline
    elif stage.params in pipeline.shared:
        owner = pipeline.shared[stage.params]
    else:
        return [], f"it does not use `let {stage.params}`"
    frozen = set()
    for name in stage.freeze:
        if name in pipeline.shared:
            frozen |= {id(p) for p in pipeline.shared[name].parameters()}
        elif name == "defense":
            frozen |= {id(p) for p in pipeline.parameters()}
    params = [p for p in owner.parameters() if id(p) not in frozen]
    if params:
        return params, None
    if not any(True for _ in owner.parameters()):
        what = "the defense" if stage.params == "defense" else f"`let {stage.params}`"
        return [], f"{what} has no learnable weights"
    return [], f"everything it would train is frozen (freeze = [{', '.join(stage.freeze)}])"


def classifier_params(classifier, stage):
    frozen = set()
    for name in stage.freeze:
        if name != "classifier":
            frozen |= {id(p) for p in classifier.get_submodule(name).parameters()}
    return [p for p in classifier.parameters() if id(p) not in frozen]


def _check_names(recipe, stage, lets):
    known = ["defense", "classifier", *lets]
    if stage.params not in known:
        raise stage_error(recipe, stage.name, "params", "E423",
                          f"stage '{stage.name}': params = {stage.params} names nothing to train",
                          did_you_mean(stage.params, known) or
                          "params is defense, classifier, or a let of the defense "
                          f"({', '.join(lets) or 'none here'})")
    for name in loss_lets(stage):
        if name not in lets:
            raise stage_error(recipe, stage.name, "loss", "E423",
                              f"stage '{stage.name}': the loss names '{name}', which is not a let",
                              did_you_mean(name, lets) or "l1(NAME) compares the output of `let NAME` (applied to "
                              "the stage input) with the clean image; `l1` alone uses the defense's output")
    for name in stage.freeze if stage.params != "classifier" else ():  # classifier modules: checked later
        if name not in known:
            raise stage_error(recipe, stage.name, "freeze", "E423",
                              f"stage '{stage.name}': cannot freeze '{name}': no such let",
                              did_you_mean(name, known) or f"choose from {', '.join(known)}")


def chain_members(recipe, stage) -> list:
    """[None] * N for `chain = N`, or the list of per-member input pipelines (syntax nodes)."""
    c = stage.chain
    if c is None:
        return []
    if stage.params != "classifier":
        raise stage_error(recipe, stage.name, "chain", "E423",
                          f"stage '{stage.name}': chain fine-tunes classifiers; it needs params = classifier")
    if isinstance(c, list):
        if not c:
            raise stage_error(recipe, stage.name, "chain", "E423", f"stage '{stage.name}': chain is empty")
        if stage.inputs.kind != "clean" or stage.inputs.args:
            raise stage_error(recipe, stage.name, "inputs", "E423",
                              f"stage '{stage.name}': chain lists each member's inputs; drop `inputs`",
                              "chain = [jpeg(90) -> noise(0.02), jpeg(80) -> noise(0.02)]")
        return list(c)
    if isinstance(c, bool) or not isinstance(c, int) or c < 1:
        raise stage_error(recipe, stage.name, "chain", "E423",
                          f"stage '{stage.name}': chain is a count >= 1 or a list of input pipelines, got {c!r}")
    return [None] * c


def plan_units(recipe, *, ctx, compiled: dict, targets: list[str], compile_expr, lets: list[str],
               classifier_for, defense_for) -> tuple[list[Unit], list[dict]]:
    """Every unit of the run, in order, with its loss terms and inputs; and the skipped
    (target, stage) pairs with the reason. Raises E420 when a stage trains nothing anywhere.
    Everything that can be checked without the classifier is checked before it is loaded (a
    recipe's classifier may have to be trained first)."""
    stages = recipe.train
    if sum(1 for s in stages if s.chain is not None) > 1:
        raise stage_error(recipe, [s for s in stages if s.chain is not None][1].name, "chain", "E423",
                          "only one stage may fine-tune a classifier chain")
    for s in stages:
        _check_names(recipe, s, lets)
        _setting(recipe, s, "optim", lambda: optimizer_settings(s.optim))
        _setting(recipe, s, "schedule", lambda: make_schedule(s.schedule, 1.0, 1, s.epochs))
        chain_members(recipe, s)
        if s.params != "classifier":
            chosen = [t for t in targets if s.selects(t)]
            if targets and not chosen:  # only/skip leave this run's pipelines out (e.g. with --only)
                continue
            reasons = {t: defense_params(compiled[t], s, lets)[1] for t in chosen}
            if not chosen or all(r is not None for r in reasons.values()):
                why = reasons.get(targets[0]) if targets else \
                    ("the defense has no learnable weights" + (" (nor has any variant)" if recipe.variants else ""))
                raise stage_error(recipe, s.name, "params", "E420",
                                  f"stage '{s.name}' trains nothing: {why}",
                                  "give the defense a learnable op such as conv(8) or downup, point params at a "
                                  "let with weights, or remove the stage")
    units: list[Unit] = []
    skipped: list[dict] = []
    for p, target in enumerate(targets or [None]):
        for i, s in enumerate(stages):
            if s.params == "classifier":
                if p > 0:
                    continue
                members = chain_members(recipe, s)
                for m, node in enumerate(members or [None], start=1):
                    key = f"classifier/{s.name}" + (f"/{m}" if members else "")
                    units.append(Unit(len(units), key, None, s, i, "classifier", m if members else None))
                    _finish(recipe, units[-1], compile_expr, classifier_for, defense_for, node)
                continue
            if target is None:
                continue
            why = defense_params(compiled[target], s, lets)[1] if s.selects(target) else \
                (f"only = [{', '.join(s.only)}]" if s.only else f"skip = [{', '.join(s.skip)}]")
            if why is not None:
                skipped.append({"target": target, "stage": s.name, "reason": why})
                continue
            units.append(Unit(len(units), f"{target}/{s.name}", target, s, i, "defense"))
            _finish(recipe, units[-1], compile_expr, classifier_for, defense_for, None, compiled[target])
    # now the checks that need the classifier: its module names (freeze, feature layers)
    if any(u.trains == "classifier" or u.inputs.kind == "adversarial" or needs_classifier(u.stage.loss)
           for u in units):
        classifier = ctx.classifier()
        modules = [name for name, _ in classifier.named_modules() if name]
        for s in stages:
            if s.params != "classifier":
                continue
            for name in s.freeze:
                if name not in modules and name != "classifier":
                    raise stage_error(recipe, s.name, "freeze", "E423",
                                      f"stage '{s.name}': cannot freeze '{name}': the classifier has no such module",
                                      did_you_mean(name, modules) or f"its modules: {', '.join(modules)}")
            if not classifier_params(classifier, s):
                raise stage_error(recipe, s.name, "freeze", "E420",
                                  f"stage '{s.name}' trains nothing: every classifier weight is frozen")
        for u in units:
            _setting(recipe, u.stage, "loss", lambda: build_terms(
                u.stage.loss, trains=u.trains, pipeline=compiled.get(u.target), classifier=classifier,
                eps_values=u.inputs.eps_values))
    return units, skipped


def _finish(recipe, u: Unit, compile_expr, classifier_for, defense_for, member_input, pipeline=None):
    s = u.stage
    if member_input is not None:
        u.inputs = _setting(recipe, s, "chain", lambda: PipelineInputs(_fixed(compile_expr(member_input))))
    else:
        u.inputs = _setting(recipe, s, "inputs", lambda: make_inputs(
            s.inputs, compile_expr=compile_expr, classifier=lambda: classifier_for(u),
            defense=lambda: defense_for(u)))
    u.terms = _setting(recipe, s, "loss", lambda: build_terms(
        s.loss, trains=u.trains, pipeline=pipeline, classifier=None, eps_values=u.inputs.eps_values))


def _fixed(pipeline):
    if pipeline.learnable:
        raise SettingError("a member's input pipeline is a fixed transform, but this one has learnable ops")
    return pipeline


def declared_lets(recipe) -> list[str]:
    return [d.name for d in recipe.declarations() if isinstance(d, n.Let)]


def nothing_to_train(recipe) -> FifError:
    """E420 for a recipe without a train section."""
    from .context import recipe_error
    return recipe_error(recipe, "E420", f"recipe '{recipe.name}' trains nothing: it has no train section",
                        "its defense is used as it is: evaluate it with `fif eval` (to train, add "
                        "`train { stage NAME { loss = l1 ... } }` and a learnable op)")


def unknown_pipeline(recipe, name: str) -> FifError:
    names = list(recipe.defenses())
    return FifError(diagnostic("E423", f"--only {name}: the recipe has no defense or variant named '{name}'",
                               file=recipe.file, hint=did_you_mean(name, names) or f"choose from {', '.join(names)}"))
