"""What one process measures of an evaluation and how it joins the others' (fif.distributed):
its share of the test images, image quality over every rank's images, the rows as they are made.

    lo, hi = share(recipe, count)        # fif eval --nproc 2: rank 1 takes the later batches
"""

from __future__ import annotations

import torch
from torch import nn

from .. import distributed as dist
from ..errors import FifError, diagnostic
from ..recipe import Recipe
from ..runtime import derive_seed
from .metrics import psnr, ssim


def share(recipe: Recipe, count: int) -> tuple[int, int]:
    """This rank's [start, stop) of the test images; E521 when some rank would get none."""
    batches = -(-count // recipe.eval.batch)
    if dist.world_size() > batches:
        raise FifError(diagnostic("E521", f"{dist.world_size()} processes for {count} test images in "
                                  f"{batches} batch(es) of {recipe.eval.batch}: some process would get none",
                                  file=recipe.file, hint="use fewer processes, more images (--n) or a smaller "
                                  "eval batch"))
    return dist.batch_range(count, recipe.eval.batch)


def quality(defense: nn.Module, x_in: torch.Tensor, clean: torch.Tensor, batch: int, *, seed=(),
             offset: int = 0) -> dict:
    """PSNR and SSIM of the defended images against the clean ones (sample means over every
    rank's images), and the means of what the defense's ops report with ctx.record (e.g. ufuse's
    uncertainty and weight maps). A random defense draws per batch from `seed` and its position."""
    from ..run_context import RunContext
    record: dict = {}
    parts = []
    with torch.no_grad():
        for i in range(0, len(x_in), batch):
            g = torch.Generator().manual_seed(derive_seed(*seed, "draw", offset + i))
            ctx = RunContext(generator=g, values={"record": record})
            parts.append(defense(x_in[i:i + batch], ctx=ctx).float())
    defended = torch.cat(parts)
    with torch.autocast(defended.device.type, enabled=False):
        p, q = psnr(defended, clean).clamp(max=100), ssim(defended, clean)
    out = {"psnr": float(dist.gather_cat(p).mean()), "ssim": float(dist.gather_cat(q).mean())}
    if record:
        out["diagnostics"] = {k: float(dist.gather_cat(torch.cat([t.reshape(-1) for t in record[k]]).float()).mean())
                              for k in sorted(record)}
    return out


class Rows:
    """The rows made so far; `on_row(row)` sees each one as it comes (rank 0 logs them)."""

    def __init__(self, on_row=None):
        self.made: list[dict] = []
        self.on_row = on_row

    def append(self, row: dict) -> None:
        self.made.append(row)
        if self.on_row is not None:
            self.on_row(row)
