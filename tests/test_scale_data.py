"""Real datasets where users keep them: CIFAR-10's binary batches and ImageNet-style class folders
streamed through a DataLoader; small files in each format, and every bad one a clear error.

    data = cifar10("cifar-10-batches-bin", train=40, test=10) | imagefolder("photos", size=12, crop=8)
"""

import numpy as np
import pytest
import torch

import fif
from fif.data.cifar import RECORD, TEST_FILE, TRAIN_FILES, load_cifar10, read_records
from fif.data.stream import folder_dataset, materialize, stream_batches
from fif.errors import FifError
from fif.runtime import recipe_data


def _records(labels, seed):
    rng = np.random.default_rng(seed)
    out = np.zeros((len(labels), RECORD), np.uint8)
    out[:, 0] = labels
    out[:, 1:] = rng.integers(0, 256, (len(labels), RECORD - 1), dtype=np.uint8)
    return out


@pytest.fixture
def cifar_dir(tmp_path):
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    for i, f in enumerate(TRAIN_FILES + (TEST_FILE,)):
        _records(np.arange(20) % 10, i).tofile(root / f)
    (root / "batches.meta.txt").write_text("\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                       "horse", "ship", "truck"]) + "\n\n")
    return root


def test_cifar10_records_decode_label_then_planes(cifar_dir):
    raw = np.fromfile(cifar_dir / TEST_FILE, np.uint8).reshape(-1, RECORD)
    images, labels = read_records(cifar_dir / TEST_FILE)
    assert images.shape == (20, 3, 32, 32) and list(labels[:3]) == [0, 1, 2]
    assert images[1, 2, 0, 5] == raw[1, 1 + 2 * 1024 + 5]          # blue plane, row 0, column 5
    ds = load_cifar10(cifar_dir)
    assert len(ds) == 120 and ds.classes[3] == "cat" and ds.shape == (3, 32, 32)
    assert torch.equal(ds.images[-20:], torch.from_numpy(images).float() / 255)


def test_a_recipe_trains_on_the_training_batches_and_tests_on_the_test_batch(cifar_dir, tmp_path):
    path = tmp_path / "c.fif"
    path.write_text(f'recipe c {{ data = cifar10("{cifar_dir.name}", train=40, test=10, seed=1)\n'
                    '  classifier = smallcnn\n  defense = bitdepth(4) }\n')
    train, test = recipe_data(fif.load_recipe(path))
    assert (len(train), len(test)) == (40, 10)
    pool = torch.from_numpy(read_records(cifar_dir / TEST_FILE)[0]).float() / 255
    assert all(any(torch.equal(x, p) for p in pool) for x in test.images)   # only test-batch images
    assert torch.bincount(test.labels, minlength=10).tolist() == [1] * 10   # stratified


@pytest.mark.parametrize("damage, code", [("truncate", "E402"), ("label", "E404"), ("missing", "E401"),
                                          ("meta", "E405")])
def test_bad_cifar_files_are_clear_errors(cifar_dir, damage, code):
    target = cifar_dir / TRAIN_FILES[2]
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:-100])
    elif damage == "label":
        data = bytearray(target.read_bytes())
        data[RECORD * 3] = 12
        target.write_bytes(bytes(data))
    elif damage == "missing":
        target.unlink()
    else:
        (cifar_dir / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(FifError) as e:
        load_cifar10(cifar_dir)
    assert e.value.code == code


def test_no_cifar_folder_is_e401(tmp_path):
    with pytest.raises(FifError) as e:
        load_cifar10(tmp_path / "nowhere")
    assert e.value.code == "E401"


@pytest.fixture
def photo_dir(tmp_path):
    from PIL import Image
    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for c, (w, h) in zip(("cat", "dog"), ((20, 14), (15, 30))):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(root / "dog" / "grey.png")
    return root


def test_folders_stream_resized_and_centre_cropped_images_of_any_size(photo_dir):
    stream = folder_dataset(photo_dir, size=12, crop=8, workers=0)
    assert len(stream) == 9 and stream.classes == ("cat", "dog") and stream.shape == (3, 8, 8) and stream.streamed
    batches = list(stream_batches(stream, [[0, 5], [8, 1, 2]]))
    assert [tuple(x.shape) for x, _ in batches] == [(2, 3, 8, 8), (3, 3, 8, 8)]
    assert batches[0][1].tolist() == [0, 1] and batches[1][1].tolist() == [1, 0, 0]
    x = batches[0][0]
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(materialize(stream, [5, 0]).images, torch.stack([x[1], x[0]]))
    assert torch.equal(stream.images[[5, 0]], torch.stack([x[1], x[0]])) and torch.equal(stream.images[0], x[0])


def test_workers_read_the_same_pixels(photo_dir):
    one = materialize(folder_dataset(photo_dir, size=10, crop=10, workers=0), range(9))
    two = materialize(folder_dataset(photo_dir, size=10, crop=10, workers=2), range(9))
    assert torch.equal(one.images, two.images) and torch.equal(one.labels, two.labels)


def test_a_recipe_reads_only_its_splits_of_a_folder(photo_dir, tmp_path):
    path = tmp_path / "p.fif"
    path.write_text('recipe p { data = imagefolder("photos", size=12, crop=8, train=6, test=2, workers=0)\n'
                    '  classifier = smallcnn\n  defense = bitdepth(4) }\n')
    train, test = recipe_data(fif.load_recipe(path))
    assert train.images.shape == (6, 3, 8, 8) and test.images.shape == (2, 3, 8, 8)


@pytest.mark.parametrize("make, code", [("missing", "E401"), ("crop", "E415"), ("unreadable", "E402")])
def test_bad_folders_are_clear_errors(photo_dir, make, code):
    if make == "missing":
        with pytest.raises(FifError) as e:
            folder_dataset(photo_dir / "nope")
    elif make == "crop":
        with pytest.raises(FifError) as e:
            folder_dataset(photo_dir, size=8, crop=12)
    else:
        (photo_dir / "cat" / "9.png").write_bytes(b"not a png")
        stream = folder_dataset(photo_dir, size=8, crop=8, workers=0)
        with pytest.raises(FifError) as e:
            materialize(stream, range(len(stream)))
    assert e.value.code == code
