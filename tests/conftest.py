"""Shared test setup: quiet progress bars and a classifier cache private to this test session."""

import os
import tempfile

import pytest
import torch

# Two threads fight over two cores when anything else runs; one thread is faster and steadier.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test on one intra-op thread, restored after it (a resumed training may set the count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


os.environ["FIF_QUIET"] = "1"
os.environ.setdefault("FIF_CACHE", tempfile.mkdtemp(prefix="fif-test-cache-"))

SMALL_RECIPE = """
recipe small {
  data = mnist5k(train=1500, test=300, seed=0)
  classifier = smallcnn(width=8, epochs=3, lr=0.003, batch=64)
  defense = bitdepth(2)
  eval {
    attacks = [fgsm, pgd(steps=20, step=0.02)]
    eps = [0.1, 0.3]
    threat = [graybox, whitebox, adaptive]
    n = 100
  }
  variants { four_levels = bitdepth(4) }
}
"""


@pytest.fixture(scope="session")
def small_recipe_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipes") / "small.fif"
    path.write_text(SMALL_RECIPE)
    return path
