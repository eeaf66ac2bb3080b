"""`vitdenoise`: a small ViT/MAE-style masked denoiser that encodes only the visible patches.

    masks(k=2, patch=2) { vitdenoise(width=64, heads=4, depth=4, decoder_depth=1, patch=2) } -> clamp

Zhou et al., Eliminating Adversarial Noise via Information Discard and Robust Representation
Restoration (DIR), ICML 2023, after He et al., Masked Autoencoders Are Scalable Vision Learners,
CVPR 2022; the structure follows shared/RECIPES.md 5.2:
  patch embedding (a p x p conv with stride p) + learned positional embedding, added BEFORE any
  token is dropped; a learned CLS token; the encoder runs on the visible tokens only (dropped,
  not zeroed: hidden tokens are gathered out and never attended to); the decoder puts each
  view's encoded tokens back at their own positions (RECIPES.md 5.2's proposed default, not the
  public code's un-shuffle with view 1's order), a learned mask token everywhere else, adds its
  own positional embedding, runs full attention, and a per-token linear head maps each token
  back to its p x p pixels (the standard MAE head, not the code's token-mixing conv).
Blocks are pre-LayerNorm (timm style): x + attn(LN(x)); x + MLP(LN(x)); GELU; no qkv bias, no
dropout. Attention is torch.nn.functional.scaled_dot_product_attention.

Which tokens are visible comes from the enclosing `masks` block (`ctx.values["mask"]`, 1 =
visible); outside a masks block every token is visible. Views may show different numbers of
patches (masks(k=3) on 196 patches): the visible tokens are gathered to the longest view's length
and the padding is left out of attention by a key mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import error
from ..kinds import TensorKind
from ..registry import KindError, Param, register_op


class Block(nn.Module):
    """A pre-LayerNorm transformer block: multi-head self-attention then a GELU MLP, each residual."""

    def __init__(self, width: int, heads: int, mlp: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        hidden = max(1, round(width * mlp))
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, D]; keep [B, 1, 1, L] booleans, True for the keys a token may attend to."""
        B, L, D = x.shape
        # one unbind, not three selects: backward stacks the three gradients, where each select's
        # backward would fill a zeroed tensor of all of q, k and v (DIR's fwd+bwd: 1.08-1.11x its twin)
        heads = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads)
        q, k, v = heads.permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        del heads, q, k, v   # without a graph to keep them, q, k and v (3x the tokens) go before the MLP runs
        x = x + self.proj(a.transpose(1, 2).reshape(B, L, D))
        del a
        return x + self.mlp(self.norm2(x))


class ViTDenoiser(nn.Module):
    def __init__(self, channels: int, size: tuple[int, int], width: int, heads: int, depth: int,
                 decoder_depth: int, patch: int, mlp: float):
        super().__init__()
        self.channels, self.patch = channels, patch
        self.grid = (size[0] // patch, size[1] // patch)
        tokens = self.grid[0] * self.grid[1]
        self.embed = nn.Conv2d(channels, width, patch, stride=patch)
        self.pos = nn.Parameter(torch.zeros(1, tokens, width))
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.encoder = nn.ModuleList(Block(width, heads, mlp) for _ in range(depth))
        self.encoder_norm = nn.LayerNorm(width, eps=1e-6)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_pos = nn.Parameter(torch.zeros(1, tokens + 1, width))
        self.decoder = nn.ModuleList(Block(width, heads, mlp) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, channels * patch * patch)
        self._init()

    def _init(self):
        for p in (self.pos, self.cls, self.mask_token, self.decoder_pos):
            nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.embed.weight.view(self.embed.weight.shape[0], -1))

    # -- which tokens are visible ----------------------------------------------------------------
    def visible_tokens(self, mask: torch.Tensor) -> torch.Tensor:
        """[B, T] booleans from a [B, 1, H, W] pixel mask (1 = visible) that is constant on each
        p x p patch; E504 when it is not (the masks' patches do not tile the ViT's)."""
        share = F.avg_pool2d(mask, self.patch)
        if not bool(((share == 0) | (share == 1)).all()):
            raise error("E504", f"vitdenoise(patch={self.patch}) got a mask that hides parts of its "
                        f"{self.patch}x{self.patch} patches",
                        hint="give the enclosing masks block a patch that is a multiple of vitdenoise's, "
                        f"e.g. masks(patch={self.patch}) {{ vitdenoise(patch={self.patch}) }}")
        return share.flatten(1) > 0.5

    # -- encoder and decoder ----------------------------------------------------------------------
    def encode(self, x: torch.Tensor, visible: torch.Tensor | None = None):
        """(encoded tokens [B, 1 + L, D] with CLS first, positions [B, L] of the L visible tokens,
        valid [B, L] or None when every row has L visible tokens). Hidden tokens are dropped
        after the positional embedding is added, so the encoder never sees them."""
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        B, T, D = tokens.shape
        valid = None
        if visible is None:
            idx = torch.arange(T, device=x.device).expand(B, T)
        else:
            counts = visible.sum(1)
            L = int(counts.max())
            order = torch.argsort((~visible).to(torch.uint8), dim=1, stable=True)  # visible first, in place order
            idx = order[:, :L]
            tokens = tokens.gather(1, idx.unsqueeze(-1).expand(B, L, D))
            if int(counts.min()) < L:
                valid = torch.arange(L, device=x.device) < counts.unsqueeze(1)
        tokens = torch.cat([self.cls.expand(B, 1, D), tokens], 1)
        keep = None
        if valid is not None:
            keep = torch.cat([valid.new_ones(B, 1), valid], 1)[:, None, None, :]
        for block in self.encoder:
            tokens = block(tokens, keep)
        return self.encoder_norm(tokens), idx, valid

    def decode(self, encoded: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """Each encoded token back at its own position, the mask token elsewhere; [B, C, H, W]."""
        B, _, D = encoded.shape
        body = encoded[:, 1:]
        if valid is not None:   # padding slots carry the mask token to the (hidden) places they point at
            body = torch.where(valid.unsqueeze(-1), body, self.mask_token.to(body.dtype))
        T = self.grid[0] * self.grid[1]
        full = self.mask_token.expand(B, T, D).scatter(1, idx.unsqueeze(-1).expand(-1, -1, D), body)
        tokens = torch.cat([encoded[:, :1], full], 1) + self.decoder_pos
        del encoded, body, full   # not needed while the decoder blocks run
        for block in self.decoder:
            tokens = block(tokens)
        pixels = self.head(self.decoder_norm(tokens)[:, 1:])          # [B, T, C * p * p]
        (gh, gw), p, C = self.grid, self.patch, self.channels
        return pixels.view(B, gh, gw, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, C, gh * p, gw * p)

    def forward(self, x, ctx):
        mask = ctx.values.get("mask")
        visible = None
        if mask is not None:
            if tuple(mask.shape[-2:]) != tuple(x.shape[-2:]) or mask.shape[0] != x.shape[0]:
                raise error("E504", f"vitdenoise got {list(x.shape)} but its masks block's mask is "
                            f"{list(mask.shape)}",
                            hint="put vitdenoise in the masks block's body before anything that changes the size")
            visible = self.visible_tokens(mask.to(x.dtype))
        return self.decode(*self.encode(x, visible))

    def extra_repr(self):
        return f"patch={self.patch}, grid={self.grid[0]}x{self.grid[1]}"


def _vit_infer(inp, args, ctx):
    p, width, heads = args["patch"], args["width"], args["heads"]
    if width % heads:
        raise KindError("E224", f"width {width} does not split into {heads} heads", param="heads",
                        hint="choose heads that divide width, e.g. " + str(next(h for h in (4, 2, 1) if width % h == 0)))
    if inp.H % p or inp.W % p:
        raise KindError("E330", f"patch {p} does not tile the input ({inp.H}x{inp.W})", param="patch",
                        hint="choose a patch that divides both sides")
    outer = getattr(ctx, "values", {})
    if "patch" in outer:
        P, size = outer["patch"], outer.get("mask_size")
        if size is not None and tuple(size) != (inp.H, inp.W):
            raise KindError("E338", f"vitdenoise sees {inp.H}x{inp.W}, but its masks block draws masks at "
                            f"{size[0]}x{size[1]}", hint="put vitdenoise in the masks block's body before "
                            "anything that changes the size")
        if P % p:
            raise KindError("E338", f"vitdenoise's {p}x{p} patches do not tile the masks block's {P}x{P} "
                            "patches, so some tokens would be partly hidden", param="patch",
                            hint=f"use vitdenoise(patch={P}) or masks(patch={p})")
    return inp.with_shape(kind="features")


register_op("vitdenoise", lambda args, inp, out: ViTDenoiser(
                inp.C, (inp.H, inp.W), args["width"], args["heads"], args["depth"], args["decoder_depth"],
                args["patch"], args["mlp"]),
            infer=_vit_infer, learnable=True, family="learnable", params=[
                Param("width", "int", 64, low=1, high=4096, doc="token width of encoder and decoder"),
                Param("heads", "int", 4, low=1, high=64, doc="attention heads (divide width)"),
                Param("depth", "int", 4, low=1, high=64, doc="encoder blocks"),
                Param("decoder_depth", "int", 1, low=0, high=64, doc="decoder blocks"),
                Param("patch", "int", 2, low=1, high=64, doc="token side in pixels (tiles the masks' patches)"),
                Param("mlp", "float", 4.0, low=0.0, low_open=True, high=16.0, doc="MLP hidden width / width"),
            ], doc="""vitdenoise(width=64, heads=4, depth=4, decoder_depth=1, patch=2, mlp=4): a ViT/MAE masked denoiser.

    Patch embedding and positional embedding; encoder blocks on the visible tokens only (those
    the enclosing masks block shows; all of them outside one); decoder blocks with a learned mask
    token at each hidden position; a per-token linear head back to pixels. Output: features of
    the input's shape (clamp to get an image). Zhou et al., DIR, ICML 2023; He et al., MAE, CVPR 2022.
    The paper's denoiser is vitdenoise(width=192, heads=3, depth=8, decoder_depth=2, patch=2).
    masks(k=2, patch=2) { vitdenoise(width=64, heads=4, depth=4, decoder_depth=1, patch=2) } -> clamp""")
