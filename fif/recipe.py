"""Recipes: a `.fif` file that names data, classifier, defense, training stages, evaluation and
variants. Parsed by the one fif parser, validated by pydantic models, errors positioned.

    recipe bitdepth {
      data = mnist5k(train=4000, test=1000)
      classifier = smallcnn(epochs=3)
      defense = bitdepth(2)
      eval { attacks = [fgsm, pgd(steps=40, step=0.01)]; eps = [0.1, 0.3]; threat = [graybox, adaptive] }
      variants { four = bitdepth(4) }
    }
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import FifError, Span, diagnostic, did_you_mean
from .passes.bind import number
from .sources import read_source
from .syntax import nodes as n
from .syntax.parser import parse
from .syntax.printer import expr as show, format_program

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class DataSpec(_Model):
    name: str = "mnist5k"
    train: int = Field(4000, ge=1)
    test: int = Field(1000, ge=1)
    seed: int = 0


class AdversarialSpec(_Model):
    eps: float = Field(0.3, gt=0, le=1)
    steps: int = Field(10, ge=1)
    step: Optional[float] = None
    ramp_epochs: int = Field(1, ge=0)


class ClassifierSpec(_Model):
    arch: str = "smallcnn"
    width: Optional[int] = Field(None, ge=1, description="channel width (smallcnn, resnet18)")
    epochs: int = Field(5, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch: int = Field(64, ge=1)
    optim: Literal["adam", "sgd"] = "adam"
    seed: int = 0
    adversarial: Optional[AdversarialSpec] = None

    def settings(self) -> dict:
        s = {"epochs": self.epochs, "lr": self.lr, "batch": self.batch, "optim": self.optim}
        if self.width is not None:
            s["width"] = self.width
        if self.adversarial is not None:
            s["adversarial"] = self.adversarial.model_dump()
        return s


class AttackSpec(_Model):
    name: str
    params: dict[str, Any] = {}

    def label(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in self.params.items()) + ")"


class EvalSpec(_Model):
    attacks: list[AttackSpec] = [AttackSpec(name="fgsm"), AttackSpec(name="pgd", params={"steps": 40, "step": 0.01})]
    eps: list[float] = [0.1, 0.2, 0.3]
    l2_eps: list[float] = Field([1.0, 2.0, 3.0], description="budgets for L2 attacks (cw), in L2 norm")
    threat: list[Literal["graybox", "whitebox", "adaptive", "transfer"]] = ["graybox", "whitebox", "adaptive"]
    n: int = Field(1000, ge=1)
    batch: int = Field(250, ge=1)
    eot: int = Field(8, ge=1, description="EOT draws for random defenses under the adaptive threat")
    seed: int = 0
    transfer: str = "lenet"

    @field_validator("l2_eps")
    @classmethod
    def _l2_range(cls, v):
        if any(e < 0 for e in v):
            raise ValueError("every l2_eps must be >= 0")
        return v

    @field_validator("eps")
    @classmethod
    def _eps_range(cls, v):
        for e in v:
            if not 0 <= e <= 1:
                raise ValueError(f"every eps must be in [0, 1] (images are in [0, 1]), got {e}")
        return v


class LossTerm(_Model):
    weight: float = 1.0
    name: Literal["l1", "mse", "ce", "feature", "rep"]
    args: dict[str, Any] = {}


class InputSpec(_Model):
    kind: Literal["clean", "noisy", "adversarial", "pipeline"] = "clean"
    args: dict[str, Any] = {}


class StageSpec(_Model):
    name: str
    params: str = "defense"
    freeze: list[str] = []
    inputs: InputSpec = InputSpec()
    loss: list[LossTerm] = [LossTerm(name="l1")]
    epochs: int = Field(1, ge=1)
    batch: int = Field(64, ge=1)
    optim: dict[str, Any] = {"name": "adam", "lr": 1e-3}
    schedule: Optional[dict[str, Any]] = None
    limit: Optional[int] = Field(None, ge=1, description="use only this many training images")
    chain: Optional[Any] = Field(None, description="params = classifier: N members, or a list of "
                                 "per-member input pipelines (syntax nodes); see fif.train")


class Recipe(_Model):
    """A validated recipe. `defense` and `variants` hold pipeline expressions (syntax nodes)."""

    name: str
    file: str = "<string>"
    source: str = ""
    data: DataSpec = DataSpec()
    classifier: ClassifierSpec = ClassifierSpec()
    defense: Any
    variants: dict[str, Any] = {}
    train: list[StageSpec] = []
    eval: EvalSpec = EvalSpec()
    program: Any = None

    def input_shape(self) -> tuple[int, int, int]:
        from .data import load_dataset
        ds = load_dataset(self.data.name, base=Path(self.file).parent if self.file != "<string>" else None)
        return tuple(ds.images.shape[1:])

    def defenses(self) -> dict[str, Any]:
        """The defense and each variant, by name, as pipeline expressions."""
        return {"defense": self.defense, **self.variants}

    def declarations(self) -> list:
        """The `let`s and `def`s in scope for the defense: the file's and the recipe's own."""
        decls = [i for i in self.program.items if isinstance(i, (n.Let, n.Def))]
        for r in self.program.recipes:
            decls += [e for e in r.entries if isinstance(e, (n.Let, n.Def))]
        return decls

    def compile(self, which: str = "defense", input_shape=None):
        """Build the defense (or a variant) as a `fif.Pipeline`; it must map an image to an image
        of the same shape. Errors point into the recipe file."""
        from .build import build
        from .kinds import TensorKind
        from .passes import analyze
        shape = tuple(input_shape or self.input_shape())
        expr = self.defenses()[which]
        try:
            plan = analyze(self.program, TensorKind("image", *shape), expression=expr, decls=self.declarations())
        except FifError as e:
            raise e.with_source(self.source, self.file) from None
        if plan.out != plan.input_kind:
            raise FifError(diagnostic(
                "E322", f"a defense must give back an image like its input, {plan.input_kind}; "
                f"'{which}' gives {plan.out}", _span_of(expr), file=self.file, source=self.source,
                hint="end it with `-> clamp` (features to image) or keep the channel count"))
        return build(replace(plan, source=self.pipeline_text(which)))

    def pipeline_text(self, which: str = "defense") -> str:
        """Stand-alone program text for one defense (its lets and defs in front), as
        `fif.compile` takes it."""
        prog = n.Program(tuple(self.declarations()) + (n.Statement(self.defenses()[which]),))
        return format_program(prog)


def _span_of(node) -> Span | None:
    return getattr(node, "span", None)


# ---- syntax -> plain values ---------------------------------------------------------------------

class _Convert:
    def __init__(self, file, source):
        self.file, self.source = file, source

    def fail(self, code, message, span, hint=None):
        raise FifError(diagnostic(code, message, span, hint=hint, file=self.file, source=self.source))

    def value(self, node):
        """Literal -> Python: numbers, strings, lists, bare names (-> str), calls (-> (name, kwargs))."""
        num = number(node)
        if num is not None:
            return num
        if isinstance(node, n.String):
            return node.value
        if isinstance(node, n.ListLit):
            return [self.value(i) for i in node.items]
        if isinstance(node, n.Call):
            if not node.args:
                if node.name in ("true", "false"):
                    return node.name == "true"
                return node.name
            return self.call(node)
        self.fail("E410", f"expected a value, got {show(node)}", node.span)

    def call(self, node: n.Call, positional: tuple[str, ...] = ()):
        kwargs = {}
        pos = [a for a in node.args if a.name is None]
        if len(pos) > len(positional):
            self.fail("E411", f"'{node.name}' takes keyword arguments here, e.g. {node.name}(steps=10)",
                      pos[len(positional)].span)
        for p, a in zip(positional, pos):
            kwargs[p] = self.value(a.value)
        for a in node.args:
            if a.name is not None:
                kwargs[a.name] = self.value(a.value)
        return (node.name, kwargs)


def _named_call(conv: _Convert, node, positional=()):
    v = conv.value(node) if not isinstance(node, n.Call) else (
        (node.name, {}) if not node.args else conv.call(node, positional))
    if isinstance(v, str):
        return v, {}
    if isinstance(v, tuple):
        return v
    conv.fail("E410", f"expected a name such as pgd or pgd(steps=10), got {show(node)}", node.span)


def _loss_terms(conv: _Convert, node) -> list[dict]:
    terms = node.terms if isinstance(node, n.Sum) else (node,)
    out = []
    for t in terms:
        factors = t.factors if isinstance(t, n.Product) else (t,)
        weight, call = 1.0, None
        for f in factors:
            num = number(f)
            if num is not None:
                weight *= num
            elif isinstance(f, n.Call) and call is None:
                call = f
            else:
                conv.fail("E412", f"a loss term is a number times a loss such as l1 or ce, got {show(f)}", f.span,
                          hint="e.g. loss = ce + 2 * rep")
        if call is None:
            conv.fail("E412", f"this loss term has no loss, only a weight: {show(t)}", t.span)
        args = {}
        for a in call.args:
            key = a.name or "on"
            args[key] = a.value if key in ("on", "input") else conv.value(a.value)
        out.append({"weight": weight, "name": call.name, "args": args, "_span": call.name_span})
    return out


def recipe_from_program(program: n.Program) -> Recipe:
    """Validate the single recipe in a parsed program."""
    file, source = program.file, program.source
    conv = _Convert(file, source)
    recipes = program.recipes
    if len(recipes) != 1:
        first = program.items[0].span if program.items else Span(1, 1, 2)
        conv.fail("E413",
                  "a recipe file holds exactly one `recipe NAME { ... }`" + (f", found {len(recipes)}" if recipes else ""),
                  recipes[1].span if len(recipes) > 1 else first)
    r = recipes[0]
    fields: dict[str, Any] = {"name": r.name, "file": file, "source": source, "program": program}
    spans: dict[tuple, Span] = {}
    seen: dict[str, n.FieldEntry | n.Section] = {}
    for e in r.entries:
        if isinstance(e, (n.Let, n.Def)):
            continue
        key = e.name if isinstance(e, n.FieldEntry) else e.kind
        if key in seen:
            conv.fail("E414", f"'{key}' is given twice in recipe '{r.name}'", e.name_span)
        seen[key] = e
        spans[(key,)] = e.name_span
        if isinstance(e, n.FieldEntry):
            _recipe_field(conv, e, fields, spans)
        else:
            _recipe_section(conv, e, fields, spans)
    if "defense" not in fields:
        conv.fail("E419", f"recipe '{r.name}' has no `defense = ...`", r.name_span,
                  hint="add a line such as `defense = bitdepth(4)`")
    try:
        return Recipe(**fields)
    except ValidationError as ve:
        err = ve.errors()[0]
        loc = tuple(x for x in err["loc"] if isinstance(x, str))
        span = None
        for i in range(len(loc), 0, -1):
            if loc[:i] in spans:
                span = spans[loc[:i]]
                break
        where = ".".join(loc)
        msg = err["msg"].removeprefix("Value error, ")
        hint = None
        if err["type"] == "extra_forbidden":
            model = _model_for(loc)
            hint = did_you_mean(loc[-1], model.model_fields) if model else None
            msg = f"unknown setting '{where}'"
        elif err["type"] == "literal_error":
            msg = f"{where}: {msg}"
        else:
            msg = f"{where}: {msg}"
        conv.fail("E415", msg, span, hint=hint)


_SECTION_MODELS = {"data": DataSpec, "classifier": ClassifierSpec, "eval": EvalSpec}


def _model_for(loc):
    if loc and loc[0] in _SECTION_MODELS:
        return _SECTION_MODELS[loc[0]]
    if loc and loc[0] == "train":
        return StageSpec
    return Recipe


def _recipe_field(conv, e: n.FieldEntry, fields, spans):
    v = e.value
    if e.name in ("defense",):
        fields["defense"] = v
    elif e.name == "data":
        # mnist5k(train=..), "digits.npz", or npz("digits.npz", train=..) / folder("images/", ...)
        if isinstance(v, n.Call) and v.name in ("npz", "folder"):
            _, kwargs = conv.call(v, positional=("path",))
            if not isinstance(kwargs.get("path"), str):
                conv.fail("E410", f"{v.name}(...) needs a path string first, e.g. {v.name}(\"data/digits.npz\")", v.span)
            name = kwargs.pop("path")
        else:
            name, kwargs = _named_call(conv, v)
        fields["data"] = {"name": name, **kwargs}
        _spans_for_args(v, ("data",), spans)
    elif e.name == "classifier":
        name, kwargs = _named_call(conv, v)
        if isinstance(kwargs.get("adversarial"), (int, float)):
            kwargs["adversarial"] = {"eps": kwargs["adversarial"]}
        elif isinstance(kwargs.get("adversarial"), tuple):
            kwargs["adversarial"] = kwargs["adversarial"][1]
        from .models import ARCHS
        if name not in ARCHS:
            conv.fail("E202", f"unknown classifier '{name}'", getattr(v, "name_span", v.span),
                      hint=did_you_mean(name, ARCHS) or f"choose one of {', '.join(ARCHS)}")
        fields["classifier"] = {"arch": name, **kwargs}
        _spans_for_args(v, ("classifier",), spans)
    else:
        conv.fail("E416", f"unknown recipe field '{e.name}'", e.name_span,
                  hint=did_you_mean(e.name, ["data", "classifier", "defense"])
                  or "fields are data, classifier, defense; sections are train, eval, variants")


def _spans_for_args(node, prefix, spans):
    if isinstance(node, n.Call):
        for a in node.args:
            if a.name:
                spans[prefix + (a.name,)] = a.name_span


def _recipe_section(conv, s: n.Section, fields, spans):
    if s.kind == "variants":
        variants = {}
        for e in s.entries:
            if not isinstance(e, n.FieldEntry):
                conv.fail("E417", "variants holds lines `name = pipeline`", e.span)
            variants[e.name] = e.value
        fields["variants"] = variants
    elif s.kind == "eval":
        ev = {}
        for e in _fields_only(conv, s):
            spans[("eval", e.name)] = e.name_span
            if e.name == "attacks":
                items = e.value.items if isinstance(e.value, n.ListLit) else (e.value,)
                ev["attacks"] = [dict(zip(("name", "params"), _named_call(conv, i))) for i in items]
                _check_attacks(conv, items)
            else:
                val = conv.value(e.value)
                ev[e.name] = [val] if e.name in ("eps", "l2_eps", "threat") and not isinstance(val, list) else val
        fields["eval"] = ev
    elif s.kind == "train":
        stages = []
        for i, st in enumerate(s.entries):
            if isinstance(st, n.Section) and st.kind == "stage":
                stages.append(_stage(conv, st, st.label or f"stage{i + 1}", spans, len(stages)))
            elif isinstance(st, n.FieldEntry):  # a one-stage train section without `stage`
                stages = [_stage(conv, s, "main", spans, 0)]
                break
            else:
                conv.fail("E418", "train holds `stage NAME { ... }` sections", st.span)
        fields["train"] = stages
    else:
        conv.fail("E416", f"unknown recipe section '{s.kind}'", s.name_span,
                  hint=did_you_mean(s.kind, ["train", "eval", "variants"]) or "sections are train, eval, variants")


def _fields_only(conv, s):
    for e in s.entries:
        if not isinstance(e, n.FieldEntry):
            conv.fail("E417", f"{s.kind} holds lines `name = value`", e.span)
        yield e


def _check_attacks(conv, items):
    from .attacks import ATTACKS
    for i in items:
        name = i.name if isinstance(i, n.Call) else None
        if name is not None and name not in ATTACKS:
            conv.fail("E251", f"unknown attack '{name}'", i.name_span,
                      hint=did_you_mean(name, ATTACKS) or f"attacks: {', '.join(ATTACKS)}")


def _stage(conv, s: n.Section, name, spans, index) -> dict:
    st: dict[str, Any] = {"name": name}
    for e in _fields_only(conv, s):
        spans[("train", index, e.name)] = e.name_span
        spans[("train", e.name)] = e.name_span
        if e.name == "loss":
            st["loss"] = _loss_terms(conv, e.value)
            for t in st["loss"]:
                t.pop("_span")
        elif e.name == "inputs":
            v = e.value
            if isinstance(v, n.Call) and v.name in ("clean", "noisy", "adversarial"):
                kind, args = _named_call(conv, v, ("sigma",) if v.name == "noisy" else ())
            else:  # a pipeline applied to the clean image, e.g. jpeg(50) -> noise(0.1)
                kind, args = "pipeline", {"pipeline": v}
            st["inputs"] = {"kind": kind, "args": args}
        elif e.name == "chain":  # a count, or a list of per-member input pipelines (kept as syntax)
            v = e.value
            st["chain"] = list(v.items) if isinstance(v, n.ListLit) else conv.value(v)
        elif e.name == "optim":
            kind, args = _named_call(conv, e.value)
            st["optim"] = {"name": kind, **args}
        elif e.name == "schedule":
            kind, args = _named_call(conv, e.value)
            st["schedule"] = {"name": kind, **args}
        elif e.name == "freeze":
            val = conv.value(e.value)
            st["freeze"] = val if isinstance(val, list) else [val]
        else:
            st[e.name] = conv.value(e.value)
    return st


def load_recipe(path) -> Recipe:
    """Read, parse and validate a recipe file; every error is a FifError with its position."""
    return recipe_from_program(parse(read_source(path, "recipe file"), str(path)))


def recipe_from_text(text: str, name: str = "<string>") -> Recipe:
    return recipe_from_program(parse(text, name))
