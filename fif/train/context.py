"""What a training run works on: the recipe's data split, its classifier, derived seeds, the device,
and errors that point into the recipe.

    ctx = Context(recipe, seed=0, device="cpu")
    ctx.train_ds            # the recipe's training split (data = mnist5k(train=4000, test=1000))
    ctx.classifier()        # the recipe's classifier, trained once and cached (fif.models)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from ..data import load_dataset, split
from ..errors import FifError, Span, diagnostic
from ..syntax import nodes as n


def derive_seed(*parts) -> int:
    """A 63-bit seed from any printable parts, the same in every process (unlike hash())."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


def check_device(device: str) -> str:
    """'cpu' or 'cuda[:i]'; E520 when CUDA is asked for and absent."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FifError(diagnostic("E520", f"device '{device}' was asked for, but CUDA is not available here",
                                      hint="use --device cpu (training on CPU gives bit-identical reruns)"))
        return device
    if device != "cpu":
        raise FifError(diagnostic("E520", f"unknown device '{device}'", hint="use cpu or cuda"))
    return device


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


def load_training_data(recipe):
    """(train, test) splits of the recipe's data; E404 when the images hold NaN or infinities."""
    base = Path(recipe.file).parent if recipe.file != "<string>" else None
    ds = load_dataset(recipe.data.name, base=base)
    bad = ~torch.isfinite(ds.images)
    if bool(bad.any()):
        first = int(bad.reshape(len(ds), -1).any(1).nonzero()[0])
        raise FifError(diagnostic(
            "E404", f"dataset '{ds.name}' holds {int(bad.sum())} NaN or infinite pixel value(s) "
            f"(the first in image {first}); training would turn them into NaN weights", file=ds.source,
            hint="fix or drop those images before training"))
    return split(ds, recipe.data.train, recipe.data.test, recipe.data.seed)


class Context:
    """The data, classifier, seed and device shared by every stage of a run."""

    def __init__(self, recipe, *, seed: int = 0, device: str = "cpu"):
        self.recipe, self.seed, self.device = recipe, int(seed), device
        self.train_ds, self.test_ds = load_training_data(recipe)
        self._classifier: nn.Module | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train_ds.shape

    def classifier(self) -> nn.Module:
        """The recipe's classifier (the same cached weights `fif eval` uses), on the device, eval mode."""
        if self._classifier is None:
            from ..models import get_classifier
            cs = self.recipe.classifier
            self._classifier = get_classifier(cs.arch, self.recipe.data.name, self.train_ds,
                                              settings=cs.settings(), seed=cs.seed, device=self.device,
                                              test_ds=self.test_ds)
            self._classifier.eval()
        return self._classifier

    def seed_for(self, *parts) -> int:
        return derive_seed(self.seed, *parts)
