"""Images that stay where they are until a batch asks for them: the lazy `Dataset.images` of a
streamed source, and the few helpers every batch loop uses for both kinds of image store.

    data = imagefolder("~/data/imagenet/train", size=256, crop=224, train=20000, test=1000, workers=8)

    store[idx]                  # float32 [B, C, H, W]: only these images are decoded
    store.take(idx)             # a smaller store, nothing decoded
    for x in fetch(ds.images, [[0, 1, 2], [3, 4]]): ...   # read ahead by workers when streamed

An in-memory `Dataset.images` is a plain float32 tensor and `fetch` indexes it; a streamed one is
a `LazyImages` and `fetch` reads it through a torch DataLoader with workers and prefetch. What
would need every image at once (`.to(device)`, `.numpy()`, statistics over the whole set) is
E428 on a streamed store instead of a silent load of the whole folder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable, Iterator

import torch

from ..errors import error

# Images read per chunk when `load` gathers a run of indices (each chunk one DataLoader batch).
CHUNK = 256


class LazyImages(ABC):
    """A float32 [N, C, H, W] image store in [0, 1] that decodes on indexing. Subclasses give
    `__len__`, `sample_shape`, `read(indices) -> tensor`, `take(indices) -> LazyImages` and
    `fingerprint()`; `batches(lists)` may read ahead in parallel (default: one read a list)."""

    dtype = torch.float32
    source = ""

    @abstractmethod
    def __len__(self) -> int:
        """Given by each store."""

    @property
    @abstractmethod
    def sample_shape(self) -> tuple[int, int, int]:
        """Given by each store: (C, H, W)."""

    @abstractmethod
    def read(self, indices: list[int]) -> torch.Tensor:
        """Given by each store."""

    @abstractmethod
    def take(self, indices) -> "LazyImages":
        """Given by each store."""

    @abstractmethod
    def fingerprint(self) -> str:
        """Given by each store."""

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.sample_shape))

    def dim(self) -> int:
        return 4

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, int):
            return self.read([_wrap(key, len(self))])[0]
        return self.read(positions(key, len(self)))

    def batches(self, lists: list[list[int]]) -> Iterator[torch.Tensor]:
        for idx in lists:
            yield self.read(idx)

    def _whole(self, what: str):
        raise error("E428", f"{what} would read all {len(self)} images of the streamed dataset into memory",
                    file=self.source or "<string>", hint="index a batch (images[idx]) or iterate fif.data.batches(ds, ...); "
                                           "a streamed source is read batch by batch")

    def to(self, *args, **kwargs):
        self._whole("images.to(...)")

    def numpy(self):
        self._whole("images.numpy()")

    def __array__(self, *args, **kwargs):
        self._whole("numpy.asarray(images)")

    def __iter__(self):
        self._whole("iterating over the images")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, shape={tuple(self.sample_shape)}, source={self.source!r})"


def _wrap(i: int, n: int) -> int:
    j = i + n if i < 0 else i
    if not 0 <= j < n:
        raise IndexError(f"index {i} is out of range for {n} images")
    return j


def positions(key, n: int) -> list[int]:
    """The image positions an index names: an int, a slice, or a sequence / tensor of ints (or
    a boolean mask of length n)."""
    if isinstance(key, slice):
        return list(range(n))[key]
    if isinstance(key, int):
        return [_wrap(key, n)]
    t = torch.as_tensor(key)
    if t.dtype == torch.bool:
        if t.shape != (n,):
            raise IndexError(f"a boolean mask of shape {tuple(t.shape)} for {n} images")
        t = t.nonzero().reshape(-1)
    if t.is_floating_point() or t.dim() > 1:
        raise IndexError(f"images are indexed by ints, slices or 1-D int sequences, not {t.dtype} {tuple(t.shape)}")
    return [_wrap(int(i), n) for i in t.reshape(-1).tolist()]


def is_lazy(images) -> bool:
    return isinstance(images, LazyImages)


def fetch(images, lists: Iterable) -> Iterator[torch.Tensor]:
    """images[idx] for each index list, in order: indexing for a tensor, a read ahead (workers,
    prefetch) for a streamed store, so only the images of these batches are ever decoded."""
    if not is_lazy(images):
        for idx in lists:
            yield images[idx]
        return
    yield from images.batches([positions(idx, len(images)) for idx in lists])


def load(images, indices, *, chunk: int = CHUNK) -> torch.Tensor:
    """float32 [len(indices), C, H, W]: images[indices] (a slice or ints), read in chunks, in
    parallel, when streamed."""
    if not is_lazy(images):
        return images[indices]
    idx = positions(indices, len(images))
    parts = list(fetch(images, [idx[i:i + chunk] for i in range(0, len(idx), chunk)]))
    return torch.cat(parts) if parts else torch.zeros((0, *images.sample_shape))


def in_memory(ds, what: str, *, span=None, file=None, source=None, hint=None):
    """Refuse with E428 when `ds` is streamed and `what` needs all of its images at once."""
    if is_lazy(ds.images):
        raise error("E428", f"{what} needs every image of '{ds.name}' in memory, but it is streamed "
                    f"({len(ds)} images)", span, file=file or ds.source or "<string>", source=source,
                    hint=hint or "use an in-memory source (npz(...) or folder(...)) for this, or leave it out")
