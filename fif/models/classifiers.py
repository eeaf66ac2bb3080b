"""Image classifiers: a small CNN, a LeNet-5 and a CIFAR-style ResNet-18.

    model = build_classifier("smallcnn", in_shape=(1, 28, 28), num_classes=10)
    logits = model(x)        # x: [B, C, H, W] in [0, 1]  ->  [B, num_classes]

Every model takes images in [0, 1] and maps them to [-1, 1] itself (a fixed `Normalize` first
layer), so attacks and defenses always work in image space.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import did_you_mean, error


class Normalize(nn.Module):
    """(x - mean) / std with fixed per-image constants (0.5, 0.5): [0, 1] -> [-1, 1]."""

    def __init__(self, mean: float = 0.5, std: float = 0.5):
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def forward(self, x):
        return (x - self.mean) / self.std

    def extra_repr(self):
        return f"mean={self.mean}, std={self.std}"


def _pooled(n: int, times: int) -> int:
    """Size after `times` 2x2 max-pools with ceil_mode=True."""
    for _ in range(times):
        n = -(-n // 2)
    return n


class SmallCNN(nn.Module):
    """Two 3x3 conv layers (width, 2*width channels), each followed by batch-norm, ReLU and a 2x2
    max-pool, then a 128-unit hidden layer. About 0.4M parameters on 28x28 grey images at width 32.
    Batch-norm buys about 1.5 points of test accuracy after 3 epochs on 4,000 digits."""

    def __init__(self, in_shape=(1, 28, 28), num_classes: int = 10, width: int = 32, hidden: int = 128):
        super().__init__()
        C, H, W = in_shape
        self.norm = Normalize()
        self.features = nn.Sequential(
            nn.Conv2d(C, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
        )
        flat = 2 * width * _pooled(H, 2) * _pooled(W, 2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.head(self.features(self.norm(x)))


class LeNet(nn.Module):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling: conv5(6, padded) -> pool -> conv5(16) ->
    pool -> 120 -> 84 -> classes. The first conv is padded by 2 so 28x28 digits get the 32x32 layout."""

    min_size = 12

    def __init__(self, in_shape=(1, 28, 28), num_classes: int = 10):
        super().__init__()
        C, H, W = in_shape
        self.norm = Normalize()
        self.features = nn.Sequential(
            nn.Conv2d(C, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        h, w = (H // 2 - 4) // 2, (W // 2 - 4) // 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * h * w, 120), nn.ReLU(inplace=True),
                                  nn.Linear(120, 84), nn.ReLU(inplace=True), nn.Linear(84, num_classes))

    def forward(self, x):
        return self.head(self.features(self.norm(x)))


class BasicBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers with an identity (or 1x1 projection) shortcut (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: a 3x3 stem (no max-pool), four stages of two basic blocks with
    width, 2, 4 and 8 times width channels (strides 1, 2, 2, 2), global average pool, linear.
    width=64 is the standard 11M-parameter model; tests use a narrow one."""

    def __init__(self, in_shape=(3, 32, 32), num_classes: int = 10, width: int = 64):
        super().__init__()
        C = in_shape[0]
        self.norm = Normalize()
        self.stem = nn.Sequential(nn.Conv2d(C, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        layers, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2 ** i
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.layers(self.stem(self.norm(x)))
        return self.fc(torch.flatten(self.pool(out), 1))


# arch -> (constructor, default width or None when the arch has no width, smallest H and W)
ARCHS: dict[str, tuple[Callable[..., nn.Module], int | None, int]] = {
    "smallcnn": (SmallCNN, 32, 1),
    "lenet": (LeNet, None, LeNet.min_size),
    "resnet18": (ResNet18, 64, 1),
}


def check_input(arch: str, in_shape) -> str | None:
    """Why `arch` cannot take images of shape (C, H, W), or None when it can."""
    C, H, W = (int(v) for v in in_shape)
    smallest = ARCHS[arch][2]
    if C < 1:
        return f"{arch} needs at least one channel, got shape {tuple(in_shape)}"
    if H < smallest or W < smallest:
        return f"{arch} needs images at least {smallest}x{smallest}, got {H}x{W}"
    return None


def build_classifier(arch: str, in_shape=(1, 28, 28), num_classes: int = 10, *,
                     width: int | None = None) -> nn.Module:
    """A freshly initialised classifier for images of shape (C, H, W) in [0, 1].

    arch: 'smallcnn' | 'lenet' | 'resnet18'; width: channels of the first layer (smallcnn: 32,
    resnet18: 64; lenet has none). The module gets `arch`, `in_shape`, `num_classes` attributes.
    """
    if arch not in ARCHS:
        raise error("E202", f"unknown classifier '{arch}'",
                    hint=did_you_mean(arch, ARCHS) or f"the classifiers are {', '.join(ARCHS)}")
    make, default_width, _ = ARCHS[arch]
    in_shape = tuple(int(v) for v in in_shape)
    if len(in_shape) != 3:
        raise error("E300", f"{arch} needs an input shape (C, H, W), got {in_shape}")
    problem = check_input(arch, in_shape)
    if problem:
        raise error("E334", problem, hint="pad or resize the images")
    if num_classes < 1:
        raise error("E224", f"{arch} needs at least one class, got {num_classes}")
    if default_width is None:
        if width is not None:
            raise error("E221", f"{arch} has no width parameter", hint="leave width out")
        model = make(in_shape, num_classes)
    else:
        width = default_width if width is None else int(width)
        if width < 1:
            raise error("E224", f"{arch} width must be >= 1, got {width}")
        model = make(in_shape, num_classes, width=width)
    model.arch, model.in_shape, model.num_classes = arch, in_shape, int(num_classes)
    return model
