"""fif.data: the shipped digits, user .npz files and image folders, stratified splits, batches, and
the E4xx diagnostics for bad data (code and file pinned, never wording)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fif.data import (Dataset, batches, from_arrays, load_dataset, load_image_folder, load_npz,
                      mnist5k, split)
from fif.errors import FifError


# ---------------------------------------------------------------- the shipped dataset

def test_mnist5k_shape_range_labels():
    ds = mnist5k()
    assert isinstance(ds, Dataset)
    assert ds.images.shape == (5000, 1, 28, 28) and ds.images.dtype == torch.float32
    assert ds.labels.shape == (5000,) and ds.labels.dtype == torch.int64
    assert float(ds.images.min()) == 0.0 and float(ds.images.max()) == 1.0
    assert ds.classes == tuple(str(i) for i in range(10))
    assert ds.class_counts() == [500] * 10
    assert torch.equal(ds.labels, ds.labels.sort().values)  # shipped sorted by label
    assert ds.name == "mnist5k" and ds.source == "package" and ds.shape == (1, 28, 28)


def test_builtin_info_matches_the_shipped_data():
    """Compiling a recipe reads (shape, classes) from BUILTIN_INFO instead of loading the images."""
    from fif.data.sources import BUILTIN, BUILTIN_INFO
    assert set(BUILTIN_INFO) == set(BUILTIN)
    for name in BUILTIN:
        ds = load_dataset(name)
        assert BUILTIN_INFO[name] == (tuple(ds.shape), ds.num_classes)


def test_mnist5k_through_load_dataset_gives_fresh_tensors():
    a, b = load_dataset("mnist5k"), mnist5k()
    assert torch.equal(a.images, b.images)
    a.images.zero_()  # a caller scribbling on its copy does not reach the next caller
    assert float(mnist5k().images.max()) == 1.0


# ---------------------------------------------------------------- splits

def _ids_dataset(counts):
    """Images whose first pixel encodes the sample index, labels with the given class sizes."""
    labels = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    n = len(labels)
    images = np.zeros((n, 4, 4), np.float32)
    images[:, 0, 0] = np.arange(n) / (n - 1)
    return from_arrays(images, labels, name="ids", source="ids.npz"), n


def _ids(ds, n):
    return set(torch.round(ds.images[:, 0, 0, 0] * (n - 1)).long().tolist())


def test_split_mnist5k_is_stratified_and_shuffled():
    train, test = split(mnist5k(), train=4000, test=1000, seed=0)
    assert len(train) == 4000 and len(test) == 1000
    assert train.class_counts() == [400] * 10 and test.class_counts() == [100] * 10
    assert not torch.equal(test.labels, test.labels.sort().values)  # the first n are balanced too
    assert set(test.labels[:100].tolist()) == set(range(10))


def test_split_unequal_classes_is_proportional_disjoint_and_seeded():
    ds, n = _ids_dataset([60, 30, 10])
    train, test = split(ds, train=50, test=20, seed=3)
    assert train.class_counts() == [30, 15, 5] and test.class_counts() == [12, 6, 2]
    tr, te = _ids(train, n), _ids(test, n)
    assert len(tr) == 50 and len(te) == 20 and not tr & te
    again = split(ds, train=50, test=20, seed=3)
    assert torch.equal(again[0].images, train.images) and torch.equal(again[1].labels, test.labels)
    other = split(ds, train=50, test=20, seed=4)
    assert _ids(other[1], n) != te


def test_split_uses_everything_when_asked():
    ds, n = _ids_dataset([7, 5, 3])
    train, test = split(ds, train=10, test=5, seed=0)
    assert _ids(train, n) | _ids(test, n) == set(range(n))
    assert [a + b for a, b in zip(train.class_counts(), test.class_counts())] == [7, 5, 3]


def test_split_too_large_is_an_error():
    ds, _ = _ids_dataset([5, 5])
    with pytest.raises(FifError) as e:
        split(ds, train=8, test=3)
    assert e.value.code == "E405"


# ---------------------------------------------------------------- .npz files

def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW", "NHWC1"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(0)
    c = 1 if layout in ("NHW", "NHWC1") else 3
    nchw = rng.integers(0, 256, size=(6, c, 5, 7), dtype=np.uint8)
    stored = {"NHW": nchw[:, 0], "NHWC": nchw.transpose(0, 2, 3, 1), "NCHW": nchw.astype(np.float32) / 255,
              "NHWC1": nchw.transpose(0, 2, 3, 1)}[layout]
    path = _save(tmp_path / "d.npz", images=stored, labels=np.array([0, 1, 2, 0, 1, 2], np.uint8))
    ds = load_npz(path)
    assert ds.images.shape == (6, c, 5, 7) and ds.images.dtype == torch.float32
    assert torch.allclose(ds.images, torch.from_numpy(nchw.astype(np.float32) / 255), atol=1e-6)
    assert ds.labels.tolist() == [0, 1, 2, 0, 1, 2] and ds.classes == ("0", "1", "2")
    assert ds.name == "d" and ds.source == str(path)


def test_npz_class_names_and_float_labels(tmp_path):
    path = _save(tmp_path / "pets.npz", images=np.zeros((3, 4, 4), np.uint8),
                 labels=np.array([1.0, 0.0, 1.0]), classes=np.array(["cat", "dog"]))
    ds = load_dataset(str(path))
    assert ds.classes == ("cat", "dog") and ds.labels.tolist() == [1, 0, 1]


def test_load_dataset_relative_to_base(tmp_path):
    _save(tmp_path / "d.npz", images=np.zeros((2, 4, 4), np.uint8), labels=np.array([0, 1]))
    assert len(load_dataset("d.npz", base=tmp_path)) == 2


# ---------------------------------------------------------------- image folders

def _png(path, size=(6, 5), mode="L", value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 0, 255 - value)
    Image.new(mode, size, color).save(path)


def test_image_folder_grey(tmp_path):
    root = tmp_path / "shapes"
    for cls, v in (("circle", 10), ("square", 200)):
        for i in range(3):
            _png(root / cls / f"{i}.png", value=v)
    (root / "square" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    ds = load_dataset(str(root))
    assert ds.images.shape == (6, 1, 5, 6) and ds.classes == ("circle", "square")
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert abs(float(ds.images[0].mean()) - 10 / 255) < 1e-6
    assert ds.name == "shapes" and ds.source == str(root)


def test_image_folder_converts_to_first_mode(tmp_path):
    _png(tmp_path / "a" / "0.png", mode="RGB")
    _png(tmp_path / "b" / "0.png", mode="L")
    ds = load_image_folder(tmp_path)
    assert ds.images.shape == (2, 3, 5, 6)
    assert torch.allclose(ds.images[1, 0], ds.images[1, 2])  # grey spread over RGB


# ---------------------------------------------------------------- bad data

class _Boom:
    """Unpickling this would call _boom; np.load must refuse before that."""

    def __reduce__(self):
        return (_boom, ())


UNPICKLED = []


def _boom():
    UNPICKLED.append(True)
    return "boom"


def _bad_npz(tmp_path, case):
    p = tmp_path / f"{case}.npz"
    u8 = lambda *s: np.zeros(s, np.uint8)  # noqa: E731
    lab = np.array([0, 1, 0, 1])
    if case == "garbage":
        p.write_bytes(b"this is not a zip file")
    elif case == "no_labels":
        _save(p, images=u8(4, 5, 5), label=lab)
    elif case == "object_array":
        imgs = np.empty(4, dtype=object)
        imgs[:] = [_Boom() for _ in range(4)]
        _save(p, images=imgs, labels=lab)
    elif case == "object_classes":
        _save(p, images=u8(4, 5, 5), labels=lab, classes=np.array(["a", _Boom()], dtype=object))
    elif case == "two_dims":
        _save(p, images=u8(4, 25), labels=lab)
    elif case == "five_dims":
        _save(p, images=u8(4, 1, 5, 5, 1), labels=lab)
    elif case == "two_channels":
        _save(p, images=u8(4, 2, 5, 2), labels=lab)
    elif case == "one_hot_labels":
        _save(p, images=u8(4, 5, 5), labels=np.eye(2)[lab])
    elif case == "int_out_of_range":
        _save(p, images=np.full((4, 5, 5), 300, np.int16), labels=lab)
    elif case == "float_out_of_range":
        _save(p, images=np.full((4, 5, 5), 2.0, np.float32), labels=lab)
    elif case == "nan":
        imgs = np.zeros((4, 5, 5), np.float32)
        imgs[1, 2, 3] = np.nan
        _save(p, images=imgs, labels=lab)
    elif case == "inf":
        imgs = np.zeros((4, 5, 5), np.float64)
        imgs[0, 0, 0] = np.inf
        _save(p, images=imgs, labels=lab)
    elif case == "fractional_labels":
        _save(p, images=u8(4, 5, 5), labels=np.array([0, 0.5, 1, 1]))
    elif case == "length_mismatch":
        _save(p, images=u8(5, 5, 5), labels=lab)
    elif case == "negative_label":
        _save(p, images=u8(4, 5, 5), labels=np.array([0, -1, 0, 1]))
    elif case == "class_without_samples":
        _save(p, images=u8(4, 5, 5), labels=np.array([0, 2, 0, 2]))
    elif case == "label_beyond_classes":
        _save(p, images=u8(4, 5, 5), labels=np.array([0, 1, 2, 1]), classes=np.array(["a", "b"]))
    elif case == "no_images":
        _save(p, images=u8(0, 5, 5), labels=np.zeros(0, np.int64))
    return p


NPZ_CASES = [
    ("garbage", "E402"), ("no_labels", "E402"), ("object_array", "E402"), ("object_classes", "E402"),
    ("two_dims", "E403"), ("five_dims", "E403"), ("two_channels", "E403"), ("one_hot_labels", "E403"),
    ("int_out_of_range", "E404"), ("float_out_of_range", "E404"), ("nan", "E404"), ("inf", "E404"),
    ("fractional_labels", "E404"),
    ("length_mismatch", "E405"), ("negative_label", "E405"), ("class_without_samples", "E405"),
    ("label_beyond_classes", "E405"), ("no_images", "E405"),
]


@pytest.mark.parametrize("case,code", NPZ_CASES)
def test_bad_npz(tmp_path, case, code):
    path = _bad_npz(tmp_path, case)
    with pytest.raises(FifError) as e:
        load_dataset(str(path))
    assert e.value.code == code, e.value.render()
    assert e.value.file == str(path)
    assert str(path) in e.value.render()
    assert not UNPICKLED


def test_object_array_is_never_unpickled(tmp_path):
    path = _bad_npz(tmp_path, "object_array")
    with pytest.raises(FifError) as e:
        load_npz(path)
    assert e.value.code == "E402" and "pickl" in e.value.message
    assert not UNPICKLED


def test_missing_files_and_unknown_names(tmp_path):
    for spec in (str(tmp_path / "missing.npz"), str(tmp_path / "nowhere")):
        with pytest.raises(FifError) as e:
            load_dataset(spec)
        assert e.value.code == "E401" and e.value.file == spec
    with pytest.raises(FifError) as e:
        load_npz(tmp_path / "gone.npz")
    assert e.value.code == "E401"
    with pytest.raises(FifError) as e:
        load_dataset("mnist5")
    assert e.value.code == "E401" and "mnist5k" in e.value.hint


def test_unsupported_file_type(tmp_path):
    p = tmp_path / "data.csv"
    p.write_text("1,2,3\n")
    with pytest.raises(FifError) as e:
        load_dataset(str(p))
    assert e.value.code == "E402" and e.value.file == str(p)


def test_empty_class_folder(tmp_path):
    _png(tmp_path / "a" / "0.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(FifError) as e:
        load_image_folder(tmp_path)
    assert e.value.code == "E405" and e.value.file == str(tmp_path / "b")


def test_folder_without_class_folders(tmp_path):
    _png(tmp_path / "0.png")
    with pytest.raises(FifError) as e:
        load_image_folder(tmp_path)
    assert e.value.code == "E402" and e.value.file == str(tmp_path)


def test_odd_image_size_names_the_file_and_expected_size(tmp_path):
    _png(tmp_path / "a" / "0.png", size=(6, 5))
    _png(tmp_path / "a" / "1.png", size=(6, 5))
    _png(tmp_path / "b" / "0.png", size=(7, 5))
    _png(tmp_path / "b" / "1.png", size=(8, 8))
    with pytest.raises(FifError) as e:
        load_image_folder(tmp_path)
    assert e.value.code == "E403"
    assert e.value.file == str(tmp_path / "b" / "0.png")
    assert "6x5" in e.value.message and "7x5" in e.value.message


def test_unreadable_image(tmp_path):
    _png(tmp_path / "a" / "0.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "0.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(FifError) as e:
        load_image_folder(tmp_path)
    assert e.value.code == "E402" and e.value.file == str(tmp_path / "b" / "0.png")


# ---------------------------------------------------------------- batches

def test_batches_cover_everything_deterministically():
    ds, n = _ids_dataset([13, 12])
    plain = list(batches(ds, 10))
    assert [len(y) for _, y in plain] == [10, 10, 5] and len(batches(ds, 10)) == 3
    assert torch.equal(torch.cat([x for x, _ in plain]), ds.images)

    def order(seed):
        gen = torch.Generator().manual_seed(seed)
        return torch.cat([torch.round(x[:, 0, 0, 0] * (n - 1)) for x, _ in batches(ds, 8, True, gen)])

    a, b = order(1), order(1)
    assert torch.equal(a, b) and sorted(a.long().tolist()) == list(range(n))
    assert not torch.equal(a, order(2))
    assert len(batches(ds, 10, drop_last=True)) == 2
    gen = torch.Generator().manual_seed(0)
    loader = batches(ds, 25, True, gen)
    first, second = next(iter(loader))[1], next(iter(loader))[1]
    assert not torch.equal(first, second)  # each pass draws a new order
