"""TensorBoard scalars for a run, when the optional `tensorboard` package is installed.

    pip install 'fif[tensorboard]'; fif train recipes/tiny.fif; tensorboard --logdir runs/tiny/train/tensorboard

Imported lazily: without tensorboard (or with FIF_TENSORBOARD=0) a Scalars writes nothing and
fails at nothing; log.jsonl always has the same numbers.
"""

from __future__ import annotations

import os
from pathlib import Path


def _writer_class():
    """torch's SummaryWriter, or None when tensorboard is not installed or FIF_TENSORBOARD=0."""
    if os.environ.get("FIF_TENSORBOARD", "") == "0":
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises ImportError when the tensorboard package is absent
        return None
    return SummaryWriter


class Scalars:
    """`add(tag, value, step)` to TensorBoard event files under `folder` (made on first use)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._cls = _writer_class()
        self._writer = None

    @property
    def enabled(self) -> bool:
        return self._cls is not None

    def add(self, tag: str, value, step: int) -> None:
        if self._cls is None or value is None:
            return
        if self._writer is None:
            self._writer = self._cls(log_dir=str(self.folder))
        self._writer.add_scalar(tag, float(value), int(step))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
