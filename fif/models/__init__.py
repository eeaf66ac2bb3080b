"""Classifiers: architectures, training (plain or adversarial), a disk cache, safetensors weights.

    from fif.models import get_classifier, accuracy
    model = get_classifier("smallcnn", "mnist5k", train_ds, settings={"epochs": 3})
"""

__all__ = ["ARCHS", "build_classifier", "train_classifier", "accuracy", "get_classifier", "cache_key",
           "default_cache_dir", "fingerprint", "save_weights", "load_weights", "read_weights",
           "atomic_write", "atomic_write_json"]

_WHERE = {"cache_key": "cache", "default_cache_dir": "cache", "fingerprint": "cache", "get_classifier": "cache",
          "ARCHS": "classifiers", "build_classifier": "classifiers", "accuracy": "training",
          "train_classifier": "training", "atomic_write": "weights", "atomic_write_json": "weights",
          "load_weights": "weights", "read_weights": "weights", "save_weights": "weights"}


def __getattr__(name):  # loaded on first use: binding a recipe's classifier settings needs no torch
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'fif.models' has no attribute {name!r}")
