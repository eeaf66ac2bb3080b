"""fif.node_call.call skips nn.Module.__call__ only when __call__ would do nothing but forward:
hooks of every kind, on a node or global, still run."""

import torch
from torch import nn

import fif
from fif.node_call import call


def _pipeline():
    return fif.compile("bitdepth(4) -> clamp", input_shape=(1, 4, 4))


def test_plain_call_is_forward():
    m = nn.Linear(2, 2)
    x = torch.randn(3, 2)
    assert torch.equal(call(m, x), m(x))


def test_hooks_on_a_node_and_on_an_op_run():
    p = _pipeline()
    seen = []
    p.root.stages[0].register_forward_hook(lambda m, i, o: seen.append("node"))
    p.root.stages[1].inner.register_forward_pre_hook(lambda m, i: seen.append("op"))
    p(torch.rand(2, 1, 4, 4))
    assert seen == ["node", "op"]


def test_global_hooks_see_every_module():
    p = _pipeline()
    seen = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(type(m).__name__))
    try:
        p(torch.rand(2, 1, 4, 4))
        p.attack_view()(torch.rand(2, 1, 4, 4))
    finally:
        handle.remove()
    assert seen.count("BitDepth") == 2 and seen.count("OpNode") == 4 and seen.count("SeqNode") == 2


def test_a_hook_can_replace_the_output():
    p = _pipeline()
    p.root.stages[1].inner.register_forward_hook(lambda m, i, o: o * 0)
    assert float(p(torch.rand(2, 1, 4, 4)).abs().sum()) == 0.0


def test_backward_hooks_run():
    p = _pipeline()
    grads = []
    p.root.stages[1].register_full_backward_hook(lambda m, gi, go: grads.append(go[0].shape))
    x = torch.rand(2, 1, 4, 4, requires_grad=True)
    p.attack_view()(x).sum().backward()
    assert grads == [torch.Size([2, 1, 4, 4])]
