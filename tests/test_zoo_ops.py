"""Behaviour of the zoo's ops (recipes/zoo/): what each defense does to an image, not just shapes."""

import pytest
import torch

import fif
from fif.ops.tv import total_variation, tv_solve

SHAPE = (1, 28, 28)


def _digits(n=4, seed=0):
    """Blocky grey 'digits': a bright square on black, plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, *SHAPE)
    x[:, :, 8:20, 10:18] = 0.9
    return (x + 0.1 * torch.rand(n, *SHAPE, generator=g)).clamp(0, 1)


def _seeded(p, x, seed):
    with torch.no_grad():
        return p(x, generator=torch.Generator().manual_seed(seed))


def test_tv_solve_reduces_total_variation_and_keeps_the_kept_pixels():
    x = _digits()
    keep = torch.ones_like(x)
    keep[..., ::2, :] = 0                       # half the rows dropped
    z = tv_solve(x, keep, lam=0.03, iters=60)
    assert (total_variation(z) < total_variation(x)).all()
    assert (z - x).abs()[keep.bool()].mean() < 0.05        # kept pixels are fitted
    assert ((z >= 0) & (z <= 1)).all()


def test_tvsolve_fills_dropped_pixels_from_their_neighbours():
    x = torch.full((1, *SHAPE), 0.8)
    keep = (torch.rand(1, *SHAPE, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    z = tv_solve(x, keep, lam=0.03, iters=200)
    assert (z - 0.8).abs().max() < 0.1          # a flat image comes back flat, holes filled


def test_tvsolve_op_draws_its_dropout_per_sample():
    p = fif.compile("tvsolve(0.5, iters=10)", input_shape=SHAPE)
    x = _digits(1).repeat(2, 1, 1, 1)
    y = _seeded(p, x, 0)
    assert not torch.equal(y[0], y[1])
    assert p.random and not p.differentiable


@pytest.mark.parametrize("levels", [1, 4, 16])
def test_thermometer_levels(levels):
    p = fif.compile(f"thermometer({levels})", input_shape=SHAPE)
    x = torch.rand(3, *SHAPE)
    y = p(x)
    assert y.shape == (3, levels, 28, 28)
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    t = torch.arange(1, levels + 1).view(1, levels, 1, 1) / (levels + 1)
    torch.testing.assert_close(y, (x >= t).float())
    # a thermometer: channels only ever switch off going up (1 ... 1 0 ... 0), counting x's level
    assert (y[:, 1:] <= y[:, :-1]).all()
    torch.testing.assert_close(y.sum(1), torch.floor(x * (levels + 1)).clamp(max=levels).squeeze(1))


def test_thermometer_ends_black_and_white():
    p = fif.compile("thermometer(8)", input_shape=(3, 4, 4))
    assert p(torch.zeros(1, 3, 4, 4)).sum() == 0
    assert p(torch.ones(1, 3, 4, 4)).mean() == 1
    assert p.output_shape == (24, 4, 4)


def test_thermometer_attack_view_passes_the_smooth_gradient():
    p = fif.compile("thermometer(4)", input_shape=SHAPE)
    x = torch.rand(2, *SHAPE, requires_grad=True)
    p.attack_view()(x).sum().backward()
    assert (x.grad >= 0).all() and x.grad.sum() > 0     # every ramp rises with x


def test_shield_draws_a_quality_per_block_and_per_sample():
    p = fif.compile("shield([10, 95])", input_shape=SHAPE)
    x = _digits(1).repeat(2, 1, 1, 1)
    low = fif.compile("jpeg(10, color=channels)", input_shape=SHAPE)(x)
    high = fif.compile("jpeg(95, color=channels)", input_shape=SHAPE)(x)
    y = _seeded(p, x, 3)
    chose = []
    for s in range(2):
        for bi in range(0, 28, 8):
            for bj in range(0, 28, 8):
                block = (s, slice(None), slice(bi, bi + 8), slice(bj, bj + 8))
                is_low = torch.equal(y[block], low[block])
                assert is_low or torch.equal(y[block], high[block])   # every block is one coding
                if not torch.equal(low[block], high[block]):
                    chose.append((s, bi, bj, is_low))
    per_sample = [{c for s2, _, _, c in chose if s2 == s} for s in range(2)]
    assert per_sample[0] == {True, False}          # the qualities differ between blocks
    assert [c for s, *_, c in chose if s == 0] != [c for s, *_, c in chose if s == 1]  # and between samples


def test_shield_with_one_quality_is_jpeg():
    x = _digits()
    y = fif.compile("shield([60])", input_shape=SHAPE)(x)
    torch.testing.assert_close(y, fif.compile("jpeg(60)", input_shape=SHAPE)(x))


def test_resizepad_keeps_the_size_and_draws_per_sample():
    p = fif.compile("resizepad(20, 26)", input_shape=SHAPE)
    x = torch.ones(2, *SHAPE)
    y = _seeded(p, x, 0)
    assert y.shape == (2, *SHAPE)
    # the resized image covers r x r pixels; the rest is zero padding
    for img in y:
        rows = (img[0] > 0.5).any(1).nonzero().flatten()
        cols = (img[0] > 0.5).any(0).nonzero().flatten()
        side = rows.max() - rows.min() + 1
        assert 20 <= side <= 26 and side == cols.max() - cols.min() + 1
    assert not torch.equal(y[0], y[1])
    assert not torch.equal(y, _seeded(p, x, 1))


def test_resizepad_to_full_size_is_the_identity():
    x = torch.rand(2, *SHAPE)
    torch.testing.assert_close(fif.compile("resizepad(28, 28)", input_shape=SHAPE)(x), x)


def test_cropresize_magnifies_a_random_crop():
    x = torch.rand(3, *SHAPE)
    torch.testing.assert_close(fif.compile("cropresize(28)", input_shape=SHAPE)(x), x)
    p = fif.compile("cropresize(14)", input_shape=SHAPE)
    y = _seeded(p, x[:1].repeat(2, 1, 1, 1), 0)
    assert y.shape == (2, *SHAPE) and not torch.equal(y[0], y[1])


@pytest.mark.parametrize("count", [1, 10, 50])
def test_deflect_changes_at_most_count_pixels_to_nearby_values(count):
    p = fif.compile(f"deflect({count}, window=3)", input_shape=(3, 28, 28))
    x = torch.rand(4, 3, 28, 28, generator=torch.Generator().manual_seed(count))
    y = _seeded(p, x, count)
    changed = (y != x).any(1).flatten(1).sum(1)
    assert (changed <= count).all() and changed.sum() > 0
    # each changed pixel holds a value of its 3x3 neighbourhood (all channels together)
    n, i, j = (y != x).any(1).nonzero()[0].tolist()
    neighbours = [x[n, :, a, b] for a in range(max(i - 1, 0), min(i + 2, 28)) for b in range(max(j - 1, 0), min(j + 2, 28))]
    assert any(torch.equal(y[n, :, i, j], v) for v in neighbours)


def test_choose_sends_each_sample_through_one_branch():
    p = fif.compile("choose { zero | id }", input_shape=SHAPE)
    x = torch.rand(64, *SHAPE) + 0.1
    y = _seeded(p, x, 0)
    zeroed = (y == 0).flatten(1).all(1)
    kept = (y == x).flatten(1).all(1)
    assert (zeroed ^ kept).all()                 # each sample is one branch's output, whole
    assert 10 < zeroed.sum() < 54                # both branches drawn, about evenly
    assert not torch.equal(y, _seeded(p, x, 1))  # a fresh draw per call


def test_choose_gradient_flows_through_the_branch_each_sample_drew():
    p = fif.compile("choose { bitdepth(2) | id }", input_shape=SHAPE)
    x = torch.rand(32, *SHAPE, requires_grad=True)
    y = p.attack_view()(x, generator=torch.Generator().manual_seed(0))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))   # BPDA through bitdepth, identity through id


def test_choose_branches_must_agree():
    err = pytest.raises(fif.FifError, fif.compile, "choose { id | thermometer(4) }", input_shape=SHAPE).value
    assert err.code == "E320"
