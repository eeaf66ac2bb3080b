"""Random patch masks: complementary views for a block (`masks`), and random patch removal
(`droppatches`; `droppixels` is its 1 x 1 case).

    masks(k=2, patch=4) { conv(16, depth=3) -> conv(out=input) } -> clamp

Zhou et al., Eliminating Adversarial Noise via Information Discard and Robust Representation
Restoration (DIR), ICML 2023: each image is split into K views whose hidden p x p patches are
disjoint and together cover the image; a denoiser restores each view, and the restorations are
combined. The body runs once on all K x N views (one batched pass); ops inside it read their
view's mask from the run context (`ctx.values["mask"]`, 1 = visible, shape [K*N, 1, H, W]).
"""

from __future__ import annotations

import torch
from torch import nn

from ..kinds import TensorKind
from ..registry import KindError, Param, register_op


def expand_patches(grid: torch.Tensor, patch: int, size: tuple[int, int]) -> torch.Tensor:
    """[..., ceil(H/p), ceil(W/p)] -> [..., H, W]: each cell repeated over its p x p patch; the
    patches at the right and bottom edges are cropped when p does not divide the size."""
    H, W = size
    if patch > 1:
        grid = grid.repeat_interleave(patch, -2).repeat_interleave(patch, -1)
    return grid[..., :H, :W]


def patch_grid(size: tuple[int, int], patch: int) -> tuple[int, int]:
    """How many patches of side `patch` cover an H x W image, down and across."""
    return -(-size[0] // patch), -(-size[1] // patch)


def draw_hidden(n: int, k: int, patch: int, size: tuple[int, int], ctx, like: torch.Tensor) -> torch.Tensor:
    """[k, n, 1, H, W] booleans: True where view i hides the pixel. Per sample, the patches are
    shuffled and dealt to the k views in turn, so each view hides about 1/k of them and every
    patch is hidden in exactly one view."""
    hp, wp = patch_grid(size, patch)
    ranks = ctx.rand((n, hp * wp), like=like).argsort(1).argsort(1)   # a random permutation per sample
    owner = (ranks * k) // (hp * wp)                                    # the view that hides each patch
    hidden = torch.stack([owner == i for i in range(k)]).view(k, n, 1, hp, wp)
    return expand_patches(hidden, patch, size)


class ComplementaryMasks(nn.Module):
    def __init__(self, branch: nn.Module, k: int, patch: int, combine: str):
        super().__init__()
        self.branch, self.k, self.patch, self.combine = branch, k, patch, combine

    def forward(self, x, ctx):
        n, rest = x.shape[0], x.shape[1:]
        hidden = draw_hidden(n, self.k, self.patch, tuple(x.shape[-2:]), ctx, x)
        visible = (~hidden).to(x.dtype)
        views = (x.unsqueeze(0) * visible).reshape(self.k * n, *rest)
        mask = visible.reshape(self.k * n, 1, *x.shape[-2:])
        out = self.branch(views, ctx.with_values(mask=mask, patch=self.patch))
        out = out.reshape(self.k, n, *out.shape[1:])
        if self.combine == "mean":
            return out.mean(0)
        return (out * hidden.to(out.dtype)).sum(0)   # each pixel from the view that hid it

    def extra_repr(self):
        return f"k={self.k}, patch={self.patch}, combine={self.combine}"


class DropPatches(nn.Module):
    """Zeroes each p x p patch (all channels) with probability `share`, a fresh draw per sample and
    per call. With p = 1 it is `droppixels`, draw for draw."""

    def __init__(self, share: float, patch: int = 1):
        super().__init__()
        self.share, self.patch = share, patch

    def forward(self, x, ctx):
        size = tuple(x.shape[-2:])
        keep = ctx.rand((x.shape[0], 1, *patch_grid(size, self.patch)), like=x) >= self.share
        return x * expand_patches(keep, self.patch, size).to(x.dtype)

    def extra_repr(self):
        return f"share={self.share}, patch={self.patch}"


def _patch_fits(inp, patch):
    if isinstance(inp, TensorKind) and patch > min(inp.H, inp.W):
        raise KindError("E330", f"patch {patch} is larger than the input ({inp.H}x{inp.W})", param="patch")


def _droppatches_infer(inp, args, ctx):
    _patch_fits(inp, args["patch"])
    return inp


register_op("droppatches", lambda args, inp, out: DropPatches(args["share"], args["patch"]),
            params=[Param("share", "float", low=0.0, high=1.0, doc="chance that each patch is set to zero"),
                    Param("patch", "int", 4, low=1, high=256, doc="side of the square patches")],
            infer=_droppatches_infer, random=True, family="random",
            doc="""droppatches(share, patch=4): zero a random share of the p x p patches (all channels at once).

    Each patch is dropped with probability `share`, a fresh draw per sample and per call; patches
    at the edges are cropped when p does not divide the size. Niu et al. 2020 (ACM) section 2.1.2
    remove a perturbation patch-wise as well as pixel-wise; droppatches(s, patch=1) is droppixels(s).
    fif eval recipes/probe.fif --probe 'droppatches(0.5, patch=4)'""")


def _masks_infer(inp, args, ctx, kinds):
    (out,) = kinds
    if not isinstance(inp, TensorKind):
        raise KindError("E301", f"masks needs an image or features, got {inp}")
    if not isinstance(out, TensorKind) or out.shape != inp.shape:
        raise KindError("E321", f"masks needs its body to keep the shape {inp}, got {out}",
                        hint="end the body with a layer back to the input's channels, e.g. conv(out=input)")
    _patch_fits(inp, args["patch"])
    return out


register_op("masks", lambda args, inp, out, branches: ComplementaryMasks(branches[0], args["k"], args["patch"],
                                                                          args["combine"]),
            branches=(1, 1), infer=_masks_infer, random=True, family="random", params=[
                Param("k", "int", 2, low=2, high=64, doc="number of views; each hides a 1/k share of the patches"),
                Param("patch", "int", 4, low=1, high=256, doc="side of the square patches that are hidden"),
                Param("combine", "choice", "mean", choices=("mean", "hidden"),
                      doc="mean: average the restorations; hidden: keep each pixel from the view that hid it"),
            ], doc="""masks(k=2, patch=4, combine=mean) { p }: run p on K views with complementary random patch masks.

    Per sample and per call, the p x p patches are dealt at random to the K views; view i hides
    its share (sets it to 0), so the hidden parts are disjoint and cover the image. The body sees
    all K*N views in one batch and its mask in ctx.values["mask"]. DIR, Zhou et al., ICML 2023.
    masks(k=2, patch=4, combine=hidden) { conv(16, depth=3) -> conv(out=input) } -> clamp""")
