"""ImageNet-style class folders streamed through a torch DataLoader with workers: each image is
read, resized (shorter side to `size`) and centre-cropped to `crop` x `crop` when a batch asks
for it, never all at once.

    data = imagefolder("~/data/imagenet/train", size=256, crop=224, train=20000, test=1000, workers=8)

    ds = folder_dataset("~/data/imagenet/train", size=256, crop=224, workers=8)   # lists files only
    train, test = split(ds, 20000, 1000)              # still streamed: ds.images is a FolderImages
    for x, y in batches(train, 256, shuffle=True): ...  # float32 [256, 3, 224, 224], read ahead by 8 workers

The files and labels come from fif.data.loaders.image_files (the same rules as `folder(...)`);
images are RGB (grey images are converted). A recipe's splits are stratified and seeded over the
file list like every other source; batch loops read them through fif.data.store.fetch.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import FifError, error
from .datasets import Dataset, check_classes
from .loaders import image_files
from .store import LazyImages, load, positions

# fingerprint(): every path, and the size and modification time of at most this many files
_STAT_SAMPLE = 4096


class FolderImages(LazyImages):
    """The images of a list of files, each decoded (read_image) only when indexed or fetched."""

    def __init__(self, files, *, size: int, crop: int, workers: int = 4, source: str = ""):
        self.files = [str(f) for f in files]
        self.size, self.crop, self.workers, self.source = int(size), int(crop), int(workers), source

    def __len__(self) -> int:
        return len(self.files)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (3, self.crop, self.crop)

    def take(self, indices) -> "FolderImages":
        return FolderImages([self.files[i] for i in positions(indices, len(self))], size=self.size,
                            crop=self.crop, workers=self.workers, source=self.source)

    def read(self, indices: list[int]) -> torch.Tensor:
        try:
            parts = [read_image(self.files[i], self.size, self.crop) for i in indices]
        except _Unreadable as e:
            raise error("E402", f"cannot read the image: {e.why}", file=e.path,
                        hint="remove or re-save the file") from None
        return torch.stack(parts) if parts else torch.zeros((0, *self.sample_shape))

    def batches(self, lists):
        """Each list's images, read ahead by `workers` processes (prefetch 2 batches each)."""
        extra = {"prefetch_factor": 2} if self.workers > 0 else {}
        loader = torch.utils.data.DataLoader(_Decoder(self.files, self.size, self.crop),
                                             batch_sampler=[list(b) for b in lists],
                                             num_workers=self.workers, persistent_workers=False,
                                             generator=torch.Generator(), **extra)  # leaves torch's RNG alone
        try:
            yield from loader
        except FifError:
            raise
        except _Unreadable as e:  # in this process (workers=0): path and reason
            if e.why:
                raise error("E402", f"cannot read the image: {e.why}", file=e.path,
                            hint="remove or re-save the file") from None
            raise self._unreadable(e) from None
        except Exception as e:  # DataLoader re-raises a worker's exception with only its message kept
            raise self._unreadable(e) from None

    def _unreadable(self, e: Exception) -> FifError:
        args = getattr(e, "args", ())
        text = str(args[0]) if args else str(e)
        return error("E402", f"cannot read an image: {text}", file=self.source or "<string>",
                     hint="remove or re-save the file")

    def fingerprint(self) -> str:
        """Size, crop, every path, and the byte size and mtime of an evenly spaced sample of files."""
        h = hashlib.sha256(f"{self.size},{self.crop}".encode())
        h.update("\0".join(self.files).encode())
        for f in self.files[::max(1, len(self.files) // _STAT_SAMPLE)]:
            try:
                st = os.stat(f)
                h.update(f"{st.st_size},{st.st_mtime_ns}".encode())
            except OSError:
                h.update(b"?")
        return h.hexdigest()[:16]


class _Decoder(torch.utils.data.Dataset):
    """What a DataLoader worker sees: `dec[i]` -> float32 [3, crop, crop] of file i."""

    def __init__(self, files, size, crop):
        self.files, self.size, self.crop = files, size, crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return read_image(self.files[i], self.size, self.crop)


def folder_dataset(root, *, size: int = 256, crop: int = 224, workers: int = 4) -> Dataset:
    """A streamed Dataset of a class-folder tree: files and labels listed, no image decoded.
    E401/E402/E405 for the folder (fif.data.loaders.image_files), E415 when crop > size."""
    root = Path(root).expanduser()
    if crop > size:
        raise error("E415", f"imagefolder: crop={crop} is larger than size={size}", file=str(root),
                    hint="crop at most `size` pixels: size=256, crop=224 is ImageNet's usual pair")
    files, class_dirs = image_files(root)
    labels = torch.tensor([k for _, k in files], dtype=torch.int64)
    classes = check_classes(labels, [d.name for d in class_dirs], file=str(root))
    images = FolderImages([p for p, _ in files], size=size, crop=crop, workers=workers, source=str(root))
    return Dataset(images, labels, classes, root.name, str(root))


def read_image(path: str, size: int, crop: int) -> torch.Tensor:
    """One image as RGB float32 [3, crop, crop]: shorter side resized to `size` (bilinear), centre crop.
    E402 for a file Pillow cannot read."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            im = im.resize((max(crop, round(w * scale)), max(crop, round(h * scale))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - crop) // 2, (h - crop) // 2
            arr = np.asarray(im.crop((left, top, left + crop, top + crop)), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
        raise _Unreadable(path, str(e)) from None
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(255.0)


class _Unreadable(Exception):
    """Raised in a worker (a FifError does not survive the trip back); FolderImages turns it into E402."""

    def __init__(self, path, why=""):
        super().__init__(path, why)
        self.path, self.why = path, why


def stream_batches(ds: Dataset, lists):
    """(x, y) for each list of indices of the streamed `ds`, in that order (read by its workers)."""
    from .store import fetch
    lists = [list(map(int, b)) for b in lists]
    for idx, x in zip(lists, fetch(ds.images, lists)):
        yield x, ds.labels[torch.tensor(idx, dtype=torch.int64)]


def materialize(ds: Dataset, indices, *, name=None) -> Dataset:
    """The images at `indices` read (in parallel) into an in-memory Dataset, in that order."""
    idx = torch.as_tensor([int(i) for i in indices], dtype=torch.int64)
    return Dataset(load(ds.images, idx), ds.labels[idx], ds.classes, name or ds.name, ds.source)
