"""Binding a recipe's `train` section: each stage's settings, loss terms, inputs, optimizer and
schedule through the one binder, then the checks between them that need no data and no training
(lets, classifier modules, `min_eps` against the eps list, chains), all positioned.

    stage s { inputs = adversarial(attack=pgd, eps=[0.1, 0.3], steps=10); loss = l1 + l1(m, min_eps=0.2) }
    stage t { inputs = adversarial(attack=fgsm, eps=uniform(0, 0.3)); loss = mse }

`adversarial(...)` takes the attack's own settings as further keywords (`steps=10` above); they are
bound against that attack's parameters and end up in `attack`: Bound('pgd', {'steps': 10}).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .errors import did_you_mean
from .passes.bind import Bound, arg_span, bind_args, bind_call, number, thaw
from .registry import Param
from .syntax import nodes as n
from .syntax.printer import expr as show

if TYPE_CHECKING:  # the binder hands itself in; importing it here would be a cycle
    from .recipe_binding import Binder


def stage_params() -> tuple[Param, ...]:
    """`stage NAME { params = ...; inputs = ...; loss = ...; epochs = 2; optim = adam(lr=2e-4) }`."""
    from .train.params import OPTIMIZER_CATALOG, SCHEDULE_CATALOG
    return (
        Param("params", "str", "defense", doc="defense, classifier, or a let of the defense"),
        Param("freeze", "str|list[str]", (), doc="lets (defense stages) or classifier modules held fixed"),
        Param("inputs", "pipeline", "clean", doc="clean | noisy(sigma) | adversarial(attack, eps, against) | a pipeline"),
        Param("loss", "pipeline", "l1", doc="a weighted sum of l1, mse, ce, feature, rep terms"),
        Param("epochs", "int", 1, low=1),
        Param("batch", "int", 64, low=1),
        Param("optim", "call", "adam", catalog=OPTIMIZER_CATALOG),
        Param("schedule", "call", "constant", catalog=SCHEDULE_CATALOG),
        Param("limit", "int", None, low=1, doc="use only this many training images"),
        Param("chain", "int|list[pipeline]", None, low=1,
              doc="fine-tune N classifiers in a row, or one per input pipeline (params = classifier)"),
        Param("draws", "choice", "call", choices=("call", "step"),
              doc="the defense's random draws: fresh at every call, or one per training step (shared by "
                  "the adversarial inputs, the defended image and every loss term)"),
        Param("only", "str|list[str]", (), doc="train only these pipelines (defense or variant names)"),
        Param("skip", "str|list[str]", (), doc="do not train these pipelines (defense or variant names)"),
    )


def bind_train(b: Binder, s: n.Section) -> list[dict]:
    """The stages of `train { stage a { ... } stage b { ... } }` (or of a one-stage section)."""
    if any(isinstance(e, n.FieldEntry) for e in s.entries):  # a one-stage train section without `stage`
        return [_stage(b, s, "main")]
    stages, labels, chains = [], set(), []
    for i, st in enumerate(s.entries):
        if not (isinstance(st, n.Section) and st.kind == "stage"):
            b.error("E418", "train holds `stage NAME { ... }` sections", st.span)
            continue
        name = st.label or f"stage{i + 1}"
        if name in labels:
            b.error("E414", f"stage '{name}' is given twice", st.name_span, hint="give each stage its own name")
        labels.add(name)
        stage = _stage(b, st, name)
        stages.append(stage)
        if "chain" in stage:
            chains.append((name, _field(st, "chain")))
    for name, entry in chains[1:]:
        b.error("E423", f"stage '{name}': only one stage may fine-tune a classifier chain", entry.value.span)
    return stages


def _field(s: n.Section, name: str) -> n.FieldEntry | None:
    return next((e for e in s.entries if isinstance(e, n.FieldEntry) and e.name == name), None)


def _stage(b: Binder, s: n.Section, name: str) -> dict:
    got = b.fields(f"stage '{name}'", stage_params(), s.entries)
    st: dict = {"name": name}
    for key in ("params", "epochs", "batch", "limit", "draws"):
        if key in got:
            st[key] = got[key][0]
    for key in ("freeze", "only", "skip"):
        if key in got:
            st[key] = list(got[key][0])
    for key in ("optim", "schedule"):
        if key in got:
            bound = got[key][0]
            st[key] = {"name": bound.name, **thaw(bound.args)}
    if "chain" in got:
        chain = got["chain"][0]
        st["chain"] = list(chain) if isinstance(chain, tuple) else chain
    inputs = bind_inputs(b, got["inputs"][0]) if "inputs" in got else None
    if inputs is not None:
        st["inputs"] = inputs
    terms, ok = bind_loss(b, got["loss"][0]) if "loss" in got else (None, False)
    if ok:
        st["loss"] = [t for t, _ in terms]
    _check(b, s, name, st, got, terms, inputs)
    return st


# ---- inputs ---------------------------------------------------------------------------------------

def bind_inputs(b: Binder, node) -> dict | None:
    """clean | noisy(sigma, clip) | adversarial(attack, eps, against, ...) | a fixed pipeline."""
    from .registry import all_ops
    from .train.params import INPUT_CATALOG, INPUTS
    if isinstance(node, n.Call) and node.name == "adversarial":
        return _adversarial(b, node)
    if isinstance(node, n.Call) and node.name in INPUTS:
        bound = bind_call(INPUT_CATALOG, node, b.sink)
        return None if bound is None else {"kind": bound.name, "args": thaw(bound.args)}
    if isinstance(node, n.Call) and node.name not in all_ops() and node.name not in b.lets + b.defs:
        b.error("E226", f"'{node.name}' is neither an inputs kind nor an op", node.name_span,
                hint=did_you_mean(node.name, list(INPUTS) + list(all_ops())) or
                "inputs are clean, noisy(sigma=...), adversarial(eps=...), or a pipeline such as bitdepth(4)")
        return None
    return {"kind": "pipeline", "args": {"pipeline": node}}


def _adversarial(b: Binder, call: n.Call) -> dict | None:
    """adversarial(attack=pgd(steps=40), eps=[0.1, 0.3], against=defense, step=0.02)."""
    from .attacks.params import BY_NAME, NORMS
    from .train.params import INPUTS
    own = INPUTS["adversarial"]
    attack = next((a.value for a in call.args if a.name == "attack"), None)
    if attack is None:
        attack = next((a.value for a in call.args if a.name is None), None)
    name = attack.name if isinstance(attack, n.Call) else "pgd" if attack is None else None
    if name in BY_NAME:
        params = own + BY_NAME[name]
    else:  # the attack is reported; settings some attack has cannot be checked, others can
        params = own
        theirs = {p.name for params in BY_NAME.values() for p in params} - {p.name for p in own}
        call = replace(call, args=tuple(a for a in call.args if a.name not in theirs))
    args = bind_args("adversarial", params, call, b.sink, fill_defaults=False)
    if args is None:
        return None
    chosen = args.pop("attack", Bound("pgd", {}))
    extra = {k: args.pop(k) for k in list(args) if k not in {p.name for p in own}}
    for k in extra:
        if k in chosen.args:
            b.error("E225", f"'{k}' is given twice: in attack={chosen.name}(...) and in adversarial(...)",
                    next(a.name_span for a in call.args if a.name == k), hint="give each setting once")
            return None
    eps = args.get("eps")
    if isinstance(eps, Bound) and eps.args["low"] > eps.args["high"]:
        b.error("E224", f"eps=uniform(low, high) needs low <= high, got {eps.args['low']:g} > {eps.args['high']:g}",
                arg_span(params, call, "eps"), hint=f"write uniform({eps.args['high']:g}, {eps.args['low']:g})")
        return None
    if NORMS[chosen.name] != "linf":
        b.error("E226", f"{chosen.name} is an {NORMS[chosen.name]} attack; training pairs use L-inf "
                "budgets", attack.span, hint="use pgd, fgsm, bim, mifgsm or apgd")
        return None
    return {"kind": "adversarial", "args": thaw({**args, "attack": Bound(chosen.name, {**chosen.args, **extra})})}


# ---- loss -----------------------------------------------------------------------------------------

def bind_loss(b: Binder, node) -> tuple[list[tuple[dict, n.Call]], bool]:
    """`ce + 2 * rep(eps=8/255)` -> ([({weight, name, args}, call), ...], no errors): the terms that
    bound, so the checks between settings still run on them after an error in another term."""
    from .train.params import LOSS_CATALOG
    out, ok = [], True
    for t in node.terms if isinstance(node, n.Sum) else (node,):
        weight, call = 1.0, None
        for f in t.factors if isinstance(t, n.Product) else (t,):
            num = number(f)
            if num is not None:
                weight *= num
            elif isinstance(f, n.Call) and call is None:
                call = f
            else:
                b.error("E412", f"a loss term is a number times a loss such as l1 or ce, got {show(f)}", f.span,
                        hint="e.g. loss = ce + 2 * rep")
                ok, call = False, None
                break
        else:
            if call is None:
                b.error("E412", f"this loss term has no loss, only a weight: {show(t)}", t.span)
                ok = False
        bound = bind_call(LOSS_CATALOG, call, b.sink) if call is not None else None
        if bound is None:
            ok = False
            continue
        out.append(({"weight": weight, "name": bound.name, "args": thaw(bound.args)}, call))
    return out, ok


# ---- checks between a stage's settings ---------------------------------------------------------------

def _check(b: Binder, s: n.Section, name: str, st: dict, got: dict, terms, inputs) -> None:
    from .train.params import LOSSES
    params = st.get("params", "defense")
    known = ["defense", "classifier", *b.lets]
    if params not in known:
        b.error("E423", f"stage '{name}': params = {params} names nothing to train", got["params"][1].value.span,
                hint=did_you_mean(params, known) or "params is defense, classifier, or a let of the defense "
                f"({', '.join(b.lets) or 'none here'})")
        return
    trains = "classifier" if params == "classifier" else "defense"
    if trains == "classifier" and "loss" not in got:
        b.error("E423", f"stage '{name}' trains the classifier, and its default loss l1 compares a defense's "
                "output with the clean image", s.name_span, hint="give it a loss such as `loss = ce`")
    eps_values = inputs["args"]["eps"] if inputs is not None and inputs["kind"] == "adversarial" else None
    if isinstance(eps_values, Bound):  # uniform(low, high): the largest eps a sample can draw is high
        eps_values = [eps_values.args["low"], eps_values.args["high"]]
    for t, call in terms or ():
        ps = LOSSES[t["name"]]
        on, min_eps = t["args"].get("on"), t["args"].get("min_eps", 0.0)
        if t["name"] in ("l1", "mse") and trains == "classifier":
            b.error("E423", f"{t['name']} compares a defense's output with the clean image; stage '{name}' trains "
                    "the classifier, which outputs logits", call.name_span, hint="use ce, feature or rep")
        elif t["name"] in ("l1", "mse") and on not in (None, "output") and on not in b.lets:
            b.error("E226", f"'{on}' is not a let of this recipe", arg_span(ps, call, "on"),
                    hint=did_you_mean(on, b.lets) or f"l1(NAME) compares the output of `let NAME` with the clean "
                    "image; `l1` alone uses the defense's output")
        layer = t["args"].get("layer", "logits")
        if t["name"] == "feature" and layer != "logits":
            modules = b.classifier_modules()[1]
            if modules is not None and layer not in modules:
                b.error("E226", f"the classifier {b.arch} has no layer '{layer}'", arg_span(ps, call, "layer"),
                        hint=did_you_mean(layer, modules) or f"its layers: logits, {', '.join(modules)}")
        if min_eps > 0 and "inputs" in got and inputs is None:
            continue  # the inputs are reported already
        if min_eps > 0 and eps_values is None:
            b.error("E423", f"{t['name']}(min_eps=...) routes samples by their adversarial eps, but stage "
                    f"'{name}' has no adversarial inputs", arg_span(ps, call, "min_eps"),
                    hint="use inputs = adversarial(eps=[...])")
        elif min_eps > 0 and not any(e >= min_eps for e in eps_values):
            b.error("E423", f"{t['name']}(min_eps={min_eps:g}) would count no sample: the largest eps is "
                    f"{max(eps_values):g}", arg_span(ps, call, "min_eps"))
    if "freeze" in got:
        _check_freeze(b, name, trains, got["freeze"][1].value, st["freeze"])
    _check_selection(b, name, trains, got, st)
    if "chain" in got:
        _check_chain(b, name, trains, got, st, inputs)
    optim = st.get("optim", {})
    if optim.get("name") == "sgd" and optim.get("nesterov") and (optim.get("momentum", 0.0) <= 0
                                                                  or optim.get("dampening", 0.0) != 0):
        from .train.params import OPTIMIZER_PARAMS
        b.error("E423", f"stage '{name}': nesterov needs momentum > 0 and dampening = 0",
                arg_span(OPTIMIZER_PARAMS["sgd"], got["optim"][1].value, "nesterov"),
                hint="e.g. sgd(lr=0.01, momentum=0.9, nesterov=true)")


def _check_freeze(b: Binder, name, trains, node, names) -> None:
    spans = [i.span for i in node.items] if isinstance(node, n.ListLit) else [node.span] * len(names)
    if trains == "defense":
        known = ["defense", "classifier", *b.lets]
        for f, span in zip(names, spans):
            if f not in known:
                b.error("E423", f"stage '{name}': cannot freeze '{f}': no such let", span,
                        hint=did_you_mean(f, known) or f"choose from {', '.join(known)}")
        return
    model, modules = b.classifier_modules()
    if modules is None:
        return
    unknown = [(f, span) for f, span in zip(names, spans) if f not in modules and f != "classifier"]
    for f, span in unknown:
        b.error("E423", f"stage '{name}': cannot freeze '{f}': the classifier has no such module", span,
                hint=did_you_mean(f, modules) or f"its modules: {', '.join(modules)}")
    if unknown:
        return
    held = {id(p) for f in names if f != "classifier" for p in model.get_submodule(f).parameters()}
    if all(id(p) in held for p in model.parameters()):
        b.error("E420", f"stage '{name}' trains nothing: every classifier weight is frozen", node.span)


def _check_selection(b: Binder, name, trains, got, st) -> None:
    """`only` / `skip` name the defense (or model) and variants; not both; not on classifier stages."""
    given = [k for k in ("only", "skip") if k in got]
    if not given:
        return
    node = got[given[0]][1]
    if trains == "classifier":
        b.error("E423", f"stage '{name}': {given[0]} picks the pipelines a defense stage trains; this stage "
                "trains the classifier", node.name_span)
        return
    if len(given) == 2:
        b.error("E423", f"stage '{name}': give only or skip, not both", got["skip"][1].name_span)
        return
    known = b.entry_names()
    value = node.value
    spans = [i.span for i in value.items] if isinstance(value, n.ListLit) else [value.span] * len(st[given[0]])
    for target, span in zip(st[given[0]], spans):
        if target not in known:
            b.error("E226", f"stage '{name}': '{target}' is neither the defense nor a variant", span,
                    hint=did_you_mean(target, known) or f"choose from {', '.join(known)}")
    if given[0] == "skip" and set(known) <= set(st["skip"]):
        b.error("E420", f"stage '{name}' skips every pipeline, so it trains nothing", node.value.span)


def _check_chain(b: Binder, name, trains, got, st, inputs) -> None:
    span = got["chain"][1].value.span
    if trains != "classifier":
        b.error("E423", f"stage '{name}': chain fine-tunes classifiers; it needs params = classifier", span)
    elif isinstance(st["chain"], list) and not st["chain"]:
        b.error("E423", f"stage '{name}': chain is empty", span)
    elif isinstance(st["chain"], list) and inputs is not None and (inputs["kind"] != "clean" or inputs["args"]):
        b.error("E423", f"stage '{name}': chain lists each member's inputs; drop `inputs`",
                got["inputs"][1].value.span, hint="chain = [jpeg(90) -> noise(0.02), jpeg(80) -> noise(0.02)]")
