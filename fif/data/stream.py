"""ImageNet-style class folders streamed through a torch DataLoader with workers: each image is
read, resized (shorter side to `size`) and centre-cropped to `crop` x `crop` when a batch asks
for it, never all at once.

    data = imagefolder("~/data/imagenet/train", size=256, crop=224, train=20000, test=1000, workers=8)

    stream = FolderStream("~/data/imagenet/train", size=256, crop=224)
    for x, y in stream_batches(stream, [[0, 1, 2], [3, 4]], workers=4): ...   # float32 [B, 3, 224, 224]

The files and labels come from fif.data.loaders.image_files (the same rules as `folder(...)`);
images are RGB (grey images are converted). A recipe's splits are stratified and seeded over the
file list like every other source; then `split_stream` reads the split it asks for in parallel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import FifError, error
from .datasets import Dataset, check_classes
from .loaders import image_files


class FolderStream(torch.utils.data.Dataset):
    """`stream[i]` -> (float32 [3, crop, crop] in [0, 1], label): image i, read when asked for."""

    def __init__(self, root, *, size: int = 256, crop: int = 224):
        self.root = Path(root).expanduser()
        if crop > size:
            raise error("E415", f"imagefolder: crop={crop} is larger than size={size}", file=str(self.root),
                        hint="crop at most `size` pixels: size=256, crop=224 is ImageNet's usual pair")
        files, class_dirs = image_files(self.root)
        self.files = [str(p) for p, _ in files]
        self.labels = torch.tensor([k for _, k in files], dtype=torch.int64)
        self.classes = check_classes(self.labels, [d.name for d in class_dirs], file=str(self.root))
        self.size, self.crop = int(size), int(crop)
        self.name, self.source = self.root.name, str(self.root)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (3, self.crop, self.crop)

    def __getitem__(self, i: int):
        return read_image(self.files[i], self.size, self.crop), self.labels[i]


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
    """Raised in a worker (a FifError does not survive the trip back); stream_batches turns it into E402."""

    def __init__(self, path, why=""):
        super().__init__(path, why)
        self.path, self.why = path, why


def stream_batches(stream: FolderStream, batches, *, workers: int = 4):
    """(x, y) for each list of indices in `batches`, in that order, read by `workers` processes."""
    loader = torch.utils.data.DataLoader(stream, batch_sampler=[list(map(int, b)) for b in batches],
                                         num_workers=int(workers), persistent_workers=False)
    try:
        yield from loader
    except Exception as e:  # DataLoader re-raises a worker's exception with only its message kept
        args = getattr(e, "args", ())
        if isinstance(e, FifError):
            raise
        text = str(args[0]) if args else str(e)
        raise error("E402", f"cannot read an image: {text}", file=stream.source,
                    hint="remove or re-save the file") from None


def materialize(stream: FolderStream, indices, *, batch: int = 256, workers: int = 4, name=None) -> Dataset:
    """The images at `indices` read (in parallel) into a Dataset, in that order."""
    idx = [int(i) for i in indices]
    chunks = [idx[i:i + batch] for i in range(0, len(idx), batch)]
    xs = [x for x, _ in stream_batches(stream, chunks, workers=workers)]
    images = torch.cat(xs) if xs else torch.zeros((0, *stream.shape))
    return Dataset(images, stream.labels[torch.tensor(idx, dtype=torch.int64)], stream.classes,
                   name or stream.name, stream.source)
