"""Run a recipe's evaluation: every defense and variant, plus a `none` baseline, over attacks x
epsilons x threat models, with clean accuracy, per-sample worst case, PSNR/SSIM and timing.

    results = run_eval(fif.load_recipe("recipes/bitdepth.fif"), n=200)

Threat models (DESIGN section 5):
  graybox   attack the classifier alone, then defend (how most papers report);
  whitebox  true gradients through the defense as deployed (exposes gradient masking);
  adaptive  BPDA + EOT through the attack view (the number to trust);
  transfer  examples made on a surrogate classifier (another architecture and seed);
and, for randomised and purifying defenses (fif.evaluate.threats): bpda (identity gradient through
the whole defense, EOT), known (the attacker knows the random draw), representation (attack the
restored image, classifier alone).

Under torchrun (`fif eval --nproc N`) each rank takes a contiguous run of whole batches of the test
images; every batch is seeded by its global position (attacks, the defense's draws, targets), so a
sample meets the same randomness whatever the number of processes, and the per-sample outcomes
are gathered in order before any number is computed: the report equals a single process's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import distributed as dist
from ..attacks import ATTACKS, get_attack
from ..data.store import load
from ..errors import FifError, diagnostic
from ..precision import autocast, check_amp
from ..progress import track
from ..recipe import AttackSpec, Recipe
from ..runtime import check_device, derive_seed, recipe_classifier, recipe_data
from .masking import masking_warnings
from .untrained import untrained_warnings
from ..recipe_models import check_recipe
from .models import Entry, recipe_entries
from .metrics import transmission
from .shares import Rows, quality, share
from .threats import OUTSIDE_OVERALL, bpda_view, known_models, restored

SANITY_EPS = 1.0  # an unbounded L-inf budget on [0, 1] images


@dataclass
class Setup:
    """Everything an evaluation runs on, made once."""

    recipe: Recipe
    x: torch.Tensor
    y: torch.Tensor
    classifier: nn.Module
    surrogate: nn.Module | None
    entries: dict[str, Entry]
    device: str
    seed: int
    batch: int
    eot: int
    weights: dict[str, str] = field(default_factory=dict)
    targets: torch.Tensor | None = None  # random target labels (!= y) for targeted attacks
    offset: int = 0                      # global index of x[0] (x, y, targets: this rank's share)
    y_all: torch.Tensor | None = None    # every rank's labels, in order
    targets_all: torch.Tensor | None = None
    amp: bool = False


def prepare(recipe: Recipe, *, n: int | None = None, device: str = "cpu", threats=(), runs: Path | None = None,
            seed: int | None = None, only: list[str] | None = None, eot: int | None = None,
            amp: bool = False) -> Setup:
    device = dist.setup(check_device(device))
    amp = check_amp(device, amp)
    train_ds, test_ds = recipe_data(recipe)
    count = min(n or recipe.eval.n, len(test_ds))
    y = test_ds.labels[:count].to(device)
    lo, hi = share(recipe, count)
    check_recipe(recipe, tuple(test_ds.shape))  # every pipeline compiles before the classifier trains
    classifier = recipe_classifier(recipe, train_ds, test_ds, device=device)
    tuned = _fine_tuned_classifier(recipe, runs)
    if tuned is not None:  # a train stage with `params = classifier` fine-tuned it
        from ..models import load_weights
        load_weights(classifier, tuned)
    surrogate = None
    if "transfer" in threats:  # another architecture, another seed, the same data and settings
        surrogate = recipe_classifier(recipe, train_ds, test_ds, device=device, arch=recipe.eval.transfer,
                                      seed_offset=1)
    entries, weights = recipe_entries(
        recipe, classifier, shape=tuple(test_ds.shape), device=device, runs=runs, tuned=tuned,
        other=lambda over: recipe_classifier(recipe, train_ds, test_ds, device=device, overrides=over), only=only)
    x = load(test_ds.images, slice(lo, hi)).to(device)  # this rank's images only (streamed: read by workers)
    seed = recipe.eval.seed if seed is None else seed
    targets = random_targets(y, classifier.num_classes, derive_seed(seed, "targets"))
    return Setup(recipe, x, y[lo:hi], classifier, surrogate, entries, device, seed, recipe.eval.batch,
                 recipe.eval.eot if eot is None else int(eot), weights, targets[lo:hi], lo, y, targets, amp)


def _fine_tuned_classifier(recipe: Recipe, runs: Path | None) -> Path | None:
    from ..train import trained_weights
    return trained_weights(recipe, "classifier", runs)


def attack_budgets(recipe: Recipe, spec: AttackSpec, eps_override=None) -> list[float]:
    """The budgets an attack runs at: the recipe's L-inf eps, or its l2_eps for L2 attacks."""
    if get_attack(spec.name).norm == "l2":
        return list(recipe.eval.l2_eps)
    return list(eps_override if eps_override is not None else recipe.eval.eps)


def _predict(model: nn.Module, x: torch.Tensor, batch: int, seed=None, offset: int = 0) -> torch.Tensor:
    """Labels; a random model draws under `seed` (the eval seed and what is judged) and the
    batch's global position (`offset` + i), so a run is reproducible, a sample's draw does not
    depend on how many processes share the images, and another eval seed is another draw."""
    from ..attacks import seeded
    out = [torch.zeros(0, dtype=torch.int64, device=x.device)]
    with torch.no_grad():
        for i in range(0, len(x), batch):
            with seeded(None if seed is None else derive_seed(*seed, offset + i)):
                out.append(model(x[i:i + batch]).argmax(1))
    return torch.cat(out)


def random_targets(y: torch.Tensor, classes: int, seed: int) -> torch.Tensor:
    """A target label per sample, uniform over the classes other than its true one (ACM's protocol
    for targeted PGD: the target is chosen uniformly at random), seeded."""
    if classes < 2:
        raise FifError(diagnostic("E250", f"a targeted attack needs at least 2 classes, the classifier has {classes}"))
    g = torch.Generator().manual_seed(int(seed) % (2 ** 63))
    shift = torch.randint(1, classes, (len(y),), generator=g).to(y.device)
    return (y + shift) % classes


def _attack(model, spec: AttackSpec, x, y, eps, *, batch, eot, seed, targets=None, offset: int = 0) -> torch.Tensor:
    """Adversarial examples of x; a targeted attack aims at `targets` (one per sample) instead of y.
    Each batch is seeded by its global position, `offset` + its index in x."""
    info = get_attack(spec.name)
    params = dict(spec.params)
    params.setdefault("eot", eot)
    if params.get("targeted"):
        if targets is None:
            raise FifError(diagnostic("E250", f"{spec.label()} is targeted, but no target labels were drawn"))
        y = targets
    outs = [x[:0].clone()]
    for i in range(0, len(x), batch):
        outs.append(info.fn(model, x[i:i + batch], y[i:i + batch], eps, seed=derive_seed(seed, offset + i),
                            **params))
    return torch.cat(outs)


def run_eval(recipe: Recipe, *, attacks: list[str] | None = None, eps: list[float] | None = None,
             threats: list[str] | None = None, n: int | None = None, device: str = "cpu",
             probes: list[str] | None = None, runs: Path | None = None, seed: int | None = None,
             only: list[str] | None = None, eot: int | None = None, sanity: bool = True, amp: bool = False,
             on_row=None) -> dict:
    """Evaluate and return {rows, warnings, ...}; see write_report for the files. `only`: these
    entries (and the `none` baseline); `eot`: EOT draws instead of the recipe's; `attacks` are
    names or calls with settings, `pgd(steps=100)`; `sanity=False` leaves out the unbounded-eps
    rows (a second evaluation of the same weights need not repeat them); `on_row(row)` sees each
    row as it is made (log.jsonl). Under torchrun every rank returns the same results."""
    threats = list(threats or recipe.eval.threat)
    specs = _select_attacks(recipe, attacks)
    setup = prepare(recipe, n=n, device=device, threats=threats, runs=runs, seed=seed, only=only, eot=eot, amp=amp)
    with autocast(setup.device, setup.amp):
        return _evaluate(recipe, setup, specs, threats, eps, probes, sanity, on_row)


def _evaluate(recipe, setup: Setup, specs, threats, eps, probes, sanity, on_row) -> dict:
    rows = Rows(on_row)
    correct: dict[tuple, torch.Tensor] = {}
    x, y, at = setup.x, setup.y, setup.offset
    start = time.perf_counter()

    defended: dict[str, torch.Tensor] = {}
    for name, entry in setup.entries.items():
        t0 = time.perf_counter()
        pred = _predict(entry.model, x, setup.batch, seed=(setup.seed, "clean", name), offset=at)
        row = _row(name, "none", 0.0, "clean", dist.gather_cat(pred == y), time.perf_counter() - t0)
        if entry.defense is not None:
            row.update(quality(entry.defense, x, x, setup.batch, seed=(setup.seed, "quality", name), offset=at))
            defended[name] = _defend(entry.defense, x, setup)
        rows.append(row)

    cache: dict[tuple, torch.Tensor] = {}  # adversarial examples shared by entries with one gray-box view
    jobs = [(t, s, e) for t in threats for s in specs for e in attack_budgets(recipe, s, eps)]
    for threat, spec, e in track(jobs, "attacks", total=len(jobs)):
        for name, entry in setup.entries.items():
            if threat == "transfer" and setup.surrogate is None:
                continue
            t0 = time.perf_counter()
            made = _adversarial(setup, threat, spec, e, name, entry, cache)
            if made is None:  # the threat does not apply (no image-to-image defense to restore with)
                continue
            x_adv, judge = made
            pred = dist.gather_cat(_predict(judge, x_adv, setup.batch, offset=at,
                                            seed=(setup.seed, "judge", name, threat, spec.label(), e)))
            ok = pred == setup.y_all
            extra = {"target_hit": float((pred == setup.targets_all).float().mean())} \
                if spec.params.get("targeted") else {}
            if name in defended:  # the share of the perturbation's L2 norm that gets through the defense
                passed = transmission(_defend(entry.defense, x_adv, setup), defended[name], x_adv, x)
                extra["passed"] = float(dist.gather_cat(passed).nanmean())
            row = _row(name, spec.label(), e, threat, ok, time.perf_counter() - t0,
                       norm=get_attack(spec.name).norm, **extra)
            if entry.defense is not None:
                row.update(quality(entry.defense, x_adv, x, setup.batch, offset=at,
                                    seed=(setup.seed, "quality", name, threat, spec.label(), e)))
            rows.append(row)
            correct[(name, spec.label(), e, threat)] = ok

    rows = _worst_case(correct) + rows.made
    rows += _sanity(setup, threats) if sanity else []
    for probe in probes or []:
        rows += _probe_rows(setup, probe, specs, eps, cache)
    y = setup.y_all
    search = None
    if "search" in setup.weights:  # the table search the entries' nnjpeg(table=search) read, for reports
        import json
        search = json.loads(Path(setup.weights["search"]).read_text(encoding="utf-8"))
    return {
        "recipe": recipe.name, "file": recipe.file, "seed": setup.seed, "n": len(y), "device": setup.device,
        **({"processes": dist.world_size()} if dist.active() else {}), **({"amp": True} if setup.amp else {}),
        **({"search": search} if search is not None else {}),
        "threats": threats, "attacks": [s.label() for s in specs], "weights": setup.weights,
        "rows": rows, "warnings": untrained_warnings(rows, y) + masking_warnings(rows),
        "seconds": time.perf_counter() - start,
        "eot": setup.eot, "sources": {k: v.source for k, v in setup.entries.items()},
        "labels": {k: v.label for k, v in setup.entries.items()},
        "graybox": {k: v.graybox.text for k, v in setup.entries.items()},
    }


def _select_attacks(recipe: Recipe, names) -> list[AttackSpec]:
    """The recipe's attacks, or those named: a name takes the recipe's settings for it (else the
    attack's defaults); a call such as `pgd(steps=100)` is bound like a recipe's attack."""
    if not names:
        return list(recipe.eval.attacks)
    out = []
    for name in names:
        exact = [s for s in recipe.eval.attacks if s.label() == name]   # a label as tables print it
        if not exact and "(" in name:
            exact = [_attack_call(name)]
        if not exact:   # a bare name: every setting of it the recipe lists, else its defaults
            info = get_attack(name)
            exact = [s for s in recipe.eval.attacks if s.name == info.name] or [AttackSpec(name=info.name)]
        out += [s for s in exact if s not in out]
    return out


def _attack_call(text: str) -> AttackSpec:
    from ..attacks import ATTACK_CATALOG
    from ..errors import DiagnosticSink
    from ..passes.bind import bind_call, thaw
    from ..syntax import parse
    sink = DiagnosticSink()
    program = parse(text, "<--attack>")
    node = program.statements[0].value if len(program.items) == 1 and len(program.statements) == 1 else None
    bound = bind_call(ATTACK_CATALOG, node, sink) if node is not None else None
    if bound is None:
        raise FifError(sink.items or [diagnostic("E226", f"--attack expects an attack such as pgd(steps=40), "
                                                 f"got {text!r}", file="<--attack>")]).with_source(text, "<--attack>")
    return AttackSpec(name=bound.name, params=thaw(dict(bound.args)))


def _adversarial(setup: Setup, threat, spec, e, name, entry: Entry, cache):
    """(adversarial examples, the model that classifies them), or None when `threat` does not
    apply to `entry`."""
    x, y, b = setup.x, setup.y, setup.batch
    seed = (setup.seed, threat, spec.label(), e)
    if threat == "graybox" or (name == "none" and threat in ("whitebox", "adaptive", "bpda", "known",
                                                             "representation")):
        key = ("graybox", entry.graybox.text, spec.label(), e)
        if key not in cache:
            cache[key] = _attack(entry.graybox, spec, x, y, e, batch=b, offset=setup.offset, eot=1,
                                 seed=(setup.seed, "graybox", spec.label(), e), targets=setup.targets)
        return cache[key], entry.model
    if threat == "transfer":
        key = ("transfer", spec.label(), e)
        if key not in cache:
            cache[key] = _attack(setup.surrogate, spec, x, y, e, batch=b, offset=setup.offset, eot=1, seed=seed, targets=setup.targets)
        return cache[key], entry.model
    if threat == "whitebox":
        return _attack(entry.model, spec, x, y, e, batch=b, offset=setup.offset, eot=1, seed=seed, targets=setup.targets), entry.model
    if threat == "adaptive":
        eot = setup.eot if entry.random else 1
        return (_attack(entry.model.attack_view(), spec, x, y, e, batch=b, offset=setup.offset, eot=eot, seed=seed, targets=setup.targets),
                entry.model)
    if threat == "bpda":
        eot = setup.eot if entry.random else 1
        return _attack(bpda_view(entry), spec, x, y, e, batch=b, offset=setup.offset, eot=eot, seed=seed, targets=setup.targets), entry.model
    if threat == "known":
        attacked, judge = known_models(entry, setup.seed, spec.label(), e)
        return _attack(attacked, spec, x, y, e, batch=b, offset=setup.offset, eot=1, seed=seed, targets=setup.targets), judge
    if threat == "representation":
        if entry.defense is None:
            return None
        key = ("restored", name)
        if key not in cache:
            cache[key] = restored(entry, x, b, setup.seed, offset=setup.offset)
        return _attack(entry.graybox, spec, cache[key], y, e, batch=b, offset=setup.offset, eot=1, seed=seed), entry.graybox
    raise FifError(diagnostic("E415", f"unknown threat model '{threat}'"))


def _defend(defense, x, setup: Setup) -> torch.Tensor:
    """The defense's output; a random defense draws the same noise for every call (common random
    numbers), so D(x_adv) - D(x) measures the perturbation, not two draws."""
    with torch.no_grad():
        b = setup.batch
        return torch.cat([defense(x[i:i + b], generator=torch.Generator().manual_seed(
            derive_seed(setup.seed, "defend", setup.offset + i))) for i in range(0, len(x), b)])


def _row(defense, attack, eps, threat, ok: torch.Tensor, seconds, **extra) -> dict:
    return {"defense": defense, "attack": attack, "eps": float(eps), "threat": threat,
            "accuracy": float(ok.float().mean()), "n": int(ok.numel()), "seconds": round(seconds, 3), **extra}


def _worst_case(correct: dict) -> list[dict]:
    """Per sample: robust only if every L-inf attack at that eps failed, under each threat model
    (`worst`), and under every threat model at once (threat `overall`, the number to trust: an
    attacker who can run the adaptive attack can run the gray-box and transfer ones too; `known`
    and `representation` attack something other than the deployed model and are left out)."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for (name, attack, e, threat), ok in correct.items():
        if attack.split("(")[0] in ATTACKS and ATTACKS[attack.split("(")[0]].norm == "linf":
            groups.setdefault((name, e, threat), []).append(ok)
            if threat not in OUTSIDE_OVERALL:
                groups.setdefault((name, e, "overall"), []).append(ok)
    overall = [_row(name, "worst", e, threat, torch.stack(oks).all(0), 0.0, attacks=len(oks))
               for (name, e, threat), oks in groups.items() if threat == "overall"]
    per_threat = [_row(name, "worst", e, threat, torch.stack(oks).all(0), 0.0, attacks=len(oks))
                  for (name, e, threat), oks in groups.items() if threat != "overall"]
    return overall + per_threat


def _sanity(setup: Setup, threats) -> list[dict]:
    """PGD with an unbounded budget through each defense: a working attack ends near 0%."""
    rows = []
    spec = AttackSpec(name="pgd", params={"steps": 40, "step": 0.05})
    m = max(0, min(min(len(setup.y_all), 200) - setup.offset, len(setup.x)))  # the first 200 of all ranks'
    x, y = setup.x[:m], setup.y[:m]
    for name, entry in setup.entries.items():
        if name == "none":
            continue
        for threat in ("whitebox", "adaptive"):
            if threat not in threats:
                continue
            t0 = time.perf_counter()
            model = entry.model if threat == "whitebox" else entry.model.attack_view()
            eot = setup.eot if (threat == "adaptive" and entry.random) else 1
            x_adv = _attack(model, spec, x, y, SANITY_EPS, batch=setup.batch, eot=eot, seed=(setup.seed, "sanity"),
                            offset=setup.offset)
            ok = dist.gather_cat(_predict(entry.model, x_adv, setup.batch, seed=(setup.seed, "sanity", name, threat),
                                          offset=setup.offset) == y)
            rows.append(_row(name, spec.label(), SANITY_EPS, threat, ok, time.perf_counter() - t0, sanity=True))
    return rows


def _probe_rows(setup: Setup, probe: str, specs, eps, cache) -> list[dict]:
    """Apply a pipeline to the perturbation only: x + P(x_adv - x), then classify (graybox)."""
    from ..api import compile as fif_compile
    P = fif_compile(probe, input_shape=tuple(setup.x.shape[1:]), kind="features", name="<probe>").to(setup.device).eval()
    rows = []
    for spec in specs:
        if get_attack(spec.name).norm != "linf":
            continue
        for e in attack_budgets(setup.recipe, spec, eps):
            # the examples the gray-box rows attacked the plain classifier with, when there are some
            key = ("graybox", "classifier", spec.label(), e)
            if key not in cache:
                cache[key] = _attack(setup.classifier, spec, setup.x, setup.y, e, batch=setup.batch, eot=1,
                                     seed=(setup.seed, "graybox", spec.label(), e), targets=setup.targets,
                                     offset=setup.offset)
            t0 = time.perf_counter()
            eta, b = cache[key] - setup.x, setup.batch
            filtered = [eta[:0]]
            with torch.no_grad():
                for i in range(0, len(eta), b):  # a random probe draws per batch, by its global position
                    torch.manual_seed(derive_seed(setup.seed, "probe", e, setup.offset + i))
                    filtered.append(P(eta[i:i + b]))
            x_p = (setup.x + torch.cat(filtered)).clamp(0, 1)
            ok = dist.gather_cat(_predict(setup.classifier, x_p, setup.batch) == setup.y)
            rows.append(_row(f"probe: {P.source.strip()}", spec.label(), e, "probe", ok, time.perf_counter() - t0))
    return rows
