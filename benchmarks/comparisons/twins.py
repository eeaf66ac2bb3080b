"""Each shipped recipe's defense written by hand as a plain nn.Module: what fif's compiled pipeline is
measured against (benchmarks/comparisons/defenses.py and memory.py).

    fif_defense = fif.load_recipe("recipes/pafilt.fif").compile()
    twin = make_twin("pafilt", fif_defense)          # the same network, fif's weights copied in
    twin(x)                                          # == fif_defense(x) to float rounding

A twin is what a careful person would write for that one recipe, knowing its sizes: no run
context, no kind checks, no generic blocks; a `let` used twice (PA-Filt's encoder) runs once.
`twin.attack(x)` is what an adaptive attacker differentiates (BPDA through rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

class Twin(nn.Module):
    def attack(self, x):
        return self(x)


class BitDepthTwin(Twin):
    """bitdepth(2): x rounded to 2 levels in [0, 1]; BPDA passes the identity gradient."""

    levels = 2

    def forward(self, x):
        return torch.round(x.clamp(0, 1) * (self.levels - 1)) / (self.levels - 1)

    def attack(self, x):
        return x + (self(x) - x).detach()


class IdentityTwin(Twin):
    """id (the probe recipe's defense)."""

    def forward(self, x):
        return x


class TinyTwin(Twin):
    """residual { conv(8, depth=2) -> conv(out=input) } -> clamp."""

    def __init__(self, channels: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ELU(), nn.Conv2d(8, 8, 3, padding=1),
                                  nn.Conv2d(8, channels, 3, padding=1))

    def forward(self, x):
        return (x + self.body(x)).clamp(0, 1)


class Block(nn.Module):
    """Pre-LayerNorm transformer block (attention, then a GELU MLP), as in MAE."""

    def __init__(self, width: int, heads: int, mlp: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.fc1 = nn.Linear(width, round(width * mlp))
        self.fc2 = nn.Linear(round(width * mlp), width)

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, L, D))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class MaskedViTTwin(Twin):
    """DIR: masks(k=2, patch=2) { vitdenoise(width=32, heads=4, depth=3, decoder_depth=1, patch=2,
    mlp=2) } -> clamp. Two views, each hiding a random half of the 2x2 patches (complementary); the
    encoder sees the visible tokens only; the decoder puts them back among mask tokens."""

    def __init__(self, channels=1, size=28, width=32, heads=4, depth=3, decoder_depth=1, patch=2, mlp=2.0):
        super().__init__()
        self.patch, self.grid = patch, size // patch
        tokens = self.grid ** 2
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

    def forward(self, x):
        n, C, H, W = x.shape
        p, g = self.patch, self.grid
        T = g * g
        rank = torch.rand(n, T, device=x.device).argsort(1).argsort(1)     # a random order per image
        hidden = rank < T // 2                                              # view 0 hides these
        keep = torch.stack([~hidden, hidden])                               # [2, n, T] visible
        idx = keep.reshape(2 * n, T).nonzero()[:, 1].view(2 * n, T // 2)    # visible positions, in order
        pixels = keep.view(2, n, 1, g, g).repeat_interleave(p, -2).repeat_interleave(p, -1)
        views = (x.unsqueeze(0) * pixels).reshape(2 * n, C, H, W)
        tokens = self.embed(views).flatten(2).transpose(1, 2) + self.pos
        D = tokens.shape[-1]
        where = idx.unsqueeze(-1).expand(-1, -1, D)
        h = torch.cat([self.cls.expand(2 * n, 1, D), tokens.gather(1, where)], 1)
        for block in self.encoder:
            h = block(h)
        h = self.encoder_norm(h)
        full = self.mask_token.expand(2 * n, T, D).scatter(1, where, h[:, 1:])
        h = torch.cat([h[:, :1], full], 1) + self.decoder_pos
        for block in self.decoder:
            h = block(h)
        out = self.head(self.decoder_norm(h)[:, 1:])
        out = out.view(2 * n, g, g, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(2, n, C, H, W)
        return out.mean(0).clamp(0, 1)


def _convs(cin: int, cout: int, n: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


class KernelDecoder(nn.Module):
    def __init__(self, widths, out: int):
        super().__init__()
        blocks, prev = [], widths[-1]
        for j in range(len(widths) - 1, 1, -1):           # skips from blocks d-1 .. 2
            cout = out if j == 2 else widths[j - 1]
            blocks.append(_convs(widths[j - 1] + prev, cout))
            prev = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(out, out, 1)

    def forward(self, feats):
        h = feats[-1]
        for skip, block in zip(feats[-2:0:-1], self.blocks):
            h = block(torch.cat([skip, F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)], 1))
        return self.head(F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))


class YNetTwin(Twin):
    """PA-Filt: a U-Net encoder (on the digits padded to 32x32) shared by two kernel decoders; each
    pixel filtered by both predicted 3x3 kernels; the two results blended by a small CNN on the
    kernels' uncertainty (their max). The encoder runs once."""

    LETS = {"encoder": "enc", "sl": "sl", "m": "m", "fusion": "pafilt"}   # whose weights are whose

    def __init__(self, channels=1, widths=(16, 32, 64, 64, 64), k=3, fusion=(32, 32, 32, 32, 32)):
        super().__init__()
        self.k = k
        cins = [channels, *widths[:-1]]
        self.encoder = nn.ModuleList(_convs(cin, w) for cin, w in zip(cins, widths))
        self.sl = KernelDecoder(widths, channels * k * k)
        self.m = KernelDecoder(widths, channels * k * k)
        layers: list[nn.Module] = []
        cin = 2
        for w in fusion:
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU()]
            cin = w
        self.fusion = nn.Sequential(*layers, nn.Conv2d(cin, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, x):
        N, C, H, W = x.shape
        h, feats = F.pad(x, (2, 2, 2, 2)), []
        for j, block in enumerate(self.encoder):
            h = block(F.avg_pool2d(h, 2) if j else h)
            feats.append(h)
        k2 = self.k * self.k
        ksl, km = (dec(feats)[..., 2:-2, 2:-2] for dec in (self.sl, self.m))
        patches = F.unfold(x, self.k, padding=self.k // 2).view(N, C, k2, H, W)
        a = (patches * ksl.view(N, C, k2, H, W)).sum(2).clamp(0, 1)
        b = (patches * km.view(N, C, k2, H, W)).sum(2).clamp(0, 1)
        w = self.fusion(torch.cat([ksl.amax(1, keepdim=True), km.amax(1, keepdim=True)], 1))
        return w * a + (1 - w) * b


_MAKERS = {"bitdepth": BitDepthTwin, "dir": MaskedViTTwin, "pafilt": YNetTwin, "probe": IdentityTwin,
           "tiny": TinyTwin}


def make_twin(recipe: str, pipeline: nn.Module | None = None) -> Twin:
    """The hand-written twin of `recipe`'s defense, with `pipeline`'s weights copied in when given
    (parameters in the same order and shapes: checked)."""
    twin = _MAKERS[recipe]()
    if pipeline is not None:
        lets = getattr(twin, "LETS", None)
        pairs = [(twin, pipeline)] if lets is None else [(getattr(twin, a), pipeline.shared[b]) for a, b in lets.items()]
        for mine, theirs in pairs:
            _copy(recipe, list(mine.parameters()), list(theirs.parameters()))
    return twin


def _copy(recipe: str, mine, theirs) -> None:
    shapes = [tuple(p.shape) for p in mine], [tuple(p.shape) for p in theirs]
    if shapes[0] != shapes[1]:
        raise ValueError(f"{recipe}: the twin's parameters {shapes[0]} differ from fif's {shapes[1]}")
    with torch.no_grad():
        for a, b in zip(mine, theirs):
            a.copy_(b)
