"""fif.models and the classifier ops: shapes, training, determinism, the on-disk cache, and the
safetensors save/load helpers with their diagnostics."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import fif.models.cache as cache_mod
from fif.data import from_arrays, mnist5k, split
from fif.errors import FifError
from fif.kinds import LogitsKind, PartsKind, TensorKind
from fif.models import (accuracy, build_classifier, cache_key, get_classifier, load_weights,
                        save_weights, train_classifier)
from fif.registry import KindError

WIDTH = {"smallcnn": 8, "lenet": None, "resnet18": 4}



@pytest.fixture(scope="module")
def digits():
    return split(mnist5k(), train=2000, test=500, seed=0)


@pytest.fixture(scope="module")
def tiny(digits):
    return digits[0].subset(range(256))


def _seeded(arch, shape, k=10, seed=0, **kw):
    torch.manual_seed(seed)
    return build_classifier(arch, shape, k, **kw)


# ---------------------------------------------------------------- architectures

@pytest.mark.parametrize("arch", ["smallcnn", "lenet", "resnet18"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_output_shapes(arch, shape):
    model = build_classifier(arch, shape, num_classes=7, width=WIDTH[arch]).eval()
    x = torch.rand(3, *shape)
    assert model(x).shape == (3, 7)
    assert model.arch == arch and model.in_shape == shape and model.num_classes == 7


def test_default_widths():
    assert build_classifier("smallcnn").features[0].out_channels == 32
    assert build_classifier("resnet18", (3, 32, 32)).stem[0].out_channels == 64


@pytest.mark.parametrize("call,code", [
    (lambda: build_classifier("lenett"), "E202"),
    (lambda: build_classifier("lenet", (1, 8, 8)), "E334"),
    (lambda: build_classifier("lenet", width=4), "E221"),
    (lambda: build_classifier("smallcnn", width=0), "E224"),
])
def test_build_errors(call, code):
    with pytest.raises(FifError) as e:
        call()
    assert e.value.code == code


def test_unknown_arch_hint():
    with pytest.raises(FifError) as e:
        build_classifier("resnet81")
    assert "resnet18" in e.value.hint


# ---------------------------------------------------------------- training

def test_smallcnn_learns_the_digits(digits):
    train, test = digits
    model = _seeded("smallcnn", train.shape, width=16)
    metrics = train_classifier(model, train, epochs=3, batch=64, lr=2e-3, seed=0)
    assert metrics["epochs"] == 3 and metrics["steps"] == 3 * 32 and not metrics["adversarial"]
    assert metrics["losses"][-1] < metrics["losses"][0]
    assert not model.training
    assert accuracy(model, test) > 0.90


def test_training_is_deterministic_under_a_seed(tiny):
    def run(seed):
        model = _seeded("smallcnn", tiny.shape, width=8)
        train_classifier(model, tiny, epochs=1, batch=64, lr=1e-3, seed=seed)
        return model.state_dict()

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_sgd_and_constant_schedule(tiny):
    model = _seeded("lenet", tiny.shape)
    m = train_classifier(model, tiny, epochs=1, batch=128, optim="sgd", schedule="constant")
    assert m["steps"] == 2 and m["loss"] == m["loss"]  # finite


@pytest.mark.parametrize("kwargs,code", [
    (dict(optim="rmsprop"), "E226"),
    (dict(adversarial={"epsilon": 0.3}), "E221"),
    (dict(adversarial={"steps": 3}), "E222"),
])
def test_training_argument_errors(tiny, kwargs, code):
    with pytest.raises(FifError) as e:
        train_classifier(_seeded("smallcnn", tiny.shape, width=4), tiny, epochs=1, **kwargs)
    assert e.value.code == code


def test_adversarial_training_ramps_eps(tiny, monkeypatch):
    import fif.attacks
    calls = []

    def stand_in(model, x, y, eps, *, steps=40, step=None, random_start=True, seed=None, **kw):
        assert not model.training
        calls.append((eps, steps, step, seed))
        return (x + eps * torch.sign(torch.randn_like(x))).clamp(0, 1)

    monkeypatch.setattr(fif.attacks, "pgd", stand_in)
    data = tiny.subset(range(128))
    model = _seeded("smallcnn", data.shape, width=4)
    m = train_classifier(model, data, epochs=3, batch=32, lr=1e-3,
                         adversarial=dict(eps=0.3, steps=5, step=0.1, ramp_epochs=2))
    eps = [c[0] for c in calls]
    assert len(eps) == 12 and m["adversarial"] and m["final_eps"] == pytest.approx(0.3)
    assert eps == pytest.approx([0.3 * min(1, (i + 1) / 8) for i in range(12)])
    assert [c[2] for c in calls] == pytest.approx([0.1 * min(1, (i + 1) / 8) for i in range(12)])
    assert {c[1] for c in calls} == {5} and len({c[3] for c in calls}) == 12


def test_adversarial_training_with_the_real_pgd(tiny):
    pytest.importorskip("fif.attacks")
    from fif.attacks import pgd  # noqa: F401  (skips cleanly if the attack is not there)
    data = tiny.subset(range(128))

    def run():
        model = _seeded("smallcnn", data.shape, width=4)
        m = train_classifier(model, data, epochs=2, batch=64, adversarial=dict(eps=0.2, steps=2), seed=5)
        return model.state_dict(), m

    (a, m), (b, _) = run(), run()
    assert m["adversarial"] and m["final_eps"] == pytest.approx(0.2) and m["loss"] == m["loss"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_accuracy_restores_mode(tiny):
    model = _seeded("smallcnn", tiny.shape, width=4).train()
    acc = accuracy(model, tiny, batch=100)
    assert 0.0 <= acc <= 1.0 and model.training


# ---------------------------------------------------------------- the cache

SETTINGS = {"epochs": 1, "batch": 64, "lr": 1e-3, "width": 8}


def test_cache_trains_once_then_loads(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("FIF_CACHE", str(tmp_path))
    first = get_classifier("smallcnn", "digits", tiny, settings=SETTINGS, seed=0)
    assert not first.training
    files = sorted(p.name for p in tmp_path.iterdir())
    key = cache_key("smallcnn", "digits", tiny, SETTINGS, 0)
    assert files == [f"smallcnn-{key}.json", f"smallcnn-{key}.safetensors"]
    info = json.loads((tmp_path / f"smallcnn-{key}.json").read_text())
    assert info["settings"]["epochs"] == 1 and 0 <= info["train_accuracy"] <= 1

    def no_training(*a, **k):
        raise AssertionError("the cached classifier was trained again")

    monkeypatch.setattr(cache_mod, "train_classifier", no_training)
    second = get_classifier("smallcnn", "digits", tiny, settings=SETTINGS, seed=0)
    x = tiny.images[:16]
    with torch.no_grad():
        assert torch.equal(first(x), second(x))
    assert not second.training


def test_cache_key_changes_with_what_matters(tiny):
    base = cache_key("smallcnn", "digits", tiny, SETTINGS, 0)
    assert base == cache_key("smallcnn", "digits", tiny, dict(SETTINGS), 0)
    assert base != cache_key("smallcnn", "digits", tiny, {**SETTINGS, "epochs": 2}, 0)
    assert base != cache_key("smallcnn", "digits", tiny, SETTINGS, 1)
    assert base != cache_key("lenet", "digits", tiny, SETTINGS, 0)
    assert base != cache_key("smallcnn", "other", tiny, SETTINGS, 0)
    flipped = from_arrays(tiny.images.numpy()[::-1].copy(), tiny.labels.numpy()[::-1].copy(),
                          name="digits", source="x", classes=tiny.classes)
    assert base != cache_key("smallcnn", "digits", flipped, SETTINGS, 0)


def test_cache_seeded_training_matches_across_folders(tiny, tmp_path):
    a = get_classifier("smallcnn", "digits", tiny, settings=SETTINGS, cache_dir=tmp_path / "a")
    b = get_classifier("smallcnn", "digits", tiny, settings=SETTINGS, cache_dir=tmp_path / "b")
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize("damage", ["garbage", "other_model", "truncated"])
def test_corrupt_cache_is_retrained(tiny, tmp_path, damage):
    model = get_classifier("smallcnn", "digits", tiny, settings=SETTINGS, cache_dir=tmp_path)
    path = next(tmp_path.glob("*.safetensors"))
    if damage == "garbage":
        path.write_bytes(b"not safetensors at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        save_weights(build_classifier("lenet"), path)
    with pytest.warns(RuntimeWarning, match="training it again"):
        again = get_classifier("smallcnn", "digits", tiny, settings=SETTINGS, cache_dir=tmp_path)
    x = tiny.images[:8]
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    load_weights(build_classifier("smallcnn", width=8), path)  # repaired on disk


def test_unknown_setting(tiny, tmp_path):
    with pytest.raises(FifError) as e:
        get_classifier("smallcnn", "digits", tiny, settings={"epoch": 1}, cache_dir=tmp_path)
    assert e.value.code == "E221" and "epochs" in e.value.hint


# ---------------------------------------------------------------- weights on disk

def test_save_load_roundtrip(tmp_path):
    src = _seeded("resnet18", (3, 32, 32), width=4, seed=1).eval()
    path = tmp_path / "w" / "model.safetensors"
    save_weights(src, path, metadata={"recipe": "acm", "epoch": 3})
    dst = _seeded("resnet18", (3, 32, 32), width=4, seed=2).eval()
    meta = load_weights(dst, path)
    assert meta["recipe"] == "acm" and json.loads(meta["epoch"]) == 3
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp files left


def test_shared_weights_roundtrip(tmp_path):
    shared = nn.Linear(4, 4)
    src = nn.Sequential(shared, nn.ReLU(), shared)
    save_weights(src, tmp_path / "s.safetensors")
    dst_shared = nn.Linear(4, 4)
    dst = nn.Sequential(dst_shared, nn.ReLU(), dst_shared)
    load_weights(dst, tmp_path / "s.safetensors")
    assert torch.equal(dst[0].weight, shared.weight) and dst[0] is dst[2]


def test_load_mismatch_errors(tmp_path):
    path = tmp_path / "m.safetensors"
    save_weights(build_classifier("smallcnn", width=8), path)
    with pytest.raises(FifError) as e:
        load_weights(build_classifier("smallcnn", width=16), path)
    assert e.value.code == "E407" and e.value.file == str(path) and "features.0.weight" in e.value.message
    with pytest.raises(FifError) as e:
        load_weights(build_classifier("lenet"), path)
    assert e.value.code == "E407" and "features.1" in e.value.message
    with pytest.raises(FifError) as e:
        load_weights(build_classifier("smallcnn"), tmp_path / "absent.safetensors")
    assert e.value.code == "E401"
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(FifError) as e:
        load_weights(build_classifier("smallcnn"), bad)
    assert e.value.code == "E402" and e.value.file == str(bad)


# ---------------------------------------------------------------- classifiers as ops

def _op(name):
    import fif.ops.classifiers  # noqa: F401  (registers the ops, if fif.ops has not yet)
    from fif.registry import get_op
    return get_op(name)


@pytest.mark.parametrize("name,args", [("smallcnn", {"classes": 10, "width": 8, "weights": None}),
                                       ("lenet", {"classes": 4, "weights": None}),
                                       ("resnet18", {"classes": 3, "width": 4, "weights": None})])
def test_classifier_ops(name, args):
    spec = _op(name)
    assert spec.family == "classifier" and spec.flag("learnable", args) and spec.accepts == ("image",)
    assert {p.name for p in spec.params} == set(args)
    image = TensorKind("image", 1, 28, 28)
    out = spec.infer(image, args, None)
    assert out == LogitsKind(args["classes"])
    module = spec.build(args, image, out).eval()
    assert module(torch.rand(2, 1, 28, 28)).shape == (2, args["classes"])
    for bad in (TensorKind("features", 1, 28, 28), LogitsKind(10),
                PartsKind((("LL", TensorKind("features", 1, 14, 14)),), "dwt")):
        with pytest.raises(KindError) as e:
            spec.infer(bad, args, None)
        assert e.value.code == "E302"


def test_classifier_op_too_small():
    with pytest.raises(KindError) as e:
        _op("lenet").infer(TensorKind("image", 1, 8, 8), {"classes": 10}, None)
    assert e.value.code == "E334"
