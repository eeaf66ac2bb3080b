"""The evaluated model is one pipeline that ends in logits: classifier ops with real weights,
ensembles (`mean`, `vote`), gray-box views, and the overall worst case."""

import json

import pytest
import torch
from click.testing import CliRunner

import fif
from fif.cli import main
from fif.compiler import CompileEnv
from fif.evaluate import run_eval, write_report
from fif.models import build_classifier, save_weights
from fif.train import run_training
from fif.views import classifier_view

ENV = CompileEnv(classifier=("smallcnn", 4, 10))


def test_mean_of_logits_is_the_mean_of_softmaxes():
    p = fif.compile("mean { smallcnn(width=4) | bitdepth(2) -> smallcnn(width=4) | lenet }").eval()
    x = torch.rand(5, 1, 28, 28)
    members = [m for m in p.modules() if getattr(m, "op", None) in ("smallcnn", "lenet")]
    with torch.no_grad():
        probs = torch.stack([torch.softmax(m.inner(x if i != 1 else torch.round(x)), -1)
                             for i, m in enumerate(members)]).mean(0)
        out = p(x)
    torch.testing.assert_close(out.exp(), probs)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(5))


class FixedLogits(torch.nn.Module):
    """A branch that answers the same logits for every image."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, x, ctx=None):
        return self.logits.expand(x.shape[0], -1)


def test_vote_is_the_majority_and_ties_go_to_the_higher_mean_softmax():
    from fif.ops.blocks import Vote
    from fif.run_context import DEPLOYED
    x = torch.zeros(1, 1, 4, 4)
    # two votes for class 0 beat one very confident vote for class 2
    v = Vote([FixedLogits([3.0, 0.0, 0.0]), FixedLogits([2.0, 1.9, 0.0]), FixedLogits([0.0, 0.0, 9.0])])
    assert v(x, DEPLOYED).argmax(-1).item() == 0
    # one vote each for 0 and 1: the mean softmax decides (class 1 is the more confident)
    v = Vote([FixedLogits([1.0, 0.0, 0.0]), FixedLogits([0.0, 5.0, 0.0])])
    assert v(x, DEPLOYED).argmax(-1).item() == 1
    # five voters, a two-two tie between 0 and 1: the class-1 voters are surer, so 1 wins
    v = Vote([FixedLogits([2.0, 0.0, 0.0]), FixedLogits([2.0, 1.9, 0.0]), FixedLogits([0.0, 6.0, 0.0]),
              FixedLogits([0.0, 6.0, 0.0]), FixedLogits([0.0, 0.0, 1.0])])
    assert v(x, DEPLOYED).argmax(-1).item() == 1

def test_vote_has_no_true_gradient_and_the_attack_view_passes_the_mean():
    p = fif.compile("vote { smallcnn(width=4) | noise(0.1) -> smallcnn(width=4) }").eval()
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    p(x)[:, 3].sum().backward()
    assert x.grad.abs().sum() == 0
    x.grad = None
    p.attack_view()(x)[:, 3].sum().backward()
    assert x.grad.abs().sum() > 0


def test_classifier_outside_a_recipe_is_E236_at_its_column():
    err = pytest.raises(fif.FifError, fif.compile, "bitdepth(2) -> classifier").value
    assert (err.code, err.line, err.column) == ("E236", 1, 16)


def test_weights_file_loads_and_freezes(tmp_path):
    net = build_classifier("smallcnn", (1, 28, 28), 10, width=4)
    save_weights(net, tmp_path / "net.safetensors")
    p = fif.compile('bitdepth(2) -> smallcnn(width=4, weights="net.safetensors")',
                    env=CompileEnv(base=str(tmp_path))).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(p(x), net.eval()(torch.round(x)))
    assert not p.learnable and not any(q.requires_grad for q in p.parameters())
    err = pytest.raises(fif.FifError, fif.compile, 'smallcnn(weights="nope.safetensors")',
                        env=CompileEnv(base=str(tmp_path))).value
    assert (err.code, err.column) == ("E401", 18)


def test_graybox_view_keeps_classifiers_and_drops_transforms():
    p = fif.compile("mean { classifier(member=1) | bitdepth(4) -> classifier(member=2) "
                    "| noise(0.1) -> classifier(member=3) }", env=ENV).eval()
    view = classifier_view(p)
    assert view.text == "mean { classifier(member=1) | classifier(member=2) | classifier(member=3) }"
    assert {id(t) for t in view.parameters()} == {id(t) for t in p.parameters()}   # the same weights
    x = torch.rand(4, 1, 28, 28)
    members = [m.inner for m in p.modules() if getattr(m, "op", None) == "classifier"]
    with torch.no_grad():
        want = torch.stack([torch.softmax(m(x), -1) for m in members]).mean(0).log()
        torch.testing.assert_close(view(x), want)
    plain = fif.compile("dwt -> <HH: zero> -> idwt -> clamp -> classifier", env=ENV)
    assert classifier_view(plain).text == "classifier"


ENSEMBLE = """
recipe ensemble {
  data = mnist5k(train=600, test=200, seed=0)
  classifier = smallcnn(width=8, epochs=2, lr=0.003, batch=64)
  defense = bitdepth(2)
  model = mean { defense -> classifier(member=1) | bitdepth(4) -> classifier(member=2)
                 | noise(0.1) -> classifier(member=3) }
  train {
    stage ladder { params = classifier; chain = [bitdepth(2), bitdepth(4), noise(0.1)]
                   loss = 0.5 * ce(clean) + 0.5 * ce(input); epochs = 1; batch = 64; limit = 256 }
  }
  eval {
    attacks = [fgsm, pgd(steps=10, step=0.03)]
    eps = [0.2]
    threat = [graybox, whitebox, adaptive, transfer]
    n = 60
    eot = 4
  }
  variants { voted = vote { classifier(member=1) | bitdepth(4) -> classifier(member=2) | noise(0.1) -> classifier(member=3) } }
}
"""


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    path = folder / "ensemble.fif"
    path.write_text(ENSEMBLE)
    recipe = fif.load_recipe(path)
    run_training(recipe, out=folder / "runs" / "ensemble" / "train", seed=0)
    results = run_eval(recipe, runs=folder / "runs")
    return folder, recipe, results


def test_ensemble_of_three_fine_tuned_members_under_all_four_threats_and_overall(ensemble):
    folder, recipe, results = ensemble
    rows = {(r["defense"], r["attack"], r["eps"], r["threat"]): r for r in results["rows"]}
    for d in ("none", "defense", "voted"):
        assert (d, "none", 0.0, "clean") in rows
        assert (d, "worst", 0.2, "overall") in rows
        for t in ("graybox", "whitebox", "adaptive", "transfer"):
            assert (d, "fgsm", 0.2, t) in rows and (d, "worst", 0.2, t) in rows
    assert {"classifier_1", "classifier_2", "classifier_3"} <= set(results["weights"])
    for d in ("defense", "voted"):
        overall = rows[(d, "worst", 0.2, "overall")]["accuracy"]
        per_threat = [rows[(d, "worst", 0.2, t)]["accuracy"] for t in ("graybox", "whitebox", "adaptive", "transfer")]
        assert overall <= min(per_threat)
    assert rows[("defense", "none", 0.0, "clean")]["accuracy"] > 0.7
    # the noise member makes the model random: its adaptive attack averages over draws
    assert results["graybox"]["defense"] == "mean { classifier(member=1) | classifier(member=2) | classifier(member=3) }"
    assert results["graybox"]["voted"] == "vote { classifier(member=1) | classifier(member=2) | classifier(member=3) }"
    assert results["graybox"]["none"] == "classifier"


def test_members_get_the_chain_weights(ensemble):
    folder, recipe, _ = ensemble
    from fif.evaluate.runner import prepare
    from fif.models import read_weights
    setup = prepare(recipe, n=4, runs=folder / "runs")
    members = [m for m in setup.entries["defense"].model.modules() if getattr(m, "op", None) == "classifier"]
    assert [m.step.kwargs["member"] for m in members] == [1, 2, 3]
    for m in members:
        saved = read_weights(folder / "runs" / "ensemble" / "train" / f"classifier_{m.step.kwargs['member']}.safetensors")[0]
        for k, v in m.inner.state_dict().items():
            torch.testing.assert_close(v, saved[k])


def test_report_says_what_the_graybox_attacker_sees_and_leads_with_overall(ensemble, tmp_path):
    _, _, results = ensemble
    paths = write_report(results, tmp_path, command="fif eval ensemble.fif")
    md = paths["report.md"].read_text()
    assert "What the gray-box attacker sees" in md
    assert "`mean { classifier(member=1) | classifier(member=2) | classifier(member=3) }`" in md
    assert md.index("## overall") < md.index("## graybox")
    assert "| `bitdepth(2)` |" in md or "`bitdepth(2)`" in md
    data = json.loads(paths["results.json"].read_text())
    assert any(r["threat"] == "overall" and r["attack"] == "worst" for r in data["rows"])


def test_missing_member_weights_is_E421(tmp_path):
    path = tmp_path / "m.fif"
    path.write_text(ENSEMBLE.replace("ensemble {", "missing {", 1))
    recipe = fif.load_recipe(path)
    with pytest.raises(fif.FifError) as e:
        run_eval(recipe, n=4, runs=tmp_path / "runs", threats=["graybox"], attacks=["fgsm"])
    assert e.value.code == "E421" and "member=1" in e.value.message


def test_model_that_does_not_end_in_logits_is_E323(tmp_path):
    path = tmp_path / "bad.fif"
    path.write_text("recipe bad {\n  defense = bitdepth(2)\n  model = defense -> clamp\n}\n")
    with pytest.raises(fif.FifError) as e:
        fif.load_recipe(path).compile_model("defense")
    assert (e.value.code, e.value.line) == ("E323", 3)


def test_fif_compile_of_a_recipe_checks_every_entry_and_its_model(tmp_path):
    path = tmp_path / "r.fif"
    path.write_text("recipe r {\n  defense = bitdepth(2)\n  variants { bad = dwt }\n}\n")
    result = CliRunner().invoke(main, ["compile", str(path)])
    assert result.exit_code == 1 and "error[E322]" in result.output and ":3:20:" in result.output


def test_a_typo_in_a_variant_fails_fif_eval_before_anything_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("FIF_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "typo.fif"
    path.write_text("recipe typo {\n  data = mnist5k(train=500, test=100)\n  defense = bitdepth(2)\n"
                    "  variants { v = bitdepht(4) }\n}\n")
    result = CliRunner().invoke(main, ["eval", str(path), "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 1 and ":4:18: error[E201]" in result.output
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


OTHERS = """
recipe others {
  data = mnist5k(train=500, test=100, seed=0)
  classifier = smallcnn(width=8, epochs=1, lr=0.003, batch=64)
  defense = bitdepth(2)
  eval { attacks = [fgsm]; eps = [0.2]; threat = [graybox, adaptive]; n = 40 }
  variants {
    at = classifier(adversarial=pgd(eps=0.2, steps=3), epochs=1)
    on_lenet = bitdepth(2) -> classifier(arch=lenet)
  }
}
"""


def test_classifier_settings_in_a_model_give_other_trained_classifiers(tmp_path):
    """The adversarially trained reference row and a defense in front of another architecture are
    one-line variants: each names a classifier trained once on the recipe's data and cached."""
    from fif.evaluate.runner import prepare
    path = tmp_path / "others.fif"
    path.write_text(OTHERS)
    recipe = fif.load_recipe(path)
    setup = prepare(recipe, n=8, runs=tmp_path / "runs")
    at = setup.entries["at"].model
    (node,) = [m for m in at.modules() if getattr(m, "op", None) == "classifier"]
    assert node.inner.overrides["epochs"] == 1 and node.inner.arch == "smallcnn"
    base = setup.classifier.state_dict()
    assert any(not torch.equal(v, base[k]) for k, v in node.inner.state_dict().items() if v.is_floating_point())
    lenet = [m for m in setup.entries["on_lenet"].model.modules() if getattr(m, "op", None) == "classifier"][0]
    assert lenet.inner.arch == "lenet"
    assert setup.entries["at"].graybox.text == "classifier(epochs=1, adversarial=pgd(eps=0.2, steps=3))"
    assert setup.entries["on_lenet"].graybox.text == "classifier(arch=lenet)"
    results = run_eval(recipe, runs=tmp_path / "runs")
    clean = {r["defense"]: r["accuracy"] for r in results["rows"] if r["threat"] == "clean"}
    assert set(clean) == {"none", "defense", "at", "on_lenet"} and min(clean.values()) > 0.15  # above chance


BORROW = """
recipe borrow {
  data = mnist5k(train=300, test=100, seed=0)
  classifier = smallcnn(width=4, epochs=1, lr=0.003, batch=64)
  let sr = edsr(4, 1) -> clamp
  defense = bitdepth(2) -> sr
  train { stage s { inputs = adversarial(attack=fgsm, eps=uniform(0, 0.3)); loss = mse; limit = 64; batch = 32 } }
  eval { attacks = [fgsm]; eps = [0.2]; threat = [graybox, adaptive]; n = 16 }
  variants {
    on_lenet = defense -> classifier(arch=lenet, epochs=1)
    own = bitdepth(2) -> edsr(4, 1) -> clamp -> classifier(arch=lenet, epochs=1)
  }
}
"""


def test_a_whole_model_variant_naming_defense_takes_the_trained_defense(tmp_path):
    """`defense -> classifier(arch=lenet)`: the recipe's defense with the weights fif train gave it
    (lets and all), in front of another classifier; it is not trained on its own. A whole model
    with learnable weights of its own still needs its own checkpoint (E421)."""
    from fif.evaluate.runner import prepare
    from fif.recipe_models import borrows_defense, compile_entry
    path = tmp_path / "borrow.fif"
    path.write_text(BORROW)
    recipe = fif.load_recipe(path)
    assert "let defense = bitdepth(2) -> sr" in recipe.pipeline_text("on_lenet")
    assert borrows_defense(recipe, "on_lenet", compile_entry(recipe, "on_lenet"))
    assert not borrows_defense(recipe, "own", compile_entry(recipe, "own"))
    summary = run_training(recipe, out=tmp_path / "runs" / "borrow" / "train")
    assert [s["target"] for s in summary["stages"]] == ["defense"]          # the whole models are not trained
    with pytest.raises(fif.FifError) as e:
        prepare(recipe, n=8, runs=tmp_path / "runs")
    assert e.value.code == "E421" and "'own'" in e.value.message
    recipe = fif.recipe.recipe_from_text(BORROW.replace("    own = bitdepth(2) -> edsr(4, 1) -> clamp -> classifier(arch=lenet, epochs=1)\n", ""),
                                         str(path))
    setup = prepare(recipe, n=8, runs=tmp_path / "runs")
    trained = fif.load(tmp_path / "runs" / "borrow" / "train" / "defense.safetensors").state_dict()
    mine = setup.entries["on_lenet"].model.shared["sr"].state_dict()
    assert mine and all(torch.equal(v, trained[f"shared.sr.{k}"]) for k, v in mine.items())
    assert setup.weights["on_lenet"].endswith("defense.safetensors")
    assert setup.entries["on_lenet"].graybox.text == "classifier(arch=lenet, epochs=1)"
