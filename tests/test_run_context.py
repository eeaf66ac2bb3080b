"""The run context: the attack view and the generator reach every op through forward, not
globals, and a block shares one random draw per sample with its branches."""

import torch
from torch import nn

import fif
from fif.ops.masks import draw_hidden
from fif.registry import register_op, unregister_op
from fif.run_context import ATTACK, DEPLOYED, RunContext


def test_complementary_masks_are_disjoint_and_cover_every_patch():
    x = torch.zeros(5, 1, 14, 14)
    hidden = draw_hidden(5, 3, 4, (14, 14), DEPLOYED, x)
    assert hidden.shape == (3, 5, 1, 14, 14)
    assert torch.equal(hidden.sum(0), torch.ones(5, 1, 14, 14, dtype=torch.long))  # each pixel hidden once
    patches = hidden[:, :, 0, ::4, ::4].flatten(2).sum(2)                            # hidden patches per view
    assert set(patches.flatten().tolist()) <= {5, 6}                                 # 16 patches dealt to 3 views
    blocks = hidden[:, :, 0, :12, :12].reshape(3, 5, 3, 4, 3, 4)
    assert torch.equal(blocks.amin((3, 5)), blocks.amax((3, 5)))                     # whole patches


def test_masks_differ_per_sample_and_per_call_unless_seeded():
    x = torch.zeros(2, 1, 16, 16)
    a, b = draw_hidden(2, 2, 4, (16, 16), DEPLOYED, x), draw_hidden(2, 2, 4, (16, 16), DEPLOYED, x)
    assert not torch.equal(a[:, 0], a[:, 1]) and not torch.equal(a, b)
    seeded = [draw_hidden(2, 2, 4, (16, 16), RunContext(generator=torch.Generator().manual_seed(3)), x)
              for _ in range(2)]
    assert torch.equal(*seeded)


def test_droppatches_zeroes_whole_patches_at_random_per_sample_and_per_call():
    p = fif.compile("droppatches(0.5, patch=4)", input_shape=(2, 14, 14))
    x = torch.ones(300, 2, 14, 14)
    y = p(x)
    assert torch.equal(y[:, 0], y[:, 1])                                        # all channels at once
    blocks = y[:, 0, :12, :12].reshape(300, 3, 4, 3, 4)
    assert torch.equal(blocks.amin((2, 4)), blocks.amax((2, 4)))                # whole patches, kept or zeroed
    assert torch.equal(y[:, 0, 12:, 12:].amin((1, 2)), y[:, 0, 12:, 12:].amax((1, 2)))  # the cropped corner too
    dropped = 1 - y[:, 0, ::4, ::4].mean().item()                               # 300 x 16 patch draws
    assert 0.45 < dropped < 0.55
    assert not torch.equal(y[0], y[1]) and not torch.equal(y, p(x))            # per sample, per call
    g = lambda: torch.Generator().manual_seed(5)
    assert torch.equal(p(x, generator=g()), p(x, generator=g()))


def test_droppixels_is_droppatches_with_one_pixel_patches_draw_for_draw():
    x = torch.rand(4, 3, 9, 9)
    pixels = fif.compile("droppixels(0.3)", input_shape=(3, 9, 9))
    patches = fif.compile("droppatches(0.3, patch=1)", input_shape=(3, 9, 9))
    g = lambda: torch.Generator().manual_seed(2)
    assert torch.equal(pixels(x, generator=g()), patches(x, generator=g()))


def test_droppatches_larger_than_the_image_is_an_error_at_the_argument():
    try:
        fif.compile("droppatches(0.5, patch=9)", input_shape=(1, 8, 8))
    except fif.FifError as e:
        assert e.code == "E330" and e.column == len("droppatches(0.5, patch=") + 1
    else:
        raise AssertionError("expected E330")


class _SeesMask(nn.Module):
    """Records the mask its block hands it and returns the image with hidden pixels set to 1."""

    seen: list = []

    def forward(self, x, ctx):
        _SeesMask.seen.append((ctx.values["mask"].clone(), ctx.attack_view))
        return x + (1 - ctx.values["mask"])


def test_a_block_shares_its_draw_with_the_ops_inside_it():
    register_op("t_sees_mask", lambda args, inp, out: _SeesMask(), family="user", doc="t_sees_mask: test op.")
    try:
        p = fif.compile("masks(k=2, patch=2, combine=hidden) { t_sees_mask }", input_shape=(1, 8, 8))
        x = torch.rand(3, 1, 8, 8)
        _SeesMask.seen.clear()
        y = p(x)
        (mask, view), = _SeesMask.seen
        assert mask.shape == (6, 1, 8, 8) and not view
        assert torch.equal(mask[:3] + mask[3:], torch.ones(3, 1, 8, 8))   # view 2 sees what view 1 hides
        # each pixel comes from the view that hid it: there the body saw 0 and added 1
        torch.testing.assert_close(y, torch.ones_like(x))
        p.attack_view()(x)
        assert _SeesMask.seen[-1][1] is True        # the attack view reaches ops inside blocks
    finally:
        unregister_op("t_sees_mask")


def test_eot_over_masks_is_one_batched_pass():
    calls = []
    p = fif.compile("masks(k=2, patch=4) { conv(2) -> conv(out=input) } -> clamp", input_shape=(1, 8, 8)).eval()
    conv = next(m for m in p.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    from fif.attacks import loss_grad
    clf = nn.Sequential(p.attack_view(), nn.Flatten(), nn.Linear(64, 10))
    loss_grad(clf, torch.rand(3, 1, 8, 8), torch.zeros(3, dtype=torch.long), eot=8)
    assert calls == [8 * 3 * 2]                     # 8 draws x 3 images x 2 views, one forward


def test_contexts_are_immutable_and_share_the_generator():
    g = torch.Generator()
    ctx = RunContext(generator=g)
    child = ctx.with_values(mask=1)
    assert child.generator is g and "mask" not in ctx.values and child.values["mask"] == 1
    assert ATTACK.attack_view and not DEPLOYED.attack_view
