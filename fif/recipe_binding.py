"""Binding a recipe: every field and every argument, typed and positioned, through the one binder
(`fif.passes.bind`), with all of a recipe's errors reported together when it is loaded.

    eval { attacks = [pgd(stepz=10)]; eps = [2] }   ->  E221 at `stepz` (did you mean 'steps'?)
                                                        and E224 at `2`, in one FifError

Data sources, classifiers, attacks, losses, inputs, optimizers and schedules declare their
parameters beside their code (`fif.data.SOURCES`, `fif.models.settings.CLASSIFIERS`,
`fif.attacks.ATTACKS[...].params`, `fif.train.losses.LOSSES`, ...); the scalar fields of `eval`
and of a training stage are declared here. What comes out is plain values for `fif.recipe.Recipe`.
"""

from __future__ import annotations

import difflib
from typing import Any

from .errors import DiagnosticSink, FifError, did_you_mean
from .passes.bind import INVALID, Bound, bind_call, bind_value, signature, thaw  # noqa: F401
from .registry import Param
from .syntax import nodes as n

THREATS = ("graybox", "whitebox", "adaptive", "transfer", "bpda", "known", "representation")
TOP_FIELDS = ("data", "classifier", "defense", "model")
SECTIONS = ("search", "train", "eval", "variants")


def eval_params() -> tuple[Param, ...]:
    """`eval { attacks = [...]; eps = [...]; threat = [...]; n = 200 }`."""
    from .attacks import ATTACK_CATALOG
    from .models.settings import WIDTHS as ARCHS
    return (
        Param("attacks", "call|list[call]", ("fgsm", "pgd(steps=40, step=0.01)"), catalog=ATTACK_CATALOG,
              doc="attacks with their settings"),
        Param("eps", "float|list[float]", (0.1, 0.2, 0.3), low=0.0, high=1.0, doc="L-inf budgets"),
        Param("l2_eps", "float|list[float]", (1.0, 2.0, 3.0), low=0.0, doc="budgets of L2 attacks (cw)"),
        Param("threat", "choice|list[choice]", ("graybox", "whitebox", "adaptive"), choices=THREATS,
              doc="threat models"),
        Param("n", "int", 1000, low=1, doc="test images"),
        Param("batch", "int", 250, low=1, doc="images per attack batch"),
        Param("eot", "int", 8, low=1, doc="EOT draws for random defenses under the adaptive threat"),
        Param("seed", "int", 0, low=0, doc="attack seed"),
        Param("transfer", "choice", "lenet", choices=tuple(ARCHS), doc="the transfer threat's surrogate"),
    )


class Binder:
    """One recipe's binding: the sink every error goes to, and what later checks need to know."""

    def __init__(self, program: n.Program, recipe: n.Recipe):
        self.sink = DiagnosticSink()
        self.recipe = recipe
        decls = list(program.items) + list(recipe.entries)
        self.lets = [d.name for d in decls if isinstance(d, n.Let)]
        self.defs = [d.name for d in decls if isinstance(d, n.Def)]
        self.arch: str | None = "smallcnn"  # the default classifier; None when the recipe's is unknown
        self.width: int | None = None
        self._meta = None

    def classifier_modules(self):
        """(the recipe's classifier on the meta device, its module names), or (None, None) when its
        arch is unknown."""
        if self.arch is None:
            return None, None
        if self._meta is None:
            from .models.settings import meta_classifier
            model = meta_classifier(self.arch, self.width)
            self._meta = (model, [m for m, _ in model.named_modules() if m])
        return self._meta

    def entry_names(self) -> list[str]:
        """The defense (`defense`, or `model` in a recipe without one) and the variants' names."""
        fields = [e.name for e in self.recipe.entries if isinstance(e, n.FieldEntry)]
        names = ["defense" if "defense" in fields else "model"]
        for s in self.recipe.entries:
            if isinstance(s, n.Section) and s.kind == "variants":
                names += [e.name for e in s.entries if isinstance(e, n.FieldEntry)]
        return names

    def error(self, code: str, message: str, span, hint: str | None = None) -> None:
        self.sink.add(code, message, span, hint=hint)

    def fields(self, what: str, params: tuple[Param, ...], entries) -> dict[str, tuple[Any, n.FieldEntry]]:
        """`name = value` lines bound to `params`: {name: (value, entry)} for the good ones. Unknown
        names (E221), names given twice (E225) and bad values are reported."""
        by_name = {p.name: p for p in params}
        out: dict[str, tuple[Any, n.FieldEntry]] = {}
        seen: set[str] = set()
        for e in entries:
            if not isinstance(e, n.FieldEntry):
                self.error("E417", f"{what} holds lines `name = value`", e.span)
                continue
            p = by_name.get(e.name)
            if p is None:
                self.error("E221", f"{what} has no setting '{e.name}'", e.name_span,
                           hint=did_you_mean(e.name, by_name) or f"the settings are {', '.join(by_name)}")
                continue
            if e.name in seen:
                self.error("E225", f"'{e.name}' is given twice in {what}", e.name_span, hint="give each setting once")
                continue
            seen.add(e.name)
            value = bind_value(p, e.value, self.sink)
            if value is not INVALID:
                out[e.name] = (value, e)
        return out

    # -- the recipe's fields and sections ---------------------------------------------------------
    def bind(self, file: str, source: str, program: n.Program) -> dict:
        r = self.recipe
        fields: dict[str, Any] = {"name": r.name, "file": file, "source": source, "program": program}
        seen: dict[str, n.FieldEntry | n.Section] = {}
        defense_misspelt = False
        for e in r.entries:
            if isinstance(e, (n.Let, n.Def)):
                continue
            key = e.name if isinstance(e, n.FieldEntry) else e.kind
            if isinstance(e, n.FieldEntry) and key not in TOP_FIELDS:
                hint = did_you_mean(key, TOP_FIELDS)
                defense_misspelt |= difflib.get_close_matches(key, TOP_FIELDS, 1, 0.6) == ["defense"]
                self.error("E416", f"unknown recipe field '{key}'", e.name_span, hint=hint or
                           "fields are data, classifier, defense, model; sections are search, train, eval, variants")
            elif isinstance(e, n.Section) and key not in SECTIONS:
                self.error("E416", f"unknown recipe section '{key}'", e.name_span,
                           hint=did_you_mean(key, SECTIONS) or "sections are search, train, eval, variants")
            elif key in seen:
                self.error("E414", f"'{key}' is given twice in recipe '{r.name}'", e.name_span)
            else:
                seen[key] = e
        for key in ("defense", "model"):  # pipelines: checked when compiled (fif compile RECIPE)
            if key in seen:
                fields[key] = seen[key].value
        if "defense" not in seen and "model" not in seen and not defense_misspelt:  # `defens` is reported already
            self.error("E419", f"recipe '{r.name}' has no `defense = ...` (nor a `model = ...`)", r.name_span,
                       hint="add a line such as `defense = bitdepth(4)`")
        if "data" in seen:
            fields["data"] = self.data(seen["data"].value)
        if "classifier" in seen:
            fields["classifier"] = self.classifier(seen["classifier"].value)
        if "eval" in seen:
            fields["eval"] = self.eval(seen["eval"])
        if "search" in seen:
            fields["search"] = self.search(seen["search"])
        if "train" in seen:
            from .recipe_stages import bind_train
            fields["train"] = bind_train(self, seen["train"])
        if "variants" in seen:
            fields["variants"] = self.variants(seen["variants"])
        return {k: v for k, v in fields.items() if v is not None}

    def data(self, node) -> dict | None:
        """`mnist5k(train=4000)`, `"digits.npz"`, `npz("digits.npz", test=500)`, `folder("photos/")`."""
        from .data.sources import BUILTIN_SIZES, SOURCE_CATALOG
        if isinstance(node, n.String):
            return {"name": node.value}
        if isinstance(node, n.Call) and node.name not in SOURCE_CATALOG.entries():
            self.error("E226", f"unknown data source '{node.name}'", node.name_span,
                       hint=did_you_mean(node.name, SOURCE_CATALOG.entries()) or
                       'use mnist5k (shipped), a path string, npz("file.npz") or folder("images/")')
            return None
        bound = bind_call(SOURCE_CATALOG, node, self.sink)
        if bound is None:
            return None
        args = dict(bound.args)
        name = args.pop("path", bound.name)
        size = BUILTIN_SIZES.get(name)
        split = {p.name: p.default for p in SOURCE_CATALOG.entries()[bound.name]} | args
        train, test = split["train"], split["test"]
        if size is not None and train + test > size:
            self.error("E405", f"the split asks for {train} + {test} = {train + test} images but {name} has "
                       f"only {size}", node.span, hint=f"ask for at most {size} in all")
        if bound.name in ("cifar10", "imagefolder"):
            args["kind"] = bound.name
        return {"name": name, **args}

    def classifier(self, node) -> dict | None:
        """`smallcnn(width=16, epochs=5, adversarial=pgd(eps=0.3))`, or a bare arch."""
        from .models.settings import CLASSIFIER_CATALOG
        bound = bind_call(CLASSIFIER_CATALOG, node, self.sink)
        if bound is None:  # with bad arguments the arch still serves later checks (its module names)
            known = isinstance(node, n.Call) and node.name in CLASSIFIER_CATALOG.entries()
            self.arch = node.name if known else None
            return None
        self.arch, self.width = bound.name, bound.args.get("width")
        args = thaw(dict(bound.args))
        if isinstance(args.get("adversarial"), Bound):
            args["adversarial"] = args["adversarial"].args
        return {"arch": bound.name, **args}

    def eval(self, s: n.Section) -> dict:
        got = self.fields("eval", eval_params(), s.entries)
        out = {k: thaw(v) for k, (v, _) in got.items()}
        if "attacks" in out:
            out["attacks"] = [{"name": b.name, "params": b.args} for b in out["attacks"]]
        return out

    def search(self, s: n.Section) -> dict:
        """`search { attack = fgsm; eps = 0.1; split = [...]; af = [...]; of = [...] }` (fif.search)."""
        from .attacks.params import NORMS
        from .search.params import search_params
        got = self.fields("search", search_params(), s.entries)
        out = {k: thaw(v) for k, (v, _) in got.items()}
        if "attack" in out:
            bound = out["attack"]
            if NORMS[bound.name] != "linf":
                self.error("E226", f"{bound.name} is an {NORMS[bound.name]} attack; the search's eps is an L-inf "
                           "budget", got["attack"][1].value.span, hint="use fgsm (the paper's), bim, pgd or mifgsm")
            out["attack"] = {"name": bound.name, "params": bound.args}
        images = out.get("images", 1000)
        if out.get("adversarial", 200) > images and "adversarial" in got:
            self.error("E415", f"adversarial = {out['adversarial']} examples are made from the benign images, but "
                       f"there are only images = {images}", got["adversarial"][1].value.span,
                       hint="ask for at most as many adversarial examples as benign images")
        return out

    def variants(self, s: n.Section) -> dict:
        out = {}
        for e in s.entries:
            if not isinstance(e, n.FieldEntry):
                self.error("E417", "variants holds lines `name = pipeline`", e.span)
            elif e.name in out:
                self.error("E414", f"variant '{e.name}' is given twice", e.name_span)
            else:
                out[e.name] = e.value
        return out


def bind_recipe(program: n.Program) -> dict:
    """The fields of the program's one recipe, bound; raises one FifError with every diagnostic,
    sorted by position, pointing into the recipe file."""
    file, source = program.file, program.source
    recipes = program.recipes
    if len(recipes) != 1:
        sink = DiagnosticSink()
        from .errors import Span
        first = program.items[0].span if program.items else Span(1, 1, 2)
        sink.add("E413", "a recipe file holds exactly one `recipe NAME { ... }`"
                 + (f", found {len(recipes)}" if recipes else ""), recipes[1].span if len(recipes) > 1 else first)
        raise FifError(sink.items).with_source(source, file)
    binder = Binder(program, recipes[0])
    fields = binder.bind(file, source, program)
    if binder.sink.items:
        raise FifError(binder.sink.items).with_source(source, file)
    return fields


def catalog() -> dict[str, dict[str, str]]:
    """Every signature a recipe can use, by family: {family: {name: signature}} (`fif ops --recipe`)."""
    from .attacks.params import BY_NAME as ATTACK_PARAMS
    from .data.sources import SOURCES
    from .models.settings import CLASSIFIERS
    from .recipe_stages import stage_params
    from .search.params import search_params
    from .train.params import INPUTS
    from .train.params import LOSSES
    from .train.params import OPTIMIZER_PARAMS, SCHEDULE_PARAMS
    families = {"data": SOURCES, "classifier": CLASSIFIERS, "attack": ATTACK_PARAMS,
                "loss": LOSSES, "inputs": INPUTS, "optim": OPTIMIZER_PARAMS, "schedule": SCHEDULE_PARAMS,
                "section": {"eval": eval_params(), "stage": stage_params(), "search": search_params()}}
    return {family: {name: signature(name, params) for name, params in entries.items()}
            for family, entries in families.items()}
