"""CIFAR-10 from its binary distribution, read as fixed-size records (no pickle, no download).

    data = cifar10("~/data/cifar-10-batches-bin", train=50000, test=10000)

The folder is what `cifar-10-binary.tar.gz` unpacks to: data_batch_1.bin .. data_batch_5.bin and
test_batch.bin, each a run of 3,073-byte records (one label byte 0..9, then 1,024 red, 1,024 green
and 1,024 blue pixel bytes, row-major 32x32), and batches.meta.txt with the ten class names, one a
line (optional: the names default to '0'..'9'). The dataset holds the training batches first
(50,000 images in the full set) and then the test batch; `official_split` tells where the test
batch starts, so a recipe trains on the training batches and is evaluated on the test batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import error
from .datasets import Dataset, check_classes

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
META = "batches.meta.txt"


def read_records(path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, 32, 32], labels uint8 [N]) of one CIFAR-10 binary batch file.
    E402 when its size is not a whole number of 3,073-byte records, E404 for a label above 9."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise error("E402", f"{raw.size} bytes is not a whole number of CIFAR-10 records of {RECORD} bytes "
                    f"({raw.size // RECORD} whole, {raw.size % RECORD} bytes left over)", file=str(path),
                    hint="the file is truncated or not from cifar-10-binary.tar.gz; download and unpack it again")
    records = raw.reshape(-1, RECORD)
    labels = records[:, 0]
    if int(labels.max()) > 9:
        first = int(np.argmax(labels > 9))
        raise error("E404", f"record {first} has label {int(labels[first])}; CIFAR-10 labels are 0..9", file=str(path),
                    hint="the file is damaged or is CIFAR-100's (whose records are 3,074 bytes)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def load_cifar10(folder) -> Dataset:
    """The CIFAR-10 binary folder as one Dataset: the training batches, then the test batch."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise error("E401", "no such CIFAR-10 folder" if not root.exists() else "not a folder", file=str(root),
                    hint="give the cifar-10-batches-bin folder that cifar-10-binary.tar.gz unpacks to")
    missing = [f for f in (*TRAIN_FILES, TEST_FILE) if not (root / f).is_file()]
    if missing:
        raise error("E401", f"the CIFAR-10 folder lacks {', '.join(missing)}", file=str(root),
                    hint="unpack cifar-10-binary.tar.gz completely (the python and matlab versions are not read)")
    parts = [read_records(root / f) for f in (*TRAIN_FILES, TEST_FILE)]
    images = np.concatenate([p[0] for p in parts])
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.int64))
    names = [str(i) for i in range(10)]
    if (root / META).is_file():
        lines = [s.strip() for s in (root / META).read_text(encoding="utf-8", errors="replace").splitlines()]
        lines = [s for s in lines if s]
        if len(lines) != 10:
            raise error("E405", f"{META} names {len(lines)} classes, CIFAR-10 has 10", file=str(root / META))
        names = lines
    x = torch.from_numpy(images).float().div_(255.0)
    classes = check_classes(labels, names, file=str(root))
    return Dataset(x, labels, classes, "cifar10", str(root))


def official_split(ds: Dataset) -> tuple[Dataset, Dataset]:
    """(training batches, test batch) of a Dataset from load_cifar10: the test batch's records come last."""
    n = len(ds) - (Path(ds.source) / TEST_FILE).stat().st_size // RECORD
    return ds.subset(torch.arange(n)), ds.subset(torch.arange(n, len(ds)))
