"""Square Attack (fif.attacks.square): the paper's schedule, the same result as a per-sample
reference loop, no gradients at all (it gets through rounding where PGD stalls), EOT over scores."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import fif.attacks as attacks
from fif.attacks import ATTACKS  # noqa: F401  (first: binds the attack functions on the package)
from fif.attacks.square import HALVINGS, square_fraction, square_side
from fif.errors import FifError

from attack_models import Counting, Noisy, accuracy, trained_mnist


@pytest.fixture(scope="module")
def mnist():
    return trained_mnist()


class Quantize(nn.Module):
    """Rounds every pixel to 4 grey levels in front of a classifier (bitdepth(4)): its gradient is
    zero everywhere, but keeping 4 levels is no defense at eps 0.3."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def forward(self, x):
        return self.base(torch.round(x * 3) / 3)


# --- the schedule ----------------------------------------------------------------------------------


def test_square_fraction_follows_the_papers_schedule_for_10000_queries():
    p = lambda i: square_fraction(0.8, i, 10000)  # noqa: E731
    assert [p(0), p(10), p(11), p(50), p(51), p(201), p(501), p(1001), p(2001), p(4001), p(6001), p(8001),
            p(9999)] == [0.8, 0.8, 0.4, 0.4, 0.2, 0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125, 0.0015625,
                         0.0015625]
    assert HALVINGS == (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def test_square_fraction_rescales_to_other_budgets():
    # 1000 queries: the halvings come ten times sooner (after steps 1, 5, 20, 50, 100, ...).
    assert [square_fraction(0.8, i, 1000) for i in (0, 1, 2, 5, 6, 21, 51, 999)] == \
        [0.8, 0.8, 0.4, 0.4, 0.2, 0.1, 0.05, 0.0015625]
    assert all(square_fraction(0.5, i, 37) >= square_fraction(0.5, i + 1, 37) for i in range(36))


def test_square_side():
    assert square_side(0.8, 28, 28) == 25           # round(sqrt(0.8 * 784)) = 25
    assert square_side(1.0, 28, 28) == 27           # never the whole image
    assert square_side(0.0015625, 28, 28) == 1      # round(1.107)
    assert square_side(1e-6, 28, 28) == 1
    assert square_side(0.5, 1, 1) == 1


# --- the same result as a hand-written loop ------------------------------------------------------


def reference_square(model, x, y, eps, queries, p_init, seed):
    """The attack written sample by sample, drawing the same random numbers in the same order."""
    n, c, h, w = x.shape
    with torch.random.fork_rng():
        torch.manual_seed(seed)

        def margin(xs, ys):
            z = model(xs)
            own = z[torch.arange(len(ys)), ys]
            z = z.clone()
            z[torch.arange(len(ys)), ys] = float("-inf")
            return z.max(1).values - own

        stripes = torch.randint(0, 2, (n, c, 1, w)).to(x.dtype) * 2 - 1
        best = (x + eps * stripes).clamp(0, 1)
        score = margin(best, y)
        redrawn = 0
        for i in range(queries - 1):
            active = [k for k in range(n) if score[k] <= 0]
            if not active:
                break
            p = p_init
            for b in HALVINGS:
                if int(i / queries * 10000) > b:
                    p /= 2
            s = max(1, min(int(round(math.sqrt(p * h * w))), min(h, w) - 1))
            m = len(active)
            top = torch.randint(0, h - s + 1, (m,))
            left = torch.randint(0, w - s + 1, (m,))
            colours = torch.randint(0, 2, (m, c, 1, 1)).to(x.dtype) * 2 - 1
            flips = torch.randint(1, 2 ** c, (m,))
            cands = []
            for j, k in enumerate(active):
                t, l = int(top[j]), int(left[j])
                colour = colours[j, :, 0, 0].clone()

                def window(col):
                    return (x[k, :, t:t + s, l:l + s] + eps * col[:, None, None]).clamp(0, 1)

                if torch.equal(window(colour), best[k, :, t:t + s, l:l + s]):
                    redrawn += 1
                    for ch in range(c):
                        if (int(flips[j]) >> ch) & 1:
                            colour[ch] = -colour[ch]
                cand = best[k].clone()
                cand[:, t:t + s, l:l + s] = window(colour)
                cands.append(cand)
            new = margin(torch.stack(cands), y[active])
            for j, k in enumerate(active):
                if new[j] > score[k]:
                    best[k], score[k] = cands[j], new[j]
    return best, redrawn


def test_square_equals_the_reference_loop():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 7 * 7, 5)).double().eval()
    x = torch.rand(6, 2, 7, 7, dtype=torch.float64)
    x[:, :, :2] = 1.0                                  # saturated rows: clipping in the squares
    with torch.no_grad():
        y = model(x).argmax(1)
        y[::2] = (y[::2] + 1) % 5                      # some start misclassified
    eps, queries = 0.05, 120
    ref, redrawn = reference_square(model, x, y, eps, queries, 0.8, seed=3)
    got = attacks.square(model, x, y, eps, queries=queries, seed=3)
    assert redrawn > 0                                 # the 'same colour' path was taken
    assert torch.equal(got, ref)
    assert not torch.equal(got, attacks.square(model, x, y, eps, queries=queries, seed=4))


# --- no gradients ----------------------------------------------------------------------------------


class NoBackward(nn.Module):
    """Fails the test if anything asks it for a gradient."""

    def __init__(self, base):
        super().__init__()
        self.base, self.calls = base, 0

    def forward(self, x):
        assert not torch.is_grad_enabled(), "square ran the model with autograd on"
        assert not x.requires_grad
        self.calls += 1
        out = self.base(x)
        if out.requires_grad:  # pragma: no cover - only if the assertions above did not hold
            out.register_hook(_no_backward)
        return out


def _no_backward(grad):
    raise AssertionError("backward was called through the model")


def test_square_never_asks_for_a_gradient(mnist):
    params = [p.requires_grad for p in mnist["model"].parameters()]
    model = NoBackward(mnist["model"])
    for p in model.parameters():
        p.requires_grad_(True)                         # so a gradient would flow if one were taken
    try:
        x_adv = attacks.square(model, mnist["x"][:16], mnist["y"][:16], 0.3, queries=30, seed=0)
    finally:
        for p, flag in zip(model.parameters(), params):
            p.requires_grad_(flag)
    assert model.calls > 1 and not x_adv.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_square_gets_through_rounding_where_pgd_stalls(mnist):
    model = Quantize(mnist["model"])
    x, y = mnist["x"][:100], mnist["y"][:100]
    clean = accuracy(model, x, y)
    pgd = attacks.pgd(model, x, y, 0.3, steps=20, random_start=False, seed=0)
    sq = attacks.square(model, x, y, 0.3, queries=300, seed=0)
    assert torch.equal(pgd, x)                          # zero gradient: PGD cannot move
    assert accuracy(model, pgd, y) == clean
    assert accuracy(model, sq, y) < clean - 0.5, (clean, accuracy(model, sq, y))
    assert float((sq - x).abs().max()) <= 0.3 + 1e-6


# --- what it queries --------------------------------------------------------------------------------


def test_square_stops_querying_fooled_samples_and_keeps_the_budget(mnist):
    model = Counting(mnist["model"])
    x, y = mnist["x"][:32], mnist["y"][:32]
    attacks.square(model, x, y, 0.3, queries=25, seed=0)
    assert model.calls[0] == 32                       # the stripes, for every sample
    assert len(model.calls) <= 25                     # at most `queries` queries per sample
    assert all(b <= a for a, b in zip(model.calls[1:], model.calls[2:]))   # fooled samples drop out
    assert model.calls[-1] < 32
    model.calls.clear()
    attacks.square(model, x, y, 0.3, queries=1, seed=0)
    assert model.calls == [32]


def test_square_accepts_only_improvements(mnist):
    """Samples the attack cannot fool end with a margin no worse than the stripes gave them."""
    model, x, y = mnist["model"], mnist["x"][:64], mnist["y"][:64]

    def margin(xs):
        with torch.no_grad():
            z = model(xs)
        own = z.gather(1, y[:, None]).squeeze(1)
        return z.scatter(1, y[:, None], float("-inf")).max(1).values - own

    start = attacks.square(model, x, y, 0.05, queries=1, seed=0)
    end = attacks.square(model, x, y, 0.05, queries=60, seed=0)
    assert bool((margin(end) >= margin(start)).all())
    assert bool((margin(end) > margin(start)).any())


def test_square_eot_averages_the_score_in_one_batched_query(mnist):
    model = Counting(Noisy(mnist["model"], sigma=0.3))
    x, y = mnist["x"][:8], mnist["y"][:8]
    a = attacks.square(model, x, y, 0.1, queries=5, eot=4, seed=0)
    assert model.calls[0] == 32 and all(b % 4 == 0 for b in model.calls)
    assert torch.equal(a, attacks.square(model, x, y, 0.1, queries=5, eot=4, seed=0))
    assert float((a - x).abs().max()) <= 0.1 + 1e-6


def test_square_bad_arguments(mnist):
    model, x, y = mnist["model"], mnist["x"][:4], mnist["y"][:4]
    for kwargs in (dict(queries=0), dict(queries=2.5), dict(p_init=0.0), dict(p_init=1.5), dict(eot=0)):
        with pytest.raises(FifError) as e:
            attacks.square(model, x, y, 0.1, **kwargs)
        assert e.value.code == "E250", kwargs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_square_on_cuda_matches_its_own_seed(mnist):  # pragma: no cover - CPU-only CI
    model = mnist["model"].to("cuda")
    try:
        x, y = mnist["x"][:16].cuda(), mnist["y"][:16].cuda()
        a = attacks.square(model, x, y, 0.3, queries=50, seed=0)
        b = attacks.square(model, x, y, 0.3, queries=50, seed=0)
        assert a.device.type == "cuda" and torch.equal(a, b)
        assert float((a - x).abs().max()) <= 0.3 + 1e-6
    finally:
        model.to("cpu")
