"""Classifiers: architectures, training (plain or adversarial), a disk cache, safetensors weights.

    from fif.models import get_classifier, accuracy
    model = get_classifier("smallcnn", "mnist5k", train_ds, settings={"epochs": 3})
"""

from .cache import cache_key, default_cache_dir, fingerprint, get_classifier
from .classifiers import ARCHS, build_classifier
from .training import accuracy, train_classifier
from .weights import atomic_write, atomic_write_json, load_weights, read_weights, save_weights

__all__ = ["ARCHS", "build_classifier", "train_classifier", "accuracy", "get_classifier", "cache_key",
           "default_cache_dir", "fingerprint", "save_weights", "load_weights", "read_weights",
           "atomic_write", "atomic_write_json"]
