"""Models the attack tests share: a tiny MNIST CNN trained in seconds, a noisy (randomised)
wrapper, a forward-call counter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = Path(__file__).parents[1] / "fif/data/mnist5k.npz"


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, stride=2)
        self.c2 = nn.Conv2d(16, 32, 3, stride=2)
        self.fc = nn.Linear(32 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(F.relu(self.c2(F.relu(self.c1(x)))).flatten(1))


class Noisy(nn.Module):
    """Adds Gaussian noise to its input, fresh per call and per image (a randomised defense)."""

    def __init__(self, base: nn.Module, sigma: float = 0.2):
        super().__init__()
        self.base, self.sigma = base, sigma
        self.fixed_noise: torch.Tensor | None = None

    def forward(self, x):
        noise = self.fixed_noise if self.fixed_noise is not None else torch.randn_like(x)
        return self.base(x + self.sigma * noise)


class Counting(nn.Module):
    """Records the batch size of every forward call."""

    def __init__(self, base):
        super().__init__()
        self.base, self.calls = base, []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return self.base(x)


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def trained_mnist() -> dict:
    """A tiny CNN trained for 2 epochs on 3000 shipped MNIST digits; 200 held-out test images."""
    data = np.load(DATA)
    perm = np.random.default_rng(0).permutation(len(data["labels"]))
    x = torch.from_numpy(data["images"][perm]).float().unsqueeze(1) / 255
    y = torch.from_numpy(data["labels"][perm]).long()
    x_train, y_train, x_test, y_test = x[:3000], y[:3000], x[3000:3200], y[3000:3200]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TinyCNN()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(2):
            order = torch.randperm(len(y_train))
            for i in range(0, len(order), 50):
                b = order[i:i + 50]
                loss = F.cross_entropy(model(x_train[b]), y_train[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
        p.grad = None
    clean = accuracy(model, x_test, y_test)
    assert clean > 0.9, f"fixture model too weak: {clean:.3f}"
    return {"model": model, "x": x_test, "y": y_test, "clean": clean}
