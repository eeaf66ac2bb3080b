"""The kernel-prediction U-Net as two ops, so one encoder can feed two decoders (`let`):
`kpencoder` makes the skip features and the bottleneck as parts, `kpdecoder` turns them into a
map of per-pixel kernels (or any number of channels, for the additive variant).

    let enc = pad(2) -> kpencoder(widths=[16, 32, 64, 64, 64])
    let sl = kpfilter(3) { enc -> kpdecoder(3) -> crop(2) } -> clamp      # two decoders, one encoder
    let m = kpfilter(3) { enc -> kpdecoder(3) -> crop(2) } -> clamp

Huang et al., AdvFilter: Predictive Perturbation-aware Filtering against Adversarial Attack via
Multi-domain Learning, ACM MM 2021, section 3.2 (U-Net of eight blocks of three 3x3 convs with
ReLU, blocks 2, 3, 4 skip to blocks 8, 7, 6) and 4.2 (the Y-Net: one encoder, two decoders). Layer
details the paper leaves open follow the KPN it builds on (shared/RECIPES.md 3.2): 2x2 average
pooling before blocks 2..5, bilinear up-sampling, the last decoder block at half resolution, then
a bilinear 2x up-sample and a 1x1 conv; Xavier-normal weights, zero biases. The paper's layout is
kpencoder(widths=[64, 128, 256, 512, 512]); the default is the slim CPU one of RECIPES.md 3.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..kinds import PartsKind, TensorKind
from ..registry import KindError, Param, register_op

ORIGIN = "kpencoder"


class XavierConv2d(nn.Conv2d):
    """nn.Conv2d initialised as the KPN is: Xavier-normal weight, zero bias, drawn once. (A plain
    Conv2d first draws Kaiming-uniform values that were then overwritten: about half the time of
    building pafilt's million weights. The distribution is the same; a given seed now draws other
    values than fif did before this class.)"""

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


def conv_block(cin: int, cout: int, convs: int) -> nn.Sequential:
    """`convs` 3x3 convs (stride 1, pad 1, bias), each followed by ReLU."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [XavierConv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers)


def part_names(depth: int) -> tuple[str, ...]:
    """The encoder's parts: blocks 2..depth (block 1 has no skip in the KPN layout), `e2` .. `e5`."""
    return tuple(f"e{j}" for j in range(2, depth + 1))


class Encoder(nn.Module):
    """Blocks 1..d; 2x2 average pooling before blocks 2..d. Returns {e2: ..., ..., ed: bottleneck}."""

    def __init__(self, channels: int, widths: list[int], convs: int):
        super().__init__()
        cins = [channels] + list(widths[:-1])
        self.blocks = nn.ModuleList(conv_block(cin, w, convs) for cin, w in zip(cins, widths))

    def forward(self, x):
        out = {}
        h = x
        for j, block in enumerate(self.blocks, start=1):
            if j > 1:
                h = F.avg_pool2d(h, 2)
            h = block(h)
            if j > 1:
                out[f"e{j}"] = h
        return out


class Decoder(nn.Module):
    """Blocks d+1 .. 2d-2: block for skip j (j = d-1 .. 2) takes cat(e_j, up(previous)) to e_j's
    width (the last one to `out` channels, at half resolution); then bilinear 2x up and a 1x1 conv."""

    def __init__(self, widths: list[int], out: int, convs: int, last_relu: bool = False):
        super().__init__()
        d = len(widths)
        self.skips = list(range(d - 1, 1, -1))
        blocks, prev = [], widths[-1]
        for j in self.skips:
            cout = out if j == 2 else widths[j - 1]
            blocks.append(conv_block(widths[j - 1] + prev, cout, convs))
            prev = cout
        if not last_relu:  # the output block's last conv stays linear: see `last_relu` in the op's doc
            blocks[-1] = nn.Sequential(*list(blocks[-1])[:-1])
        self.blocks = nn.ModuleList(blocks)
        self.head = XavierConv2d(out, out, 1)
        self.depth = d

    def forward(self, parts):
        h = parts[f"e{self.depth}"]
        for j, block in zip(self.skips, self.blocks):
            skip = parts[f"e{j}"]
            up = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat([skip, up], 1))
        h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
        return self.head(h)


def _encoder_infer(inp: TensorKind, args, ctx):
    widths = list(args["widths"])
    if not 3 <= len(widths) <= 8 or min(widths) < 1:
        raise KindError("E224", f"widths lists 3 to 8 block widths, each >= 1, got {widths}", param="widths",
                        hint="e.g. widths=[16, 32, 64, 64, 64]; the paper's is [64, 128, 256, 512, 512]")
    pools = len(widths) - 1
    side = 2 ** pools
    if inp.H % side or inp.W % side:
        H, W = (-(-inp.H // side) * side), (-(-inp.W // side) * side)
        hint = (f"pad it first, e.g. pad({(H - inp.H) // 2}) -> ... -> crop({(H - inp.H) // 2}) makes {H}x{W}"
                if H - inp.H == W - inp.W and (H - inp.H) % 2 == 0 else
                f"pad or crop it to sides divisible by {side}, or give fewer widths")
        raise KindError("E330", f"kpencoder pools {pools} times ({len(widths)} widths), so it needs sides divisible "
                        f"by {side}; got {inp.H}x{inp.W}", hint=hint)
    parts = tuple((f"e{j}", TensorKind("features", widths[j - 1], inp.H >> (j - 1), inp.W >> (j - 1)))
                  for j in range(2, len(widths) + 1))
    meta = (("widths", tuple(widths)), ("convs", args["convs"]), ("source", inp))
    return PartsKind(parts, ORIGIN, meta)


register_op("kpencoder", lambda args, inp, out: Encoder(inp.C, list(args["widths"]), args["convs"]),
            infer=_encoder_infer, learnable=True, family="learnable", params=[
                Param("widths", "list[int]", (16, 32, 64, 64, 64), low=1, high=4096,
                      doc="channels of blocks 1..d (3 to 8 blocks; d - 1 poolings)"),
                Param("convs", "int", 3, low=1, high=8, doc="3x3 convs (each with ReLU) per block"),
            ], doc="""kpencoder(widths=[16, 32, 64, 64, 64], convs=3): the U-Net's encoder; image[C,H,W] -> parts{e2, ..., ed}.

    Block j (three 3x3 convs with ReLU) runs after j - 1 2x2 average poolings; parts e2 .. ed are
    blocks 2 .. d (the skips and, last, the bottleneck) at H/2 .. H/2^(d-1); sides must be
    divisible by 2^(d-1). A `let` shares one encoder between decoders (the Y-Net).
    Huang et al., AdvFilter, ACM MM 2021, 3.2 and 4.2; full layout widths=[64, 128, 256, 512, 512].
    let enc = pad(2) -> kpencoder(widths=[16, 32, 64, 64, 64])""")


def _decoder_out(args, src: TensorKind) -> int:
    out = args["out"]
    if out is None:
        return src.C * args["k"] ** 2
    return src.C if out == "input" else int(out)


def _decoder_infer(inp, args, ctx):
    if not isinstance(inp, PartsKind) or inp.origin != ORIGIN:
        made = f"parts made by {inp.origin}" if isinstance(inp, PartsKind) else str(inp)
        raise KindError("E303", f"kpdecoder needs the parts kpencoder made, got {made}",
                        hint="put an encoder before it: kpencoder -> kpdecoder(3), or a let of one")
    if args["k"] % 2 == 0:
        raise KindError("E224", f"kernel size k must be odd, got {args['k']}", param="k", hint=f"use k={args['k'] + 1}")
    src, widths = inp.get("source"), inp.get("widths")
    for name, kind in inp.parts:
        j = int(name[1:])
        if not isinstance(kind, TensorKind):
            raise KindError("E304", f"part {name} is {kind}, but kpdecoder needs a tensor for it")
        if kind.C != widths[j - 1]:
            raise KindError("E332", f"kpdecoder needs part {name} with {widths[j - 1]} channels like kpencoder made, "
                            f"got {kind.C}", hint="keep each part's channel count")
        if (kind.H, kind.W) != (src.H >> (j - 1), src.W >> (j - 1)):
            raise KindError("E333", f"kpdecoder needs part {name} at {src.H >> (j - 1)}x{src.W >> (j - 1)} like "
                            f"kpencoder made, got {kind.H}x{kind.W}", hint="keep each part's size")
    return TensorKind("features", _decoder_out(args, src), src.H, src.W)


register_op("kpdecoder", lambda args, inp, out: Decoder(list(inp.get("widths")), out.C, inp.get("convs"),
                                                       args["last_relu"]),
            accepts=("parts",), infer=_decoder_infer, learnable=True, family="learnable", params=[
                Param("k", "int", 3, low=1, high=15, doc="kernel size K: the output has C*K*K channels"),
                Param("out", "channels", None, low=1,
                      doc="output channels instead: `input` = the encoder input's C (the additive variant)"),
                Param("last_relu", "bool", False,
                      doc="a ReLU after the output block's last conv too, as in the KPN code (see below)"),
            ], doc="""kpdecoder(k=3, out, last_relu=false): the U-Net's decoder; kpencoder's parts -> features[C*k*k, H, W], or `out` channels.

    Block for skip j = d-1 .. 2: cat(e_j, bilinear-up(previous)), three 3x3 convs with ReLU, to
    e_j's width (the last to the output channels, at half resolution); bilinear 2x up; 1x1 conv.
    Widths and convs per block come from the encoder. Each use of the op is its own decoder.
    The output block's last conv has no ReLU unless last_relu=true (the KPN code's layout): with a
    ReLU there, the narrow C*K*K map of grey digits (9 channels) can die early in training, and the
    filter then outputs zeros for good (2 of 7 slim U-Nets did so in one pafilt run; 1 of 6 seeds of
    150 Adam steps in a probe, 0 of 8 without it).
    Huang et al., AdvFilter, ACM MM 2021, 3.2 (Filt: C*K^2 kernels; Add: out=input) and 4.2 (Y-Net).
    kpfilter(3) { pad(2) -> kpencoder -> kpdecoder(3) -> crop(2) }""")
