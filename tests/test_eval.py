"""`fif eval`: the attack view, threat models, masking warnings and the four report files."""

import json

import pytest
import torch
from click.testing import CliRunner

import fif
from fif.cli import main
from fif.evaluate import masking_warnings, psnr, run_eval, ssim, write_report
from fif.evaluate.untrained import untrained_warnings


def test_attack_view_passes_identity_gradient_through_bitdepth():
    p = fif.compile("bitdepth(4)")
    x = torch.rand(3, 1, 28, 28, requires_grad=True)
    p(x).sum().backward()
    assert x.grad is None or torch.count_nonzero(x.grad) == 0   # deployed: rounding passes nothing
    x2 = x.detach().clone().requires_grad_(True)
    y = p.attack_view()(x2)
    assert torch.equal(y, p(x2))                                    # same values forward
    y.sum().backward()
    assert torch.allclose(x2.grad, torch.ones_like(x2))             # identity backward (BPDA)


def test_attack_view_keeps_true_gradient_of_differentiable_ops():
    p = fif.compile("conv(2) -> conv(out=input) -> clamp").eval()
    x = torch.rand(2, 1, 28, 28, requires_grad=True)
    p(x).sum().backward()
    g1 = x.grad.clone()
    x.grad = None
    p.attack_view()(x).sum().backward()
    assert torch.equal(g1, x.grad)


def test_attack_view_draws_fresh_randomness_and_eot_averages():
    p = fif.compile("noise(0.5, clip=false)")
    x = torch.zeros(1, 1, 28, 28)
    a, b = p.attack_view()(x), p.attack_view()(x)
    assert not torch.equal(a, b)
    from fif.attacks import loss_grad
    lin = torch.nn.Sequential(p.attack_view(), torch.nn.Flatten(), torch.nn.Linear(784, 10))
    torch.manual_seed(0)
    xs = torch.rand(4, 1, 28, 28)
    y = torch.zeros(4, dtype=torch.long)
    spread = []
    for eot in (1, 64):
        grads = torch.stack([loss_grad(lin, xs, y, eot=eot)[1] for _ in range(8)])
        spread.append(grads.std(0).mean().item())
    assert spread[1] < spread[0] / 3   # averaging 64 draws shrinks the spread (about 1/8)


def test_metrics():
    x = torch.rand(2, 1, 28, 28)
    assert torch.isinf(psnr(x, x)).all()
    assert torch.allclose(ssim(x, x), torch.ones(2))
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert (psnr(noisy, x) < 20).all() and (ssim(noisy, x) < 0.9).all()


def _row(d, a, e, t, acc, **kw):
    return {"defense": d, "attack": a, "eps": e, "threat": t, "accuracy": acc, "n": 100, "seconds": 0, **kw}


def test_masking_warnings_fire_on_the_two_signs_only():
    rows = [_row("d", "pgd", 0.3, "whitebox", 0.95), _row("d", "pgd", 0.3, "adaptive", 0.02),
            _row("ok", "pgd", 0.3, "whitebox", 0.50), _row("ok", "pgd", 0.3, "adaptive", 0.45),
            _row("ok", "pgd", 1.0, "adaptive", 0.00, sanity=True),
            _row("d", "pgd", 1.0, "whitebox", 0.60, sanity=True)]
    w = masking_warnings(rows)
    assert any(s.startswith("d: whitebox accuracy is far above adaptive in 1 of") and "pgd at eps 0.3" in s for s in w)
    assert any("unbounded" in s and s.startswith("d:") for s in w)
    assert not any(s.startswith("ok:") for s in w)
    rising = [_row("r", "pgd", 0.1, "adaptive", 0.2), _row("r", "pgd", 0.3, "adaptive", 0.6),
              _row("r", "deepfool", 0.1, "adaptive", 0.2), _row("r", "deepfool", 0.3, "adaptive", 0.6)]
    w = masking_warnings(rising)
    assert len(w) == 1 and "rises" in w[0] and "pgd" in w[0]   # minimal-norm attacks may rise


def test_a_model_at_chance_on_clean_inputs_is_called_untrained():
    labels = torch.tensor([0] * 12 + [1] * 8 + list(range(2, 10)) * 10)   # commonest label: 12%
    rows = [_row("dead", "none", 0.0, "clean", 0.095), _row("edge", "none", 0.0, "clean", 0.16),
            _row("ok", "none", 0.0, "clean", 0.18), _row("dead", "pgd", 0.3, "whitebox", 0.0)]
    w = untrained_warnings(rows, labels)
    assert [s.split(":")[0] for s in w] == ["dead", "edge"]
    assert "at chance" in w[0] and "12.0%" in w[0] and "retrain" in w[0]


@pytest.fixture(scope="module")
def small_results(small_recipe_file):
    r = fif.load_recipe(small_recipe_file)
    return run_eval(r, n=100)


def test_eval_rows_cover_every_defense_attack_eps_and_threat(small_results):
    rows = small_results["rows"]
    keyed = {(r["defense"], r["attack"], r["eps"], r["threat"]) for r in rows}
    for d in ("none", "defense", "four_levels"):
        assert (d, "none", 0.0, "clean") in keyed
        for t in ("graybox", "whitebox", "adaptive"):
            for e in (0.1, 0.3):
                assert (d, "fgsm", e, t) in keyed
                assert (d, "pgd(steps=20, step=0.02)", e, t) in keyed
                assert (d, "worst", e, t) in keyed
    clean = {r["defense"]: r for r in rows if r["threat"] == "clean"}
    assert clean["none"]["accuracy"] > 0.85
    assert "psnr" in clean["defense"] and 0 < clean["defense"]["ssim"] <= 1


def test_attacked_rows_carry_the_quality_of_the_defended_images(small_results):
    rows = [r for r in small_results["rows"] if r["defense"] == "defense" and r["attack"] == "fgsm"]
    assert rows and all(0 < r["ssim"] <= 1 and r["psnr"] > 0 for r in rows)
    assert not any("psnr" in r for r in small_results["rows"] if r["defense"] == "none")


LETS = """recipe lets {
  data = mnist5k(train=300, test=100, seed=0)
  classifier = smallcnn(width=4, epochs=1)
  let a = residual { conv(2) -> conv(out=input) } -> clamp
  let b = residual { conv(2) -> conv(out=input) } -> clamp
  defense = mean { a | b }
  train { stage s { loss = l1(a) + l1(b); epochs = 1; batch = 16; limit = 32 } }
  eval { attacks = [fgsm]; eps = [0.1]; threat = [graybox]; n = 4 }
  variants { only_a = a
             guarded = a -> classifier(adversarial=pgd(eps=0.1, steps=1)) }
}
"""


def test_a_variant_made_of_the_defenses_lets_is_evaluated_with_their_trained_weights(tmp_path, monkeypatch):
    """A let is one set of weights in a recipe: the variant that no stage trains borrows them."""
    from fif.evaluate.runner import prepare
    from fif.train import run_training
    monkeypatch.setenv("FIF_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "lets.fif"
    path.write_text(LETS)
    recipe = fif.load_recipe(path)
    runs = tmp_path / "runs"
    summary = run_training(recipe, out=runs / "lets" / "train")
    assert summary["untrained"] == ["only_a"]   # skipped: its loss names b
    setup = prepare(recipe, runs=runs)
    assert setup.weights["only_a"] == f"{runs / 'lets' / 'train' / 'defense.safetensors'} (let a)"
    trained = setup.entries["defense"].defense.shared["a"].state_dict()
    for entry in (setup.entries["only_a"].defense, setup.entries["guarded"].model):
        for k, v in entry.shared["a"].state_dict().items():
            assert torch.equal(v, trained[k])
    path.write_text(LETS.replace("only_a = a", "only_a = residual { conv(3) -> conv(out=input) } -> clamp"))
    with pytest.raises(fif.FifError) as e:   # weights of its own that no stage trained
        prepare(fif.load_recipe(path), runs=runs)
    assert e.value.code == "E421"


def test_eval_shows_the_expected_picture(small_results):
    acc = {(r["defense"], r["attack"], r["eps"], r["threat"]): r["accuracy"] for r in small_results["rows"]}
    pgd = "pgd(steps=20, step=0.02)"
    assert acc[("none", pgd, 0.3, "graybox")] < 0.1                 # no defense falls
    assert acc[("four_levels", pgd, 0.3, "whitebox")] > 0.6         # rounding hides the gradient...
    assert acc[("four_levels", pgd, 0.3, "adaptive")] < 0.2         # ...and BPDA finds it
    assert acc[("defense", pgd, 0.3, "adaptive")] > 0.4             # binarizing really helps
    assert any(w.startswith("four_levels: whitebox accuracy is far above adaptive") for w in small_results["warnings"])
    worst = acc[("defense", "worst", 0.3, "adaptive")]
    assert worst <= min(acc[("defense", a, 0.3, "adaptive")] for a in ("fgsm", pgd))


def test_report_files(small_results, tmp_path):
    paths = write_report(small_results, tmp_path, command="fif eval small.fif")
    data = json.loads(paths["results.json"].read_text())
    assert {"recipe", "seed", "versions", "git", "rows"} <= set(data)
    assert data["versions"]["torch"] == torch.__version__
    csv_lines = paths["results.csv"].read_text().strip().splitlines()
    assert len(csv_lines) == len(data["rows"]) + 1
    md = paths["report.md"].read_text()
    assert "## adaptive" in md and "| defense | clean |" in md and "Warnings" in md
    assert paths["accuracy_vs_eps.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_probe_applies_a_pipeline_to_the_perturbation(small_recipe_file):
    r = fif.load_recipe(small_recipe_file)
    res = run_eval(r, n=60, attacks=["fgsm"], threats=["graybox"],
                   probes=["dwt -> <LL, LH, HL: zero> -> idwt", "zero", "id", "droppatches(1, patch=4)"])
    probe = {(row["defense"], row["eps"]): row["accuracy"] for row in res["rows"] if row["threat"] == "probe"}
    clean = next(row["accuracy"] for row in res["rows"] if row["defense"] == "none" and row["threat"] == "clean")
    # Zeroing the whole perturbation gives back clean accuracy exactly; keeping all of it, nothing.
    assert probe[("probe: zero", 0.3)] == pytest.approx(clean)
    assert probe[("probe: droppatches(1, patch=4)", 0.3)] == pytest.approx(clean)
    attacked = next(row["accuracy"] for row in res["rows"]
                    if row["defense"] == "none" and row["attack"] == "fgsm" and row["eps"] == 0.3)
    assert attacked < clean
    assert probe[("probe: id", 0.3)] == pytest.approx(attacked)
    assert probe[("probe: dwt -> <LL, LH, HL: zero> -> idwt", 0.3)] >= attacked


def test_cli_eval_writes_files_and_exit_codes(small_recipe_file, tmp_path):
    runner = CliRunner()
    out = tmp_path / "eval"
    res = runner.invoke(main, ["eval", str(small_recipe_file), "--n", "40", "--attack", "fgsm",
                               "--threat", "graybox", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.csv", "report.md", "accuracy_vs_eps.png"}
    res = runner.invoke(main, ["eval", str(small_recipe_file), "--device", "cuda" if not torch.cuda.is_available() else "tpu"])
    assert res.exit_code == 1 and "E520" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["eval", str(tmp_path / "missing.fif")])
    assert res.exit_code == 1 and "E401" in res.output
    res = runner.invoke(main, ["eval", str(small_recipe_file), "--threat", "sideways"])
    assert res.exit_code == 2


def test_learnable_defense_without_training_is_refused(tmp_path):
    path = tmp_path / "learn.fif"
    path.write_text("recipe learn {\n  data = mnist5k(train=500, test=100)\n  classifier = smallcnn(width=8, epochs=1)\n"
                    "  defense = residual { conv(4) -> conv(out=input) } -> clamp\n}\n")
    with pytest.raises(fif.FifError) as e:
        run_eval(fif.load_recipe(path), n=10, runs=tmp_path / "runs")
    assert e.value.code == "E421"


def test_eval_uses_what_train_produced_without_flags(tmp_path, monkeypatch):
    """`fif train R` then `fif eval R` in the same folder: the trained weights are picked up."""
    recipe = tmp_path / "den.fif"
    recipe.write_text("""recipe den {
  data = mnist5k(train=600, test=100)
  classifier = smallcnn(width=8, epochs=2, lr=0.003)
  defense = residual { conv(4) -> conv(out=input) } -> clamp
  train { stage s { inputs = noisy(sigma=0.2); loss = l1; epochs = 1; limit = 128; batch = 32 } }
  eval { attacks = [fgsm]; eps = [0.1]; threat = [graybox]; n = 20 }
}
""")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["eval", str(recipe)])
    assert res.exit_code == 1 and "E421" in res.output          # nothing trained yet
    res = runner.invoke(main, ["train", str(recipe), "--seed", "0"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["eval", str(recipe)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "runs/den/eval/results.json").read_text())
    assert data["weights"]["defense"].endswith("runs/den/train/defense.safetensors")


def test_nan_in_the_data_stops_eval_before_any_attack(tmp_path, monkeypatch):
    import fif.data as data
    real = data.load_dataset

    def poisoned(name, base=None):
        ds = real(name, base=base)
        images = ds.images.clone()
        images[3, 0, 5, 5] = float("inf")
        return type(ds)(images, ds.labels, ds.classes, ds.name, ds.source)

    monkeypatch.setattr(data, "load_dataset", poisoned)
    path = tmp_path / "r.fif"
    path.write_text("recipe r { defense = bitdepth(2) }\n")
    with pytest.raises(fif.FifError) as e:
        run_eval(fif.load_recipe(path), n=10)
    assert e.value.code == "E404" and "image 3" in e.value.message
