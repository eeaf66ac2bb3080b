"""Where datasets come from: the shipped MNIST subset, a user's `.npz`, or a folder of images.

    load_dataset("mnist5k")            # 5,000 digits shipped in the package, 500 a class
    load_dataset("data/digits.npz")    # keys 'images', 'labels' (and optional 'classes')
    load_dataset("data/photos")        # one subfolder per class

User files are never unpickled (`np.load(..., allow_pickle=False)`).
"""

from __future__ import annotations

import functools
import io
import os
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import FifError, did_you_mean, error
from ..progress import track
from .datasets import Dataset, check_classes, from_arrays

from .sources import BUILTIN, BUILTIN_SIZES, SOURCE_CATALOG, SOURCES  # noqa: E402,F401  (torch-free)

_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    resource = resources.files(__package__).joinpath("mnist5k.npz")
    try:
        raw = resource.read_bytes()
    except (FileNotFoundError, OSError) as e:
        raise error("E401", f"the shipped dataset 'mnist5k.npz' is missing from the package ({e})",
                    file="fif/data/mnist5k.npz", hint="reinstall fif") from None
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        images, labels = f["images"], f["labels"]
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def mnist5k() -> Dataset:
    """The 5,000 MNIST digits shipped with fif (500 a class, sorted by label): images [5000, 1, 28, 28].

    MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0); see
    `fif/data/MNIST-ATTRIBUTION.md`.
    """
    images, labels = _mnist5k_arrays()
    x = torch.from_numpy(images.astype(np.float32)).div_(255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return Dataset(x, y, tuple(str(i) for i in range(10)), "mnist5k", "package")


def load_npz(path) -> Dataset:
    """A dataset from an `.npz` file with keys `images`, `labels` and optionally `classes`.

    images: uint8 (or any integer type) 0..255, or float in [0, 1]; shape [N,H,W], [N,H,W,C] or
    [N,C,H,W] with C in 1 or 3 (an array is NCHW when axis 1 has size 1 or 3, else NHWC when the
    last axis has; NCHW wins a tie). labels: N integers 0..K-1, every class present.
    classes: optional K names (a string array); else the classes are named '0'..'K-1'.
    """
    path = Path(path).expanduser()
    file = str(path)
    if not path.is_file():
        raise error("E401", "no such data file" if not path.exists() else "not a file", file=file,
                    hint="check the path (relative paths start at the recipe's folder)")
    how = "save the data with numpy.savez(path, images=..., labels=...)"
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise error("E402", f"cannot read the file: {e}", file=file) from None
    if magic.startswith(b"\x93NUMPY"):
        raise error("E402", "the file holds a single .npy array, not an .npz archive", file=file, hint=how)
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise error("E402", "not an .npz archive (an .npz file is a zip of .npy arrays)", file=file, hint=how)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise error("E402", f"cannot read the file as .npz: {e}", file=file, hint=how) from None
    with archive:
        keys = set(archive.files)
        missing = [k for k in ("images", "labels") if k not in keys]
        if missing:
            found = ", ".join(sorted(keys)) or "nothing"
            hints = [h for k in missing if (h := did_you_mean(k, keys))]
            raise error("E402", f"missing key(s) {', '.join(repr(k) for k in missing)} (found: {found})",
                        file=file, hint=hints[0] if hints else
                        "save with numpy.savez(path, images=..., labels=...)")
        arrays = {}
        for key in ("images", "labels", "classes"):
            if key not in keys:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as e:
                if "pickle" in str(e).lower():  # object arrays need pickle, which is refused
                    raise error("E402", f"'{key}' cannot be read without unpickling ({e})", file=file,
                                hint="store plain numeric arrays (and 'classes' as a numpy string "
                                     "array); fif never unpickles data") from None
                raise error("E402", f"'{key}' is unreadable: {e}", file=file) from None
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise error("E402", f"'{key}' is unreadable: {e}", file=file) from None
    classes = None
    if "classes" in arrays:
        c = arrays["classes"]
        if c.ndim != 1 or c.dtype.kind not in "US":
            raise error("E402", f"'classes' must be a 1-D string array, got {c.dtype} {list(c.shape)}",
                        file=file, hint="numpy.array(['cat', 'dog', ...])")
        classes = [s.decode() if isinstance(s, bytes) else str(s) for s in c.tolist()]
    return from_arrays(arrays["images"], arrays["labels"], name=path.stem, source=file,
                       classes=classes, file=file)


def _image_extensions() -> set[str]:
    from PIL import Image
    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def image_files(root: Path) -> tuple[list[tuple[Path, int]], list[Path]]:
    """([(image file, class index)], class folders) of a class-folder tree, in class then name
    order. E401 no such folder, E402 not a folder or no class subfolders, E405 an empty class."""
    file = str(root)
    if not root.exists():
        raise error("E401", "no such data folder", file=file,
                    hint="check the path (relative paths start at the recipe's folder)")
    if not root.is_dir():
        raise error("E402", "not a folder", file=file)
    class_dirs = sorted((p for p in root.iterdir() if p.is_dir() and _visible(p)), key=lambda p: p.name)
    if not class_dirs:
        raise error("E402", "the folder has no class subfolders", file=file,
                    hint="put each class's images in its own subfolder: ROOT/CLASS/IMAGE.png")
    exts = _image_extensions()
    files: list[tuple[Path, int]] = []
    for k, d in enumerate(class_dirs):
        found = sorted((p for p in d.iterdir() if p.is_file() and _visible(p) and p.suffix.lower() in exts),
                       key=lambda p: p.name)
        if not found:
            raise error("E405", f"class folder '{d.name}' holds no images", file=str(d),
                        hint="add images to it or remove the folder")
        files.extend((p, k) for p in found)
    return files, class_dirs


def load_image_folder(path) -> Dataset:
    """A dataset from a folder with one subfolder per class (`root/cat/001.png`, `root/dog/...`).

    Classes are the subfolder names, sorted; each subfolder's image files (any format Pillow reads,
    found by extension, not recursive; hidden and other files are skipped) are read in name order.
    Every image is converted to the mode of the first one: grey (L) if that one is grey, else RGB,
    and all must have the same size.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path).expanduser()
    file = str(root)
    files, class_dirs = image_files(root)

    mode = size = first = None
    pixels: list[np.ndarray] = []
    for p, _ in track(files, f"reading {root.name}", total=len(files)):
        try:
            with Image.open(p) as im:
                im.load()
                if mode is None:
                    mode = "L" if im.mode in _GREY_MODES else "RGB"
                    size, first = im.size, p
                if im.size != size:
                    raise error("E403", f"image is {im.size[0]}x{im.size[1]} but the first image "
                                f"({first}) is {size[0]}x{size[1]} (width x height)", file=str(p),
                                hint="resize all images to one size")
                arr = np.asarray(im.convert(mode), dtype=np.uint8)
        except FifError:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
            raise error("E402", f"cannot read the image: {e}", file=str(p),
                        hint="remove or re-save the file") from None
        pixels.append(arr)
    stack = np.stack(pixels)
    images = stack[:, None] if stack.ndim == 3 else np.transpose(stack, (0, 3, 1, 2))
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    y = torch.tensor([k for _, k in files], dtype=torch.int64)
    classes = check_classes(y, [d.name for d in class_dirs], file=file)
    return Dataset(x, y, classes, root.name, file)


def _looks_like_path(spec: str) -> bool:
    return (os.sep in spec or "/" in spec or spec.startswith((".", "~"))
            or spec.lower().endswith(".npz"))


def load_dataset(spec: str, *, base=None) -> Dataset:
    """'mnist5k', or a path to an `.npz` file or an image folder (relative to `base` when given)."""
    if spec in BUILTIN:
        return mnist5k()
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = Path(base) / path
    if path.is_dir():
        return load_image_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        raise error("E402", f"unsupported data file type '{path.suffix or '(none)'}'", file=str(path),
                    hint="use an .npz file (keys images, labels) or a folder with one subfolder per class")
    if _looks_like_path(spec):
        raise error("E401", "no such data file or folder", file=str(path),
                    hint="check the path (relative paths start at the recipe's folder)")
    hint = did_you_mean(spec, BUILTIN) or (f"the shipped datasets are {', '.join(BUILTIN)}; "
                                            "or give a path to an .npz file or an image folder")
    raise error("E401", f"unknown dataset '{spec}' (not a shipped dataset, and no such file or folder)",
                hint=hint)
