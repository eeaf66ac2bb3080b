"""Recipes: a `.fif` file that names data, classifier, defense, training stages, evaluation and
variants. Parsed by the one fif parser; every field and argument bound when the file is loaded
(`fif.recipe_binding`), with all errors positioned and reported together; the pydantic models
below hold the bound values.

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
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import FifError, Span, diagnostic, did_you_mean
from .recipe_binding import THREATS
from .sources import read_source
from .syntax import nodes as n
from .syntax.parser import parse
from .syntax.printer import format_program


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class DataSpec(_Model):
    name: str = "mnist5k"
    train: int = Field(4000, ge=1)
    test: int = Field(1000, ge=1)
    seed: int = 0
    kind: Optional[str] = None        # cifar10, imagefolder: read by their own loaders (fif.data)
    size: Optional[int] = Field(None, ge=1)
    crop: Optional[int] = Field(None, ge=1)
    workers: Optional[int] = Field(None, ge=0)


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
    threat: list[Literal[THREATS]] = ["graybox", "whitebox", "adaptive"]
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
    draws: Literal["call", "step"] = "call"
    only: list[str] = []
    skip: list[str] = []

    def selects(self, target: str) -> bool:
        """Whether this stage trains `target` (the defense or a variant), by its only/skip lists."""
        return (not self.only or target in self.only) and target not in self.skip


class SearchSpec(_Model):
    """`search { ... }`: the table search (fif.search); defaults from fif.search.params."""

    attack: AttackSpec = AttackSpec(name="fgsm")
    eps: float = Field(0.1, gt=0, le=1)
    images: int = Field(1000, ge=1)
    adversarial: int = Field(200, ge=1)
    source: Literal["holdout", "train"] = "holdout"
    split: list[int] = Field(default_factory=lambda: list(_search_defaults()["split"]))
    af: list[int] = Field(default_factory=lambda: list(_search_defaults()["af"]))
    of: list[int] = Field(default_factory=lambda: list(_search_defaults()["of"]))
    max_drop: float = Field(0.01, ge=0, le=1)
    order: Literal["delta", "natural"] = "delta"
    color: Literal["rgb", "ycbcr"] = "rgb"
    batch: int = Field(500, ge=1)


def _search_defaults() -> dict:
    from .search.params import OF_STEPS, PAPER_AF, PAPER_SPLITS
    return {"split": PAPER_SPLITS, "af": PAPER_AF, "of": OF_STEPS}


class Recipe(_Model):
    """A validated recipe. `defense` and `variants` hold pipeline expressions (syntax nodes)."""

    name: str
    file: str = "<string>"
    source: str = ""
    data: DataSpec = DataSpec()
    classifier: ClassifierSpec = ClassifierSpec()
    defense: Any = None
    model: Any = None
    variants: dict[str, Any] = {}
    train: list[StageSpec] = []
    eval: EvalSpec = EvalSpec()
    search: Optional[SearchSpec] = None
    program: Any = None

    def input_shape(self) -> tuple[int, int, int]:
        from .recipe_models import data_info  # any source, streamed ones without decoding an image
        return data_info(self)[0]

    def defenses(self) -> dict[str, Any]:
        """The defense (or, in a recipe without one, the model) and each variant, by name, as
        pipeline expressions. Each is a defense (image -> image) or a whole model (-> logits)."""
        main = {"defense": self.defense} if self.defense is not None else {"model": self.model}
        return {**main, **self.variants}

    def declarations(self) -> list:
        """The `let`s and `def`s in scope for the defense: the file's and the recipe's own."""
        decls = [i for i in self.program.items if isinstance(i, (n.Let, n.Def))]
        for r in self.program.recipes:
            decls += [e for e in r.entries if isinstance(e, (n.Let, n.Def))]
        return decls

    def entry_declarations(self, which: str = "defense") -> list:
        """declarations(), plus `let defense = <the recipe's defense>` for a variant that names
        `defense` (a whole model such as `lenet = defense -> classifier(arch=lenet)`): it is the
        same defense, and `fif eval` gives it the defense's trained weights."""
        decls = self.declarations()
        expr = self.defenses()[which]
        if which == "defense" or self.defense is None or any(d.name == "defense" for d in decls):
            return decls
        from .passes.resolve import stage_calls
        if any(c.name == "defense" for c, _ in stage_calls(expr)):
            decls = decls + [n.Let("defense", self.defense)]
        return decls

    def compile(self, which: str = "defense", input_shape=None):
        """Build the defense (or a variant) as a `fif.Pipeline`; it must map an image to an image
        of the same shape (E322; whole models are compiled by `compile_model`). Errors point into
        the recipe file."""
        from .recipe_models import compile_entry, is_model
        pipeline = compile_entry(self, which, input_shape)
        if is_model(pipeline):
            expr = self.defenses()[which]
            raise FifError(diagnostic(
                "E322", f"'{which}' is a whole model (it ends in {pipeline.output_kind}), not a defense",
                _span_of(expr), file=self.file, source=self.source,
                hint="a defense maps an image to an image; the model is `defense -> classifier`"))
        return pipeline

    def compile_model(self, which: str | None = "defense", input_shape=None):
        """The model an evaluation attacks for `which` (None: the plain classifier), ending in logits."""
        from .recipe_models import compile_model
        return compile_model(self, which, input_shape)

    def pipeline_text(self, which: str = "defense") -> str:
        """Stand-alone program text for one defense (its lets and defs in front), as
        `fif.compile` takes it."""
        prog = n.Program(tuple(self.entry_declarations(which)) + (n.Statement(self.defenses()[which]),))
        return format_program(prog)


def _span_of(node) -> Span | None:
    return getattr(node, "span", None)


def recipe_from_program(program: n.Program) -> Recipe:
    """Bind and validate the single recipe in a parsed program (`fif.recipe_binding`): one FifError
    holding every diagnostic, sorted by position, or the Recipe."""
    from .recipe_binding import bind_recipe
    fields = bind_recipe(program)
    try:
        return Recipe(**fields)
    except ValidationError as ve:  # the binder checks everything first; this is a safety net
        err = ve.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        r = program.recipes[0]
        raise FifError(diagnostic("E415", f"{where}: {err['msg']}", r.name_span, file=program.file,
                                  source=program.source)) from None


def load_recipe(path) -> Recipe:
    """Read, parse and validate a recipe file; every error is a FifError with its position."""
    return recipe_from_program(parse(read_source(path, "recipe file"), str(path)))


def recipe_from_text(text: str, name: str = "<string>") -> Recipe:
    return recipe_from_program(parse(text, name))
