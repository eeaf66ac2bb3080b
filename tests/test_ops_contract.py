"""Contract tests over EVERY registered op: inferred shape equals real shape, dtype, device,
determinism under a seed, gradients (true ones, or the declared surrogate in the attack view).

A new op must add an entry to SNIPPETS: a small valid pipeline that uses it.
"""

import math

import pytest
import torch
from torch import nn

import fif
from fif.registry import Catalog, Param, all_ops, get_op, register_op, unregister_op
from fif.passes.resolve import stage_calls
from fif.compiler import CompileEnv, make_plan
from fif.syntax import nodes as n


# The environment a recipe gives: `classifier` is its classifier (a narrow smallcnn here).
ENV = CompileEnv(classifier=("smallcnn", 4, 10))


S1 = (1, 8, 8)
S3 = (3, 16, 16)

# op name -> [(fif snippet that uses it, input shape)]. Keep them small: this runs for every op.
SNIPPETS = {
    "bitdepth": [("bitdepth(4)", S1), ("bitdepth(2)", S3), ("bitdepth(3, bits=true)", S1)],
    "blockdct": [("blockdct", S1), ("blockdct(4, split=3, scale=1, shift=0)", (2, 9, 7))],
    "chancompress": [("chancompress(1/2, noise)", S3), ("chancompress(code=1, noise=0.5, test_noise=true)", S1),
                     ("chancompress(code=2, binarize=true)", S1),
                     ("chancompress(1/2, noise=1, binarize=true, bpda=tanh)", S3),
                     ("chancompress(code=1, noise=0.5, test_noise=true, binarize=true)", S1)],
    "clamp": [("clamp", S1), ("clamp(-0.5, 0.5)", S3), ("conv(out=input) -> clamp(train=false)", S1)],
    "conv": [("conv(4, depth=2) -> conv(out=input)", S3), ("conv(2, k=5, act=tanh, width=3, depth=2)", S1)],
    "downup": [("downup(2)", S3), ("downup(4, depth=1, down=conv)", S1), ("downup(2, width=2)", S3)],
    "droppixels": [("droppixels(0.5)", S1), ("droppixels(0.3)", S3)],
    "droppatches": [("droppatches(0.5)", S1), ("droppatches(0.3, patch=3)", S3),
                    ("dwt -> <LL: droppatches(0.8, patch=2)> -> idwt", (1, 10, 10))],
    "dwt": [("dwt", S1), ("dwt(db2, levels=2)", S3), ("dwt(haar, mode=symmetric)", S1)],
    "edsr": [("edsr(4, 2)", S1), ("edsr(width=3, depth=1, res_scale=0.1, mean_shift=true) -> clamp", S3)],
    "id": [("id", S1), ("dwt -> id -> idwt", S1)],
    "iblockdct": [("blockdct -> iblockdct", S1),
                  ("blockdct(8, split=3) -> <AF: zero, OF: conv(k=1)> -> iblockdct", (1, 12, 20))],
    "idwt": [("dwt -> idwt", S1), ("dwt(db2, levels=2) -> <HH1: zero> -> idwt", S3)],
    "jpeg": [("jpeg(50)", S1), ("jpeg(90)", S3), ("jpeg(20, subsample, bpda=cubic)", S3),
             ("jpeg(75, color=channels) -> smallcnn(classes=3, width=4)", (2, 12, 12))],
    "mean": [("mean { conv(2) | conv(2) -> conv(2) }", S1), ("mean { id | noise(0.1) }", S3)],
    "nnjpeg": [("nnjpeg(70)", S1), ("nnjpeg(30, color=ycbcr, subsample=true, bpda=cubic)", S3),
               ("nnjpeg(50, split=3, of=8, af=40, eight_bit=false, shift=0)", (2, 10, 13))],
    "median": [("median", S1), ("median(5) -> clamp(0, 0.5)", S3)],
    "noise": [("noise(0.1)", S1), ("noise(0.2, clip=false)", S3)],
    "quantize": [("quantize(0.1)", S1), ("quantize(1/4, round=false)", S3),
                 ("blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct", S3)],
    "residual": [("residual { conv(4) -> conv(out=input) }", S3)],
    "shrink": [("shrink", S1), ("shrink(db2, levels=1, rule=visu, mode=hard, pad=periodization)", S3),
               ("shrink(sym2, levels=2, sigma=0.1)", (1, 20, 20))],
    "zero": [("zero", S1), ("dwt -> <HH: zero> -> idwt", S3)],
    # The zoo (recipes/zoo/): defenses that Athalye et al. 2018 and Tramer et al. 2020 broke.
    "resizepad": [("resizepad(5, 8)", S1), ("resizepad(10, 16)", S3), ("resizepad(4, 4)", (1, 8, 12))],
    "cropresize": [("cropresize(6)", S1), ("cropresize(12) -> conv(2)", S3)],
    "tvsolve": [("tvsolve", S1), ("tvsolve(0.3, lam=0.1, iters=5)", S3), ("tvsolve(0, iters=5)", S1)],
    "thermometer": [("thermometer(4)", S1), ("thermometer(3) -> smallcnn(classes=3, width=4)", S3)],
    "shield": [("shield", (1, 16, 16)), ("shield([30, 90])", S3), ("shield([50], color=channels)", (2, 12, 12))],
    "deflect": [("deflect(4)", S1), ("deflect(10, window=3) -> shrink(db1, levels=1) -> clamp", S3)],
    # Every branch random: two samples that draw the same branch must still differ.
    "choose": [("choose { noise(0.1) | droppixels(0.5) }", S1),
               ("choose { jpeg(50) -> noise(0.1) | for q in [2, 4]: bitdepth(q) -> noise(0.1) }", S3),
               ("choose { conv(2) -> noise(0.1) | conv(2) -> conv(2) -> noise(0.1) }", S1)],
    # Classifiers as ops (registered by the models package when it is present).
    "smallcnn": [("smallcnn", (1, 28, 28)), ("bitdepth(4) -> smallcnn(classes=3, width=4)", S3)],
    "lenet": [("lenet", (1, 28, 28)), ("mean { lenet(classes=5) | lenet(classes=5) }", S3)],
    "resnet18": [("resnet18(width=8)", S3)],
    "masks": [("masks { conv(2) -> conv(out=input) }", S3), ("masks(k=3, patch=3, combine=hidden) { conv(2) -> noise(0.1) -> conv(out=input) }", S1),
              ("masks(ratio=0.7, patch=2, combine=hidden) { conv(2) -> conv(out=input) }", S1),
              ("masks(ratio=0.3, patch=4) { conv(2) -> conv(out=input) }", S3)],
    "vitdenoise": [("vitdenoise(width=8, heads=2, depth=1, patch=2)", S1),
                   ("masks(k=2, patch=2) { vitdenoise(width=8, heads=2, depth=1, decoder_depth=1, patch=2, mlp=2) } -> clamp", S3),
                   ("masks(k=3, patch=4, combine=hidden) { vitdenoise(width=8, heads=4, depth=2, patch=2) }", S3),
                   ("masks(k=3, patch=2) { vitdenoise(width=8, heads=2, depth=1, decoder_depth=0, patch=2) }", S1),
                   ("masks(ratio=0.7, patch=2) { vitdenoise(width=6, heads=3, depth=1, patch=2, mlp=1) }", S1)],
    "classifier": [("classifier", (1, 28, 28)), ("bitdepth(4) -> classifier(member=2)", S3)],
    "vote": [("vote { smallcnn(classes=3, width=4) | bitdepth(4) -> smallcnn(classes=3, width=4) }", S3),
             ("vote { classifier | noise(0.1) -> classifier | classifier }", (1, 12, 12))],
    # AdvFilter: padding, the kernel-prediction U-Net's halves, per-pixel filtering, fusion.
    "pad": [("pad(2)", S1), ("pad(1, mode=reflect)", S3), ("pad(3, mode=replicate) -> conv(2)", S1)],
    "crop": [("crop(2)", S1), ("pad(3) -> crop(3)", S3)],
    "kpencoder": [("kpencoder(widths=[2, 3, 4])", S1), ("kpencoder(widths=[2, 2, 3, 4], convs=1)", S3)],
    "kpdecoder": [("kpencoder(widths=[2, 3, 4]) -> kpdecoder(3)", S1),
                  ("kpencoder(widths=[2, 2, 3], convs=2) -> kpdecoder(out=input)", S3),
                  ("kpencoder(widths=[2, 3, 4]) -> kpdecoder(3, last_relu=true)", S1)],
    "kpfilter": [("kpfilter(3) { kpencoder(widths=[2, 3, 4]) -> kpdecoder(3) }", S1),
                 ("kpfilter(5) { conv(75, k=1) } -> clamp", S3),
                 ("let e = pad(2) -> kpencoder(widths=[2, 3, 3])\n"
                  "kpfilter(3) { e -> kpdecoder(3) -> crop(2) } -> kpfilter(1) { e -> kpdecoder(1) -> crop(2) }", S1)],
    "uncertainty": [("kpencoder(widths=[2, 3, 4]) -> kpdecoder(3) -> uncertainty", S1)],
    "ufuse": [("ufuse { kpfilter(3) { conv(9) } | kpfilter(3) { conv(9) } -> clamp }", S1),
              ("let e = pad(2) -> kpencoder(widths=[2, 3, 4])\n"
               "let a = kpfilter(3) { e -> kpdecoder(3) -> crop(2) } -> clamp\n"
               "ufuse(widths=[4, 4], k=1) { a | kpfilter(3) { e -> kpdecoder(3) -> crop(2) } -> clamp }", S3)],
}

# Ops whose true gradient is exactly zero (they still must stay in the graph).
ZERO_GRADIENT = {"zero"}


def _cases():
    for op in all_ops():
        for i, (src, shape) in enumerate(SNIPPETS.get(op, [])):
            yield pytest.param(op, src, shape, id=f"{op}-{i}")


CASES = list(_cases())


def _flags(case):
    op, src, shape = case.values
    return make_plan(src, shape, env=ENV).flags()


RANDOM_CASES = [c for c in CASES if _flags(c)["random"]]
FIXED_CASES = [c for c in CASES if not _flags(c)["random"]]


def test_every_registered_op_has_a_snippet():
    missing = sorted(set(all_ops()) - set(SNIPPETS))
    assert not missing, f"add a contract snippet to tests/test_ops_contract.py for: {missing}"


@pytest.mark.parametrize("op", sorted(all_ops()))
def test_snippet_uses_the_op(op):
    for src, _ in SNIPPETS.get(op, []):
        program = fif.parse(src)
        names = {c.name for c, _ in stage_calls(program.statements[0].value)}
        assert op in names, f"snippet {src!r} does not use {op}"


def _compile(src, shape, seed=0):
    torch.manual_seed(seed)
    return fif.compile(src, input_shape=shape, env=ENV)


def _input(shape, batch=2, seed=1, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, *shape, generator=g, dtype=dtype).to(device)


def _flat(y):
    """One tensor [N, ...] from a tensor or a dict of part tensors."""
    if isinstance(y, dict):
        return torch.cat([v.flatten(1) for _, v in sorted(y.items())], 1)
    return y.flatten(1)


def _shapes(y):
    if isinstance(y, dict):
        return {k: tuple(v.shape[1:]) for k, v in y.items()}
    return tuple(y.shape[1:])


def _dtypes(y):
    return {v.dtype for v in y.values()} if isinstance(y, dict) else {y.dtype}


@pytest.mark.parametrize("op,src,shape", CASES)
def test_inferred_shape_equals_real_shape(op, src, shape):
    p = _compile(src, shape).eval()
    assert p.input_shape == shape
    x = _input(shape, batch=3)
    with torch.no_grad():
        y = p(x)
    got = _shapes(y)
    want = p.output_shape
    if isinstance(want, dict):
        assert got == {k: tuple(v) for k, v in want.items()}
        assert list(y) == list(want)  # parts in the declared order
    else:
        assert got == tuple(want)
        assert y.shape[0] == 3


@pytest.mark.parametrize("op,src,shape", CASES)
def test_float32_is_preserved(op, src, shape):
    p = _compile(src, shape).eval()
    with torch.no_grad():
        y = p(_input(shape))
    assert _dtypes(y) == {torch.float32}
    assert all(t.dtype == torch.float32 for t in p.state_dict().values() if t.is_floating_point())


@pytest.mark.parametrize("op,src,shape", CASES)
def test_runs_in_float64(op, src, shape):
    p = _compile(src, shape).double().eval()
    x = _input(shape, dtype=torch.float64)
    with torch.no_grad():
        y = p(x)
    assert _dtypes(y) == {torch.float64}
    assert _shapes(y) == (p.output_shape if not isinstance(p.output_shape, dict)
                          else {k: tuple(v) for k, v in p.output_shape.items()})
    # Same weights in float32 give (nearly) the same answer, unless the op is random.
    if not p.random and p.differentiable:
        q = _compile(src, shape).eval()
        with torch.no_grad():
            y32 = q(x.float())
        torch.testing.assert_close(_flat(y).float(), _flat(y32), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("op,src,shape", CASES)
def test_deterministic_under_seed(op, src, shape):
    outs = []
    for _ in range(2):
        p = _compile(src, shape, seed=123).eval()
        x = _input(shape)
        torch.manual_seed(7)
        with torch.no_grad():
            outs.append(_flat(p(x)))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("op,src,shape", RANDOM_CASES)
def test_random_ops_draw_per_sample(op, src, shape):
    """Two copies of one image in a batch get different draws (batched EOT relies on it)."""
    p = _compile(src, shape).eval()
    x = _input(shape, batch=1).repeat(2, *([1] * len(shape)))
    with torch.no_grad():
        y = _flat(p(x))
        z = _flat(p.attack_view()(x))
    assert not torch.equal(y[0], y[1])
    assert not torch.equal(z[0], z[1])


@pytest.mark.parametrize("op,src,shape", RANDOM_CASES)
def test_seeded_call_is_reproducible_and_leaves_the_global_rng_alone(op, src, shape):
    p = _compile(src, shape).eval()
    x = _input(shape)
    state = torch.random.get_rng_state()
    with torch.no_grad():
        a = _flat(p(x, generator=torch.Generator().manual_seed(5)))
        b = _flat(p(x, generator=torch.Generator().manual_seed(5)))
        c = _flat(p.attack_view()(x, generator=torch.Generator().manual_seed(5)))
        d = _flat(p(x, generator=torch.Generator().manual_seed(6)))
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, d)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("op,src,shape", RANDOM_CASES)
def test_random_ops_draw_fresh_randomness_per_call(op, src, shape):
    p = _compile(src, shape).eval()
    assert p.random
    x = _input(shape)
    with torch.no_grad():
        a, b = _flat(p(x)), _flat(p(x))
        c, d = _flat(p.attack_view()(x)), _flat(p.attack_view()(x))
    assert not torch.equal(a, b)
    assert not torch.equal(c, d)


def _grads(p, x, view=None):
    x = x.clone().requires_grad_(True)
    for q in p.parameters():
        q.grad = None
    y = (view or p)(x)
    out = _flat(y)
    weights = torch.linspace(-1.0, 1.0, out.shape[1], dtype=out.dtype)  # not a plain sum
    loss = (out * weights).sum() + (out ** 2).sum()
    if loss.requires_grad:
        loss.backward()
    return x.grad


@pytest.mark.parametrize("op,src,shape", CASES)
def test_weights_are_trainable_exactly_when_the_plan_says_learnable(op, src, shape):
    """Weights the plan does not call learnable (a classifier with given weights) are frozen, so
    no defense stage trains them by accident."""
    p = _compile(src, shape)
    trainable = [q for q in p.parameters() if q.requires_grad]
    assert bool(trainable) == p.learnable


@pytest.mark.parametrize("op,src,shape", CASES)
def test_gradients(op, src, shape):
    p = _compile(src, shape).eval()  # eval: training-only noise is off
    x = _input(shape)
    if p.differentiable:
        g = _grads(p, x)
        assert g is not None, "no gradient reached the input"
        assert torch.isfinite(g).all()
        if op not in ZERO_GRADIENT:
            assert g.abs().sum() > 0
        for name, q in p.named_parameters():
            if q.requires_grad:  # classifiers with given weights are frozen
                assert q.grad is not None, f"no gradient reached {name}"
                assert torch.isfinite(q.grad).all(), name
        if p.learnable:
            assert any(q.grad.abs().sum() > 0 for q in p.parameters() if q.requires_grad)
        if not p.random:
            # The attack view is the same defense with the same weights: the same true gradient.
            g_attack = _grads(p, x, p.attack_view())
            torch.testing.assert_close(g_attack, g)
    else:
        g = _grads(p, x)
        assert g is None or g.abs().sum() == 0, "the deployed defense should mask the gradient"
        g_attack = _grads(p, x, p.attack_view())
        assert g_attack is not None and torch.isfinite(g_attack).all()
        assert g_attack.abs().sum() > 0, "the attack view must pass the surrogate gradient (BPDA)"


IDENTITY_SURROGATE = sorted(op for op, spec in all_ops().items()
                            if spec.differentiable is not True and spec.surrogate is None)


@pytest.mark.parametrize("op", IDENTITY_SURROGATE)
def test_non_differentiable_ops_surrogate_is_identity_unless_declared(op):
    checked = 0
    for src, shape in SNIPPETS.get(op, []):
        value = fif.parse(src).statements[0].value
        if not (isinstance(value, n.Call) and value.name == op):
            continue  # only snippets that are the op alone
        p = _compile(src, shape).eval()
        if p.random:
            continue
        x = _input(shape)
        g = _grads(p, x, p.attack_view())
        with torch.no_grad():
            y = _flat(p(x))
        weights = torch.linspace(-1.0, 1.0, y.shape[1])
        # Loss = sum(w * y) + sum(y^2); with the identity surrogate d/dx = w + 2 y.
        torch.testing.assert_close(g.flatten(1), weights.expand_as(y) + 2 * y)
        checked += 1
    assert checked, f"give {op} a snippet that is the op alone"


@pytest.mark.parametrize("op,src,shape", FIXED_CASES)
def test_attack_view_forward_equals_deployed_forward(op, src, shape):
    p = _compile(src, shape).eval()
    assert not p.random
    x = _input(shape)
    with torch.no_grad():
        torch.testing.assert_close(_flat(p.attack_view()(x)), _flat(p(x)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("op,src,shape", CASES)
def test_runs_on_cuda(op, src, shape):
    p = _compile(src, shape).eval().to("cuda")
    x = _input(shape, device="cuda")
    y = p(x)
    for t in (y.values() if isinstance(y, dict) else [y]):
        assert t.is_cuda
    assert _shapes(y) == (p.output_shape if not isinstance(p.output_shape, dict)
                          else {k: tuple(v) for k, v in p.output_shape.items()})
    if not p.random:
        cpu = _compile(src, shape).eval()
        with torch.no_grad():
            torch.testing.assert_close(_flat(y).detach().cpu(), _flat(cpu(x.cpu())), atol=1e-4, rtol=1e-4)
    if p.differentiable:
        g = _grads(p, x)
        assert g is not None and g.is_cuda and torch.isfinite(g).all()
    else:
        g = _grads(p, x, p.attack_view())
        assert g is not None and g.is_cuda and g.abs().sum() > 0


@pytest.mark.parametrize("op", sorted(all_ops()))
def test_op_spec_is_well_formed(op):
    spec = get_op(op)
    assert spec.name == op and op.isidentifier()
    assert spec.summary(), f"{op} needs a one-line doc"
    assert spec.signature().startswith(f"{op}(")
    assert set(spec.accepts) <= {"image", "features", "parts", "logits"} and spec.accepts
    names = [p.name for p in spec.params]
    assert len(names) == len(set(names))
    for p in spec.params:
        if not p.required and p.default is not None and p.type in ("int", "float", "number"):
            if p.low is not None:
                assert p.default >= p.low, (op, p.name)
            if p.high is not None:
                assert p.default <= p.high, (op, p.name)
        if p.type == "choice" and not p.required:
            assert p.default is None or p.default in p.choices, (op, p.name)   # None: not set


# ---- the registry -------------------------------------------------------------------------------

class _Gain(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return self.k * x


@pytest.fixture
def gain_op():
    spec = register_op("t_gain", lambda args, inp, out: _Gain(args["k"]),
                       params=[Param("k", "float", 2.0, low=0.0, high=10.0, doc="factor")],
                       infer=lambda inp, args, ctx: inp.with_shape(kind="features"),
                       doc="t_gain(k=2): multiply by k.")
    yield spec
    unregister_op("t_gain")


def test_register_op_compiles_and_runs(gain_op):
    assert "t_gain" in all_ops()
    p = fif.compile("t_gain(k=3) -> clamp", input_shape=S1)
    x = _input(S1)
    torch.testing.assert_close(p(x), (3 * x).clamp(0, 1))
    assert p.output_shape == S1
    err = pytest.raises(fif.FifError, fif.compile, "t_gain(k=30)", input_shape=S1).value
    assert (err.code, err.line, err.column) == ("E224", 1, 10)


def test_unregister_op_removes_it(gain_op):
    fif.compile("t_gain", input_shape=S1)
    unregister_op("t_gain")
    assert "t_gain" not in all_ops()
    err = pytest.raises(fif.FifError, fif.compile, "t_gain", input_shape=S1).value
    assert err.code == "E201"


def test_register_op_as_decorator():
    @register_op("t_half", params=[Param("by", "int", 2, low=1)])
    def build(args, inp, out):
        """t_half(by=2): divide by `by`."""
        return _Gain(1 / args["by"])

    try:
        assert get_op("t_half").summary() == "t_half(by=2): divide by `by`."
        p = fif.compile("t_half(4)", input_shape=S1)
        x = _input(S1)
        torch.testing.assert_close(p(x), x / 4)
    finally:
        unregister_op("t_half")


def test_user_block_op():
    class Max(nn.Module):
        def __init__(self, branches):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x):
            return torch.stack([b(x) for b in self.branches]).amax(0)

    register_op("t_max", lambda args, inp, out, branches: Max(branches), branches=(2, None),
                infer=lambda inp, args, ctx, kinds: kinds[0], doc="t_max { p | q }: elementwise max.")
    try:
        p = fif.compile("t_max { id | zero }", input_shape=S1)
        x = _input(S1)
        torch.testing.assert_close(p(x), x)
        err = pytest.raises(fif.FifError, fif.compile, "t_max { id }", input_shape=S1).value
        assert err.code == "E231"
    finally:
        unregister_op("t_max")


def test_duplicate_name_is_E211(gain_op):
    with pytest.raises(fif.FifError) as info:
        register_op("t_gain", lambda args, inp, out: _Gain(1.0))
    assert info.value.code == "E211"
    with pytest.raises(fif.FifError) as info:
        register_op("dwt", lambda args, inp, out: _Gain(1.0))
    assert info.value.code == "E211"
    assert get_op("dwt").family == "transform"  # the built-in op is untouched


def test_replace_true_replaces(gain_op):
    register_op("t_gain", lambda args, inp, out: _Gain(5.0), replace=True)
    p = fif.compile("t_gain", input_shape=S1)
    x = _input(S1)
    torch.testing.assert_close(p(x), 5 * x)


def test_registering_changes_cached_plans(gain_op):
    p1 = fif.compile("t_gain", input_shape=S1)
    register_op("t_gain", lambda args, inp, out: _Gain(7.0), replace=True)
    p2 = fif.compile("t_gain", input_shape=S1)
    x = _input(S1)
    torch.testing.assert_close(p1(x), 2 * x)
    torch.testing.assert_close(p2(x), 7 * x)


@pytest.mark.parametrize("name", ["not an identifier", "1abc", "", "a-b"])
def test_bad_op_name_is_E210(name):
    with pytest.raises(fif.FifError) as info:
        register_op(name, lambda args, inp, out: _Gain(1.0))
    assert info.value.code == "E210"
    assert name not in all_ops()


def test_parameter_declared_twice_is_E212():
    with pytest.raises(fif.FifError) as info:
        register_op("t_twice", lambda args, inp, out: _Gain(1.0), params=[Param("a", "int", 1), Param("a", "float", 1.0)])
    assert info.value.code == "E212"
    assert "t_twice" not in all_ops()


PARAM_TABLE = [
    # (kwargs, valid)
    (dict(name="k", type="int"), True),
    (dict(name="k", type="float", default=0.5, low=0, high=1), True),
    (dict(name="k", type="list[int]", default=(1, 2)), True),
    (dict(name="k", type="channels", default=None, low=1), True),
    (dict(name="k", type="choice", default="a", choices=("a", "b")), True),
    (dict(name="k", type="bool", default=False), True),
    (dict(name="k", type="pipeline"), True),
    (dict(name="k", type="float", default=0.0, flag_value=20.0), True),
    (dict(name="k", type="bool", default=False, keyword=True), True),
    (dict(name="k", type="float|list[float]|call", catalog=Catalog("draw", lambda: {"uniform": ()})), True),
    (dict(name="k", type="float|list[float]|call"), False),
    (dict(name="k", type="integer"), False),
    (dict(name="k", type="list[str]"), False),
    (dict(name="k", type="choice"), False),
    (dict(name="k", type="choice", choices=()), False),
]


@pytest.mark.parametrize("kwargs,valid", PARAM_TABLE, ids=[f"{k['type']}-{i}" for i, (k, _) in enumerate(PARAM_TABLE)])
def test_param_table_validates(kwargs, valid):
    if valid:
        p = Param(**kwargs)
        assert p.required == ("default" not in kwargs)
        assert p.signature().startswith("k")
    else:
        with pytest.raises(ValueError):
            Param(**kwargs)


def test_param_types_are_checked_at_compile_time(gain_op):
    table = [
        ("t_gain(k=x)", "E223"),
        ("t_gain(k=[1])", "E223"),
        ("t_gain(k=-1)", "E224"),
        ("t_gain(k=11)", "E224"),
        ("t_gain(1, 2)", "E220"),
        ("t_gain(q=1)", "E221"),
    ]
    for src, code in table:
        err = pytest.raises(fif.FifError, fif.compile, src, input_shape=S1).value
        assert err.code == code, src
    for src, k in [("t_gain(1/4)", 0.25), ("t_gain(k=3)", 3.0), ("t_gain", 2.0), ("t_gain(1e-1)", 0.1)]:
        p = fif.compile(src, input_shape=S1)
        x = _input(S1)
        assert math.isclose(float(p(x).sum() / x.sum()), k, rel_tol=1e-5), src


def test_a_user_op_named_like_a_builtin_is_E211_in_a_fresh_process():
    """The built-in catalog loads before any user registration, so the clash is caught even when
    register_op is the first thing a program does, and the catalog stays whole."""
    import subprocess
    import sys
    code = ("import fif, torch\n"
            "try:\n"
            "    fif.register_op('bitdepth', lambda a, i, o: torch.nn.Identity())\n"
            "except fif.FifError as e:\n"
            "    print(e.code)\n"
            "from fif.registry import all_ops\n"
            "print(all_ops()['bitdepth'].family, 'dwt' in all_ops())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["E211", "lossy", "True"], out.stderr
