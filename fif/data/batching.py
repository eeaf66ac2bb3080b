"""Mini-batches for training and evaluation loops.

    gen = torch.Generator().manual_seed(0)
    for x, y in batches(train_ds, 128, shuffle=True, generator=gen): ...
"""

from __future__ import annotations

import torch

from .datasets import Dataset


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
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min(n, (b + 1) * self.batch_size)
            if order is None:
                x, y = self.ds.images[lo:hi], self.ds.labels[lo:hi]
            else:
                ix = order[lo:hi]
                x, y = self.ds.images[ix], self.ds.labels[ix]
            if self.device is not None:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield x, y


def batches(ds: Dataset, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
            *, drop_last: bool = False, device=None) -> Batches:
    """(x [B,C,H,W] float32, y [B] int64) batches of `ds`; the order is fixed by `generator` when shuffling."""
    return Batches(ds, batch_size, shuffle, generator, drop_last=drop_last, device=device)
