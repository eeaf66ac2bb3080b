"""4. PGD-20 against torchattacks' PGD on the same model and data, and the attack loop's overhead:
its time over 20 times one forward+backward pass of the model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..harness import Config, Row, interleaved
from . import skipped

TITLE = "PGD-20: fif.attacks.pgd against torchattacks.PGD; the attack loop's overhead"
NOTE = ("L-inf PGD, 20 steps, eps 0.3, step 0.01, random start, cross-entropy, on fif's classifiers "
        "in eval mode (fresh weights: the time does not depend on training): smallcnn(width=16) on "
        "MNIST-sized batches, lenet on ImageNet-sized ones, smallcnn on 32-channel 32x32 feature maps "
        "(ACM-sized). `overhead` is the attack's time over 20 times one forward+backward pass of the "
        "model (input gradient of the summed cross-entropy), measured in the same interleaved rounds: "
        "1.0 would be a loop that costs nothing beyond the model. Quick: a quarter of each batch.")
PEERS = ["torchattacks"]
STEPS, EPS, STEP = 20, 0.3, 0.01
SIZES = {"mnist": ((256, 1, 28, 28), "smallcnn"), "acm": ((64, 32, 32, 32), "smallcnn"),
         "imagenet": ((16, 3, 224, 224), "lenet")}


def _model(arch: str, shape):
    from fif.models.classifiers import build_classifier
    torch.manual_seed(0)
    kw = {"width": 16} if arch == "smallcnn" else {}
    return build_classifier(arch, shape[1:], 10, **kw).eval()


def run(cfg: Config):
    from fif.attacks import pgd
    try:
        import torchattacks
    except ImportError as e:
        torchattacks, why = None, f"not installed ({e.name})"
    sizes = cfg.pick(["mnist", "acm", "imagenet"], ["mnist", "imagenet"], ["tiny"])
    for label in sizes:
        shape, arch = SIZES.get(label, ((4, 1, 28, 28), "smallcnn"))
        if cfg.quick and not cfg.tiny:   # a quarter of the batch
            shape = (max(1, shape[0] // 4), *shape[1:])
        model = _model(arch, shape)
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(*shape, generator=gen)
        y = torch.randint(0, 10, (shape[0],), generator=gen)
        case = f"pgd-{STEPS} {label} {'x'.join(map(str, shape))} {arch}"

        def fwd_bwd():
            xi = x.detach().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xi), y, reduction="sum"), xi)
        contenders = {"fif": lambda: pgd(model, x, y, EPS, steps=STEPS, step=STEP), "model fwd+bwd": fwd_bwd}
        if torchattacks is not None:
            atk = torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=STEPS, random_start=True)
            contenders["torchattacks"] = lambda: atk(x, y)
        # the single forward+backward is short: time it as many times per round as PGD has steps
        once = contenders["model fwd+bwd"]
        contenders["model fwd+bwd"] = lambda: [once() for _ in range(STEPS)]
        times = interleaved(contenders, cfg)
        model_time = times["model fwd+bwd"]
        overhead = {k: v / model_time for k, v in times.items() if k != "model fwd+bwd"}
        if torchattacks is None:
            yield skipped("pgd", case, "ms", "torchattacks", why)
        else:
            yield Row("pgd", case, "ms", times["fif"] * 1e3, "torchattacks", times["torchattacks"] * 1e3,
                      note=f"20 x model fwd+bwd: {model_time * 1e3:.4g} ms", target=("ratio", 1.0))
        yield Row("pgd", case, "overhead", overhead["fif"], "torchattacks", overhead.get("torchattacks"),
                  note="time / (20 x one forward+backward)", target=("abs", 1.15))
