"""Trained classifiers, cached on disk so a recipe trains its classifier once.

    model = get_classifier("smallcnn", "mnist5k", train_ds, settings={"epochs": 3, "lr": 1e-3})

The cache file is `<cache_dir>/<arch>-<key>.safetensors` with a JSON sidecar `<arch>-<key>.json`
(settings, metrics, measured accuracy). The key hashes the arch, the data name, the data's shape
and a cheap content fingerprint, the settings with defaults filled in, the seed and torch's major
version. cache_dir: the argument, else `$FIF_CACHE`, else `~/.cache/fif`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ..data import Dataset
from ..errors import FifError, did_you_mean, error
from .classifiers import build_classifier
from .training import accuracy, train_classifier
from .weights import atomic_write_json, load_weights, save_weights

KEY_VERSION = 1
BUILD_SETTINGS = ("width",)
TRAIN_SETTINGS = ("epochs", "batch", "lr", "optim", "adversarial", "weight_decay", "schedule")
# smallcnn, 4,000 digits: 5 epochs of batch 64 reach about 98% on the 1,000 held out (3 of 128: 96%)
DEFAULT_SETTINGS = {"epochs": 5, "batch": 64, "optim": "adam"}


def default_cache_dir() -> Path:
    env = os.environ.get("FIF_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fif"


def fingerprint(ds: Dataset, samples: int = 65536) -> str:
    """A cheap content hash: every k-th pixel (about `samples` of them; a streamed set's files
    instead, fif.data.stream.FolderImages.fingerprint), all labels, class names."""
    h = hashlib.sha256()
    if ds.streamed:  # files, not pixels: decoding a streamed set to hash it would read it all
        h.update(ds.images.fingerprint().encode())
    else:
        flat = ds.images.detach().to("cpu").reshape(-1)
        stride = max(1, flat.numel() // samples)
        h.update(flat[::stride].contiguous().numpy().tobytes())
    h.update(ds.labels.detach().to("cpu").contiguous().numpy().tobytes())
    h.update("\0".join(ds.classes).encode())
    return h.hexdigest()[:16]


def resolve_settings(settings: dict | None) -> dict:
    """The settings with defaults filled in; unknown names are an E221 error."""
    settings = dict(settings or {})
    known = BUILD_SETTINGS + TRAIN_SETTINGS
    for name in settings:
        if name not in known:
            raise error("E221", f"unknown classifier setting '{name}'",
                        hint=did_you_mean(name, known) or f"the settings are {', '.join(known)}")
    out = {**DEFAULT_SETTINGS, **settings}
    return {k: v for k, v in out.items() if v is not None}


def cache_key(arch: str, data_name: str, train_ds: Dataset, settings: dict, seed: int = 0) -> str:
    major = torch.__version__.split(".")[0]
    blob = json.dumps({"v": KEY_VERSION, "arch": arch, "data": data_name,
                       "shape": list(train_ds.images.shape), "classes": len(train_ds.classes),
                       "fingerprint": fingerprint(train_ds), "settings": resolve_settings(settings),
                       "seed": int(seed), "torch": major},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _build(arch: str, train_ds: Dataset, settings: dict, seed: int) -> nn.Module:
    build = {k: settings[k] for k in BUILD_SETTINGS if k in settings}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build_classifier(arch, train_ds.shape, train_ds.num_classes, **build)


def get_classifier(arch: str, data_name: str, train_ds: Dataset, *, settings: dict | None = None,
                   seed: int = 0, cache_dir=None, device="cpu", test_ds: Dataset | None = None) -> nn.Module:
    """A trained classifier in eval mode: loaded from the cache, or trained (seeded) and cached.

    settings: width (resnet18, smallcnn) and train_classifier's epochs, batch, lr, optim,
    adversarial, weight_decay, schedule. A damaged cache file is retrained with a warning.
    test_ds, when given, is scored after training and its accuracy goes in the sidecar.
    """
    resolved = resolve_settings(settings)
    key = cache_key(arch, data_name, train_ds, resolved, seed)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = folder / f"{arch}-{key}.safetensors"
    model = _build(arch, train_ds, resolved, seed)
    if path.exists():
        try:
            meta = load_weights(model, path)
            if meta.get("fif_key") not in (None, key):
                raise error("E407", f"the file was saved under key {meta.get('fif_key')}, not {key}",
                            file=str(path))
            model.to(device).eval()
            return model
        except (FifError, RuntimeError, ValueError, OSError) as e:
            why = e.message if isinstance(e, FifError) else f"{type(e).__name__}: {e}"
            warnings.warn(f"classifier cache {path} is unusable ({why}); training it again",
                          RuntimeWarning, stacklevel=2)
            model = _build(arch, train_ds, resolved, seed)
    train = {k: resolved[k] for k in TRAIN_SETTINGS if k in resolved}
    metrics = train_classifier(model, train_ds, seed=seed, device=device, **train)
    model.eval()
    info = {"arch": arch, "data": data_name, "key": key, "seed": int(seed), "settings": resolved,
            "shape": list(train_ds.images.shape), "classes": list(train_ds.classes),
            "torch": torch.__version__, "train": {k: v for k, v in metrics.items()},
            "train_accuracy": accuracy(model, train_ds, device=device)}
    if test_ds is not None:
        info["test_accuracy"] = accuracy(model, test_ds, device=device)
    try:
        save_weights(model, path, metadata={"fif_key": key, "arch": arch, "data": data_name})
        atomic_write_json(path.with_suffix(".json"), info)
    except OSError as e:
        warnings.warn(f"could not write the classifier cache {path} ({e}); it will be trained again "
                      "next time (set FIF_CACHE to a writable folder)", RuntimeWarning, stacklevel=2)
    return model
