"""Mini-batches for training and evaluation loops.

    gen = torch.Generator().manual_seed(0)
    for x, y in batches(train_ds, 128, shuffle=True, generator=gen): ...

A streamed dataset (imagefolder) decodes only the batches taken, read ahead by its workers.
"""

from __future__ import annotations

import torch

from .datasets import Dataset
from .store import fetch


class Batches:
    """An iterable of (x, y) batches with a length; each pass draws a new order from `generator`."""

    def __init__(self, ds: Dataset, batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None, *, drop_last: bool = False, device=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.ds, self.batch_size, self.shuffle = ds, int(batch_size), shuffle
        self.generator, self.drop_last, self.device = generator, drop_last, device

    def __len__(self) -> int:
        n = len(self.ds)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.ds)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        spans = [(b * self.batch_size, min(n, (b + 1) * self.batch_size)) for b in range(len(self))]
        picks = [slice(lo, hi) if order is None else order[lo:hi] for lo, hi in spans]
        # a streamed dataset reads ahead only these batches (workers, prefetch); in memory: indexing
        for ix, x in zip(picks, fetch(self.ds.images, picks)):
            y = self.ds.labels[ix]
            if self.device is not None:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield x, y


def batches(ds: Dataset, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
            *, drop_last: bool = False, device=None) -> Batches:
    """(x [B,C,H,W] float32, y [B] int64) batches of `ds`; the order is fixed by `generator` when shuffling."""
    return Batches(ds, batch_size, shuffle, generator, drop_last=drop_last, device=device)
