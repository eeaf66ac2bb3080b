"""The one binder: every argument of a recipe (attacks, losses, inputs, optimizers, schedules,
classifiers, data sources, eval and stage settings) is bound when the recipe loads, each error
positioned at its argument, all of a recipe's errors reported together."""

import inspect

import pytest
from click.testing import CliRunner

import fif
from fif.cli import main
from fif.recipe import ClassifierSpec, DataSpec, EvalSpec, StageSpec, recipe_from_text

# Each case puts one malformed piece into this recipe, in place of DATA, CLASSIFIER, STAGE or EVAL.
LINES = ["recipe r {",
         "  data = DATA",
         "  classifier = CLASSIFIER",
         "  let m = residual { conv(4) -> conv(out=input) } -> clamp",
         "  defense = m",
         "  train { stage s { STAGE } }",
         "  eval { EVAL }",
         "}"]
GOOD = {"DATA": "mnist5k(train=500, test=100)", "CLASSIFIER": "smallcnn(width=8, epochs=1)",
        "STAGE": "loss = l1", "EVAL": "attacks = [fgsm]"}


def _recipe(field: str, text: str) -> str:
    src = "\n".join(LINES)
    for key, good in GOOD.items():
        src = src.replace(key, text if key == field else good)
    return src


# (id, field, text, code, line, column): the column is where the bad argument (or name) starts.
CASES = [
    ("attack-unknown-param", "EVAL", "attacks = [fgsm, pgd(stepz=10)]", "E221", 7, 31),
    ("attack-range", "EVAL", "attacks = [pgd(steps=0)]", "E224", 7, 31),
    ("attack-open-range", "EVAL", "attacks = [apgd(alpha=0)]", "E224", 7, 32),
    ("attack-choice", "EVAL", "attacks = [pgd(loss=hinge)]", "E226", 7, 30),
    ("attack-type", "EVAL", "attacks = [fgsm(targeted=maybe)]", "E223", 7, 35),
    ("attack-unknown", "EVAL", "attacks = [fgsm, pgdd]", "E251", 7, 27),
    ("attack-seed-is-fifs", "EVAL", "attacks = [pgd(seed=3)]", "E221", 7, 25),
    ("attack-too-many", "EVAL", "attacks = [fgsm(true, 1, 2)]", "E220", 7, 35),
    ("square-unknown-param", "EVAL", "attacks = [square(querys=500)]", "E221", 7, 28),
    ("autoattack-unknown-param", "EVAL", "attacks = [square(queries=500), autoattack(stpes=5)]", "E221", 7, 53),
    ("autoattack-version", "EVAL", "attacks = [autoattack(version=fast)]", "E226", 7, 40),
    ("square-p-init-range", "EVAL", "attacks = [square(p_init=0)]", "E224", 7, 35),
    ("eval-unknown", "EVAL", "attack = [fgsm]", "E221", 7, 10),
    ("eval-eps-range", "EVAL", "eps = [0.1, 1.5]", "E224", 7, 22),
    ("eval-eps-empty", "EVAL", "eps = []", "E223", 7, 16),
    ("eval-n", "EVAL", "n = 0", "E224", 7, 14),
    ("eval-batch-int", "EVAL", "batch = 2.5", "E223", 7, 18),
    ("eval-threat", "EVAL", "threat = [graybox, blackbox]", "E226", 7, 29),
    ("eval-transfer", "EVAL", "transfer = vgg", "E226", 7, 21),
    ("eval-twice", "EVAL", "n = 5; n = 6", "E225", 7, 17),
    ("loss-unknown", "STAGE", "loss = l1 + l2", "E226", 6, 33),
    ("loss-unknown-param", "STAGE", "loss = ce(taget=label)", "E221", 6, 31),
    ("loss-target", "STAGE", "loss = ce(target=label2)", "E226", 6, 38),
    ("loss-on-choice", "STAGE", "loss = ce(output)", "E226", 6, 31),
    ("loss-on-let", "STAGE", "loss = l1(mm)", "E226", 6, 31),
    ("loss-rep-steps", "STAGE", "loss = rep(steps=0)", "E224", 6, 38),
    ("loss-min-eps-range", "STAGE", "loss = l1(min_eps=2)", "E224", 6, 39),
    ("loss-min-eps-needs-adversarial", "STAGE", "loss = l1(min_eps=0.1)", "E423", 6, 39),
    ("loss-min-eps-counts-none", "STAGE", "inputs = adversarial(eps=[0.1]); loss = l1(min_eps=0.2)", "E423", 6, 72),
    ("loss-feature-layer", "STAGE", "loss = feature(layer=\"features.9\")", "E226", 6, 42),
    ("loss-structure", "STAGE", "loss = l1 * ce", "E412", 6, 33),
    ("loss-l1-on-classifier", "STAGE", "params = classifier; loss = l1", "E423", 6, 49),
    ("inputs-missing", "STAGE", "inputs = noisy", "E222", 6, 30),
    ("inputs-range", "STAGE", "inputs = noisy(sigma=[0.1, -1])", "E224", 6, 48),
    ("inputs-unknown", "STAGE", "inputs = nosy(0.1)", "E226", 6, 30),
    ("inputs-unknown-param", "STAGE", "inputs = noisy(0.1, clamp=true)", "E221", 6, 41),
    ("inputs-attack-unknown", "STAGE", "inputs = adversarial(attack=pgdd, eps=0.3)", "E251", 6, 49),
    ("inputs-attack-l2", "STAGE", "inputs = adversarial(attack=cw, eps=0.3)", "E226", 6, 49),
    ("inputs-attack-setting", "STAGE", "inputs = adversarial(eps=0.3, stepz=3)", "E221", 6, 51),
    ("inputs-attack-nested", "STAGE", "inputs = adversarial(attack=pgd(stepz=3), eps=0.3)", "E221", 6, 53),
    ("inputs-attack-twice", "STAGE", "inputs = adversarial(attack=pgd(steps=3), eps=0.3, steps=4)", "E225", 6, 72),
    ("inputs-eps", "STAGE", "inputs = adversarial(eps=[0.1, 1.2])", "E224", 6, 52),
    ("inputs-against", "STAGE", "inputs = adversarial(eps=0.1, against=both)", "E226", 6, 59),
    ("inputs-eps-draw-unknown", "STAGE", "inputs = adversarial(eps=uniformm(0, 0.3))", "E226", 6, 46),
    ("inputs-eps-draw-range", "STAGE", "inputs = adversarial(eps=uniform(0, 1.3))", "E224", 6, 57),
    ("inputs-eps-draw-missing", "STAGE", "inputs = adversarial(eps=uniform(0.1))", "E222", 6, 46),
    ("inputs-eps-draw-order", "STAGE", "inputs = adversarial(eps=uniform(0.3, 0.1))", "E224", 6, 46),
    ("inputs-eps-draw-min-eps", "STAGE", "inputs = adversarial(eps=uniform(0, 0.1)); loss = l1(min_eps=0.2)",
     "E423", 6, 82),
    ("optim-unknown", "STAGE", "optim = rmsprop(lr=0.1)", "E226", 6, 29),
    ("optim-range", "STAGE", "optim = adam(lr=0)", "E224", 6, 37),
    ("optim-param", "STAGE", "optim = adamw(momentum=0.9)", "E221", 6, 35),
    ("optim-betas", "STAGE", "optim = adam(betas=[0.9])", "E223", 6, 40),
    ("optim-betas-open", "STAGE", "optim = adam(betas=[0.9, 1])", "E224", 6, 46),
    ("optim-nesterov", "STAGE", "optim = sgd(lr=0.1, nesterov)", "E423", 6, 41),
    ("schedule-missing", "STAGE", "schedule = step(gamma=0.5)", "E222", 6, 32),
    ("schedule-choice", "STAGE", "schedule = cosine(per=batch)", "E226", 6, 43),
    ("schedule-unknown", "STAGE", "schedule = cosin", "E226", 6, 32),
    ("stage-unknown", "STAGE", "epoch = 2", "E221", 6, 21),
    ("stage-epochs", "STAGE", "epochs = 0", "E224", 6, 30),
    ("stage-limit", "STAGE", "limit = 0", "E224", 6, 29),
    ("stage-batch-type", "STAGE", "batch = \"big\"", "E223", 6, 29),
    ("stage-params", "STAGE", "params = decoder", "E423", 6, 30),
    ("stage-freeze-let", "STAGE", "freeze = [m, q]", "E423", 6, 34),
    ("stage-freeze-module", "STAGE", "params = classifier; loss = ce; freeze = [\"features.9\"]", "E423", 6, 63),
    ("stage-freeze-all", "STAGE", "params = classifier; loss = ce; freeze = [norm, features, head]", "E420", 6, 62),
    ("stage-chain-needs-classifier", "STAGE", "chain = 2", "E423", 6, 29),
    ("stage-chain-count", "STAGE", "params = classifier; loss = ce; chain = 0", "E224", 6, 61),
    ("classifier-unknown", "CLASSIFIER", "resnet(width=8)", "E202", 3, 16),
    ("classifier-param", "CLASSIFIER", "smallcnn(widht=8)", "E221", 3, 25),
    ("classifier-no-width", "CLASSIFIER", "lenet(width=8)", "E221", 3, 22),
    ("classifier-lr", "CLASSIFIER", "smallcnn(lr=0)", "E224", 3, 28),
    ("classifier-optim", "CLASSIFIER", "smallcnn(optim=rmsprop)", "E226", 3, 31),
    ("classifier-adversarial-eps", "CLASSIFIER", "smallcnn(adversarial=2)", "E224", 3, 37),
    ("classifier-adversarial-call", "CLASSIFIER", "smallcnn(adversarial=fgsm(eps=0.1))", "E226", 3, 37),
    ("classifier-adversarial-param", "CLASSIFIER", "smallcnn(adversarial=pgd(eps=0.1, stepz=3))", "E221", 3, 50),
    ("data-unknown", "DATA", "mnist6k", "E226", 2, 10),
    ("data-param", "DATA", "mnist5k(tain=10)", "E221", 2, 18),
    ("data-range", "DATA", "mnist5k(train=0)", "E224", 2, 24),
    ("data-too-big", "DATA", "mnist5k(train=4900, test=200)", "E405", 2, 10),
    ("data-path-missing", "DATA", "npz(train=10)", "E222", 2, 10),
    ("data-path-type", "DATA", "folder(3)", "E223", 2, 17),
]


def test_eps_uniform_binds_as_a_draw_and_lists_stay_lists():
    r = recipe_from_text(_recipe("STAGE", "inputs = adversarial(attack=fgsm, eps=uniform(0, 0.3)); "
                                          "loss = l1 + l1(min_eps=0.2)"))
    assert tuple(r.train[0].inputs.args["eps"]) == ("uniform", {"low": 0.0, "high": 0.3})
    r = recipe_from_text(_recipe("STAGE", "inputs = adversarial(eps=[0.1, 0.3])"))
    assert r.train[0].inputs.args["eps"] == [0.1, 0.3]
    from fif.recipe_binding import catalog
    assert "eps: float|list[float]|uniform(low, high) in [0, 1]" in catalog()["inputs"]["adversarial"]


def test_a_keyword_only_parameter_takes_no_positional_argument():
    from fif.errors import DiagnosticSink
    from fif.passes.bind import bind_args, signature
    from fif.registry import Param
    params = (Param("k", "int", 2), Param("bits", "bool", False, keyword=True), Param("scale", "float", 1.0, keyword=True))
    assert signature("q", params) == "q(k: int = 2, *, bits: bool = false, scale: float = 1)"
    call = fif.parse("q(3, bits, scale=2)").statements[0].value
    assert bind_args("q", params, call, DiagnosticSink()) == {"k": 3, "bits": True, "scale": 2.0}
    sink = DiagnosticSink()
    assert bind_args("q", params, fif.parse("q(3, 4)").statements[0].value, sink) is None
    assert [(d.code, d.column) for d in sink.items] == [("E220", 6)]
    assert "at most 1 argument(s) by position" in sink.items[0].message


def test_the_template_itself_is_valid():
    r = recipe_from_text(_recipe("EVAL", GOOD["EVAL"]))
    assert r.classifier.width == 8 and r.train[0].loss[0].name == "l1"


@pytest.mark.parametrize("cid,field,text,code,line,col", CASES, ids=[c[0] for c in CASES])
def test_each_malformed_argument_is_positioned(cid, field, text, code, line, col):
    with pytest.raises(fif.FifError) as e:
        recipe_from_text(_recipe(field, text), "r.fif")
    got = [(d.code, d.line, d.column) for d in e.value.diagnostics]
    assert got == [(code, line, col)], e.value.render()
    assert e.value.render().startswith(f"r.fif:{line}:{col}: error[{code}]")


STEPZ = """recipe stepz {
  data = mnist5k(train=500, test=100)
  classifier = smallcnn(width=8, epochs=1)
  defense = bitdepth(2)
  eval { attacks = [fgsm, pgd(stepz=10)]; eps = [0.1]; threat = [graybox]; n = 10 }
}
"""


def test_an_unknown_attack_setting_fails_in_load_recipe(tmp_path):
    path = tmp_path / "stepz.fif"
    path.write_text(STEPZ)
    with pytest.raises(fif.FifError) as e:
        fif.load_recipe(path)
    assert (e.value.code, e.value.line, e.value.column) == ("E221", 5, 31)
    assert e.value.hint == "did you mean 'steps'?" and e.value.file == str(path)


def test_cli_eval_with_a_typo_exits_1_and_trains_nothing(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("FIF_CACHE", str(cache))
    path = tmp_path / "stepz.fif"
    path.write_text(STEPZ)
    res = CliRunner().invoke(main, ["eval", str(path), "--runs", str(tmp_path / "runs")])
    assert res.exit_code == 1, res.output
    assert f"{path}:5:31: error[E221]" in res.stderr and "did you mean 'steps'?" in res.stderr
    assert "E599" not in res.output and "Traceback" not in res.output
    assert list(cache.iterdir()) == []            # no classifier was trained (or even cached)
    assert not (tmp_path / "runs").exists()


THREE = """recipe three {
  classifier = smallcnn(epochs=0)
  defense = residual { conv(4) -> conv(out=input) } -> clamp
  train { stage s { loss = l1 + l2 } }
  eval { attacks = [pgd(stepz=10)] }
}
"""


def test_every_error_of_a_recipe_is_reported_together_sorted():
    with pytest.raises(fif.FifError) as e:
        recipe_from_text(THREE, "three.fif")
    got = [(d.code, d.line, d.column) for d in e.value.diagnostics]
    assert got == [("E224", 2, 32), ("E226", 4, 33), ("E221", 5, 25)]
    text = e.value.render()
    assert text.index("three.fif:2:32") < text.index("three.fif:4:33") < text.index("three.fif:5:25")


def test_a_misspelt_defense_is_one_error_not_two():
    with pytest.raises(fif.FifError) as e:
        recipe_from_text("recipe r {\n  defens = id\n}")
    assert [(d.code, d.line) for d in e.value.diagnostics] == [("E416", 2)]


BOUND = """recipe bound {
  data = npz("digits.npz", test=200)
  classifier = lenet(epochs=2, adversarial=3/10)
  let m = residual { conv(4) -> conv(out=input) } -> clamp
  defense = m
  train {
    stage a { inputs = adversarial(attack=bim, eps=[0, 8/255], steps=3, step=1/50, against=defense)
              loss = l1(m) + 2 * l1(min_eps=8/255) + ce(clean, target=clean_pred)
              optim = sgd(lr=0.05, momentum=0.9, nesterov); schedule = multistep(milestones=1, per=epoch) }
    stage b { params = classifier; freeze = features; loss = ce; chain = [noise(0.1)] }
  }
  eval { attacks = pgd(steps=20, step=1/50); eps = 0.1; threat = adaptive; l2_eps = 2 }
}
"""


def test_square_and_autoattack_bind_in_a_recipe():
    r = recipe_from_text(_recipe("EVAL", "attacks = [square(queries=500), autoattack, apgd(loss=dlr, targets=3)]"))
    assert [s.label() for s in r.eval.attacks] == ["square(queries=500)", "autoattack", "apgd(loss=dlr, targets=3)"]
    with pytest.raises(fif.FifError) as e:
        recipe_from_text(_recipe("EVAL", "attacks = [square(querys=500)]"), "r.fif")
    assert e.value.hint == "did you mean 'queries'?"


def test_bound_values_are_what_train_and_eval_get():
    from fif.passes.bind import Bound
    from fif.train.inputs import Adversarial
    from fif.train.optim import make_schedule, optimizer_settings
    r = recipe_from_text(BOUND)
    assert (r.data.name, r.data.test) == ("digits.npz", 200)
    assert r.classifier.adversarial.eps == 0.3 and r.classifier.settings()["adversarial"]["steps"] == 10
    a, b = r.train
    attack = a.inputs.args["attack"]
    assert isinstance(attack, Bound) and attack == ("bim", {"steps": 3, "step": 0.02})
    assert a.inputs.args["eps"] == [0, 8 / 255] and a.inputs.args["against"] == "defense"
    maker = Adversarial(a.inputs.args, classifier=lambda: None, defense=lambda: None)
    assert maker.attack == "bim" and maker.params == {"steps": 3, "step": 0.02}
    assert [(t.name, t.weight, t.args) for t in a.loss] == [
        ("l1", 1.0, {"on": "m"}), ("l1", 2.0, {"min_eps": 8 / 255}), ("ce", 1.0, {"on": "clean", "target": "clean_pred"})]
    assert optimizer_settings(a.optim) == ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0,
                                                   "nesterov": True, "dampening": 0.0})
    assert a.schedule == {"name": "multistep", "milestones": [1], "per": "epoch"}
    assert make_schedule(a.schedule, 1.0, 10, 2)(10) == pytest.approx(0.1)
    assert b.freeze == ["features"] and len(b.chain) == 1
    assert [s.label() for s in r.eval.attacks] == ["pgd(steps=20, step=0.02)"]
    assert (r.eval.eps, r.eval.threat, r.eval.l2_eps) == ([0.1], ["adaptive"], [2])


def test_each_attack_declares_its_keyword_parameters():
    from fif.attacks import ATTACKS
    for name, info in ATTACKS.items():
        sig = inspect.signature(info.fn).parameters
        declared = {p.name: p.default for p in info.params}
        keywords = {k: v.default for k, v in sig.items() if v.kind is inspect.Parameter.KEYWORD_ONLY and k != "seed"}
        assert declared == keywords, name


def test_declared_defaults_match_the_containers():
    from fif.data.loaders import SOURCES
    from fif.models import ARCHS
    from fif.models.settings import ADVERSARIAL_TRAINING, CLASSIFIERS
    from fif.recipe import AdversarialSpec
    from fif.recipe_binding import eval_params
    from fif.recipe_stages import stage_params
    fields = lambda model: {k: f.default for k, f in model.model_fields.items()}  # noqa: E731
    streamed = ("kind", "size", "crop", "workers")  # set only by cifar10(...) and imagefolder(...)
    assert {p.name: p.default for p in SOURCES["mnist5k"]} == \
        {k: v for k, v in fields(DataSpec).items() if k != "name" and k not in streamed}
    assert {p.name for p in SOURCES["imagefolder"]} - {p.name for p in SOURCES["npz"]} == set(streamed) - {"kind"}
    for arch, params in CLASSIFIERS.items():
        declared = {p.name: p.default for p in params}
        spec = {k: v for k, v in fields(ClassifierSpec).items() if k in declared}
        assert declared.pop("width", None) == ARCHS[arch][1]
        assert declared == {k: v for k, v in spec.items() if k != "width"}, arch
    assert {p.name: p.default for p in ADVERSARIAL_TRAINING if not p.required} == \
        {k: v for k, v in fields(AdversarialSpec).items() if k != "eps"}
    ev = fields(EvalSpec)
    for p in eval_params():
        if p.name != "attacks":
            assert ev[p.name] == (list(p.default) if isinstance(p.default, tuple) else p.default), p.name
    assert [s.label() for s in ev["attacks"]] == list(next(p for p in eval_params() if p.name == "attacks").default)
    st = fields(StageSpec)
    for p in stage_params():
        if p.name in ("epochs", "batch", "limit", "params", "chain"):
            assert st[p.name] == p.default, p.name


def test_every_optimizer_setting_is_accepted_by_torch():
    import torch
    from fif.train.optim import OPTIMIZER_PARAMS, make_optimizer
    w = torch.zeros(2, requires_grad=True)
    for name, params in OPTIMIZER_PARAMS.items():
        make_optimizer({"name": name, **{p.name: p.default for p in params}}, [w])


def test_ops_lists_the_recipe_catalog():
    res = CliRunner().invoke(main, ["ops", "--recipe", "pgd"])
    assert res.exit_code == 0 and "restarts" in res.output and "ce|margin|dlr" in res.output
    res = CliRunner().invoke(main, ["ops", "--recipe"])
    for family in ("data", "classifier", "attack", "loss", "inputs", "optim", "schedule", "section"):
        assert f" {family} " in res.output
