"""What a recipe runs on, shared by `fif train` and `fif eval`: the device, derived seeds, the
recipe's data split and its cached classifier.

    device = check_device("cpu"); train_ds, test_ds = recipe_data(recipe)
    classifier = recipe_classifier(recipe, train_ds, test_ds, device=device)
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from .errors import FifError, diagnostic
from .kinds import LogitsKind


def check_device(device: str) -> str:
    """'cpu' or 'cuda[:i]'; E520 when CUDA is asked for and absent."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FifError(diagnostic("E520", f"device '{device}' was asked for, but CUDA is not available here",
                                      hint="use --device cpu"))
        return device
    if device != "cpu":
        raise FifError(diagnostic("E520", f"unknown device '{device}'", hint="use cpu or cuda"))
    return device


def derive_seed(*parts) -> int:
    """A 63-bit seed from any printable parts, the same in every process (unlike hash())."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


def recipe_data(recipe):
    """(train, test) splits of the recipe's data; E404 when the images hold NaN or infinities."""
    from .data import split
    from .recipe_models import recipe_dataset
    ds = recipe_dataset(recipe)
    d = recipe.data
    if d.kind == "cifar10":  # the training batches give the training split, the test batch the test split
        from .data.cifar import official_split
        train, test = official_split(ds)
        return _part(train, d.train, d.seed), _part(test, d.test, d.seed)
    if ds.streamed:  # imagefolder: stratified and seeded over the file list; images read batch by batch
        return split(ds, d.train, d.test, d.seed)
    bad = ~torch.isfinite(ds.images)
    if bool(bad.any()):
        first = int(bad.reshape(len(ds), -1).any(1).nonzero()[0])
        raise FifError(diagnostic(
            "E404", f"dataset '{ds.name}' holds {int(bad.sum())} NaN or infinite pixel value(s) "
            f"(the first in image {first})", file=ds.source, hint="fix or drop those images"))
    return split(ds, recipe.data.train, recipe.data.test, recipe.data.seed)


def _part(ds, count: int, seed: int):
    """A stratified, seeded, shuffled subset of `count` samples of `ds` (E405 when it has fewer)."""
    from .data import split
    return split(ds, count, 0, seed)[0]


def recipe_classifier(recipe, train_ds, test_ds, *, device: str = "cpu", arch: str | None = None,
                      seed_offset: int = 0, overrides: dict | None = None) -> nn.Module:
    """The recipe's classifier, trained once and cached (fif.models), in eval mode. `arch` and
    `seed_offset` give another model on the same settings, such as a transfer surrogate;
    `overrides` changes settings (a `classifier(adversarial=pgd(eps=0.3))` op in a model)."""
    from .models import get_classifier
    cs = recipe.classifier
    over = dict(overrides or {})
    arch = over.pop("arch", None) or arch or cs.arch
    seed = over.pop("seed", None)
    data_name = recipe.data.name
    encoded = over.pop("encoded", None)
    if encoded is not None:
        train_ds, test_ds, data_name = encode_data(recipe, encoded, train_ds, test_ds)
    settings = {k: v for k, v in cs.settings().items() if k != "width" or arch == cs.arch}
    if "adversarial" in over:
        from .recipe import AdversarialSpec
        adv = over.pop("adversarial")
        settings["adversarial"] = AdversarialSpec(**dict(adv.args)).model_dump()
    settings.update(over)
    from .distributed import main_first
    with main_first():  # under torchrun rank 0 trains and caches it, the others then read the cache
        model = get_classifier(arch, data_name, train_ds, settings=settings,
                               seed=(cs.seed if seed is None else seed) + seed_offset, device=device, test_ds=test_ds)
    return model.eval()


def encode_data(recipe, node, train_ds, test_ds):
    """(train, test, name): the recipe's images passed once through the fixed pipeline `node` (the
    `encoded=` of `classifier(encoded=thermometer(16))`), to train a classifier on the encoding."""
    from .compiler import compile_program
    from .data import Dataset
    from .recipe_models import compile_env
    from .syntax.printer import expr
    from .data.store import in_memory
    for ds in (train_ds, test_ds):
        if ds is not None:
            in_memory(ds, f"classifier(encoded={expr(node)})", span=getattr(node, "span", None), file=recipe.file,
                      source=recipe.source, hint="encode an in-memory source (npz(...), folder(...)); a streamed "
                      "imagefolder is never held whole")
    shape = tuple(train_ds.shape)
    pipeline = compile_program(recipe.program, shape, expression=node, decls=recipe.declarations(),
                               env=compile_env(recipe, shape, train_ds.num_classes)).eval()
    text = expr(node)
    if pipeline.learnable or pipeline.random or isinstance(pipeline.output_kind, LogitsKind):
        raise FifError(diagnostic("E238", f"classifier(encoded={text}): the encoding must be a fixed image "
                                  "transform (no weights, no randomness, no classifier)", getattr(node, "span", None),
                                  file=recipe.file, source=recipe.source, hint="e.g. encoded=thermometer(16)"))

    def encode(ds):
        with torch.no_grad():
            images = torch.cat([pipeline(ds.images[i:i + 500]) for i in range(0, len(ds), 500)])
        return Dataset(images.float().clamp(0, 1), ds.labels, ds.classes, f"{ds.name}+{text}", ds.source)

    return encode(train_ds), (None if test_ds is None else encode(test_ds)), f"{recipe.data.name}+{text}"
