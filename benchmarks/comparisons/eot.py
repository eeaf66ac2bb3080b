"""5. EOT with 16 draws through the attack view: one batched pass against a Python loop of 16 passes
(what the estimator costs written the usual way)."""

from __future__ import annotations

import torch

from ..harness import ROOT, Config, Row, interleaved

TITLE = "EOT over 16 draws through the attack view: one batched pass against a loop of 16 passes"
NOTE = ("`fif.attacks.loss_grad(model, x, y, eot=16)` (the batch repeated 16 times, one forward and "
        "one backward) against a Python loop of 16 `loss_grad(..., eot=1)` calls averaged: the same "
        "estimator of the input gradient averaged over the random defense's draws. Models: the attack "
        "view of a random defense in front of a fresh classifier (eval mode): DIR's masks { vitdenoise } "
        "(recipes/dir.fif), noise(0.1), and ACM's dwt -> <HH, HL, LH: chancompress(1/6, noise=1, "
        "test_noise), LL: downup> -> idwt on 32-channel feature maps; batches 64, 256 and 64 (quick: 8, 64, "
        "8). `fif/other` below 1: batching pays. On CPU it need not: a batched pass allocates tensors of "
        "16 x N images, which glibc maps fresh from the system (page faults) at every call; for 16 x "
        "256 digits behind noise(0.1) that was 1.5 s of system time in a 3.5 s pass against 1.1 s for "
        "the loop, and 1.6 s with glibc told to keep its memory (MALLOC_MMAP_THRESHOLD_, "
        "MALLOC_TOP_PAD_).")
PEERS: list[str] = []
DRAWS = 16
ACM = "dwt -> <HH, HL, LH: chancompress(1/6, noise=1, test_noise), LL: downup> -> idwt"


def _model(defense_text: str | None, shape):
    import fif
    from fif.models.classifiers import build_classifier
    torch.manual_seed(0)
    if defense_text is None:
        defense = fif.load_recipe(ROOT / "recipes" / "dir.fif").compile()
    else:
        defense = fif.compile(defense_text, input_shape=shape[1:], kind="image" if shape[1] <= 3 else "features")
    classifier = build_classifier("smallcnn", shape[1:], 10, width=16)
    return torch.nn.Sequential(defense.attack_view(), classifier).eval()


def run(cfg: Config):
    from fif.attacks import loss_grad
    cases = [("dir masks{vit}", None, "mnist", (cfg.pick(64, 8, 2), 1, 28, 28)),
             ("noise(0.1)", "noise(0.1)", "mnist", (cfg.pick(256, 64, 2), 1, 28, 28)),
             ("acm chancompress", ACM, "acm", (cfg.pick(64, 8, 2), 32, 32, 32))]
    if cfg.tiny:
        cases = cases[1:2]
    for name, text, label, shape in cases:
        model = _model(text, shape)
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(*shape, generator=gen)
        y = torch.randint(0, 10, (shape[0],), generator=gen)

        def looped():
            total = torch.zeros_like(x)
            for _ in range(DRAWS):
                total += loss_grad(model, x, y, "ce", eot=1)[1]
            return total / DRAWS
        times = interleaved({"batched": lambda: loss_grad(model, x, y, "ce", eot=DRAWS), "loop": looped}, cfg)
        yield Row("eot", f"{name} {label} {'x'.join(map(str, shape))}", "ms", times["batched"] * 1e3,
                  f"loop of {DRAWS}", times["loop"] * 1e3, note=f"{DRAWS} draws, attack view")
