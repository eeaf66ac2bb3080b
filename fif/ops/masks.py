"""Random patch masks: complementary views for a block (`masks`), and random patch removal
(`droppatches`; `droppixels` is its 1 x 1 case).

    masks(k=2, patch=2) { vitdenoise(patch=2) } -> clamp
    masks(ratio=0.7, patch=2) { vitdenoise(patch=2) } -> clamp      # 4 views, each shows 30 %

Zhou et al., Eliminating Adversarial Noise via Information Discard and Robust Representation
Restoration (DIR), ICML 2023: each image is split into views by complementary patch masks; a
denoiser restores each view, and the restorations are combined (Eq. 5: their mean). The body runs
once on all K x N views (one batched pass); ops inside it read their view's mask from the run
context (`ctx.values["mask"]`, 1 = visible, shape [K*N, 1, H, W]) and the patch side
(`ctx.values["patch"]`); at compile time they see `patch` and `mask_size` in their infer context.

Two constructions, the same at 50 %:
  k alone        the patches are shuffled per sample and dealt to the k views in turn: view i
                 hides a 1/k share, the hidden parts are disjoint and cover the image.
  ratio=r        each view hides a share r of the patches; ceil(1/(1-r)) views (or k, if given and
                 at least that many) show windows of round((1-r) P) consecutive patches of the
                 per-sample shuffle, starting at i*P/k, so every view shows the same number of
                 patches and together they show every patch (the visible parts cover the image;
                 at r < 1/2 some patches are hidden by no view, at r > 1/2 some by several).
The paper reports 30 / 50 / 70 % without saying how its masks are built at 30 and 70 % (its code
splits (1-r)/r, which makes 30 and 70 % the same partition); `ratio` is fif's definition, after
shared/RECIPES.md 5.1.
"""

from __future__ import annotations

import math

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


def views_for(k: int | None, ratio: float | None) -> int:
    """The number of views: k, else 2 (no ratio) or ceil(1/(1-ratio))."""
    if k is not None:
        return k
    if ratio is None:
        return 2
    return math.ceil(1 / (1 - ratio) - 1e-9)


def visible_count(patches: int, k: int, ratio: float) -> int:
    """Patches each view shows under `ratio`: round((1-ratio) P), at least ceil(P/k) so the k
    windows cover every patch, and at most P."""
    return min(patches, max(round((1 - ratio) * patches), -(-patches // k)))


def draw_hidden(n: int, k: int, patch: int, size: tuple[int, int], ctx, like: torch.Tensor,
                ratio: float | None = None) -> torch.Tensor:
    """[k, n, 1, H, W] booleans: True where view i hides the pixel. Per sample the patches get a
    random order; without `ratio` they are dealt to the k views in turn (each patch hidden in
    exactly one view), with it view i shows the window of visible_count(P, k, ratio) patches that
    starts at i*P/k in that order (every patch shown by at least one view)."""
    hp, wp = patch_grid(size, patch)
    P = hp * wp
    ranks = ctx.rand((n, P), like=like).argsort(1).argsort(1)   # a random permutation per sample
    if ratio is None:
        owner = (ranks * k) // P                                    # the view that hides each patch
        hidden = torch.stack([owner == i for i in range(k)])
    else:
        shown = visible_count(P, k, ratio)
        hidden = torch.stack([(ranks - (i * P) // k) % P >= shown for i in range(k)])
    return expand_patches(hidden.view(k, n, 1, hp, wp), patch, size)


def combine_weights(hidden: torch.Tensor, dtype) -> torch.Tensor:
    """combine=hidden: each pixel is the mean of the views that hid it; a pixel no view hid
    (ratio < 1/2) is the mean of all views. [k, n, 1, H, W], summing to 1 over the views."""
    w = hidden.to(dtype)
    count = w.sum(0, keepdim=True)
    return torch.where(count > 0, w / count.clamp(min=1), torch.full_like(w, 1.0 / w.shape[0]))


class ComplementaryMasks(nn.Module):
    def __init__(self, branch: nn.Module, k: int, patch: int, combine: str, ratio: float | None = None):
        super().__init__()
        self.branch, self.k, self.patch, self.combine, self.ratio = branch, k, patch, combine, ratio

    def forward(self, x, ctx):
        n, rest = x.shape[0], x.shape[1:]
        hidden = draw_hidden(n, self.k, self.patch, tuple(x.shape[-2:]), ctx, x, self.ratio)
        visible = (~hidden).to(x.dtype)
        views = (x.unsqueeze(0) * visible).reshape(self.k * n, *rest)
        mask = visible.reshape(self.k * n, 1, *x.shape[-2:])
        # `views=None`: a masks block inside this one does not report its views to the caller
        out = self.branch(views, ctx.with_values(mask=mask, patch=self.patch, views=None))
        out = out.reshape(self.k, n, *out.shape[1:])
        collect = ctx.values.get("views")
        if collect is not None:   # a per-view loss asked for the restorations before they are combined
            collect.append(out)
        if self.combine == "mean":
            return out.mean(0)
        return (out * combine_weights(hidden, out.dtype)).sum(0)

    def extra_repr(self):
        ratio = "" if self.ratio is None else f", ratio={self.ratio:g}"
        return f"k={self.k}, patch={self.patch}, combine={self.combine}{ratio}"


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
    ratio, k = args["ratio"], args["k"]
    if ratio is not None and k is not None and k < views_for(None, ratio):
        need = views_for(None, ratio)
        raise KindError("E224", f"{k} views that each show {1 - ratio:.0%} of the patches cannot show every "
                        f"patch; ratio={ratio:g} needs at least {need}", param="k",
                        hint=f"leave k out (it is then {need}) or use k={need}")
    patches = -(-inp.H // args["patch"]) * -(-inp.W // args["patch"])
    if views_for(k, ratio) > patches:
        raise KindError("E224", f"{views_for(k, ratio)} views of {patches} patches leave some view hiding "
                        "nothing", param="k" if k is not None else "ratio", hint="use fewer views or a smaller patch")
    return out


def _masks_shares(args, inp):
    """What the ops inside see at compile time: the patch side and the size the masks are drawn at."""
    return {"patch": args["patch"], "mask_size": (getattr(inp, "H", None), getattr(inp, "W", None))}


register_op("masks", lambda args, inp, out, branches: ComplementaryMasks(
                branches[0], views_for(args["k"], args["ratio"]), args["patch"], args["combine"], args["ratio"]),
            branches=(1, 1), infer=_masks_infer, shares=_masks_shares, random=True, family="random", params=[
                Param("k", "int", None, low=2, high=64,
                      doc="number of views (default 2, or ceil(1/(1-ratio)) with ratio)"),
                Param("patch", "int", 4, low=1, high=256, doc="side of the square patches that are hidden"),
                Param("combine", "choice", "mean", choices=("mean", "hidden"),
                      doc="mean: average the restorations (DIR Eq. 5); hidden: keep each pixel from the "
                          "view(s) that hid it"),
                Param("ratio", "float", None, low=0.0, high=1.0, low_open=True, high_open=True,
                      doc="share of the patches each view hides; the views' visible parts cover the image"),
            ], doc="""masks(k=2, patch=4, combine=mean, ratio) { p }: run p on K views with complementary random patch masks.

    Per sample and per call, the p x p patches are shuffled. Without ratio they are dealt to the
    K views in turn: view i hides its share (sets it to 0), so the hidden parts are disjoint and
    cover the image. With ratio=r each of ceil(1/(1-r)) views hides a share r and shows a window
    of the shuffle, the windows covering every patch (fif's definition of DIR's 30 / 70 % masks).
    The body sees all K*N views in one batch and its mask in ctx.values["mask"].
    Zhou et al., DIR, ICML 2023, Eq. 5 (combine=mean).
    masks(k=2, patch=2) { vitdenoise(patch=2) } -> clamp""")
