"""What a recipe's `data = ...` may name, declared torch-free so recipes bind without importing torch.

    data = mnist5k(train=4000, test=1000, seed=0) | npz("digits.npz", train=900) | folder("photos/")
    data = cifar10("~/data/cifar-10-batches-bin", train=50000, test=10000)
    data = imagefolder("~/data/imagenet/val", size=256, crop=224, test=1000, workers=8)
"""

from __future__ import annotations

from ..registry import REQUIRED, Catalog, Param

BUILTIN = ("mnist5k",)
BUILTIN_SIZES = {"mnist5k": 5000}
# (image shape, number of classes) of each shipped dataset, so that compiling a recipe's pipelines
# needs no images (loading and converting mnist5k was ~50 ms of a cold compile); tests/test_data.py
# checks these against the loaded data.
BUILTIN_INFO = {"mnist5k": ((1, 28, 28), 10)}

# What a recipe's `data = ...` names, with the split it asks for (bound when the recipe loads):
# data = mnist5k(train=4000, test=1000, seed=0) | npz("digits.npz", train=900) | folder("photos/")
_SPLIT = (Param("train", "int", 4000, low=1, doc="training images (stratified)"),
          Param("test", "int", 1000, low=1, doc="test images, disjoint from the training ones"),
          Param("seed", "int", 0, low=0, doc="the split's seed"))
_PATH = Param("path", "str", REQUIRED, doc="relative to the recipe's folder")
# Streamed sources: read batch by batch through a torch DataLoader with workers, never all at once.
STREAMED = ("imagefolder",)
_STREAM = (Param("size", "int", 256, low=1, doc="resize so the shorter side has this many pixels"),
           Param("crop", "int", 224, low=1, doc="then take the centre crop of crop x crop pixels"),
           Param("workers", "int", 4, low=0, doc="DataLoader worker processes (0: read in the main process)"))
SOURCES: dict[str, tuple[Param, ...]] = {
    "mnist5k": _SPLIT, "npz": (_PATH, *_SPLIT), "folder": (_PATH, *_SPLIT),
    # the training batches make the training split, the test batch the test split (both seeded subsets)
    "cifar10": (_PATH, Param("train", "int", 50000, low=1, doc="images from the training batches"),
                Param("test", "int", 10000, low=1, doc="images from the test batch"), _SPLIT[2]),
    "imagefolder": (_PATH, *_SPLIT, *_STREAM),
}
SOURCE_CATALOG = Catalog("data source", lambda: SOURCES)
