"""--amp (bfloat16 autocast on CUDA, E522 on CPU) and TensorBoard scalars, present or absent.

    fif train recipes/tiny.fif --device cuda --amp
"""

import sys
import types

import pytest
import torch

from fif import scalars
from fif.errors import FifError
from fif.precision import autocast, check_amp


def test_amp_on_cpu_is_e522_and_off_changes_nothing():
    with pytest.raises(FifError) as e:
        check_amp("cpu", True)
    assert e.value.code == "E522"
    assert check_amp("cpu", False) is False and check_amp("cuda:0", True) is True
    with autocast("cpu", False):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32


def test_amp_on_cpu_fails_before_training(tmp_path):
    from click.testing import CliRunner

    from fif.cli import main
    result = CliRunner().invoke(main, ["train", "recipes/tiny.fif", "--amp", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "E522" in result.output


class FakeWriter:
    made = []

    def __init__(self, log_dir):
        self.log_dir, self.points, self.closed = log_dir, [], False
        FakeWriter.made.append(self)

    def add_scalar(self, tag, value, step):
        self.points.append((tag, value, step))

    def close(self):
        self.closed = True


def test_scalars_write_through_a_summary_writer_when_tensorboard_is_there(monkeypatch, tmp_path):
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    s = scalars.Scalars(tmp_path / "tb")
    assert s.enabled
    s.add("loss/defense", 0.5, 1)
    s.add("loss/defense", None, 2)          # nothing to plot
    s.close()
    w = FakeWriter.made[-1]
    assert w.log_dir == str(tmp_path / "tb") and w.points == [("loss/defense", 0.5, 1)] and w.closed


def test_scalars_do_nothing_without_tensorboard(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import fails like a missing package
    s = scalars.Scalars(tmp_path / "tb")
    assert not s.enabled
    s.add("loss", 1.0, 1)
    s.close()
    assert not (tmp_path / "tb").exists()


def test_training_logs_reach_tensorboard(monkeypatch, tmp_path):
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    from fif.train import run_training
    recipe = tmp_path / "t.fif"
    recipe.write_text("""recipe t {
  data = mnist5k(train=200, test=50, seed=0)
  classifier = smallcnn(width=8, epochs=1)
  defense = residual { conv(4) -> conv(out=input) } -> clamp
  train { stage s { inputs = noisy(sigma=0.3); loss = l1; epochs = 1; batch = 32; limit = 64; optim = adam(lr=0.002) } }
}
""")
    run_training(recipe, out=tmp_path / "run", seed=0)
    w = FakeWriter.made[-1]
    assert w.log_dir == str(tmp_path / "run" / "tensorboard")
    assert [p[2] for p in w.points if p[0].startswith("loss/")] == [1, 2]
