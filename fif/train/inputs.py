"""How a stage makes its inputs from clean images; the target is always the clean image.

    inputs = clean                                   # autoencoder-style: input = target
    inputs = noisy(sigma=0.1)                        # Gaussian noise, clipped to [0, 1]
    inputs = bitdepth(4) -> noise(0.05)              # any fif pipeline applied to the clean image
    inputs = adversarial(attack=pgd, eps=[0.1, 0.2, 0.3], steps=10, step=0.02, against=classifier)
    inputs = adversarial(attack=fgsm, eps=uniform(0, 0.3))    # eps ~ U[0, 0.3], one draw a sample

`noisy(sigma)`: sigma a number or a list (each sample draws one). A pipeline input is compiled with
the recipe's lets and defs in scope, as a fixed transform: it is not trained and must have no
learnable ops. `adversarial`: pairs made on the fly each step by any attack in `fif.attacks`
(`attack=pgd` or `attack=pgd(steps=40)`; other keywords go to the attack), each sample with an eps
drawn from the list (or uniformly from [low, high] with `eps=uniform(low, high)`; the attack then
runs once per distinct eps, so once per sample), against the classifier or against the defense (classifier after the
defense's attack view: BPDA through non-differentiable ops, fresh randomness). An eps of 0 keeps
the clean image. Every draw comes from seeds derived from (run seed, stage, epoch, step), so a
resumed run makes the same inputs.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import did_you_mean
from .optim import SettingError

from .params import EPS_DRAW_CATALOG, EPS_DRAWS, INPUT_CATALOG, INPUTS, KINDS  # noqa: E402,F401  (torch-free)


def _numbers(name, v, *, low=0.0, high=None) -> list[float]:
    vals = v if isinstance(v, list) else [v]
    if not vals:
        raise SettingError(f"{name} needs at least one value")
    out = []
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x < low or (high is not None and x > high):
            rng = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
            raise SettingError(f"{name} must be numbers {rng}, got {x!r}")
        out.append(float(x))
    return out


def uniform_range(eps) -> tuple[float, float] | None:
    """(low, high) of an `eps=uniform(low, high)` setting (bound, or ('uniform', {...}) from
    Python), None for a number or a list. Raises SettingError for a bad draw."""
    if not (isinstance(eps, tuple) and len(eps) == 2 and isinstance(eps[0], str)):
        return None
    name, args = eps
    if name != "uniform":
        raise SettingError(f"unknown eps draw '{name}'", did_you_mean(name, EPS_DRAWS) or "use uniform(low, high)")
    low, high = _numbers("eps=uniform(low, high)", [args.get("low"), args.get("high")], high=1.0)
    if low > high:
        raise SettingError(f"eps=uniform({low:g}, {high:g}): low is above high", f"write uniform({high:g}, {low:g})")
    return low, high


class Inputs:
    """`make(clean, y, generator, seed) -> (x, eps)`: the stage inputs and each sample's eps."""

    kind: str = "clean"
    eps_values: list[float] | None = None  # the adversarial eps list ([low, high] when drawn uniformly), for loss routing

    def make(self, clean, y, gen: torch.Generator, seed: int):
        return clean, torch.zeros(clean.shape[0], device=clean.device)


class Noisy(Inputs):
    kind = "noisy"

    def __init__(self, args: dict):
        unknown = set(args) - {"sigma", "clip"}
        if unknown:
            raise SettingError(f"noisy has no setting '{sorted(unknown)[0]}'", "noisy(sigma=0.1, clip=true)")
        if "sigma" not in args:
            raise SettingError("noisy needs sigma", "e.g. inputs = noisy(sigma=0.1)")
        self.sigmas = _numbers("noisy(sigma=...)", args["sigma"])
        self.clip = bool(args.get("clip", True))

    def make(self, clean, y, gen, seed):
        b = clean.shape[0]
        noise = torch.randn(clean.shape, generator=gen).to(clean.device)
        if len(self.sigmas) == 1:
            sigma = torch.full((b,), self.sigmas[0])
        else:
            sigma = torch.tensor(self.sigmas)[torch.randint(len(self.sigmas), (b,), generator=gen)]
        x = clean + sigma.to(clean.device).view(-1, 1, 1, 1) * noise
        return (x.clamp(0, 1) if self.clip else x), torch.zeros(b, device=clean.device)


class PipelineInputs(Inputs):
    kind = "pipeline"

    def __init__(self, pipeline: nn.Module):
        self.pipeline = pipeline.eval()

    def make(self, clean, y, gen, seed):
        with torch.no_grad():
            x = self.pipeline(clean)
        return x, torch.zeros(clean.shape[0], device=clean.device)


class Adversarial(Inputs):
    kind = "adversarial"

    def __init__(self, args: dict, *, classifier: Callable[[], nn.Module], defense: Callable[[], nn.Module | None]):
        from ..attacks import ATTACKS
        args = dict(args)
        if "route" in args:
            raise SettingError("adversarial(route=...) is not a setting: route samples with a loss term's "
                               "min_eps instead", "e.g. loss = l1(sl) + l1(m, min_eps=0.1)")
        attack = args.pop("attack", "pgd")
        params = {}
        if isinstance(attack, tuple):
            attack, params = attack[0], dict(attack[1])
        if attack not in ATTACKS:
            raise SettingError(f"unknown attack '{attack}'", did_you_mean(str(attack), ATTACKS)
                               or f"attacks: {', '.join(ATTACKS)}")
        info = ATTACKS[attack]
        if info.norm != "linf":
            raise SettingError(f"{attack} is an {info.norm} attack; training pairs use L-inf budgets",
                               "use pgd, fgsm, bim, mifgsm or apgd")
        if "eps" not in args:
            raise SettingError("adversarial inputs need eps (a number, a list or uniform(low, high))",
                               "e.g. eps=[0.1, 0.2, 0.3]")
        eps = args.pop("eps")
        self.uniform = uniform_range(eps)
        self.eps_values = list(self.uniform) if self.uniform else _numbers("eps", eps, high=1.0)
        self.against = args.pop("against", "classifier")
        if self.against not in ("classifier", "defense"):
            raise SettingError(f"against is classifier or defense, got {self.against!r}")
        params.update(args)
        for k in params:
            if k not in info.defaults or k == "seed":
                raise SettingError(f"{attack} has no setting '{k}'",
                                   did_you_mean(k, [d for d in info.defaults if d != "seed"])
                                   or f"its settings: {', '.join(d for d in info.defaults if d != 'seed')}")
        self.attack, self.fn, self.params = attack, info.fn, params
        self._classifier, self._defense = classifier, defense

    def target(self):
        clf = self._classifier()
        if self.against == "classifier":
            return clf, [clf]
        defense = self._defense()
        view = defense.attack_view()
        return (lambda z: clf(view(z))), [clf, defense]

    def draw(self, b: int, gen: torch.Generator) -> torch.Tensor:
        """Each sample's eps (float64, exact for min_eps routing): from the list, or uniform."""
        if self.uniform is not None:
            low, high = self.uniform
            return low + (high - low) * torch.rand(b, generator=gen, dtype=torch.float64)
        pick = torch.randint(len(self.eps_values), (b,), generator=gen)
        return torch.tensor(self.eps_values, dtype=torch.float64)[pick]

    def make(self, clean, y, gen, seed):
        eps = self.draw(clean.shape[0], gen)
        model, modules = self.target()
        modes = [m.training for m in modules]
        for m in modules:
            m.eval()
        try:
            x = clean.clone()
            values = self.eps_values if self.uniform is None else eps.tolist()
            for i, e in enumerate(dict.fromkeys(values)):  # one attack per distinct eps
                idx = (eps == e).nonzero().squeeze(1).to(clean.device)
                if idx.numel() == 0 or e == 0:
                    continue
                x[idx] = self.fn(model, clean[idx], y[idx], float(e), seed=(seed + i) % (2 ** 62), **self.params)
        finally:
            for m, mode in zip(modules, modes):
                m.train(mode)
        return x.detach(), eps.to(clean.device)


def make_inputs(spec, *, compile_expr: Callable, classifier: Callable[[], nn.Module],
                defense: Callable[[], nn.Module | None]) -> Inputs:
    """The stage's `inputs` (a recipe InputSpec) as an Inputs maker. Raises SettingError.
    compile_expr(node) compiles a pipeline expression with the recipe's declarations."""
    kind, args = spec.kind, dict(spec.args)
    if kind == "clean":
        if args:
            raise SettingError("clean takes no settings")
        return Inputs()
    if kind == "noisy":
        return Noisy(args)
    if kind == "adversarial":
        return Adversarial(args, classifier=classifier, defense=defense)
    if kind == "pipeline":
        pipeline = compile_expr(args["pipeline"])
        if pipeline.learnable:
            raise SettingError("an input pipeline is a fixed transform, but this one has learnable ops "
                               "(they would stay at their random initial weights)",
                               "use non-learnable ops such as noise, bitdepth, jpeg")
        return PipelineInputs(pipeline)
    raise SettingError(f"unknown inputs kind '{kind}'", did_you_mean(kind, KINDS))
