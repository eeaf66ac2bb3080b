"""Stratified, seeded train/test splits.

    train_ds, test_ds = split(mnist5k(), train=4000, test=1000, seed=0)   # 400 + 100 per class

Each class contributes to each part in proportion to its size (largest-remainder rounding, ties to
the lower class index), the samples are drawn with a seeded numpy PCG64 generator, and each part
comes back shuffled, so taking its first n samples gives a class-balanced subset too.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import error
from .datasets import Dataset


def _apportion(total: int, sizes: list[int]) -> list[int]:
    """Split `total` over groups in proportion to `sizes` (largest remainder; never above a size)."""
    whole = sum(sizes)
    if whole == 0:
        return [0] * len(sizes)
    exact = [s * total / whole for s in sizes]
    out = [int(e) for e in exact]
    left = total - sum(out)
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[:left]:
        out[i] += 1
    return out


def _indices(ds: Dataset, train: int, test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(ds)
    if train < 0 or test < 0:
        raise error("E405", f"split sizes must be >= 0, got train={train}, test={test}", file=ds.source)
    if train + test > n:
        raise error("E405", f"the split asks for {train} + {test} = {train + test} samples but "
                    f"dataset '{ds.name}' has only {n}", file=ds.source,
                    hint=f"ask for at most {n} samples in all")
    labels = ds.labels.numpy()
    by_class = [np.flatnonzero(labels == k) for k in range(ds.num_classes)]
    sizes = [len(ix) for ix in by_class]
    take = _apportion(train + test, sizes)
    to_test = _apportion(test, take)
    rng = np.random.default_rng(seed)
    train_ix, test_ix = [], []
    for ix, t, q in zip(by_class, take, to_test):
        chosen = rng.permutation(ix)[:t]
        test_ix.append(chosen[:q])
        train_ix.append(chosen[q:])
    train_ix = rng.permutation(np.concatenate(train_ix)) if train_ix else np.zeros(0, np.int64)
    test_ix = rng.permutation(np.concatenate(test_ix)) if test_ix else np.zeros(0, np.int64)
    return train_ix.astype(np.int64), test_ix.astype(np.int64)


def split(ds: Dataset, train: int = 4000, test: int = 1000, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Two disjoint, stratified, shuffled parts of `ds` with `train` and `test` samples."""
    train_ix, test_ix = _indices(ds, train, test, seed)
    return ds.subset(torch.from_numpy(train_ix)), ds.subset(torch.from_numpy(test_ix))


def holdout(ds: Dataset, train: int = 4000, test: int = 1000, seed: int = 0) -> Dataset:
    """The samples of `ds` in neither part of split(ds, train, test, seed), shuffled (seeded): data
    to tune a setting on without touching the training or the evaluated images."""
    train_ix, test_ix = _indices(ds, train, test, seed)
    used = np.zeros(len(ds), bool)
    used[train_ix] = True
    used[test_ix] = True
    rest = np.random.default_rng([seed, 1]).permutation(np.flatnonzero(~used)).astype(np.int64)
    return ds.subset(torch.from_numpy(rest))
