"""What a recipe's `data = ...` may name, declared torch-free so recipes bind without importing torch.

    data = mnist5k(train=4000, test=1000, seed=0) | npz("digits.npz", train=900) | folder("photos/")
"""

from __future__ import annotations

from ..registry import REQUIRED, Catalog, Param

BUILTIN = ("mnist5k",)
BUILTIN_SIZES = {"mnist5k": 5000}

# What a recipe's `data = ...` names, with the split it asks for (bound when the recipe loads):
# data = mnist5k(train=4000, test=1000, seed=0) | npz("digits.npz", train=900) | folder("photos/")
_SPLIT = (Param("train", "int", 4000, low=1, doc="training images (stratified)"),
          Param("test", "int", 1000, low=1, doc="test images, disjoint from the training ones"),
          Param("seed", "int", 0, low=0, doc="the split's seed"))
_PATH = Param("path", "str", REQUIRED, doc="relative to the recipe's folder")
SOURCES: dict[str, tuple[Param, ...]] = {"mnist5k": _SPLIT, "npz": (_PATH, *_SPLIT), "folder": (_PATH, *_SPLIT)}
SOURCE_CATALOG = Catalog("data source", lambda: SOURCES)
