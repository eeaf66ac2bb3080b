"""`fif.Pipeline`: the compiled defense, a torch.nn.Module whose repr is its canonical source.

    p = fif.compile("dwt -> <HH, HL, LH: chancompress(1/6, noise), LL: downup> -> idwt", input_shape=(1, 28, 28))
    y = p(x)                       # the defense as deployed, true gradients
    y = p.attack_view()(x)         # BPDA through non-differentiable ops, fresh randomness per call
    p.save("acm.safetensors"); q = fif.load("acm.safetensors")
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from .build import ATTACK_VIEW, OpNode
from .errors import FifError, diagnostic
from .kinds import shape_of
from .plan import Plan

FORMAT = "fif-pipeline/1"


class Pipeline(nn.Module):
    def __init__(self, plan: Plan, root: nn.Module, shared: nn.ModuleDict):
        super().__init__()
        self.plan = plan
        self.shared = shared
        self.root = root

    # -- what it is ------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self.plan.source

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.plan.input_kind.shape

    @property
    def output_kind(self):
        return self.plan.out

    @property
    def output_shape(self):
        return shape_of(self.plan.out)

    @property
    def learnable(self) -> bool:
        return self.plan.flags()["learnable"]

    @property
    def differentiable(self) -> bool:
        return self.plan.flags()["differentiable"]

    @property
    def random(self) -> bool:
        return self.plan.flags()["random"]

    def stages(self) -> list[dict]:
        """The stage table `fif compile` prints, one row per op."""
        rows = self.plan.rows()
        params = _param_counts(self)
        for r in rows:
            r["weights"] = params.get(r["stage"], 0)
        return rows

    def __repr__(self) -> str:
        return self.source.rstrip("\n")

    # -- running ---------------------------------------------------------------------------
    def forward(self, x):
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise FifError(diagnostic(
                "E501", f"this pipeline was compiled for inputs [N, {', '.join(map(str, self.input_shape))}], "
                f"got {list(x.shape)}",
                hint=f"compile it with input_shape={tuple(x.shape[1:]) if x.dim() == 4 else '(C, H, W)'}"))
        return self.root(x)

    def attack_view(self) -> "AttackView":
        """The same defense (same weights) as an adaptive attacker should see it: every
        non-differentiable op passes its surrogate gradient backward (BPDA); random ops draw
        fresh randomness per call, so attacks average gradients over draws (EOT)."""
        return AttackView(self)

    # -- saving ----------------------------------------------------------------------------
    def save(self, path) -> None:
        """(source, weights) in one safetensors file, written atomically."""
        from .models.weights import write_safetensors
        meta = {"format": FORMAT, "source": self.source, "input_shape": json.dumps(list(self.input_shape)),
                "input_kind": self.plan.input_kind.kind}
        write_safetensors(path, self.state_dict(), meta)


class AttackView(nn.Module):
    """See `Pipeline.attack_view`."""

    def __init__(self, pipeline: Pipeline):
        super().__init__()
        self.pipeline = pipeline

    def forward(self, x):
        token = ATTACK_VIEW.set(True)
        try:
            return self.pipeline(x)
        finally:
            ATTACK_VIEW.reset(token)

    def __repr__(self) -> str:
        return f"attack_view({self.pipeline!r})"


def _param_counts(p: Pipeline) -> dict[str, int]:
    """Parameters per stage path, matching Plan.rows() paths."""
    counts: dict[str, int] = {}

    def walk(module, path):
        from .build import PartMapNode, SeqNode
        if isinstance(module, SeqNode):
            for i, m in enumerate(module.stages):
                walk(m, f"{path}.{i}" if path else str(i))
        elif isinstance(module, PartMapNode):
            for name, m in module.parts.items():
                walk(m, f"{path}.{name}" if path else name)
        elif isinstance(module, OpNode):
            inside = sum(t.numel() for b in module.branches for t in b.parameters())
            counts[path or "0"] = sum(t.numel() for t in module.parameters()) - inside
            for i, b in enumerate(module.branches):
                walk(b, f"{path}.b{i}" if path else f"b{i}")

    for name, m in p.shared.items():
        walk(m, name)
    walk(p.root, "")
    return counts


def load(path, map_location="cpu") -> Pipeline:
    """Load a pipeline saved with `Pipeline.save`: recompile its source, then load its weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from safetensors import safe_open
    from .api import compile as fif_compile
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
    pipeline = fif_compile(meta["source"], input_shape=shape, kind=meta.get("input_kind", "image"),
                           name=str(path))
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
