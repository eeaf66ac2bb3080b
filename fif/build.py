"""Plan -> modules: the only place torch modules are made. Nothing about the text is checked here
(the passes did it); what is checked is the one thing only building can know: how many bytes of
weights an op would allocate, measured on the meta device before anything real is allocated.

    pipeline = build(plan_for("dwt -> <LL: downup> -> idwt", (1, 28, 28)))

Every node's forward is `forward(x, ctx=None)`; `ctx` is the run context (fif.run_context).
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .errors import FifError, diagnostic
from .node_call import call
from .pipeline import Pipeline
from .plan import BlockStep, OpStep, PartMapStep, Plan, SeqStep, SharedStep
from .registry import get_op, registry_version
from .run_context import DEPLOYED

# Weights (parameters and buffers) one op may allocate. Far above any defense in the papers
# (EDSR-full is 43M parameters, 172 MB); a typo such as conv(100000000000) stops here.
MAX_OP_BYTES = 8 * 10 ** 9


def wants_context(module: nn.Module) -> bool:
    """Whether `module.forward` takes the run context (a parameter named `ctx`)."""
    forward = module.__dict__.get("forward")
    if forward is None:   # the class's forward: one inspect.signature per class, not per build
        return _class_wants_context(type(module))
    return "ctx" in _parameters(forward)


@functools.lru_cache(maxsize=1024)
def _class_wants_context(cls) -> bool:
    return "ctx" in _parameters(cls.forward)


class OpNode(nn.Module):
    """One op. In the attack view a non-differentiable op returns its true output forward and the
    gradient of its surrogate (identity unless the op declares one) backward."""

    def __init__(self, step: OpStep | BlockStep, inner: nn.Module, surrogate):
        super().__init__()
        self.step = step
        self.op = step.op
        self.differentiable = step.differentiable
        self.random = step.random
        self.inner = inner
        self._surrogate = surrogate
        self._ctx = wants_context(inner)
        self.branches: list[nn.Module] = []  # a block op's sub-pipelines (registered inside `inner`)

    def forward(self, x, ctx=None):
        if ctx is None:
            ctx = DEPLOYED
        if self.differentiable or not ctx.attack_view:
            inner = self._modules["inner"]   # not self.inner: nn.Module.__getattr__ is slow
            return call(inner, x, ctx) if self._ctx else call(inner, x)
        return self._bpda(x, ctx)

    def _bpda(self, x, ctx):
        inner = self._modules["inner"]
        grad = torch.is_grad_enabled()
        torch.set_grad_enabled(False)   # as a function: half the cost of `with torch.no_grad()`
        try:
            y = call(inner, x, ctx) if self._ctx else call(inner, x)
        finally:
            torch.set_grad_enabled(grad)
        if self._surrogate is None:
            g = x
        else:
            g = self._surrogate(inner, x, ctx) if self._ctx else self._surrogate(inner, x)
        # y forward, exactly (g - g.detach() is exactly zero); the surrogate's gradient backward
        if isinstance(y, dict):
            return {k: y[k] + (g[k] - g[k].detach()) for k in y}
        return y + (g - g.detach())

    def extra_repr(self):
        return f"op={self.op}"

    def count_weights(self, path: str, counts: dict) -> None:
        """Weights per stage path (`2.HH.0`, block branches `b0`), as Plan.rows() names stages."""
        inside = sum(t.numel() for b in self.branches for t in b.parameters())
        counts[path or "0"] = sum(t.numel() for t in self.parameters()) - inside
        for i, b in enumerate(self.branches):
            b.count_weights(f"{path}.b{i}" if path else f"b{i}", counts)


class SeqNode(nn.Module):
    def __init__(self, step: SeqStep, stages):
        super().__init__()
        self.step = step
        self.stages = nn.ModuleList(stages)

    def forward(self, x, ctx=None):
        for stage in self._modules["stages"]._modules.values():
            x = call(stage, x, ctx)
        return x

    def count_weights(self, path: str, counts: dict) -> None:
        for i, m in enumerate(self.stages):
            m.count_weights(f"{path}.{i}" if path else str(i), counts)


class PartMapNode(nn.Module):
    """Runs a pipeline on each named part; the other parts pass through."""

    def __init__(self, step: PartMapStep, parts: dict[str, nn.Module]):
        super().__init__()
        self.step = step
        self.parts = nn.ModuleDict(parts)

    def forward(self, value: dict, ctx=None):
        out = dict(value)
        for name, module in self._modules["parts"]._modules.items():
            out[name] = call(module, value[name], ctx)
        return out

    def count_weights(self, path: str, counts: dict) -> None:
        for name, m in self.parts.items():
            m.count_weights(f"{path}.{name}" if path else name, counts)


class SharedNode(nn.Module):
    """A use of a `let` name: runs the pipeline's shared module, which it does not own.

    `reuse`: the let is used more than once and is a pure function of its input (see `_pure`), so
    within one call of the pipeline a use on the very tensor an earlier use got returns that use's
    output instead of running the let again (PA-Filt's encoder feeds two decoders: it ran twice)."""

    def __init__(self, step: SharedStep, table: nn.ModuleDict):
        super().__init__()
        self.step = step
        self.name = step.name
        self._table = [table]  # a list, so the shared weights are registered once, in the table
        self.reuse = False

    def forward(self, x, ctx=None):
        done = ctx.values.get("lets") if self.reuse and ctx is not None else None
        if done is not None and self.name in done and done[self.name][0] is x:
            y = done[self.name][1]
        else:
            y = call(self._table[0]._modules[self.name], x, ctx)
            if done is not None:
                done[self.name] = (x, y)
        if ctx is not None and self.name in ctx.values.get("identity_lets", ()) and \
                isinstance(y, torch.Tensor) and y.shape == x.shape:
            return x + (y - x).detach()   # BPDA over the whole let: its output forward, identity backward
        return y

    @property
    def target(self) -> nn.Module:
        return self._table[0][self.name]

    def extra_repr(self):
        return f"shared={self.name}"

    def count_weights(self, path: str, counts: dict) -> None:
        return None  # counted once, where the `let` is declared


def _weight_bytes(module: nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _make(spec, step, args, env, *branches):
    """spec.build(args, inp, out[, branches]), with `env=` for build functions that take it
    (classifier ops read the recipe's classifier and the folder weight files are relative to)."""
    extra = {"env": env} if "env" in _parameters(spec.build) else {}
    return spec.build(args, step.inp, step.out, *branches, **extra)


def _parameters(fn) -> tuple[str, ...]:
    try:
        return _signature_names(fn)
    except TypeError:  # unhashable: inspect it every time
        return _signature_names.__wrapped__(fn)


@functools.lru_cache(maxsize=1024)
def _signature_names(fn) -> tuple[str, ...]:
    """Parameter names of `fn` (inspect.signature costs ~50 us; builds ask it of every op)."""
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # pragma: no cover  (builtins without a signature)
        return ()


# Weight bytes of each learnable step, measured once: building on the meta device still runs the
# ops' weight initialisers through torch's Python decompositions, which was most of the time of
# compiling a recipe again (benchmarks/comparisons/startup.py).
_PROBED: dict = {}
_PROBED_MAX = 4096


_DRAWS = tuple(getattr(torch.Tensor, f) for f in ("uniform_", "normal_", "random_", "bernoulli_", "exponential_",
                                                    "geometric_", "cauchy_", "log_normal_"))


class _NoDrawsOnMeta(TorchFunctionMode):
    """Random fills of meta tensors do nothing. Torch runs them through Python decompositions (1.4 s
    of the first compile of recipes/pafilt.fif went into its initialisers' draws on the meta
    device), and a size probe needs shapes, not values."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _DRAWS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def _probe_bytes(spec, step: OpStep, args: dict) -> int:
    """What the op's weights would take, built on the meta device (0 if it cannot be built there)."""
    try:
        key = (registry_version(), step)
        hash(key)
    except TypeError:  # an argument that cannot be hashed: measure every time
        key = None
    if key is not None and key in _PROBED:
        return _PROBED[key]
    try:
        with torch.device("meta"), _NoDrawsOnMeta():
            probe = _make(spec, step, args, None)
        size = _weight_bytes(probe)
    except FifError:
        raise
    except Exception:  # an op that cannot be built on meta: build it for real below
        size = 0
    if key is not None:
        if len(_PROBED) >= _PROBED_MAX:
            _PROBED.clear()
        _PROBED[key] = size
    return size


def _checked_build(spec, step: OpStep, args: dict, env):
    """Build a learnable op on the meta device first: refuse it, with the size it would need,
    when its weights would exceed MAX_OP_BYTES; only then allocate it for real."""
    if step.learnable:
        size = _probe_bytes(spec, step, args)
        if size > MAX_OP_BYTES:
            raise FifError(diagnostic(
                "E360", f"'{step.op}' would need {_human(size)} of weights "
                f"(the limit for one op is {_human(MAX_OP_BYTES)})", step.span,
                hint="check the sizes given to it; a typo in a width is the usual cause"))
    return _make(spec, step, args, env)


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def build_step(step, shared: nn.ModuleDict, env=None) -> nn.Module:
    if isinstance(step, SeqStep):
        return SeqNode(step, [build_step(s, shared, env) for s in step.steps])
    if isinstance(step, PartMapStep):
        return PartMapNode(step, {name: build_step(s, shared, env) for name, s in step.parts})
    if isinstance(step, SharedStep):
        return SharedNode(step, shared)
    spec = get_op(step.op)
    args = step.kwargs
    if isinstance(step, BlockStep):
        branches = [build_step(b, shared, env) for b in step.branches]
        node = OpNode(step, _make(spec, step, args, env, branches), spec.surrogate)
        node.branches = branches
        return node
    return OpNode(step, _checked_build(spec, step, args, env), spec.surrogate)


def build(plan: Plan, env=None):
    """A fresh `fif.Pipeline` (new weights) for the plan."""
    shared = nn.ModuleDict()
    for name, step in plan.shared:
        shared[name] = build_step(step, shared, env)
    root = build_step(plan.root, shared, env)
    pipeline = Pipeline(plan, root, shared, env)
    uses = _let_uses(plan)
    reused = {name for name, count in uses.items() if count > 1 and _pure(shared[name])}
    for node in [*root.modules(), *shared.modules()]:
        if isinstance(node, SharedNode):
            node.reuse = node.name in reused
    pipeline.reuses_lets = bool(reused)
    return pipeline


def _let_uses(plan: Plan) -> dict[str, int]:
    """How many times each `let` is used in the plan (in the main pipeline and in other lets)."""
    uses: dict[str, int] = {}

    def walk(step):
        if isinstance(step, SharedStep):
            uses[step.name] = uses.get(step.name, 0) + 1
        elif isinstance(step, SeqStep):
            for s in step.steps:
                walk(s)
        elif isinstance(step, PartMapStep):
            for _, s in step.parts:
                walk(s)
        elif isinstance(step, BlockStep):
            for b in step.branches:
                walk(b)
    for _, step in plan.shared:
        walk(step)
    walk(plan.root)
    return uses


def _pure(module: nn.Module) -> bool:
    """Whether a let computes a function of its input alone, the same at every use within a call:
    no op of it reads the run context (random draws, masks, uncertainty slots, blocks), uses another
    let, keeps running statistics (batch norm in training) or drops units at random."""
    for m in module.modules():
        if isinstance(m, OpNode) and (m._ctx or m.random or m.branches):
            return False
        if isinstance(m, SharedNode) or isinstance(m, (nn.modules.batchnorm._NormBase, nn.modules.dropout._DropoutNd)):
            return False
    return True
