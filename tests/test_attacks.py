"""Contract tests for fif.attacks: budgets, box, strength on a trained MNIST CNN, seeds, EOT, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fif.attacks as attacks
from fif.attacks import ATTACKS, get_attack, loss_grad
from fif.attacks.apgd import apgd_checkpoints
from fif.errors import FifError

from attack_models import Counting, Noisy, TinyCNN, accuracy, trained_mnist

NAMES = ["fgsm", "bim", "pgd", "mifgsm", "cw", "deepfool", "apgd", "square", "autoattack"]
LINF = [n for n in NAMES if ATTACKS[n].norm == "linf"]

# Cheap settings for contract tests (a handful of steps on a small batch).
SMALL = {
    "fgsm": {}, "bim": dict(steps=5), "pgd": dict(steps=5), "mifgsm": dict(steps=5),
    "cw": dict(steps=10, binary_steps=2, lr=0.1), "deepfool": dict(steps=5), "apgd": dict(steps=10),
    "square": dict(queries=20), "autoattack": dict(steps=5, targets=2, queries=20),
}
# Settings for the strength test on 200 test images (eps 0.3 for L-inf; C&W unbounded), and the
# highest robust accuracy each is allowed to leave on the plain CNN (clean accuracy is > 0.9).
STRONG = {
    "fgsm": (dict(eps=0.3), 0.3),
    "bim": (dict(eps=0.3), 0.1),
    "pgd": (dict(eps=0.3, steps=20), 0.05),
    "mifgsm": (dict(eps=0.3), 0.1),
    "apgd": (dict(eps=0.3, steps=25), 0.05),
    "deepfool": (dict(eps=0.3), 0.1),
    "square": (dict(eps=0.3, queries=300), 0.05),
    "autoattack": (dict(eps=0.3, steps=10, targets=2, queries=100), 0.05),
    # tanh-space Adam barely moves saturated (0 or 1) MNIST pixels at lr=0.01 (see cw's docstring),
    # so the test uses a larger learning rate and a larger initial c to keep the test short.
    "cw": (dict(eps=None, c=10.0, lr=0.1, steps=30, binary_steps=2), 0.3),
}


def small_eps(name: str) -> float:
    return 1.0 if ATTACKS[name].norm == "l2" else 0.1



@pytest.fixture(scope="module")
def mnist():
    """A tiny CNN trained for 2 epochs on 3000 shipped MNIST digits; 200 held-out test images."""
    return trained_mnist()


@pytest.fixture(scope="module")
def strong_results(mnist):
    cache = {}

    def get(name):
        if name not in cache:
            kwargs, _ = STRONG[name]
            cache[name] = ATTACKS[name].fn(mnist["model"], mnist["x"], mnist["y"], seed=0, **kwargs)
        return cache[name]

    return get


def small(name, model, x, y, **extra):
    kwargs = {"eps": small_eps(name), **SMALL[name], **extra}
    return ATTACKS[name].fn(model, x, y, **kwargs)


# --- budget, box, dtype --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_inside_budget_and_box(mnist, name):
    x, y = mnist["x"][:32], mnist["y"][:32]
    eps = small_eps(name)
    x_adv = small(name, mnist["model"], x, y, seed=0)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert not x_adv.requires_grad
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    delta = (x_adv - x).flatten(1)
    if ATTACKS[name].norm == "linf":
        assert float(delta.abs().max()) <= eps + 1e-6
    else:
        assert float(delta.norm(dim=1).max()) <= eps + 1e-5
    assert float(delta.abs().max()) > 0, "the attack did not move at all"


@pytest.mark.parametrize("name", NAMES)
def test_float64_in_float64_out_and_model_untouched(mnist, name):
    model = TinyCNN().double().eval()
    model.load_state_dict(mnist["model"].state_dict())
    x, y = mnist["x"][:4].double(), mnist["y"][:4]
    x_adv = small(name, model, x, y, seed=0)
    assert x_adv.dtype == torch.float64
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_eps_zero_returns_x(mnist, name):
    x, y = mnist["x"][:8], mnist["y"][:8]
    x_adv = small(name, mnist["model"], x, y, eps=0.0, seed=0)
    assert torch.equal(x_adv, x)


# --- strength -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_lowers_accuracy(mnist, strong_results, name):
    x_adv = strong_results(name)
    _, ceiling = STRONG[name]
    acc = accuracy(mnist["model"], x_adv, mnist["y"])
    print(f"\n{name}: clean {mnist['clean']:.3f} -> adversarial {acc:.3f} ({STRONG[name][0]})")
    assert acc <= ceiling
    assert acc < mnist["clean"] - 0.5
    if ATTACKS[name].norm == "linf":
        assert float((x_adv - mnist["x"]).abs().max()) <= 0.3 + 1e-6


def test_pgd_targeted_reaches_target(mnist):
    x, y = mnist["x"][:32], mnist["y"][:32]
    target = (y + 1) % 10
    x_adv = attacks.pgd(mnist["model"], x, target, eps=0.3, steps=20, targeted=True, seed=0)
    with torch.no_grad():
        hit = (mnist["model"](x_adv).argmax(1) == target).float().mean().item()
    assert hit > 0.8


def test_pgd_restarts_only_add_successes(mnist):
    model, x, y = mnist["model"], mnist["x"][:64], mnist["y"][:64]
    one = attacks.pgd(model, x, y, eps=0.08, steps=5, restarts=1, seed=3)
    three = attacks.pgd(model, x, y, eps=0.08, steps=5, restarts=3, seed=3)
    with torch.no_grad():
        fooled_one = model(one).argmax(1) != y
        fooled_three = model(three).argmax(1) != y
    assert bool((fooled_three | ~fooled_one).all())  # fooled by 1 restart => fooled by 3
    assert float((three - x).abs().max()) <= 0.08 + 1e-6


# --- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_seed_and_rng_untouched(mnist, name):
    model = Noisy(mnist["model"], sigma=0.2)
    x, y = mnist["x"][:16], mnist["y"][:16]
    state = torch.get_rng_state()
    a = small(name, model, x, y, seed=0, eot=2)
    b = small(name, model, x, y, seed=0, eot=2)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), state)


def test_pgd_seed_changes_random_start(mnist):
    x, y = mnist["x"][:8], mnist["y"][:8]
    a = attacks.pgd(mnist["model"], x, y, eps=0.1, steps=1, seed=0)
    b = attacks.pgd(mnist["model"], x, y, eps=0.1, steps=1, seed=1)
    assert not torch.equal(a, b)


# --- PGD equals the textbook loop -----------------------------------------------------------------


def test_pgd_without_random_start_equals_reference_loop(mnist):
    model, x, y = mnist["model"], mnist["x"][:32], mnist["y"][:32]
    eps, step, steps = 0.2, 0.03, 10
    x_ref = x.clone()
    for _ in range(steps):
        x_ref.requires_grad_(True)
        loss = F.cross_entropy(model(x_ref), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x_ref)
        x_ref = torch.clamp(torch.min(torch.max(x_ref.detach() + step * g.sign(), x - eps), x + eps), 0, 1)
    x_adv = attacks.pgd(model, x, y, eps=eps, steps=steps, step=step, random_start=False, restarts=1)
    assert torch.equal(x_adv, x_ref)


def test_apgd_checkpoints_match_the_paper():
    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    for n in (1, 5, 10, 37, 1000):
        w = apgd_checkpoints(n)
        assert w == sorted(set(w)) and 1 <= w[0] and w[-1] <= n


# --- EOT ------------------------------------------------------------------------------------------


def test_eot_gradient_is_mean_of_separate_draws(mnist):
    model = Noisy(mnist["model"], sigma=0.3)
    x, y, n_draws = mnist["x"][:8], mnist["y"][:8], 5
    with torch.random.fork_rng():
        torch.manual_seed(11)
        noise = torch.randn(n_draws * 8, *x.shape[1:])  # what one forward of 5 copies draws
        torch.manual_seed(11)
        loss_b, grad_b, logits_b = loss_grad(model, x, y, "ce", eot=n_draws)
    grads, losses, logits = [], [], []
    for i in range(n_draws):
        model.fixed_noise = noise[i * 8:(i + 1) * 8]
        lo, g, lg = loss_grad(model, x, y, "ce", eot=1)
        grads.append(g), losses.append(lo), logits.append(lg)
    model.fixed_noise = None
    torch.testing.assert_close(grad_b, torch.stack(grads).mean(0), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(loss_b, torch.stack(losses).mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits_b, torch.stack(logits).mean(0), rtol=1e-5, atol=1e-5)


def test_eot_variance_shrinks_like_one_over_n(mnist):
    model = Noisy(mnist["model"], sigma=0.3)
    x, y = mnist["x"][:4], mnist["y"][:4]

    def variance(eot):
        with torch.random.fork_rng():
            torch.manual_seed(5)
            gs = torch.stack([loss_grad(model, x, y, "ce", eot=eot)[1] for _ in range(24)])
        return gs.var(dim=0).mean().item()

    ratio = variance(8) / variance(1)
    print(f"\nEOT variance ratio eot=8 vs eot=1: {ratio:.3f} (1/8 = 0.125)")
    assert 1 / 16 < ratio < 1 / 4, ratio


def test_eot_is_one_forward_call_per_gradient(mnist):
    counting = Counting(mnist["model"])
    x, y = mnist["x"][:6], mnist["y"][:6]
    loss_grad(counting, x, y, eot=8)
    assert counting.calls == [48]
    counting.calls.clear()
    attacks.fgsm(counting, x, y, eps=0.1, eot=8)
    assert counting.calls == [48]
    counting.calls.clear()
    attacks.pgd(counting, x, y, eps=0.1, steps=3, eot=8)
    assert counting.calls == [48, 48, 48]
    counting.calls.clear()
    attacks.apgd(counting, x, y, eps=0.1, steps=3, eot=8)
    assert counting.calls[0] == 48 and len(counting.calls) == 4  # steps + 1 gradients, no early stop


def test_eot_copies_see_different_noise(mnist):
    seen = []

    def model(x):
        noisy = x + torch.randn_like(x)
        seen.append(noisy.detach())
        return mnist["model"](noisy)

    x, y = mnist["x"][:2], mnist["y"][:2]
    loss_grad(model, x, y, eot=3)
    copies = seen[0].view(3, 2, *x.shape[1:])
    assert not torch.equal(copies[0], copies[1]) and not torch.equal(copies[1], copies[2])


# --- bad arguments --------------------------------------------------------------------------------


def _code(fn) -> str:
    with pytest.raises(FifError) as info:
        fn()
    return info.value.code


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments(mnist, name):
    model, x, y = mnist["model"], mnist["x"][:4], mnist["y"][:4]
    fn = ATTACKS[name].fn
    assert _code(lambda: fn(model, x, y, eps=-0.1)) == "E250"
    assert _code(lambda: fn(model, x, y, eps=float("nan"))) == "E250"
    bad_x = x.clone()
    bad_x[0, 0, 0, 0] = float("nan")
    assert _code(lambda: fn(model, bad_x, y, eps=0.1)) == "E502"
    assert _code(lambda: fn(model, x * 2 + 0.1, y, eps=0.1)) == "E502"
    assert _code(lambda: fn(model, x - 0.5, y, eps=0.1)) == "E502"
    assert _code(lambda: fn(model, x, y[:3], eps=0.1)) == "E250"
    assert _code(lambda: fn(model, x, y[:, None], eps=0.1)) == "E250"
    assert _code(lambda: fn(model, x, y.float(), eps=0.1)) == "E250"
    assert _code(lambda: fn(model, x[0], y[:1], eps=0.1)) == "E250"
    assert _code(lambda: fn(model, x, y, eps=0.1, eot=0)) == "E250"
    assert _code(lambda: fn(model, x, y + 10, eps=0.1)) == "E250"  # label out of range
    if "steps" in ATTACKS[name].defaults:
        assert _code(lambda: fn(model, x, y, eps=0.1, steps=0)) == "E250"


def test_bad_loss_and_unknown_attack_have_hints(mnist):
    model, x, y = mnist["model"], mnist["x"][:4], mnist["y"][:4]
    with pytest.raises(FifError) as info:
        attacks.pgd(model, x, y, eps=0.1, loss="dlrr")
    assert info.value.code == "E250" and "dlr" in info.value.hint
    assert _code(lambda: attacks.apgd(model, x, y, eps=0.1, loss="margin")) == "E250"
    assert _code(lambda: attacks.apgd(model, x, y, eps=0.1, rho=1.5)) == "E250"
    with pytest.raises(FifError) as info:
        get_attack("pdg")
    assert info.value.code == "E251" and "pgd" in info.value.hint
    assert _code(lambda: get_attack("nonsense")) == "E251"


def test_near_range_inputs_accepted(mnist):
    x, y = mnist["x"][:2].clone(), mnist["y"][:2]
    x[0, 0, 0, 0] = 1 + 5e-7
    x_adv = attacks.fgsm(mnist["model"], x, y, eps=0.1)
    assert float(x_adv.max()) <= 1.0


# --- catalog --------------------------------------------------------------------------------------


def test_catalog():
    assert list(ATTACKS) == NAMES
    assert {n: ATTACKS[n].norm for n in NAMES}["cw"] == "l2"
    assert ATTACKS["pgd"].defaults["steps"] == 40 and ATTACKS["apgd"].defaults["rho"] == 0.75
    assert ATTACKS["mifgsm"].defaults["decay"] == 1.0
    assert get_attack("APGD-CE") is ATTACKS["apgd"] and get_attack("I-FGSM") is ATTACKS["bim"]
    for name in NAMES:
        info = ATTACKS[name]
        assert getattr(attacks, name) is info.fn
        assert info.paper and info.doc
        assert "Example" in info.fn.__doc__ and "fif.attacks." in info.fn.__doc__
        assert "eot" in info.defaults and "seed" in info.defaults


def test_the_box_projection_is_project_linf_exactly():
    """PGD, BIM and MI-FGSM clip to bounds made once per attack (benchmarks/comparisons/attacks.py:
    fif's loop cost 1.12x the model's own passes on ImageNet-sized batches, torchattacks' 1.05x):
    the same numbers as project_linf, bit for bit, inputs at the edges and a hair outside [0, 1]
    included, and an attack run with the old projection and the old EOT=1 copies gives the same images."""
    from fif.attacks import _common as c
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=g)
    x[0, 0, 0, :3] = torch.tensor([0.0, 1.0, 1.0 + 5e-7])
    x[0, 0, 1, :1] = -5e-7
    for eps in (0.0, 1e-7, 0.03, 0.3, 1.0):
        lo, hi = c.linf_box(x, eps)
        for a in (x + 2 * torch.rand(x.shape, generator=g) - 1, x + 1e-8, x - eps, x + eps):
            assert torch.equal(c.project_box(a, lo, hi), c.project_linf(a, x, eps))

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5)).eval()
    y = torch.randint(0, 5, (4,), generator=g)
    x = x.clamp(0, 1)

    def old_loss_grad(xa):
        xr = xa.detach().repeat(1, 1, 1, 1).requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xr), y, reduction="none")
        (grad,) = torch.autograd.grad(loss.sum(), xr)
        return grad.view(1, *xa.shape).mean(dim=0)

    with c.seeded(3):
        ref = c.random_linf_start(x, 0.1)
        for _ in range(5):
            ref = c.project_linf(ref + 0.02 * old_loss_grad(ref).sign(), x, 0.1)
    assert torch.equal(attacks.pgd(model, x, y, 0.1, steps=5, step=0.02, seed=3), ref)
    ref = x.clone()
    for _ in range(5):
        ref = c.project_linf(ref + 0.02 * old_loss_grad(ref).sign(), x, 0.1)
    assert torch.equal(attacks.bim(model, x, y, 0.1, steps=5, step=0.02), ref)
