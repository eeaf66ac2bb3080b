"""`edsr`: EDSR-style residual reconstruction at scale 1 (Lim et al. 2017)."""

import pytest
import torch
from torch import nn

import fif
from fif.ops.edsr import DIV2K_MEAN, EDSR


def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("C,width,depth", [(1, 32, 4), (3, 8, 2), (1, 4, 0)])
def test_edsr_layout_and_weight_count(C, width, depth):
    p = fif.compile(f"edsr({width}, {depth})", input_shape=(C, 12, 12))
    assert p.output_shape == (C, 12, 12) and p.output_kind.kind == "features" and p.learnable
    convs = _convs(p)
    assert len(convs) == 2 * depth + 3                              # head, 2 a block, body end, tail
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is not None for c in convs)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in p.modules())
    conv = width * width * 9 + width
    want = (C * width * 9 + width) + (2 * depth + 1) * conv + (width * C * 9 + C)
    assert sum(q.numel() for q in p.parameters()) == want


def _reference(net: EDSR, x, res_scale):
    """The EDSR forward written out from the paper's description, with net's weights."""
    h = net.head(x)
    b = h
    for block in net.body[:-1]:
        c1, c2 = block.body[0], block.body[2]
        b = b + res_scale * c2(torch.relu(c1(b)))
    return net.tail(h + net.body[-1](b))


@pytest.mark.parametrize("res_scale", [1.0, 0.1])
def test_edsr_forward_is_head_resblocks_global_skip_tail(res_scale):
    torch.manual_seed(0)
    net = EDSR(3, 6, 3, res_scale, mean_shift=False).double()
    x = torch.rand(2, 3, 10, 9, dtype=torch.float64)
    torch.testing.assert_close(net(x), _reference(net, x, res_scale))


def test_edsr_mean_shift_subtracts_and_adds_back_the_div2k_mean():
    torch.manual_seed(0)
    net = EDSR(3, 4, 1, 1.0, mean_shift=True).double()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    mean = torch.tensor(DIV2K_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(net(x), _reference(net, x - mean, 1.0) + mean)
    with pytest.raises(fif.FifError) as info:
        fif.compile("edsr(mean_shift=true)", input_shape=(1, 8, 8))
    assert (info.value.code, info.value.column) == ("E335", 17)


def test_bitdepth_edsr_learns_to_restore_digits():
    """A few Adam steps on (bitdepth(2)(x), x) pairs lower the reconstruction error: it trains."""
    torch.manual_seed(0)
    x = fif.data.mnist5k().images[::50][:32]
    squeeze = fif.compile("bitdepth(2)", input_shape=(1, 28, 28))
    net = fif.compile("edsr(8, 1) -> clamp", input_shape=(1, 28, 28))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xq = squeeze(x)
    losses = []
    for _ in range(20):
        loss = (net(xq) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    p = fif.compile("bitdepth(2) -> edsr(32, 4) -> clamp -> smallcnn", input_shape=(1, 28, 28))
    assert p.output_shape == (10,)
