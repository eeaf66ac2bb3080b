"""A built wheel works apart from the source tree: the grammar and the shipped data travel with it."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{res.stdout}\n{res.stderr}")
    (whl,) = out.glob("fif-*.whl")
    return whl


def test_wheel_carries_grammar_and_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "fif/grammars/fif.lark" in names
    assert "fif/data/mnist5k.npz" in names
    assert "fif/data/MNIST-ATTRIBUTION.md" in names


def test_installed_wheel_compiles_away_from_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    code = (
        "import fif, torch, pathlib\n"
        "from fif.syntax.parser import grammar_text\n"
        f"assert pathlib.Path(fif.__file__).is_relative_to({str(site)!r}), fif.__file__\n"
        "p = fif.compile('dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt', input_shape=(1, 28, 28))\n"
        "assert p(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)\n"
        "from fif.data import mnist5k\n"
        "assert mnist5k().images.shape == (5000, 1, 28, 28)\n"
        "print('ok')\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "FIF_QUIET": "1"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
