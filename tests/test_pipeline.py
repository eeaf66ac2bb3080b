"""`fif.compile` end to end: the issue's acceptance (the mission example on three input sizes),
save/load, shared `let` weights, runtime shape checks, the plan cache, and the wavelet parts."""

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from safetensors.torch import save_file

import fif
from fif.build import SharedNode
from fif.compiler import make_plan


MISSION = "dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt"
CANONICAL = "dwt -> <HH, HL, LH: chancompress(1/6, noise), LL: downup> -> idwt"


# ---- acceptance -----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 224, 224)])
def test_mission_example_keeps_shape_and_trains_every_parameter(shape):
    torch.manual_seed(0)
    p = fif.compile(MISSION, input_shape=shape)
    assert isinstance(p, torch.nn.Module) and isinstance(p, fif.Pipeline)
    assert p.input_shape == shape and p.output_shape == shape
    assert p.learnable and p.differentiable
    params = dict(p.named_parameters())
    assert params, "the mission example has learnable parts"
    x = torch.rand(1, *shape, requires_grad=True)
    y = p(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    ((y - x) ** 2).mean().backward()
    for name, q in params.items():
        assert q.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(q.grad).all(), name
    assert x.grad is not None and x.grad.abs().sum() > 0
    # Every band is processed by learnable stages: chancompress on HH, HL, LH and downup on LL.
    stages = {(r["stage"], r["op"]) for r in p.stages()}
    assert {("1.HH", "chancompress"), ("1.HL", "chancompress"), ("1.LH", "chancompress"),
            ("1.LL", "downup")} <= stages


def test_mission_example_batches():
    p = fif.compile(MISSION, input_shape=(1, 28, 28)).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        y = p(x)
        single = torch.cat([p(x[i:i + 1]) for i in range(5)])
    assert y.shape == x.shape
    torch.testing.assert_close(y, single, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 224, 224)])
def test_mission_example_on_cuda(shape):
    torch.manual_seed(0)
    cpu = fif.compile(MISSION, input_shape=shape).eval()
    gpu = fif.compile(MISSION, input_shape=shape).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.to("cuda")
    x = torch.rand(2, *shape)
    xg = x.to("cuda").requires_grad_(True)
    y = gpu(xg)
    assert y.is_cuda and y.shape == x.shape
    y.sum().backward()
    assert all(q.grad is not None and q.grad.is_cuda for q in gpu.parameters())
    with torch.no_grad():
        torch.testing.assert_close(y.detach().cpu(), cpu(x), atol=1e-4, rtol=1e-4)


def test_repr_is_the_canonical_source():
    p = fif.compile(MISSION, input_shape=(1, 28, 28))
    assert repr(p) == CANONICAL
    assert p.source == CANONICAL + "\n"
    assert repr(fif.compile("# note\nlet e = conv(1)\nid->e", input_shape=(1, 8, 8))) == \
        "# note\nlet e = conv(1)\nid -> e"
    assert fif.compile(repr(p), input_shape=(1, 28, 28)).source == p.source


def test_compile_accepts_a_parsed_program():
    tree = fif.parse(MISSION)
    p = fif.compile(tree, input_shape=(1, 28, 28))
    assert repr(p) == CANONICAL


@pytest.mark.parametrize("shape", [(1, 28), (0, 28, 28), (1, 28, 28, 1), "abc", None])
def test_bad_input_shape_is_E300(shape):
    with pytest.raises(fif.FifError) as info:
        fif.compile("id", input_shape=shape)
    assert info.value.code == "E300"


# ---- save / load ------------------------------------------------------------------------------

def _trained(p):
    """Move the weights away from their initial values, so loading must really load them."""
    with torch.no_grad():
        for q in p.parameters():
            q.add_(torch.randn_like(q) * 0.1)
    return p


@pytest.mark.parametrize("src,shape", [
    (MISSION, (1, 28, 28)),
    ("let enc = conv(4)\nmean { enc | enc } -> conv(out=input) -> clamp", (3, 16, 16)),
    ("dwt(db2, levels=2) -> <HH1: zero, LL: downup(2)> -> idwt -> bitdepth(8)", (1, 16, 16)),
])
def test_save_load_roundtrip(tmp_path, src, shape):
    p = _trained(fif.compile(src, input_shape=shape)).eval()
    path = tmp_path / "sub" / "defense.safetensors"
    p.save(path)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    q = fif.load(path).eval()
    assert isinstance(q, fif.Pipeline)
    assert q.source == p.source and q.input_shape == p.input_shape
    x = torch.rand(3, *shape)
    with torch.no_grad():
        torch.testing.assert_close(q(x), p(x), atol=0, rtol=0)
    for (k1, v1), (k2, v2) in zip(p.state_dict().items(), q.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_save_writes_source_in_metadata(tmp_path):
    from safetensors import safe_open
    p = fif.compile(MISSION, input_shape=(1, 28, 28))
    path = tmp_path / "m.safetensors"
    p.save(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["source"] == p.source
    assert json.loads(meta["input_shape"]) == [1, 28, 28]


def test_load_missing_file_is_E401(tmp_path):
    with pytest.raises(fif.FifError) as info:
        fif.load(tmp_path / "nope.safetensors")
    assert info.value.code == "E401"


def test_load_non_safetensors_file_is_E402(tmp_path):
    path = tmp_path / "text.safetensors"
    path.write_text("dwt -> idwt\n", encoding="utf-8")
    with pytest.raises(fif.FifError) as info:
        fif.load(path)
    assert info.value.code == "E402"
    assert "Traceback" not in info.value.render()


def test_load_safetensors_without_fif_metadata_is_E402(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    with pytest.raises(fif.FifError) as info:
        fif.load(path)
    assert info.value.code == "E402"


def _fif_meta(source, shape=(1, 28, 28)):
    return {"format": "fif-pipeline/1", "source": source, "input_shape": json.dumps(list(shape)),
            "input_kind": "image"}


def test_load_wrong_weights_is_E407(tmp_path):
    path = tmp_path / "wrong.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata=_fif_meta(MISSION))
    with pytest.raises(fif.FifError) as info:
        fif.load(path)
    assert info.value.code == "E407"


def test_load_weights_of_wrong_shape_is_E407(tmp_path):
    p = fif.compile("conv(4)", input_shape=(1, 8, 8))
    tensors = {k: torch.zeros(*v.shape[:-1], v.shape[-1] + 1) if v.dim() else v
               for k, v in p.state_dict().items()}
    path = tmp_path / "shape.safetensors"
    save_file(tensors, str(path), metadata=_fif_meta(p.source, (1, 8, 8)))
    with pytest.raises(fif.FifError) as info:
        fif.load(path)
    assert info.value.code == "E407"


def test_load_weights_of_another_pipeline_is_E407(tmp_path):
    a = fif.compile("conv(4)", input_shape=(1, 8, 8))
    path = tmp_path / "a.safetensors"
    a.save(path)
    from safetensors.torch import load_file
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata=_fif_meta("conv(4) -> conv(2)", (1, 8, 8)))
    with pytest.raises(fif.FifError) as info:
        fif.load(path)
    assert info.value.code == "E407"


def test_load_bad_source_reports_its_position(tmp_path):
    path = tmp_path / "bad.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata=_fif_meta("dwt -> <LL: downpu> -> idwt"))
    with pytest.raises(fif.FifError) as info:
        fif.load(path)
    assert (info.value.code, info.value.line, info.value.column) == ("E201", 1, 13)


def test_load_corrupt_metadata_is_fif_error(tmp_path):
    path = tmp_path / "corrupt.safetensors"
    meta = _fif_meta("id")
    meta["input_shape"] = "[1, 28"
    save_file({"w": torch.zeros(1)}, str(path), metadata=meta)
    with pytest.raises(fif.FifError):
        fif.load(path)


# ---- let shares weights, def does not -----------------------------------------------------------

def _param_count(p):
    return sum(q.numel() for q in p.parameters())


def test_let_used_twice_shares_parameters():
    one = _param_count(fif.compile("conv(4)", input_shape=(1, 8, 8)))
    p = fif.compile("let enc = conv(4)\nmean { enc | enc }", input_shape=(1, 8, 8))
    assert _param_count(p) == one == 4 * 9 + 4
    uses = [m for m in p.modules() if isinstance(m, SharedNode)]
    assert len(uses) == 2
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        before = uses[0](x)
        torch.testing.assert_close(uses[1](x), before)
        for q in p.parameters():  # change "one" of them ...
            q.add_(1.0)
        after0, after1 = uses[0](x), uses[1](x)
    assert not torch.allclose(after0, before)  # ... and both changed
    torch.testing.assert_close(after0, after1)
    torch.testing.assert_close(p(x), after0)


def test_shared_weights_train_together():
    p = fif.compile("let enc = conv(1)\ndwt -> <LL: enc, HH: enc> -> idwt", input_shape=(1, 8, 8))
    assert _param_count(p) == 9 + 1
    x = torch.rand(2, 1, 8, 8)
    p(x).sum().backward()
    (w, b) = list(p.parameters())
    assert w.grad is not None and w.grad.abs().sum() > 0 and b.grad is not None


def test_def_used_twice_has_two_sets():
    p = fif.compile("def enc() = conv(4)\nmean { enc | enc }", input_shape=(1, 8, 8))
    assert _param_count(p) == 2 * (4 * 9 + 4)
    names = [n for n, _ in p.named_parameters()]
    assert len(names) == 4
    w = [q for n, q in p.named_parameters() if n.endswith("weight")]
    assert len(w) == 2 and w[0] is not w[1] and not torch.equal(w[0], w[1])


def test_def_with_params_used_twice():
    p = fif.compile("def band(r=1/2) = chancompress(r)\ndwt -> <HH: band, LL: band(1)> -> idwt",
                    input_shape=(2, 8, 8))
    rows = {r["stage"]: r for r in p.stages()}
    assert rows["1.HH"]["params"]["ratio"] == 0.5 and rows["1.LL"]["params"]["ratio"] == 1.0
    assert rows["1.HH"]["weights"] > 0 and rows["1.LL"]["weights"] > rows["1.HH"]["weights"]


# ---- runtime checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [(2, 1, 28, 27), (2, 3, 28, 28), (1, 28, 28), (2, 1, 1, 28, 28)])
def test_wrong_input_shape_at_forward_is_E501(bad):
    p = fif.compile(MISSION, input_shape=(1, 28, 28))
    with pytest.raises(fif.FifError) as info:
        p(torch.rand(*bad))
    assert info.value.code == "E501"
    with pytest.raises(fif.FifError):
        p.attack_view()(torch.rand(*bad))


# ---- the plan cache --------------------------------------------------------------------------------

def test_plan_cache_reuses_plan_but_builds_fresh_modules():
    a = make_plan(MISSION, (1, 28, 28))
    b = make_plan(MISSION, (1, 28, 28))
    assert a is b
    assert make_plan("dwt->< HH,HL,LH :chancompress(1/6,noise),LL:downup>->idwt", (1, 28, 28)) is a
    assert make_plan(MISSION, (3, 28, 28)) is not a
    p1 = fif.compile(MISSION, input_shape=(1, 28, 28))
    p2 = fif.compile(MISSION, input_shape=(1, 28, 28))
    assert p1.plan is p2.plan is a
    assert p1 is not p2 and p1.root is not p2.root
    ids1 = {id(q) for q in p1.parameters()}
    assert ids1.isdisjoint(id(q) for q in p2.parameters())
    with torch.no_grad():
        next(p1.parameters()).add_(1.0)
    assert not torch.equal(next(p1.parameters()), next(p2.parameters()))


def test_plan_is_printable_and_torch_free():
    plan = make_plan(MISSION, (1, 28, 28))
    rows = plan.rows()
    assert [r["op"] for r in rows] == ["dwt", "downup", "chancompress", "chancompress", "chancompress", "idwt"]
    assert [r["stage"] for r in rows] == ["0", "1.LL", "1.LH", "1.HL", "1.HH", "2"]
    assert rows[0]["shape"] == {"LL": (1, 14, 14), "LH": (1, 14, 14), "HL": (1, 14, 14), "HH": (1, 14, 14)}
    assert rows[-1]["output"] == "image[1,28,28]"
    assert plan.flags() == {"learnable": True, "differentiable": True, "random": False}


# ---- wavelet parts ------------------------------------------------------------------------------------

def test_dwt_two_levels_names_parts():
    p = fif.compile("dwt(levels=2)", input_shape=(1, 16, 16))
    expected = ["LL", "LH2", "HL2", "HH2", "LH1", "HL1", "HH1"]
    assert list(p.output_shape) == expected
    assert p.output_shape["LL"] == (1, 4, 4) and p.output_shape["HH1"] == (1, 8, 8)
    y = p(torch.rand(2, 1, 16, 16))
    assert list(y) == expected
    assert {k: tuple(v.shape) for k, v in y.items()} == {k: (2, *s) for k, s in p.output_shape.items()}
    err = pytest.raises(fif.FifError, fif.compile, "dwt(levels=2) -> <LH: zero> -> idwt",
                        input_shape=(1, 16, 16)).value
    assert err.code == "E311"
    assert all(name in err.message for name in expected)


@pytest.mark.parametrize("wavelet", ["haar", "db2"])
@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 32, 24)])
def test_idwt_inverts_dwt(wavelet, levels, shape):
    p = fif.compile(f"dwt({wavelet}, levels={levels}, mode=periodization) -> idwt", input_shape=shape)
    assert not p.learnable and p.output_shape == shape
    x = torch.rand(2, *shape, dtype=torch.float64)
    y = p.double()(x)
    torch.testing.assert_close(y, x, atol=1e-10, rtol=0)
    y32 = p.float()(x.float())
    torch.testing.assert_close(y32, x.float(), atol=1e-5, rtol=0)


def test_idwt_inverts_dwt_with_identity_part_map():
    p = fif.compile("dwt(db2, levels=2) -> <*: id> -> idwt", input_shape=(1, 16, 16))
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(p(x), x, atol=1e-5, rtol=0)


def test_zeroing_all_detail_bands_is_a_low_pass():
    p = fif.compile("dwt -> <LH, HL, HH: zero> -> idwt", input_shape=(1, 8, 8))
    x = torch.rand(1, 1, 8, 8)
    expected = torch.nn.functional.avg_pool2d(x, 2).repeat_interleave(2, -1).repeat_interleave(2, -2)
    torch.testing.assert_close(p(x), expected, atol=1e-6, rtol=0)


# ---- attack view ------------------------------------------------------------------------------------

def test_attack_view_bpda_through_bitdepth_in_a_pipeline():
    p = fif.compile("conv(2) -> conv(out=input) -> clamp -> bitdepth(4)", input_shape=(1, 8, 8)).eval()
    assert not p.differentiable
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    p(x).sum().backward()
    assert x.grad is None or x.grad.abs().sum() == 0
    x2 = x.detach().clone().requires_grad_(True)
    y = p.attack_view()(x2)
    with torch.no_grad():
        torch.testing.assert_close(y, p(x2))
    y.sum().backward()
    assert x2.grad.abs().sum() > 0
    assert all(q.grad is not None for q in p.parameters())
    assert "bitdepth" in repr(p.attack_view())


@pytest.mark.parametrize("src,levels", [("bitdepth(2)", 2), ("bitdepth(5)", 5), ("bitdepth(2, bits=true)", 4),
                                        ("bitdepth(1, bits)", 2), ("bitdepth(levels=3, bits=true)", 8)])
def test_bitdepth_keeps_levels_or_two_to_the_bits(src, levels):
    """k read as levels (the default) or as bits (Zhang et al. 2021 leave it open)."""
    p = fif.compile(src, input_shape=(1, 16, 16))
    x = torch.linspace(0, 1, 256).view(1, 1, 16, 16)
    want = torch.round(x * (levels - 1)) / (levels - 1)
    torch.testing.assert_close(p(x), want)
    assert len(p(x).unique()) == levels and repr(p) == src


# ---- property: random valid pipelines compile and run -------------------------------------------

# Stages that keep an image[C,8,8] an image of the same shape, and part pipelines for dwt bands.
IMAGE_STAGES = st.sampled_from([
    "id", "clamp", "noise(0.05)", "bitdepth(8)", "conv(2) -> conv(out=input) -> clamp",
    "residual { conv(out=input) } -> clamp", "mean { id | bitdepth(4) }",
])
BAND_STAGES = st.sampled_from(["id", "zero", "conv(out=input)", "downup(2, depth=1)", "chancompress(1)",
                               "noise(0.1, clip=false)", "clamp(-1, 1)"])


@st.composite
def image_pipelines(draw, depth=2):
    stages = []
    for _ in range(draw(st.integers(1, 3))):
        if depth > 0 and draw(st.booleans()):
            groups = draw(st.lists(st.tuples(st.sampled_from(["LL", "LH", "HL", "HH"]), BAND_STAGES),
                                   min_size=1, max_size=4, unique_by=lambda g: g[0]))
            body = ", ".join(f"{name}: {stage}" for name, stage in groups)
            stages.append(f"dwt -> <{body}> -> idwt -> clamp")
        elif depth > 0 and draw(st.booleans()):
            inner = draw(image_pipelines(depth=depth - 1))
            stages.append(f"mean {{ {inner} | id }}")
        else:
            stages.append(draw(IMAGE_STAGES))
    return " -> ".join(stages)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(image_pipelines(), st.sampled_from([1, 3]))
def test_random_valid_pipelines_compile_and_run(src, channels):
    shape = (channels, 8, 8)
    p = fif.compile(src, input_shape=shape)
    assert p.output_shape == shape
    x = torch.rand(2, *shape)
    y = p.attack_view()(x.requires_grad_(True))
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert fif.compile(repr(p), input_shape=shape).source == p.source


def test_stage_table_counts_weights_where_they_live():
    p = fif.compile("mean { conv(2) -> conv(out=input) | conv(out=input) } -> clamp")
    rows = {r["stage"]: r for r in p.stages()}
    assert rows["0"]["op"] == "mean" and rows["0"]["weights"] == 0
    assert (rows["0.b0.0"]["weights"], rows["0.b0.1"]["weights"], rows["0.b1"]["weights"]) == (20, 19, 10)
    assert sum(r["weights"] for r in rows.values()) == sum(t.numel() for t in p.parameters())
    assert list(rows["0.b0.0"]["params"]) == ["out", "k", "depth", "act", "width"]   # declared order


@pytest.mark.parametrize("src", ["conv(100000000000)", "dwt -> <LL: downup -> conv(3000000, depth=2) -> conv(out=1)> -> idwt"])
def test_absurd_sizes_are_refused_before_anything_is_allocated(src):
    """conv(100000000000) would need terabytes: E360 at the op, with the size, and no allocation."""
    import tracemalloc
    tracemalloc.start()
    with pytest.raises(fif.FifError) as e:
        fif.compile(src, input_shape=(1, 28, 28))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (e.value.code, e.value.line, e.value.column) == ("E360", 1, src.index("conv(") + 1)
    assert "GB" in e.value.message or "TB" in e.value.message
    assert peak < 200 * 2 ** 20


def test_weight_limit_is_measured_not_guessed(monkeypatch):
    import fif.build
    size = 4 * (1 * 8 * 9 + 8 + 8 * 1 * 9 + 1)     # float32 weights and biases of 1 -> 8 -> 1 channels
    monkeypatch.setattr(fif.build, "MAX_OP_BYTES", size - 1)
    with pytest.raises(fif.FifError) as e:
        fif.compile("conv(1, depth=2, width=8) -> clamp", input_shape=(1, 8, 8))
    assert e.value.code == "E360" and f"{size} B" in e.value.message
    monkeypatch.setattr(fif.build, "MAX_OP_BYTES", size)
    fif.compile("conv(1, depth=2, width=8) -> clamp", input_shape=(1, 8, 8))


def test_weight_sizes_are_probed_once_per_step(monkeypatch):
    """The meta-device probe of a learnable op's size is remembered per step (it ran the weight
    initialisers through torch's Python decompositions: most of a second compile's time), so a
    second compile builds each op once, for real, with the same weights under the same seed, and
    still refuses what it refused before."""
    import fif.build
    src = "conv(8, depth=2) -> conv(out=input) -> clamp"
    torch.manual_seed(0)
    first = fif.compile(src, input_shape=(1, 8, 8))
    calls = []
    real = fif.build._make
    monkeypatch.setattr(fif.build, "_make", lambda spec, step, *a, **k: calls.append(step.op) or real(spec, step, *a, **k))
    torch.manual_seed(0)
    second = fif.compile(src, input_shape=(1, 8, 8))
    assert calls == ["conv", "conv", "clamp"]
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for _ in range(2):
        with pytest.raises(fif.FifError) as e:
            fif.compile("conv(100000000000)", input_shape=(1, 28, 28))
        assert e.value.code == "E360"


def test_a_pure_let_used_twice_runs_once_per_call():
    """PA-Filt's encoder is a let that feeds two decoders: within one call it now runs once on the
    same input (pafilt was 1.3-1.4x slower than the same network by hand, benchmarks/comparisons/
    defenses.py), with the output and gradients of running it at each use. A random let, or one
    with batch norm, still runs at every use."""
    src = "let enc = conv(4, depth=2)\nmean { enc -> conv(out=input) | enc -> clamp -> conv(out=input) }"
    torch.manual_seed(0)
    p = fif.compile(src, input_shape=(1, 8, 8)).double()
    assert p.reuses_lets
    calls = []
    p.shared["enc"].register_forward_hook(lambda *args: calls.append(1))
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)

    def run(model):
        calls.clear()
        p.zero_grad()
        xi = x.clone().requires_grad_(True)
        y = model(xi)
        y.pow(2).sum().backward()
        return [y.detach(), xi.grad] + [q.grad.clone() for q in p.parameters()], len(calls)

    for model in (p, p.attack_view()):
        once, n_once = run(model)
        p.reuses_lets = False
        twice, n_twice = run(model)
        p.reuses_lets = True
        assert (n_once, n_twice) == (1, 2)
        for a, b in zip(once, twice, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not fif.compile("let n = noise(0.1)\nmean { n | n }", input_shape=(1, 8, 8)).reuses_lets
    assert not fif.compile("let c = smallcnn\nmean { c | c }", input_shape=(1, 28, 28)).reuses_lets


def test_the_size_probe_skips_random_fills_but_measures_the_same_bytes():
    """The meta-device size probe (E360) no longer runs the initialisers' random draws (1.4 s of the
    first compile of recipes/pafilt.fif, benchmarks/comparisons/startup.py): it measures what every
    learnable op of the shipped recipes allocates for real, byte for byte."""
    from pathlib import Path

    import fif.build as b
    from fif.registry import get_op
    recipes = Path(__file__).resolve().parents[1] / "recipes"
    seen = 0
    for name in ("pafilt", "dir", "tiny"):
        plan = fif.load_recipe(recipes / f"{name}.fif").compile().plan
        for _, step in plan.ops():
            if not step.learnable or getattr(step, "branches", ()):   # blocks are not probed
                continue
            b._PROBED.clear()
            spec = get_op(step.op)
            real = b._make(spec, step, step.kwargs, None)
            assert b._probe_bytes(spec, step, step.kwargs) == b._weight_bytes(real) > 0, step.op
            seen += 1
    assert seen >= 5
