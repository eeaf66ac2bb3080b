"""DIR's pieces as ops: the ViT/MAE denoiser drops hidden tokens and restores each view in place,
masks at 30 / 50 / 70 % follow fif's definition, and EOT over the masks is one batched pass whose
gradient is the mean of the per-draw gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

import fif
from fif.ops.masks import combine_weights, draw_hidden, views_for, visible_count
from fif.ops.vit import ViTDenoiser
from fif.run_context import DEPLOYED



def _vit(src="vitdenoise(width=8, heads=2, depth=2, decoder_depth=1, patch=2)", shape=(1, 8, 8)) -> ViTDenoiser:
    torch.manual_seed(0)
    p = fif.compile(src, input_shape=shape).eval()
    return next(m for m in p.modules() if isinstance(m, ViTDenoiser))


def _patch_mask(hidden_patches, grid=4, patch=2, n=1):
    """[n, 1, H, W] pixel mask (1 = visible) hiding the listed patch indices."""
    m = torch.ones(n, grid * grid)
    m[:, hidden_patches] = 0
    return m.view(n, 1, grid, grid).repeat_interleave(patch, 2).repeat_interleave(patch, 3)


def test_the_denoiser_keeps_the_input_shape_inside_and_outside_masks():
    x = torch.rand(3, 3, 12, 8)
    for src in ("vitdenoise(width=8, heads=2, patch=2)", "masks(k=2, patch=2) { vitdenoise(width=8, heads=2) } -> clamp",
                "masks(ratio=0.7, patch=4) { vitdenoise(width=8, heads=2, patch=2) }"):
        p = fif.compile(src, input_shape=(3, 12, 8))
        assert p(x).shape == x.shape and p.output_shape == (3, 12, 8)


def test_the_encoder_sees_only_the_visible_tokens():
    vit = _vit()
    hidden = [0, 5, 6, 11, 15]
    mask = _patch_mask(hidden)
    visible = vit.visible_tokens(mask)
    a = torch.rand(1, 1, 8, 8)
    b = a.clone()
    b[..., :2, :2] = torch.rand(2, 2)          # patch 0 is hidden: change its pixels
    ea, ia, va = vit.encode(a, visible)
    eb, ib, _ = vit.encode(b, visible)
    assert ea.shape == (1, 1 + 16 - len(hidden), 8) and va is None     # dropped, not zeroed
    assert sorted(ia[0].tolist()) == sorted(set(range(16)) - set(hidden))
    torch.testing.assert_close(ea, eb, rtol=0, atol=0)
    c = a.clone()
    c[..., :2, 2:4] += 0.5                     # patch 1 is visible: the encoder must notice
    assert not torch.allclose(vit.encode(c, visible)[0], ea)


def test_each_view_is_restored_at_its_own_positions():
    """With no decoder block each output patch is head(LN(token + position)): the encoded token at
    the positions a view shows, the mask token at the ones it hides."""
    vit = _vit("vitdenoise(width=8, heads=2, depth=1, decoder_depth=0, patch=2)")
    x = torch.rand(2, 1, 8, 8)
    mask = torch.cat([_patch_mask([1, 2, 3]), _patch_mask([7, 9])])
    visible = vit.visible_tokens(mask)
    enc, idx, valid = vit.encode(x, visible)
    out = vit.decode(enc, idx, valid)
    patches = F.unfold(out, 2, stride=2).transpose(1, 2)                  # [N, 16, 4]
    head = lambda t: vit.head(vit.decoder_norm(t))                        # noqa: E731
    for i in range(2):
        slots = {int(p): k for k, p in enumerate(idx[i]) if valid is None or valid[i, k]}
        for pos in range(16):
            token = enc[i, 1 + slots[pos]] if pos in slots else vit.mask_token[0, 0]
            torch.testing.assert_close(patches[i, pos], head(token + vit.decoder_pos[0, 1 + pos]))


def test_views_with_fewer_visible_tokens_are_padded_without_leaking():
    vit = _vit()
    x = torch.rand(2, 1, 8, 8)
    mask = torch.cat([_patch_mask([0, 1, 2, 3, 4]), _patch_mask([10])])  # 11 and 15 visible tokens
    together = vit.decode(*vit.encode(x, vit.visible_tokens(mask)))
    for i in range(2):
        alone = vit.decode(*vit.encode(x[i:i + 1], vit.visible_tokens(mask[i:i + 1])))
        torch.testing.assert_close(together[i:i + 1], alone, atol=1e-5, rtol=1e-5)


def test_patch_mismatch_is_caught_at_compile_time_else_at_run_time():
    table = [("masks(patch=3) { vitdenoise(patch=2) }", "E338", 35),
             ("masks(patch=2) { dwt -> <LL: vitdenoise(patch=2)> -> idwt }", "E338", 30),
             ("vitdenoise(width=10, heads=4)", "E224", 28),
             ("vitdenoise(patch=3)", "E330", 18)]
    for src, code, column in table:
        err = pytest.raises(fif.FifError, fif.compile, src, input_shape=(1, 28, 28)).value
        assert (err.code, err.line, err.column) == (code, 1, column), src
    fif.compile("masks(patch=4) { vitdenoise(patch=2) }", input_shape=(1, 28, 28))   # 2 tiles 4: fine
    vit = _vit()
    ragged = torch.ones(1, 1, 8, 8)
    ragged[..., 0, 0] = 0                       # hides a quarter of a 2x2 patch
    with pytest.raises(fif.FifError) as e:
        vit(torch.rand(1, 1, 8, 8), DEPLOYED.with_values(mask=ragged, patch=1))
    assert e.value.code == "E504"


@pytest.mark.parametrize("ratio,views", [(0.3, 2), (0.5, 2), (0.7, 4), (2 / 3, 3)])
def test_masks_at_a_ratio_hide_that_share_and_their_visible_parts_cover_the_image(ratio, views):
    n, patches = 6, 14 * 14
    assert views_for(None, ratio) == views
    hidden = draw_hidden(n, views, 2, (28, 28), DEPLOYED, torch.zeros(1), ratio=ratio)
    per_patch = hidden[:, :, 0, ::2, ::2].flatten(2)                      # [views, n, 196]
    shown = visible_count(patches, views, ratio)
    assert shown == max(round((1 - ratio) * patches), math.ceil(patches / views))
    assert torch.equal((~per_patch).sum(2), torch.full((views, n), shown))  # every view shows as many
    assert bool((~per_patch).any(0).all())                                  # together they show every patch
    blocks = hidden[:, :, 0].reshape(views, n, 14, 2, 14, 2)
    assert torch.equal(blocks.amin((3, 5)), blocks.amax((3, 5)))           # whole patches
    if ratio == 0.5:   # the same as k=2: disjoint hidden halves that cover the image
        assert torch.equal(per_patch.sum(0), torch.ones(n, patches, dtype=torch.long))
    if ratio < 0.5:
        assert bool((per_patch.sum(0) == 0).any())                          # some patches never hidden


def test_a_ratio_needs_enough_views_and_hidden_combines_the_views_that_hid():
    err = pytest.raises(fif.FifError, fif.compile, "masks(ratio=0.7, k=3) { id }", input_shape=(1, 8, 8)).value
    assert (err.code, err.column) == ("E224", 20)
    hidden = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=torch.bool).T.reshape(3, 1, 1, 1, 3)
    w = combine_weights(hidden, torch.float32)[:, 0, 0, 0]
    torch.testing.assert_close(w, torch.tensor([[0.5, 1.0, 1 / 3], [0.5, 0.0, 1 / 3], [0.0, 0.0, 1 / 3]]))


def test_eot_over_the_masks_is_one_batched_pass_averaging_per_draw_gradients():
    from fif.attacks import loss_grad
    torch.manual_seed(0)
    p = fif.compile("masks(k=2, patch=2) { vitdenoise(width=8, heads=2, depth=1, patch=2) }",
                    input_shape=(1, 8, 8)).eval()
    vit = next(m for m in p.modules() if isinstance(m, ViTDenoiser))
    head = torch.nn.Linear(64, 3)
    seen = []
    vit.register_forward_pre_hook(lambda m, args: seen.append((args[0].shape[0], args[1].values["mask"])))
    clf = lambda z: head(p.attack_view()(z).flatten(1))                   # noqa: E731
    x, y, eot = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]), 4
    _, grad, _ = loss_grad(clf, x, y, eot=eot)
    (batch, mask), = seen
    assert batch == eot * 3 * 2                                           # 4 draws x 3 images x 2 views, once
    masks = mask.view(2, eot, 3, 1, 8, 8)                                 # views, draws, images
    assert not torch.equal(masks[:, 0], masks[:, 1])                      # each draw its own masks
    per_draw = []
    for j in range(eot):
        xj = x.clone().requires_grad_(True)
        m = masks[:, j].reshape(6, 1, 8, 8)
        out = vit((xj.unsqueeze(0) * masks[:, j]).reshape(6, 1, 8, 8), DEPLOYED.with_values(mask=m, patch=2))
        logits = head(out.view(2, 3, 1, 8, 8).mean(0).flatten(1))
        (g,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), xj)
        per_draw.append(g)
    torch.testing.assert_close(grad, torch.stack(per_draw).mean(0), atol=1e-6, rtol=1e-4)


def test_a_vit_block_lets_go_of_q_k_v_before_its_mlp():
    """Without autograd, a block frees q, k, v and the attention output before its MLP runs:
    the peak memory of DIR's defense forward was 13% above the same network by hand
    (benchmarks/comparisons/memory.py) and is now below it. The same numbers as before."""
    import weakref

    import torch.nn.functional as F

    from fif.ops.vit import Block
    torch.manual_seed(0)
    block = Block(16, 4, 2.0).eval()
    x = torch.randn(3, 7, 16)
    made, alive = [], []
    block.qkv.register_forward_hook(lambda m, i, out: made.append(weakref.ref(out)))
    block.mlp.register_forward_pre_hook(lambda m, i: alive.append(made[-1]() is not None))
    with torch.no_grad():
        y = block(x)
        qkv = block.qkv(block.norm1(x)).view(3, 7, 3, 4, 4).permute(2, 0, 3, 1, 4)
        h = x + block.proj(F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(3, 7, 16))
        ref = h + block.mlp(block.norm2(h))
    assert alive[0] is False
    assert torch.equal(y, ref)
