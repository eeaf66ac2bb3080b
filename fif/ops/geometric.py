"""Random geometric transforms: `resizepad` (Xie et al.'s randomization) and `cropresize` (Guo et
al.'s crop and rescale). Both keep the input's size, so the recipe's classifier reads them as it is.

    resizepad(24, 28) -> classifier     # shrink to r x r, r in [24, 28], at a random place in 28 x 28
    cropresize(24) -> classifier        # a random 24 x 24 crop, rescaled to 28 x 28

Each sample gets its own draw at every call. Both are one bilinear `grid_sample` per batch, so they
are differentiable: the attack view passes their true gradient, and EOT averages over draws.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..kinds import TensorKind
from ..registry import KindError, Param, register_op


def _draw_int(ctx, n: int, lo: int, hi: int, like: torch.Tensor) -> torch.Tensor:
    """n integers drawn uniformly from [lo, hi], as a float tensor like `like`."""
    return torch.floor(lo + ctx.rand((n,), like=like) * (hi - lo + 1)).clamp(lo, hi)


def _sample(x: torch.Tensor, scale_h, scale_w, shift_h, shift_w) -> torch.Tensor:
    """Output pixel (u, v) reads input pixel ((u + .5) * scale_h + shift_h - .5, same for v), per
    sample ([N] tensors, in pixels); bilinear, zeros outside the input."""
    N, _, H, W = x.shape
    theta = torch.zeros(N, 2, 3, dtype=x.dtype, device=x.device)
    # normalised coordinates (align_corners=False): i = s o + (s - 1 + 2 shift / size)
    theta[:, 0, 0] = scale_w
    theta[:, 0, 2] = scale_w - 1 + 2 * shift_w / W
    theta[:, 1, 1] = scale_h
    theta[:, 1, 2] = scale_h - 1 + 2 * shift_h / H
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class ResizePad(nn.Module):
    """Resize to r x r' (r uniform in [lo, hi], r' = r W / H) and zero-pad at a random offset."""

    def __init__(self, lo: int, hi: int):
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, x, ctx):
        N, _, H, W = x.shape
        r = _draw_int(ctx, N, self.lo, self.hi, x)
        rw = r * W / H
        top = torch.floor(ctx.rand((N,), like=x) * (H - r + 1)).clamp(max=H - r)
        left = torch.floor(ctx.rand((N,), like=x) * (W - rw + 1)).clamp(min=0).minimum(W - rw)
        # output pixel u shows input pixel (u + .5 - top) * H / r - .5
        return _sample(x, H / r, W / rw, -top * H / r, -left * W / rw)

    def extra_repr(self):
        return f"lo={self.lo}, hi={self.hi}"


class CropResize(nn.Module):
    """A random `size` x size' crop (size' = size W / H), rescaled bilinearly to the full image."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x, ctx):
        N, _, H, W = x.shape
        c, cw = self.size, self.size * W / H
        top = torch.floor(ctx.rand((N,), like=x) * (H - c + 1)).clamp(max=H - c)
        left = torch.floor(ctx.rand((N,), like=x) * (W - cw + 1)).clamp(min=0, max=W - cw)
        ones = torch.ones(N, dtype=x.dtype, device=x.device)
        return _sample(x, ones * c / H, ones * cw / W, top, left)

    def extra_repr(self):
        return f"size={self.size}"


def _sizes_fit(name: str, inp, **sides):
    if not isinstance(inp, TensorKind):
        raise KindError("E301", f"{name} needs an image or features, got {inp}")
    for param, side in sides.items():
        if side > inp.H:
            raise KindError("E330", f"{name}: {param}={side} is larger than the image's height {inp.H}",
                            param=param, hint=f"use at most {inp.H}")


def _resizepad_infer(inp, args, ctx):
    if args["lo"] > args["hi"]:
        raise KindError("E224", f"resizepad needs lo <= hi, got lo={args['lo']}, hi={args['hi']}", param="hi")
    _sizes_fit("resizepad", inp, hi=args["hi"])
    return inp


def _cropresize_infer(inp, args, ctx):
    _sizes_fit("cropresize", inp, size=args["size"])
    return inp


register_op("resizepad", lambda args, inp, out: ResizePad(args["lo"], args["hi"]), infer=_resizepad_infer,
            random=True, family="random", params=[
                Param("lo", "int", low=1, high=4096, doc="smallest side the image is resized to"),
                Param("hi", "int", low=1, high=4096, doc="largest side (at most the input's height)"),
            ], doc="""resizepad(lo, hi): resize to a random r x r in [lo, hi], zero-pad back to the input's size at a random place.

    Xie, Wang, Zhang, Ren & Yuille, Mitigating Adversarial Effects Through Randomization, ICLR
    2018 (resize 299 -> [299, 331), pad to 331). fif keeps the output at the input's size, so the
    image shrinks into its frame instead of the frame growing: the classifier is used unchanged.
    Bilinear, differentiable; a fresh r and offset per sample and call.
    resizepad(24, 28) -> classifier""")

register_op("cropresize", lambda args, inp, out: CropResize(args["size"]), infer=_cropresize_infer,
            random=True, family="random", params=[
                Param("size", "int", low=1, high=4096, doc="side of the square crop (at most the input's height)"),
            ], doc="""cropresize(size): a random size x size crop, rescaled bilinearly to the input's size.

    Guo, Rana, Cisse & van der Maaten, Countering Adversarial Images using Input
    Transformations, ICLR 2018 (crop-rescale). One crop per sample and call; the paper averages
    the predictions of several crops, which is what EOT over draws measures. Differentiable.
    cropresize(24) -> classifier""")
