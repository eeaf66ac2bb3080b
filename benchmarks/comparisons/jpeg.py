"""2. JPEG, and block DCT + quantize + inverse, against kornia's differentiable JPEG (and its 8x8 DCT
blocks) and against Pillow (libjpeg: encode + decode per image)."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from ..harness import Config, Row, interleaved
from . import skipped

TITLE = "JPEG and block DCT + quantize + inverse: fif against kornia and Pillow"
NOTE = ("JPEG: quality 75 with 4:2:0 chroma subsampling for RGB (fif `jpeg(75, subsample)`; kornia "
        "`enhance.jpeg_codec_differentiable`, which always subsamples; Pillow `save(quality=75, "
        "subsampling=2)` then decode, image by image, including the conversions to and from 8-bit "
        "arrays), grey images as grey JPEG (kornia codes RGB only). Forward+backward: fif's attack "
        "view of `jpeg(75, subsample, bpda=cubic)` (the exact codec forward, the gradient of the "
        "codec with cubic rounding backward) against kornia's codec with its polynomial rounding. "
        "`dev` in the note: mean |output - Pillow's| in 8-bit levels. Block DCT: fif "
        "`blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct` against the same "
        "steps as one 8x8 table through kornia's own 8x8 DCT blocks (private functions of "
        "kornia.enhance.jpeg, sides padded to multiples of 8 as fif does); backward: the identity "
        "through the rounding on both sides (fif's attack view).")
PEERS = ["kornia", "Pillow"]
JPEG_SIZES = {"imagenet": (16, 3, 224, 224), "cifar": (256, 3, 32, 32), "mnist": (256, 1, 28, 28)}
DCT_SIZES = {"acm": (64, 32, 32, 32), "mnist": (256, 1, 28, 28), "imagenet": (16, 3, 224, 224)}
QUALITY = 75


def _pillow(x: torch.Tensor) -> torch.Tensor:
    """Encode and decode each image with Pillow (libjpeg), as a data pipeline would."""
    from PIL import Image
    arr = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for img in arr:
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=QUALITY, subsampling=2)
        buf.seek(0)
        out.append(np.asarray(Image.open(buf).convert(pil.mode)))
    y = torch.from_numpy(np.stack(out)).float() / 255
    return y.unsqueeze(1) if y.dim() == 3 else y.permute(0, 3, 1, 2)


def _kornia_codec():
    try:
        from kornia.enhance import jpeg_codec_differentiable
    except ImportError as e:
        return None, f"not installed ({e.name})"
    q = torch.tensor([float(QUALITY)])
    return (lambda x: jpeg_codec_differentiable(x, q)), None


def _fwd_bwd(fn, x, g):
    def run():
        xi = x.detach().requires_grad_(True)
        (fn(xi) * g).sum().backward()
    return run


def _jpeg_rows(cfg: Config, label: str, shape):
    import fif
    C = shape[1]
    gen = torch.Generator().manual_seed(0)
    # smooth images (JPEG's use case), not noise: upsampled random 1/8-resolution images
    x = F.interpolate(torch.rand(shape[0], C, shape[2] // 8 + 1, shape[3] // 8 + 1, generator=gen),
                      size=shape[2:], mode="bilinear", align_corners=False).clamp(0, 1)
    g = torch.randn(*shape, generator=gen)
    case = f"jpeg q{QUALITY} {label} {'x'.join(map(str, shape))}"
    text = f"jpeg({QUALITY}" + (", subsample" if C == 3 else "") + ", bpda=cubic)"
    defense = fif.compile(text, input_shape=tuple(shape[1:])).eval()
    view = defense.attack_view()
    kornia, why = _kornia_codec() if C == 3 else (None, "RGB only")
    ref = _pillow(x)
    dev = {"fif": float((defense(x) - ref).abs().mean()) * 255}
    fwd = {"fif": lambda: defense(x), "Pillow": lambda: _pillow(x)}
    if kornia is not None:
        with torch.no_grad():
            dev["kornia"] = float((kornia(x) - ref).abs().mean()) * 255
        fwd["kornia"] = lambda: kornia(x)
    dev["Pillow"] = 0.0
    with torch.no_grad():
        times = interleaved(fwd, cfg)
    for name in fwd:
        if name != "fif":
            yield Row("jpeg", case, "fwd ms", times["fif"] * 1e3, name, times[name] * 1e3,
                      note=f"dev fif {dev['fif']:.2f}, {name} {dev[name]:.2f}",
                      target=("ratio", 1.0) if name == "kornia" else None)
    if kornia is None:
        yield skipped("jpeg", case, "fwd ms", "kornia", why)
        return
    both = interleaved({"fif": _fwd_bwd(view, x, g), "kornia": _fwd_bwd(kornia, x, g)}, cfg)
    yield Row("jpeg", case, "fwd+bwd ms", both["fif"] * 1e3, "kornia", both["kornia"] * 1e3,
              note="fif: attack view, bpda=cubic", target=("ratio", 1.0))


def _kornia_blocks(shape):
    """Block DCT + quantize + inverse with kornia's 8x8 DCT, as fif's blockdct/quantize/iblockdct."""
    try:
        from kornia.enhance.jpeg import _dct_8x8, _idct_8x8, _patchify_8x8, _unpatchify_8x8
    except ImportError as e:
        return None, f"not installed ({e.name})"
    table = torch.tensor([[16.0 if i + j < 5 else 50.0 for j in range(8)] for i in range(8)])
    N, C, H, W = shape
    Hp, Wp = -(-H // 8) * 8, -(-W // 8) * 8

    def run(x, ste: bool):
        p = x * 255
        if (Hp, Wp) != (H, W):
            p = F.pad(p, (0, Wp - W, 0, Hp - H), mode="replicate")
        c = _dct_8x8(_patchify_8x8(p.reshape(N * C, Hp, Wp)))
        q = torch.round(c / table) * table
        if ste:
            q = c + (q - c).detach()
        return _unpatchify_8x8(_idct_8x8(q), Hp, Wp).view(N, C, Hp, Wp)[..., :H, :W] / 255
    return run, None


def _dct_rows(cfg: Config, label: str, shape):
    import fif
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    case = f"blockdct+quantize {label} {'x'.join(map(str, shape))}"
    text = "blockdct(8, split=5) -> <OF: quantize(16), AF: quantize(50)> -> iblockdct"
    defense = fif.compile(text, input_shape=tuple(shape[1:]), kind="features").eval()
    view = defense.attack_view()
    blocks, why = _kornia_blocks(shape)
    if blocks is None:
        yield skipped("jpeg", case, "fwd ms", "kornia blocks", why)
        return
    with torch.no_grad():
        diff = float((defense(x) - blocks(x, False)).abs().max())
        times = interleaved({"fif": lambda: defense(x), "kornia": lambda: blocks(x, False)}, cfg)
    yield Row("jpeg", case, "fwd ms", times["fif"] * 1e3, "kornia blocks", times["kornia"] * 1e3,
              note=f"max |fif - kornia| {diff:.1e}")
    both = interleaved({"fif": _fwd_bwd(view, x, g), "kornia": _fwd_bwd(lambda z: blocks(z, True), x, g)}, cfg)
    yield Row("jpeg", case, "fwd+bwd ms", both["fif"] * 1e3, "kornia blocks", both["kornia"] * 1e3,
              note="identity gradient through the rounding")


def run(cfg: Config):
    jpeg = cfg.pick(["imagenet", "cifar", "mnist"], ["imagenet", "mnist"], ["tiny"])
    dct = cfg.pick(list(DCT_SIZES), list(DCT_SIZES), ["tiny"])
    sizes = {**JPEG_SIZES, **DCT_SIZES, "tiny": (2, 3, 16, 16)}
    for label in jpeg:
        yield from _jpeg_rows(cfg, label, sizes[label])
    for label in dct:
        yield from _dct_rows(cfg, label, DCT_SIZES.get(label, sizes[label]))
