"""What a run records about itself: the manifest, weight fingerprints, how a recipe changed.

    manifest.json: recipe text, seed, device, versions of python/torch/fif/numpy, git commit of the
    working directory (when it is a git checkout), CPU threads, command line, start time, resumes
"""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command_line() -> list[str]:
    return [Path(sys.argv[0]).name, *sys.argv[1:]]


def git_commit(cwd=None) -> str | None:
    """HEAD of the git checkout at `cwd` (default: the working directory), or None."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=cwd or os.getcwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def manifest(recipe, *, seed: int, device: str, only, checkpoint_every: int, targets) -> dict:
    import fif
    return {"recipe": recipe.name, "recipe_file": recipe.file, "recipe_text": recipe.source,
            "seed": seed, "device": device, "only": only, "checkpoint_every": checkpoint_every,
            "command": command_line(), "cwd": os.getcwd(),
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "fif": fif.__version__, "numpy": np.__version__},
            "git_commit": git_commit(), "threads": torch.get_num_threads(), "targets": list(targets),
            "stages": [s.name for s in recipe.train], "started": now(), "resumes": []}


def fingerprint(weights) -> str:
    """A short hash of a module's state dict (or a dict of tensors): names and exact bytes."""
    state = weights.state_dict() if isinstance(weights, torch.nn.Module) else weights
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def rank_fingerprints(models: dict) -> list[str]:
    """A fingerprint of every weight of `models` on each torchrun rank, in rank order (all equal
    when the ranks agree; one entry for a single process)."""
    from .. import distributed as dist
    state = {f"{k}.{p}": t for k, m in models.items() for p, t in m.state_dict().items()}
    mine = int(fingerprint(state)[:15], 16)
    return [f"{int(v):015x}" for v in dist.gather_cat(torch.tensor([mine], dtype=torch.int64))]


def first_difference(a: str, b: str) -> str:
    """Where two recipe texts first differ, for a message."""
    la, lb = a.splitlines(), b.splitlines()
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<end of file>"
        y = lb[i] if i < len(lb) else "<end of file>"
        if x != y:
            return f"line {i + 1} was `{x.strip()}`, now `{y.strip()}`"
    return "only whitespace differs"
