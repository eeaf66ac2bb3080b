"""Fuzz over recipes: the shipped recipes and recipe fragments, mutated token by token and recombined
with random fields, sections and arguments. Loading, compiling the defenses, parsing and formatting
may only ever raise FifError. Nothing here trains or evaluates.

Run longer with FIF_FUZZ_EXAMPLES=5000 (the suite runs a small, fixed set of examples)."""

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fif

ROOT = Path(__file__).resolve().parents[1]
RECIPES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "recipes").glob("*.fif"))]
FRAGMENTS = RECIPES + [
    p.read_text(encoding="utf-8") for p in sorted((ROOT / "tests" / "fixtures" / "canonical").glob("*recipe*.fif"))
] + [
    "recipe r {\n  data = npz(\"digits.npz\", train=100, test=20, seed=3)\n  classifier = lenet(epochs=2, "
    "adversarial=0.2)\n  defense = bitdepth(2)\n  train { stage s { inputs = noisy(sigma=0.1); loss = l1 + "
    "0.5 * mse; epochs = 2; optim = adamw(lr=0.001); schedule = cosine; freeze = [enc] } }\n  eval { attacks = "
    "[pgd(steps=5), apgd]; eps = 0.1; threat = adaptive; l2_eps = [1.5]; eot = 4 }\n  variants { b4 = bitdepth(4) }\n}\n",
    "recipe c {\n  let enc = conv(4)\n  def band(r=1/6) = chancompress(r, noise)\n  defense = enc -> conv(out=input)"
    " -> dwt -> <HH: band, *: id> -> idwt\n  classifier = smallcnn(width=8, adversarial=adversarial(eps=0.3, steps=2))\n"
    "  train {\n    stage a { params = enc; loss = ce(clean) + 0.1 * rep; inputs = jpeg(50) -> noise(0.1) }\n"
    "    stage b { params = classifier; chain = [id, bitdepth(2)]; limit = 10 }\n  }\n}\n",
]

EXAMPLES = int(os.environ.get("FIF_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# One fif token (or a run of whitespace, or one odd character).
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\d+\.?\d*(?:[eE][+-]?\d+)?|[A-Za-z_]\w*|->|\s+|.', re.S)

NAMES = sorted({
    "data", "classifier", "defense", "train", "eval", "variants", "stage",
    "mnist5k", "npz", "folder", "smallcnn", "lenet", "resnet18", "width", "epochs", "lr", "batch", "optim",
    "seed", "adversarial", "eps", "steps", "step", "ramp_epochs", "attacks", "l2_eps", "threat", "n", "eot",
    "transfer", "graybox", "whitebox", "adaptive", "params", "freeze", "inputs", "loss", "schedule", "limit",
    "chain", "clean", "noisy", "sigma", "l1", "mse", "ce", "feature", "rep", "adam", "adamw", "sgd", "cosine",
    "fgsm", "pgd", "bim", "mifgsm", "cw", "deepfool", "apgd", "bitdepth", "conv", "dwt", "idwt", "mean",
    "residual", "noise", "clamp", "zero", "id", "chancompress", "downup", "droppixels", "true", "false",
    "enc", "band", "x", "_", "on", "input", "out", "train", "test", "path",
})
JUNK = ["->", "{", "}", "(", ")", "[", "]", "<", ">", ",", ":", "=", ";", "|", "*", "+", "-", "/", ".",
        "1/0", "0", "-1", "1e999", "2e-4", "1e400", "99999999999999999999", '"x"', '""', "'", '"', "#", "\n",
        " ", "\t", "é", "\x00", "\u2028", "\x0c", "@", "<*: id>", "recipe", "let", "def", "for", "in"]

numbers = st.integers(0, 100).flatmap(lambda k: st.sampled_from(["1e999", "3/0", "1e309", ".5.", "1e"]) if k == 0 else
                                     st.one_of(st.integers(-3, 300).map(str),
                                               st.sampled_from(["0.5", "1e-3", "0.1", "0.3", "1/6", "8/255",
                                                                "0.0", "-0.1", "2e9", "-1e-9"])))
strings = st.sampled_from(['"digits.npz"', '"images/"', '""', '"\\u00e9"', '"x.npz"', '"/"', '"\\ud800"'])
names = st.sampled_from(NAMES)
values = st.recursive(
    st.one_of(numbers, strings, names),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(names, st.lists(st.one_of(inner, st.tuples(names, inner).map("=".join)), max_size=3)).map(
            lambda t: f"{t[0]}(" + ", ".join(t[1]) + ")"),
        st.tuples(inner, st.sampled_from([" -> ", " + ", " * "]), inner).map("".join),
        inner.map(lambda v: "-" + v),
    ),
    max_leaves=8,
)


def _call(names_, keys, value=values):
    """`name` or `name(key=value, ...)` with keys drawn from the setting names that exist."""
    kwargs = st.lists(st.tuples(st.sampled_from(keys), value).map("=".join), max_size=3)
    return st.tuples(st.sampled_from(names_), kwargs).map(
        lambda t: t[0] + ("(" + ", ".join(t[1]) + ")" if t[1] else ""))


stages = st.recursive(
    st.one_of(_call(["id", "clamp", "zero", "bitdepth", "noise", "conv", "downup", "chancompress", "droppixels"],
                    ["levels", "sigma", "out", "k", "depth", "factor", "ratio", "noise", "lo", "hi", "act"], numbers),
              st.sampled_from(["bitdepth(2)", "conv(4)", "conv(out=input)", "noise(0.1)", "dwt -> idwt",
                               "dwt -> <LL: downup(2), *: id> -> idwt", "enc", "band"])),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(" -> ".join),
        st.tuples(st.sampled_from(["mean", "residual", "vote"]), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]} {{ " + " | ".join(t[1]) + " }"),
        inner.map(lambda p: f"dwt -> <HH, HL: {p}, *: id> -> idwt"),
    ),
    max_leaves=5,
)
DATA = ["data", "mnist5k", "npz", "folder"]
SETTINGS = {  # (section, its names) -> values drawn for them
    "data": st.one_of(_call(["mnist5k", "npz", "folder"], ["train", "test", "seed", "path"]), strings),
    "classifier": _call(["smallcnn", "lenet", "resnet18"],
                        ["width", "epochs", "lr", "batch", "optim", "seed", "adversarial", "eps"]),
    "defense": stages,
}
EVAL = ["attacks", "eps", "l2_eps", "threat", "n", "batch", "eot", "seed", "transfer"]
STAGE = ["params", "freeze", "inputs", "loss", "epochs", "batch", "optim", "schedule", "limit", "chain"]
setting_values = st.one_of(values, stages, _call(["fgsm", "pgd", "cw", "adam", "sgd", "cosine", "noisy", "clean",
                                                  "adversarial", "ce", "l1", "mse", "rep"],
                                                 ["steps", "step", "eps", "lr", "sigma", "c", "on", "momentum"]))
known_fields = st.sampled_from(sorted(SETTINGS)).flatmap(lambda k: SETTINGS[k].map(lambda v: f"{k} = {v}"))
any_fields = st.tuples(names, values).map(lambda t: f"{t[0]} = {t[1]}")
fields = st.integers(0, 5).flatmap(lambda k: any_fields if k == 0 else known_fields)
eval_sections = st.lists(st.tuples(st.sampled_from(EVAL), setting_values).map(" = ".join), max_size=4).map(
    lambda xs: "eval { " + "; ".join(xs) + " }")
stage_sections = st.lists(st.tuples(st.sampled_from(STAGE), setting_values).map(" = ".join), max_size=4).map(
    lambda xs: "stage s { " + "; ".join(xs) + " }")
any_sections = st.recursive(fields, lambda inner: st.tuples(names, st.one_of(st.just(""), names), st.lists(
    inner, max_size=3)).map(lambda t: f"{t[0]} {t[1]} {{ " + "; ".join(t[2]) + " }"), max_leaves=4)
sections = st.integers(0, 6).flatmap(lambda k: any_sections if k == 0 else st.one_of(
    eval_sections,
    st.lists(stage_sections, max_size=2).map(lambda xs: "train { " + " ".join(xs) + " }"),
    stage_sections.map(lambda x: "train { " + x[len("stage s { "):]),
    st.lists(st.tuples(names, stages).map(" = ".join), max_size=3).map(lambda xs: "variants { " + "; ".join(xs) + " }"),
))


def _tokens(text):
    return TOKEN.findall(text)


def _value_end(toks, start):
    """Index of the token that ends the value starting at `start` (brackets balanced)."""
    depth = 0
    for m in range(start, len(toks)):
        if depth == 0 and (toks[m] in (";", "}") or (toks[m] == "\n" and m > start + 1)):
            return m
        depth += (toks[m] in "([{<") - (toks[m] in ")]}>")
        if depth < 0:
            return m
    return len(toks)


@st.composite
def mutated(draw):
    """A recipe with a few token edits and random fields or sections spliced in."""
    toks = _tokens(draw(st.sampled_from(FRAGMENTS)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(toks)))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "junk", "name", "name", "value", "value",
                                   "value", "entry", "entry"]))
        if op == "delete" and i < len(toks):
            del toks[i]
        elif op == "duplicate" and i < len(toks):
            toks.insert(i, toks[i])
        elif op == "swap" and len(toks) > 1:
            j = draw(st.integers(0, len(toks) - 1))
            i = min(i, len(toks) - 1)
            toks[i], toks[j] = toks[j], toks[i]
        elif op == "junk":
            toks.insert(i, draw(st.sampled_from(JUNK)))
        elif op == "name" and i < len(toks) and re.match(r"[A-Za-z_]", toks[i]):
            toks[i] = draw(names)
        elif op == "value":  # replace whatever follows an '=' by a random value
            eq = [k for k, t in enumerate(toks) if t == "="]
            if eq:
                k = eq[i % len(eq)]
                end = _value_end(toks, k + 1)
                toks[k + 1:end] = [" ", draw(values)]
        else:  # a random field or section right after a '{'
            opens = [k for k, t in enumerate(toks) if t == "{"]
            if opens:
                k = opens[i % len(opens)]
                toks.insert(k + 1, " " + draw(st.one_of(fields, sections)) + "\n")
    return "".join(toks)


@st.composite
def recombined(draw):
    """A recipe assembled from random entries (fields, sections) and the shipped recipes' entries."""
    shipped = [line.strip() for text in RECIPES for line in text.splitlines()
               if re.match(r"  \w+ = [^\[]*$", line)]
    entries = draw(st.lists(st.one_of(fields, sections, st.sampled_from(shipped)), min_size=1, max_size=5,
                            unique_by=lambda e: e.split(" ")[0]))
    if draw(st.integers(0, 3)) and not any(e.startswith("defense ") for e in entries):
        entries.append("defense = " + draw(stages))
    decls = ["let enc = conv(4)", "def band(r=1/6) = chancompress(r, noise)"]
    return f"recipe {draw(names)} {{\n  " + "\n  ".join(decls + entries) + "\n}\n"


def _only_fif_errors(text, path):
    try:
        canonical = fif.format(text)
    except fif.FifError as e:
        assert re.match(r"^\S+:(\d+:\d+: )?error\[E\d{3}\]: ", e.render()), e.render()
    else:
        assert fif.format(canonical) == canonical
        assert fif.parse(canonical) == fif.parse(text)
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    try:
        recipe = fif.load_recipe(path)
        for which in recipe.defenses():
            recipe.compile(which, input_shape=(1, 8, 8))
    except fif.FifError as e:
        # errors point into the recipe, or at a data file or folder it names (compiling reads the
        # data's class count)
        assert e.code and (e.file == str(path) or str(path.parent) in e.file), e.render()


@pytest.fixture(scope="module")
def recipe_path(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "r.fif"


def test_shipped_recipes_load(recipe_path):
    for text in RECIPES:
        _only_fif_errors(text, recipe_path)
        assert fif.load_recipe(recipe_path).defense is not None


@FUZZ
@given(text=mutated())
def test_mutated_recipes_only_raise_fif_errors(recipe_path, text):
    _only_fif_errors(text, recipe_path)


@FUZZ
@given(text=recombined())
def test_recombined_recipes_only_raise_fif_errors(recipe_path, text):
    _only_fif_errors(text, recipe_path)


@FUZZ
@given(data=st.binary(max_size=40), at=st.integers(0, 400))
def test_random_bytes_in_a_recipe_file_only_raise_fif_errors(recipe_path, data, at):
    raw = RECIPES[0].encode("utf-8")
    recipe_path.write_bytes(raw[:at] + data + raw[at:])
    try:
        fif.load_recipe(recipe_path)
    except fif.FifError as e:
        assert e.code in ("E406",) or e.code.startswith(("E1", "E2", "E4")), e.render()
