"""What a training run works on: the recipe's data split, its classifier, derived seeds, the device,
and errors that point into the recipe.

    ctx = Context(recipe, seed=0, device="cpu")
    ctx.train_ds            # the recipe's training split (data = mnist5k(train=4000, test=1000))
    ctx.classifier()        # the recipe's classifier, trained once and cached (fif.models)
"""

from __future__ import annotations

from torch import nn

from ..errors import FifError, Span, diagnostic
from ..runtime import check_device, derive_seed, recipe_classifier, recipe_data  # noqa: F401  (check_device re-exported)
from ..syntax import nodes as n


def _recipe_node(recipe):
    program = recipe.program
    return program.recipes[0] if program is not None and program.recipes else None


def _stage_node(recipe, stage_name: str):
    r = _recipe_node(recipe)
    if r is None:
        return None, None
    for e in r.entries:
        if isinstance(e, n.Section) and e.kind == "train":
            stages = [s for s in e.entries if isinstance(s, n.Section) and s.kind == "stage"]
            for i, s in enumerate(stages):
                if (s.label or f"stage{i + 1}") == stage_name:
                    return e, s
            return e, (e if not stages else None)
    return None, None


def stage_span(recipe, stage_name: str, field: str | None = None, *, value: bool = True) -> Span | None:
    """Where a stage's field (its value, or its name) is in the recipe file; else the stage's name."""
    train, stage = _stage_node(recipe, stage_name)
    if stage is not None and field is not None:
        for e in stage.entries:
            if isinstance(e, n.FieldEntry) and e.name == field:
                return getattr(e.value, "span", None) if value else e.name_span
    if stage is not None:
        return stage.name_span
    return train.name_span if train is not None else None


def stage_error(recipe, stage_name: str, field: str | None, code: str, message: str,
                hint: str | None = None) -> FifError:
    """A FifError pointing at `field` of stage `stage_name` in the recipe file."""
    return FifError(diagnostic(code, message, stage_span(recipe, stage_name, field), hint=hint,
                               file=recipe.file, source=recipe.source))


def recipe_error(recipe, code: str, message: str, hint: str | None = None) -> FifError:
    """A FifError pointing at the recipe's name."""
    r = _recipe_node(recipe)
    return FifError(diagnostic(code, message, r.name_span if r is not None else None, hint=hint,
                               file=recipe.file, source=recipe.source))


class Context:
    """The data, classifier, seed and device shared by every stage of a run."""

    def __init__(self, recipe, *, seed: int = 0, device: str = "cpu", amp: bool = False):
        self.recipe, self.seed, self.device, self.amp = recipe, int(seed), device, bool(amp)
        self.train_ds, self.test_ds = recipe_data(recipe)
        self._classifier: nn.Module | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train_ds.shape

    def classifier(self) -> nn.Module:
        """The recipe's classifier (the same cached weights `fif eval` uses), on the device, eval mode."""
        if self._classifier is None:
            self._classifier = recipe_classifier(self.recipe, self.train_ds, self.test_ds, device=self.device)
        return self._classifier

    def seed_for(self, *parts) -> int:
        return derive_seed(self.seed, *parts)
