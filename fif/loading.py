"""`fif.load`: a pipeline saved with `Pipeline.save` comes back by recompiling its source and
loading its weights (safetensors: no pickle, nothing executed).

    p = fif.load("acm.safetensors")
"""

from __future__ import annotations

import json
from pathlib import Path

from .api import compile as fif_compile
from .errors import FifError, diagnostic
from .pipeline import FORMAT, Pipeline


def load(path, map_location="cpu") -> Pipeline:
    """Load a pipeline saved with `Pipeline.save`: recompile its source, then load its weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise FifError(diagnostic("E401", f"no such file: {path}", file=str(path)))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as e:
        raise FifError(diagnostic("E402", f"not a readable safetensors file: {e}", file=str(path),
                                  hint="was it written by Pipeline.save?")) from None
    if meta.get("format") != FORMAT or "source" not in meta:
        raise FifError(diagnostic("E402", "this safetensors file holds no fif pipeline (no source in its metadata)",
                                  file=str(path)))
    try:
        shape = tuple(int(v) for v in json.loads(meta["input_shape"]))
    except (ValueError, TypeError, KeyError):
        raise FifError(diagnostic("E402", f"the file's input_shape metadata is damaged: {meta.get('input_shape')!r}",
                                  file=str(path))) from None
    pipeline = fif_compile(meta["source"], input_shape=shape, kind=meta.get("input_kind", "image"), name=str(path))
    expected = pipeline.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}")
        if wrong:
            parts.append(f"wrong shape for {', '.join(wrong[:3])}")
        raise FifError(diagnostic("E407", "weights do not match the pipeline: " + "; ".join(parts), file=str(path)))
    pipeline.load_state_dict(tensors)
    return pipeline.to(map_location)
