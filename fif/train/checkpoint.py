"""Checkpoints and weight files of a training run: safetensors only, written atomically, and
byte-identical for identical tensors.

    write_safetensors("runs/tiny/train/checkpoint.safetensors", tensors, {"position": "..."})
    save_pipeline(defense, "runs/tiny/train/defense.safetensors")      # fif.load reads it

safetensors writes its header from a hash map, so the order of the metadata keys (and with it the
file's bytes) changes from one process to the next. `canonical` rewrites the header with sorted
metadata and tensors in data order; the tensor bytes are untouched, and any safetensors reader
(`fif.load`, `fif.models.load_weights`) reads the result.

A checkpoint holds, as tensors: every model of the run (`model.<name>.<key>`), the optimizer's
state tensors (`optim.<param>.<key>`), the torch CPU (and CUDA) generator states as uint8 tensors
and numpy's MT19937 key; and, as JSON metadata: the optimizer's non-tensor state and param groups,
python's `random` state, the rest of numpy's state, and the run's position and bookkeeping.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models import read_weights, save_weights
from ..models.weights import canonical, write_safetensors  # noqa: F401  (re-exported for tests)

FORMAT = "fif-train-checkpoint/1"


def save_pipeline(pipeline, path) -> None:
    """`Pipeline.save`: source and weights, canonical bytes, so `fif.load` reads it."""
    pipeline.save(path)


def save_module(module: nn.Module, path, metadata: dict | None = None) -> None:
    """A module's state dict (a classifier) as a canonical safetensors file."""
    save_weights(module, path, metadata)


# ---- optimizer state ------------------------------------------------------------------------

def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    """The optimizer's state dict split into tensors (`optim.<param>.<key>`) and a JSON rest."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    rest = {"param_groups": sd["param_groups"], "scalars": scalars,
            "tensors": sorted(tensors)}
    return tensors, json.dumps(rest, sort_keys=True)


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: str) -> None:
    """Undo `optimizer_tensors` into `opt`."""
    info = json.loads(rest)
    state: dict[int, dict] = {}
    for name in info["tensors"]:
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = tensors[name]
    for pid, values in info["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


# ---- random number generators ---------------------------------------------------------------

def rng_tensors() -> tuple[dict[str, torch.Tensor], str]:
    """torch CPU/CUDA generator states (uint8 tensors), numpy's key, python's state (JSON)."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    rest = {"python": _listify(random.getstate()), "numpy": [kind, int(pos), int(has_gauss), float(gauss)]}
    return tensors, json.dumps(rest)


def load_rng(tensors: dict[str, torch.Tensor], rest: str) -> None:
    info = json.loads(rest)
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][:torch.cuda.device_count()])
    kind, pos, has_gauss, gauss = info["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, nxt = info["python"]
    random.setstate((version, tuple(state), nxt))


def _listify(v):
    return [_listify(i) for i in v] if isinstance(v, (tuple, list)) else v


# ---- whole checkpoints ------------------------------------------------------------------------

def save_checkpoint(path, *, models: dict[str, nn.Module], optimizer: torch.optim.Optimizer | None,
                    info: dict) -> None:
    """Every model, the optimizer, the RNGs and `info` (position, bookkeeping) in one file."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in models.items():
        for key, t in module.state_dict().items():
            tensors[f"model.{name}.{key}"] = t
    meta = {"format": FORMAT, "info": json.dumps(info, sort_keys=True), "models": json.dumps(sorted(models))}
    if optimizer is not None:
        t, rest = optimizer_tensors(optimizer)
        tensors.update(t)
        meta["optim"] = rest
    t, rest = rng_tensors()
    tensors.update(t)
    meta["rng"] = rest
    write_safetensors(path, tensors, meta)


class Checkpoint:
    """A checkpoint read back: `info`, `has(name)`, `load_model(name, module)`, `load_optimizer`, `load_rng`."""

    def __init__(self, path):
        self.path = Path(path)
        self.tensors, self.meta = read_weights(self.path)
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"not a fif training checkpoint (format {self.meta.get('format')!r})")
        self.info = json.loads(self.meta["info"])
        self.models = json.loads(self.meta.get("models", "[]"))

    def has(self, name: str) -> bool:
        return name in self.models

    def load_model(self, name: str, module: nn.Module) -> None:
        prefix = f"model.{name}."
        state = {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        module.load_state_dict(state)

    def load_optimizer(self, opt: torch.optim.Optimizer) -> None:
        load_optimizer(opt, {k: v for k, v in self.tensors.items() if k.startswith("optim.")}, self.meta["optim"])

    def load_rng(self) -> None:
        load_rng(self.tensors, self.meta["rng"])
