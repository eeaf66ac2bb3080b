"""Datasets: the shipped MNIST subset, user `.npz` files and image folders, splits and batches.

    from fif.data import load_dataset, split, batches
    train_ds, test_ds = split(load_dataset("mnist5k"), train=4000, test=1000, seed=0)
"""

__all__ = ["Dataset", "from_arrays", "mnist5k", "load_npz", "load_image_folder", "load_dataset",
           "BUILTIN", "split", "holdout", "batches", "Batches", "folder_dataset", "LazyImages"]

_WHERE = {"Batches": "batching", "batches": "batching", "Dataset": "datasets", "from_arrays": "datasets",
          "BUILTIN": "sources", "load_dataset": "loaders", "load_image_folder": "loaders", "load_npz": "loaders",
          "mnist5k": "loaders", "split": "splits", "holdout": "splits",
          "folder_dataset": "stream", "LazyImages": "store"}


def __getattr__(name):  # loaded on first use: binding a recipe's `data = ...` needs no torch
    if name in _WHERE:
        import importlib
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'fif.data' has no attribute {name!r}")
