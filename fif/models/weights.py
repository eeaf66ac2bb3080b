"""Weights on disk: safetensors only (never pickle), written atomically.

    save_weights(model, "runs/acm/defense.safetensors", metadata={"recipe": "acm"})
    meta = load_weights(model, "runs/acm/defense.safetensors")

Every other part of fif saves and loads weights through these two functions.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Mapping

import torch
from safetensors import safe_open
from safetensors.torch import save as _safetensors_bytes
from torch import nn

from ..errors import error


def atomic_write(path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the whole new one, never a part:
    a temp file in the same folder, flushed and fsynced, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable where the platform allows it
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_json(path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def _tensors(source) -> dict[str, torch.Tensor]:
    """CPU, contiguous copies of a module's state dict (or a dict of tensors); a tensor that shares
    storage with an earlier one is cloned, since safetensors stores each storage once."""
    state = source.state_dict() if isinstance(source, nn.Module) else dict(source)
    out, seen = {}, set()
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"save_weights: '{name}' is a {type(t).__name__}, not a tensor")
        t = t.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:
            t = t.clone()  # shared weights (one module used twice) are stored once per name
        elif ptr is not None:
            seen.add(ptr)
        out[name] = t
    return out


def canonical(raw: bytes) -> bytes:
    """The same safetensors file with a deterministic header (sorted metadata, tensors in data order)."""
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    out = {}
    if meta is not None:
        out["__metadata__"] = dict(sorted(meta.items()))
    for name, info in sorted(header.items(), key=lambda kv: (*kv[1]["data_offsets"], kv[0])):
        out[name] = info
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + raw[8 + n:]


def write_safetensors(path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> None:
    """Tensors and string metadata as one safetensors file with a canonical header, written
    atomically: the same tensors give the same bytes in every process."""
    atomic_write(path, canonical(_safetensors_bytes(_tensors(tensors), metadata=dict(metadata) if metadata else None)))


def save_weights(module: nn.Module | Mapping[str, torch.Tensor], path, metadata: Mapping | None = None) -> None:
    """Save a module's state dict (or a dict of tensors) as safetensors, atomically.

    metadata: str -> value; non-string values are stored as JSON text.
    """
    meta = None
    if metadata:
        meta = {str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
                for k, v in metadata.items()}
    write_safetensors(path, _tensors(module), meta)


def read_weights(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file; E401 when missing, E402 when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise error("E401", "no such weights file", file=str(path),
                    hint="train first, or check the path")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers and data
        raise error("E402", f"cannot read the weights file: {e}", file=str(path),
                    hint="the file is not safetensors or is damaged; delete it and train again") from None
    return tensors, meta


def _names(names, limit=6) -> str:
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def load_weights(module: nn.Module, path, *, strict: bool = True) -> dict[str, str]:
    """Load a safetensors file into `module` (in place) and return the file's metadata.

    E401 missing file, E402 unreadable, E407 tensor names (strict) or shapes that do not match the
    model; the message names the file and the offending tensors.
    """
    tensors, meta = read_weights(path)
    state = module.state_dict()
    missing = [k for k in state if k not in tensors]
    unexpected = [k for k in tensors if k not in state]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected {_names(unexpected)}")
        raise error("E407", f"the weights do not match the model: {'; '.join(parts)}", file=str(path),
                    hint="the file was saved from a different model or configuration")
    wrong = [(k, tuple(tensors[k].shape), tuple(state[k].shape)) for k in state
             if k in tensors and tuple(tensors[k].shape) != tuple(state[k].shape)]
    if wrong:
        shown = "; ".join(f"{k}: file {list(a)} vs model {list(b)}" for k, a, b in wrong[:4])
        more = f" and {len(wrong) - 4} more" if len(wrong) > 4 else ""
        raise error("E407", f"tensor shapes do not match the model: {shown}{more}", file=str(path),
                    hint="the file was saved for a different input shape, width or class count")
    module.load_state_dict({k: v for k, v in tensors.items() if k in state}, strict=strict)
    return meta
