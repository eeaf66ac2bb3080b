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
            block = _convs(widths[j - 1] + prev, cout)
            blocks.append(block[:-1] if j == 2 else block)   # the output block's last conv is linear
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


def _elu_convs(cin: int, widths) -> nn.Sequential:
    """3x3 convs through `widths`, ELU between them, none after the last (fif's conv stack)."""
    layers: list[nn.Module] = []
    for i, cout in enumerate(widths):
        layers += [nn.Conv2d(cin, cout, 3, padding=1)] + ([nn.ELU()] if i < len(widths) - 1 else [])
        cin = cout
    return nn.Sequential(*layers)


class Compress(nn.Module):
    """chancompress(1/6, noise=20): conv C->C, ELU, conv C->code; + N(0, 20^2) while training
    (none at inference: test_noise=false); tanh; conv code->C, ELU, conv C->C."""

    def __init__(self, c: int = 16, code: int = 3, sigma: float = 20.0):
        super().__init__()
        self.compress, self.restore, self.sigma = _elu_convs(c, [c, code]), _elu_convs(code, [c, c]), sigma

    def forward(self, x):
        z = self.compress(x)
        if self.training:
            z = z + self.sigma * torch.randn_like(z)
        return self.restore(torch.tanh(z))


class DownUp(nn.Module):
    """downup(2, width=16): 2x2 average pool, three conv+ELU, bilinear up to the band's size, one conv."""

    def __init__(self, c: int = 16, width: int = 16):
        super().__init__()
        self.body = nn.Sequential(*_elu_convs(c, [width] * 3), nn.ELU())
        self.out = nn.Conv2d(width, c, 3, padding=1)

    def forward(self, x):
        y = self.body(F.avg_pool2d(x, 2))
        return self.out(F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False))


class ACMTwin(Twin):
    """ACM: conv(16, depth=3) -> dwt(haar) -> <HH, HL, LH: chancompress(1/6, noise=20), LL: downup(2,
    width=16)> -> idwt -> conv(out=input) -> clamp(train=false). The one-level haar DWT of a 2x2
    block [a b; c d] is LL = (a+b+c+d)/2, LH = (a+b-c-d)/2 (pywt cH), HL = (a-b+c-d)/2 (cV),
    HH = (a-b-c+d)/2 (cD); each high band has its own compression."""

    def __init__(self, channels: int = 1, c: int = 16):
        super().__init__()
        self.features = _elu_convs(channels, [c] * 3)
        self.ll = DownUp(c)
        self.lh, self.hl, self.hh = Compress(c), Compress(c), Compress(c)
        self.image = nn.Conv2d(c, channels, 3, padding=1)

    def forward(self, x):
        h = self.features(x)
        a, b, c, d = h[..., 0::2, 0::2], h[..., 0::2, 1::2], h[..., 1::2, 0::2], h[..., 1::2, 1::2]
        ll = self.ll((a + b + c + d) / 2)
        lh, hl, hh = self.lh((a + b - c - d) / 2), self.hl((a - b + c - d) / 2), self.hh((a - b - c + d) / 2)
        top = torch.stack([ll + lh + hl + hh, ll + lh - hl - hh], -1)        # a, b of each block
        bottom = torch.stack([ll - lh + hl - hh, ll - lh - hl + hh], -1)     # c, d
        y = self.image(torch.stack([top, bottom], -3).flatten(-2).flatten(-3, -2) / 2)
        return y if self.training else y.clamp(0, 1)


class EDSRTwin(Twin):
    """bitdepth_sr: bitdepth(2) -> edsr(16, 4, res_scale=1) -> clamp. EDSR at scale 1: a head conv,
    4 residual blocks (conv, ReLU, conv, + identity) and a conv, the global skip, a tail conv."""

    def __init__(self, channels: int = 1, width: int = 16, depth: int = 4):
        super().__init__()
        self.bitdepth = BitDepthTwin()
        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(width, width, 3, padding=1)) for _ in range(depth))
        self.body_out = nn.Conv2d(width, width, 3, padding=1)
        self.tail = nn.Conv2d(width, channels, 3, padding=1)

    def restore(self, q):
        h = r = self.head(q)
        for block in self.blocks:
            r = r + block(r)
        return self.tail(h + self.body_out(r)).clamp(0, 1)

    def forward(self, x):
        return self.restore(self.bitdepth(x))

    def attack(self, x):
        return self.restore(self.bitdepth.attack(x))


_MAKERS = {"acm": ACMTwin, "bitdepth": BitDepthTwin, "bitdepth_sr": EDSRTwin, "dir": MaskedViTTwin,
           "pafilt": YNetTwin, "probe": IdentityTwin, "tiny": TinyTwin}


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
