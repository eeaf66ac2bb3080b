"""Datasets: the shipped MNIST subset, user `.npz` files and image folders, splits and batches.

    from fif.data import load_dataset, split, batches
    train_ds, test_ds = split(load_dataset("mnist5k"), train=4000, test=1000, seed=0)
"""

from .batching import Batches, batches
from .datasets import Dataset, from_arrays
from .loaders import BUILTIN, load_dataset, load_image_folder, load_npz, mnist5k
from .splits import split

__all__ = ["Dataset", "from_arrays", "mnist5k", "load_npz", "load_image_folder", "load_dataset",
           "BUILTIN", "split", "batches", "Batches"]
