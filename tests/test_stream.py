"""Streamed image folders: `imagefolder(...)` keeps file names, not pixels, and decodes only the
batches a loop takes, with the same pixels (and so the same training and evaluation) as the same
images held in memory.

    data = imagefolder("photos", size=12, crop=8, train=24, test=8, workers=2)
"""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import fif
from fif.cli import main
from fif.data import batches, split
from fif.data import stream as stream_mod
from fif.data.store import fetch, load
from fif.data.stream import folder_dataset, materialize
from fif.errors import FifError
from fif.runtime import recipe_data

SIZES = [(20, 14), (15, 30), (9, 9), (40, 12)]  # (width, height): wider, taller, square, very wide


def _folder(root, per_class=10, classes=("cat", "dog", "owl")):
    """Images of several sizes, every fourth one grey, the rest RGB."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            w, h = SIZES[i % len(SIZES)]
            shape = (h, w) if i % 4 == 3 else (h, w, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / c / f"{i:03d}.png")
    return root


@pytest.fixture
def photos(tmp_path):
    return _folder(tmp_path / "photos")


@pytest.fixture
def decodes(monkeypatch):
    """The files decoded so far (in this process: the tests use workers=0 when they count)."""
    seen = []
    real = stream_mod.read_image

    def counting(path, size, crop):
        seen.append(path)
        return real(path, size, crop)

    monkeypatch.setattr(stream_mod, "read_image", counting)
    return seen


def test_a_streamed_dataset_decodes_only_the_batches_asked_for(photos, decodes):
    ds = folder_dataset(photos, size=12, crop=8, workers=0)
    train, test = split(ds, train=24, test=6, seed=0)
    assert decodes == [] and train.streamed and test.streamed       # listing and splitting read no pixel
    assert train.images.shape == (24, 3, 8, 8) and train.shape == (3, 8, 8)
    x = train.images[torch.tensor([3, 0, 5])]
    assert x.shape == (3, 3, 8, 8) and len(decodes) == 3
    it = iter(batches(train, 5, shuffle=True, generator=torch.Generator().manual_seed(0)))
    xb, yb = next(it)
    assert xb.shape == (5, 3, 8, 8) and len(decodes) == 3 + 5       # one batch: five images, no more
    rest = list(it)
    assert len(decodes) == 3 + 24 and sum(len(y) for _, y in rest) == 19   # an epoch decodes each image once
    assert sorted(decodes[3:]) == sorted(train.images.files)


def test_one_batch_of_a_big_folder_does_not_decode_the_others(tmp_path, decodes):
    ds = folder_dataset(_folder(tmp_path / "big", per_class=100, classes=("a", "b", "c", "d")),
                        size=10, crop=8, workers=0)
    train, _ = split(ds, train=350, test=50, seed=0)
    x, y = next(iter(batches(train, 16, shuffle=True, generator=torch.Generator().manual_seed(1))))
    assert x.shape == (16, 3, 8, 8) and len(decodes) == 16 and len(set(decodes)) == 16
    assert len(list(fetch(train.images, [[0, 1], [2]]))) == 2 and len(decodes) == 19


def test_recipe_data_splits_a_folder_without_reading_it(photos, tmp_path, decodes):
    path = tmp_path / "p.fif"
    path.write_text('recipe p { data = imagefolder("photos", size=12, crop=8, train=24, test=6, workers=0)\n'
                    '  classifier = smallcnn\n  defense = bitdepth(4) }\n')
    recipe = fif.load_recipe(path)
    train, test = recipe_data(recipe)
    assert (len(train), len(test)) == (24, 6) and train.streamed and decodes == []
    assert recipe.input_shape() == (3, 8, 8) and decodes == []


def test_streamed_pixels_equal_the_in_memory_ones_with_or_without_workers(photos):
    ds = folder_dataset(photos, size=12, crop=8, workers=2)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    lists = [order[i:i + 7] for i in range(0, len(ds), 7)]
    whole = materialize(folder_dataset(photos, size=12, crop=8, workers=0), range(len(ds)))
    read = list(fetch(ds.images, lists))                                   # two worker processes
    assert all(torch.equal(x, whole.images[ix]) for x, ix in zip(read, lists))
    assert torch.equal(load(ds.images, slice(4, 13)), whole.images[4:13])
    grey = [i for i, f in enumerate(ds.images.files) if f.endswith("003.png")]
    g = whole.images[grey]
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])   # grey images become RGB


def test_what_would_read_everything_is_e428(photos, tmp_path):
    ds = folder_dataset(photos, size=12, crop=8, workers=0)
    for touch in (lambda: ds.images.to("cpu"), lambda: ds.images.numpy(), lambda: np.asarray(ds.images),
                  lambda: list(ds.images)):
        with pytest.raises(FifError) as e:
            touch()
        assert e.value.code == "E428" and e.value.hint
    path = tmp_path / "p.fif"
    path.write_text('recipe p { data = imagefolder("photos", size=12, crop=8, train=24, test=6, workers=0)\n'
                    '  classifier = smallcnn\n  defense = bitdepth(4) }\n')
    from fif.runtime import encode_data
    recipe = fif.load_recipe(path)
    train, test = recipe_data(recipe)
    with pytest.raises(FifError) as e:   # classifier(encoded=...) would encode the whole split at once
        encode_data(recipe, fif.parse("thermometer(4)").statements[0].value, train, test)
    assert e.value.code == "E428"


RECIPE = """recipe p {{
  data = {data}
  classifier = smallcnn(width=4, epochs=1, batch=8, lr=0.01)
  defense = residual {{ conv(4, depth=1) -> conv(out=input) }} -> noise(0.05) -> clamp
  train {{
    stage denoise {{ inputs = noisy(sigma=0.2); loss = l1; epochs = 2; batch = 8; optim = adam(lr=0.01) }}
  }}
  eval {{ attacks = [fgsm, pgd(steps=2, step=0.05)]; eps = [0.1]; threat = [graybox, adaptive]; n = 6; batch = 4 }}
}}
"""


def _rows(folder):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((folder / "results.json").read_text())["rows"]]


def _log(folder):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (folder / "log.jsonl").read_text().splitlines()]


def test_fif_train_and_eval_give_the_same_numbers_streamed_and_in_memory(photos, tmp_path, monkeypatch):
    whole = materialize(folder_dataset(photos, size=12, crop=8, workers=0), range(30))
    np.savez(tmp_path / "photos.npz", images=whole.images.numpy(), labels=whole.labels.numpy(),
             classes=np.array(whole.classes))
    sources = {"streamed": 'imagefolder("../photos", size=12, crop=8, train=24, test=6, seed=0, workers=2)',
               "memory": 'npz("../photos.npz", train=24, test=6, seed=0)'}
    monkeypatch.chdir(tmp_path)
    for name, data in sources.items():
        (tmp_path / name).mkdir()
        recipe = tmp_path / name / "p.fif"
        recipe.write_text(RECIPE.format(data=data))
        runs = tmp_path / name / "runs"
        for args in (["train", str(recipe), "--out", str(runs / "p" / "train")],
                     ["eval", str(recipe), "--runs", str(runs), "--out", str(tmp_path / name / "eval")]):
            res = CliRunner().invoke(main, args)
            assert res.exit_code == 0, res.output
    a, b = (tmp_path / "streamed" / "runs" / "p" / "train"), (tmp_path / "memory" / "runs" / "p" / "train")
    assert _log(a) == _log(b) and len(_log(a)) == 6                # 24 images, batches of 8, 2 epochs
    from safetensors.torch import load_file
    wa, wb = load_file(a / "defense.safetensors"), load_file(b / "defense.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = _rows(tmp_path / "streamed" / "eval")
    assert len(rows) > 4 and rows == _rows(tmp_path / "memory" / "eval")


def test_an_eval_process_reads_only_its_share_of_the_test_images(photos, tmp_path, monkeypatch, decodes):
    from fif.evaluate import runner
    path = tmp_path / "p.fif"
    path.write_text('recipe p { data = imagefolder("photos", size=12, crop=8, train=24, test=6, workers=0)\n'
                    '  classifier = smallcnn(width=4, epochs=1, batch=8)\n  defense = bitdepth(4)\n'
                    '  eval { n = 6; batch = 4 } }\n')
    recipe = fif.load_recipe(path)
    runner.prepare(recipe)                               # trains and caches the classifier (reads the splits)
    decodes.clear()
    monkeypatch.setattr(runner, "share", lambda recipe, count: (4, 6))   # rank 1 of 2: the second batch of 4
    setup = runner.prepare(recipe)
    _, test = recipe_data(recipe)
    assert decodes == test.images.files[4:6] and setup.x.shape == (2, 3, 8, 8)
    assert torch.equal(setup.x, test.images[4:6]) and torch.equal(setup.y_all, test.labels[:6])


def test_fif_search_reads_only_the_held_out_images_it_asks_for(photos, tmp_path, decodes):
    from fif.recipe import SearchSpec
    from fif.search.run import _images
    path = tmp_path / "p.fif"
    path.write_text('recipe p { data = imagefolder("photos", size=12, crop=8, train=20, test=4, workers=0)\n'
                    '  classifier = smallcnn\n  defense = bitdepth(4) }\n')
    recipe = fif.load_recipe(path)
    train, test = recipe_data(recipe)
    x, y, where = _images(recipe, SearchSpec(images=3), train)
    used = set(train.images.files) | set(test.images.files)
    assert x.shape == (3, 3, 8, 8) and len(decodes) == 3 and not used & set(decodes) and where == "the held-out images"
