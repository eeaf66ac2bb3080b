"""The `Dataset` value and the checks that turn raw arrays into one.

    ds = from_arrays(images, labels, name="digits", source="digits.npz")
    ds.images  # float32 [N, C, H, W] in [0, 1]      ds.labels  # int64 [N]

Every problem with user data is a `FifError` naming the file (codes E402..E405, see `fif.error_codes`).

Layout rule for 4-D image arrays: an array is read as NCHW when its axis 1 has size 1 or 3, and as
NHWC when only its last axis has size 1 or 3. When both have (e.g. [N, 3, H, 3], which only happens
for images one or three pixels wide), NCHW wins, since that is torch's layout. 3-D arrays are [N, H, W]
grey images. Integer images are on the 0..255 scale whatever their values; float images must already
be in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import error
from .store import LazyImages

# Float images may stray this far outside [0, 1] from rounding; they are clamped back.
_FLOAT_SLACK = 1e-5


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images in [0, 1] with integer labels.

    images: float32 tensor [N, C, H, W], values in [0, 1], or a streamed store of that shape
    (fif.data.store.LazyImages: `images[idx]` decodes those images only);  labels: int64 tensor [N]
    in [0, K); classes: K class names; name: short name ('mnist5k', a file stem); source: a path
    or 'package'.
    """

    images: "torch.Tensor | LazyImages"
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str
    source: str

    def __post_init__(self):
        if self.images.dim() != 4 or self.images.dtype != torch.float32:
            raise ValueError(f"Dataset.images must be float32 [N,C,H,W], got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.dim() != 1 or self.labels.dtype != torch.int64:
            raise ValueError(f"Dataset.labels must be int64 [N], got {self.labels.dtype} "
                             f"{tuple(self.labels.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError("Dataset.images and Dataset.labels differ in length")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, n={len(self)}, shape={self.shape}, "
                f"classes={len(self.classes)}, source={self.source!r})")

    @property
    def shape(self) -> tuple[int, int, int]:
        """The per-sample shape (C, H, W)."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, indices, name: str | None = None) -> "Dataset":
        """The samples at `indices` (a sequence or tensor of ints), in that order."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        images = self.images.take(idx) if self.streamed else self.images[idx]
        return Dataset(images, self.labels[idx], self.classes, name or self.name, self.source)

    @property
    def streamed(self) -> bool:
        """True when the images are read batch by batch (imagefolder), not held in memory."""
        return isinstance(self.images, LazyImages)


def images_to_tensor(arr: np.ndarray, *, file: str, key: str = "images") -> torch.Tensor:
    """Check an image array (any layout above) and return float32 [N, C, H, W] in [0, 1]."""
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise error("E402", f"'{key}' has dtype {arr.dtype}; images must be integers 0..255 or "
                    "floats in [0, 1]", file=file, hint="save the images as uint8 or float32")
    if arr.ndim == 3:
        arr = arr[:, None, :, :]
    elif arr.ndim == 4:
        nchw, nhwc = arr.shape[1] in (1, 3), arr.shape[3] in (1, 3)
        if nchw:
            pass
        elif nhwc:
            arr = np.transpose(arr, (0, 3, 1, 2))
        else:
            raise error("E403", f"'{key}' has shape {list(arr.shape)}: no channel axis of size 1 or 3 "
                        "(expected [N,H,W], [N,H,W,C] or [N,C,H,W] with C in 1 or 3)", file=file,
                        hint="convert the images to grey (C=1) or RGB (C=3)")
    else:
        raise error("E403", f"'{key}' has {arr.ndim} dimensions, shape {list(arr.shape)} "
                    "(expected [N,H,W], [N,H,W,C] or [N,C,H,W])", file=file,
                    hint="store one image per row of the first axis")
    if arr.shape[0] == 0:
        raise error("E405", f"'{key}' holds no images", file=file, hint="the file must hold at least one image")
    if arr.shape[2] == 0 or arr.shape[3] == 0:
        raise error("E403", f"'{key}' has empty images, shape {list(arr.shape)}", file=file)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise error("E404", f"integer '{key}' must be in 0..255, found values in {lo}..{hi}", file=file,
                        hint="integer images are read on the 0..255 scale; rescale them or save floats in [0, 1]")
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).div_(255.0)
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise error("E404", f"'{key}' holds {bad} NaN or infinite value(s)", file=file,
                    hint="replace them, or drop the images that hold them")
    lo, hi = float(x.min()), float(x.max())
    if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
        hint = "float images must be in [0, 1]"
        if lo >= 0 and hi <= 255:
            hint += "; these look like 0..255 values: divide by 255 or save them as uint8"
        raise error("E404", f"float '{key}' must be in [0, 1], found values in [{lo:g}, {hi:g}]",
                    file=file, hint=hint)
    return x.clamp_(0.0, 1.0)


def labels_to_tensor(arr: np.ndarray, n: int, *, file: str, key: str = "labels") -> torch.Tensor:
    """Check a label array against `n` images and return int64 [N]."""
    if arr.ndim != 1:
        raise error("E403", f"'{key}' has shape {list(arr.shape)}; labels must be a 1-D array of class "
                    "indices", file=file, hint="one integer per image (not one-hot rows)")
    if arr.shape[0] != n:
        raise error("E405", f"{n} images but {arr.shape[0]} labels", file=file,
                    hint="'images' and 'labels' must have the same length")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        return torch.from_numpy(arr.astype(np.int64))
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise error("E404", f"'{key}' holds values that are not whole numbers", file=file,
                        hint="labels are class indices 0, 1, 2, ...")
        return torch.from_numpy(arr.astype(np.int64))
    raise error("E402", f"'{key}' has dtype {arr.dtype}; labels must be integers", file=file,
                hint="store class indices 0..K-1 (and class names, if any, under 'classes')")


def check_classes(labels: torch.Tensor, classes: Sequence[str] | None, *, file: str) -> tuple[str, ...]:
    """The class names (given, or '0'..'K-1'); every label in range and every class with a sample."""
    lo, hi = int(labels.min()), int(labels.max())
    if classes is None:
        if lo < 0:
            raise error("E405", f"labels must be >= 0, found {lo}", file=file,
                        hint="labels are class indices 0, 1, 2, ...")
        classes = [str(i) for i in range(hi + 1)]
    elif lo < 0 or hi >= len(classes):
        raise error("E405", f"labels must be in 0..{len(classes) - 1} ({len(classes)} classes), "
                    f"found values in {lo}..{hi}", file=file,
                    hint="each label indexes the 'classes' list")
    counts = torch.bincount(labels, minlength=len(classes)).tolist()
    empty = [i for i, c in enumerate(counts) if c == 0]
    if empty:
        shown = ", ".join(f"{i} ({classes[i]!r})" if classes[i] != str(i) else str(i) for i in empty[:5])
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        raise error("E405", f"class {shown}{more} has no samples", file=file,
                    hint="every class from 0 to the largest label needs at least one image; "
                         "renumber the labels or drop the empty classes")
    return tuple(str(c) for c in classes)


def from_arrays(images: np.ndarray, labels: np.ndarray, *, name: str, source: str,
                classes: Sequence[str] | None = None, file: str | None = None) -> Dataset:
    """Build a checked Dataset from numpy arrays (layout and scale rules in the module doc)."""
    where = file or source
    x = images_to_tensor(np.asarray(images), file=where)
    y = labels_to_tensor(np.asarray(labels), x.shape[0], file=where)
    names = check_classes(y, classes, file=where)
    return Dataset(x, y, names, name, source)
