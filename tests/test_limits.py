"""Size and depth limits: long inputs work, deep ones stop with a positioned FifError, and nothing
reaches Python's recursion limit (parser, printer, passes, build, forward, attack view)."""

import pytest
import torch

import fif
from fif.passes import limits
from fif.passes.limits import MAX_DEPTH
from fif.recipe import recipe_from_text
from fif.syntax.parser import MAX_NESTING as D

SPARE = 150  # frames a caller may already use (a CLI, a training loop) on top of pytest's own


def _with_frames_used(n, fn):
    """Call fn() with n more Python frames on the stack than now."""
    return fn() if n == 0 else _with_frames_used(n - 1, fn)


def _err(text, shape=(1, 8, 8)) -> fif.FifError:
    with pytest.raises(fif.FifError) as info:
        fif.compile(text, input_shape=shape)
    return info.value


def _pos(e: fif.FifError):
    return [(d.code, d.line, d.column) for d in e.diagnostics]


# ---- deep nesting: E108 at the token one past the limit -----------------------------------------

# (id, build(depth) -> text, column of the opener at depth k: col(k))
TOO_DEEP = [
    ("blocks", lambda k: "mean { " * k + "id" + " }" * k, lambda k: 7 * (k - 1) + 6),
    ("parens", lambda k: "id -> " + "(" * k + "id" + ")" * k, lambda k: 6 + k),
    ("lists", lambda k: "bitdepth(" + "[" * (k - 1) + "1" + "]" * (k - 1) + ")", lambda k: 9 + k - 1),
    ("calls", lambda k: "conv(" * k + "1" + ")" * k, lambda k: 5 * k),
    ("part-maps", lambda k: "dwt -> <LL: " * k + "id" + "> -> idwt" * k, lambda k: 12 * (k - 1) + 8),
    ("signs", lambda k: "noise(" + "-" * (k - 1) + "1)", lambda k: 6 + k - 1),
]


@pytest.mark.parametrize("build,col", [c[1:] for c in TOO_DEEP], ids=[c[0] for c in TOO_DEEP])
@pytest.mark.parametrize("extra", [1, 300])
def test_nesting_past_the_limit_is_E108_at_the_opener(build, col, extra):
    text = build(D + extra)
    assert text.count("\n") == 0
    for call in (lambda: fif.parse(text), lambda: fif.format(text),
                 lambda: fif.compile(text, input_shape=(1, 8, 8))):
        with pytest.raises(fif.FifError) as info:
            call()
        assert _pos(info.value) == [("E108", 1, col(D + 1))]
        assert info.value.hint


def test_E108_on_a_later_line_inside_a_recipe():
    text = "recipe r {\n  defense = id\n  eval {\n    eps = " + "[" * D + "0.1" + "]" * D + "\n  }\n}\n"
    with pytest.raises(fif.FifError) as info:
        recipe_from_text(text)
    # recipe {, eval { and D - 2 brackets make D levels: the next bracket is one too many.
    assert _pos(info.value) == [("E108", 4, 11 + D - 2)]


def test_the_first_problem_in_the_text_is_reported():
    # A syntax error before the deep part wins: the parser stops there.
    assert _pos(_err("dwt idwt -> " + "mean { " * (D + 5) + "id" + " }" * (D + 5))) == [("E103", 1, 5)]
    # Too deep and never closed: the unclosed bracket is the error.
    assert _pos(_err("mean { " * (D + 5) + "id"))[0][0] == "E104"


# ---- the deepest nesting allowed works everywhere --------------------------------------------------

DEEPEST = [
    ("blocks", "mean { " * D + "id" + " }" * D),
    ("blocks-with-sequences", "mean { id -> " * D + "id" + " | id }" * D),
    ("residual", "residual { clamp -> " * D + "id" + " }" * D),
    ("parens", "id -> " + "(" * D + "id -> id" + ")" * D),
    ("for-branches", "mean { for q in [4]: " * (D - 1) + "bitdepth(q)" + " }" * (D - 1)),
    ("def-arguments", "def f(x) = mean { x -> id }\n" + "f(" * D + "id" + ")" * D),
]


@pytest.mark.parametrize("text", [c[1] for c in DEEPEST], ids=[c[0] for c in DEEPEST])
def test_deepest_allowed_nesting_formats_compiles_and_runs(text):
    canonical = _with_frames_used(SPARE, lambda: fif.format(text))
    assert fif.parse(canonical) == fif.parse(text)
    p = _with_frames_used(SPARE, lambda: fif.compile(text, input_shape=(1, 8, 8)))
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    y = _with_frames_used(SPARE, lambda: p(x))
    assert y.shape == x.shape
    z = _with_frames_used(SPARE, lambda: p.attack_view()(x))
    z.sum().backward()
    assert x.grad is not None
    assert _with_frames_used(SPARE, lambda: repr(p))


@pytest.mark.parametrize("text", [
    "conv(" * D + "1" + ")" * D,
    "bitdepth(" + "[" * (D - 1) + "1" + "]" * (D - 1) + ")",
    "id -> " + "-" * D + "id",
    "noise(" + "-" * (D - 1) + "1)",
    "dwt -> <LL: " * D + "id" + "> -> idwt" * D,
    "dwt -> " + "<*: " * D + "id" + ">" * D + " -> idwt",
], ids=["calls", "lists", "signs-on-a-stage", "signs-on-a-number", "part-maps", "star-part-maps"])
def test_deepest_allowed_nesting_of_ill_typed_programs_gives_a_fif_error(text):
    assert _with_frames_used(SPARE, lambda: fif.format(text))
    with pytest.raises(fif.FifError) as info:
        _with_frames_used(SPARE, lambda: fif.compile(text, input_shape=(1, 8, 8)))
    assert info.value.code[:2] in ("E2", "E3") and info.value.line == 1


# ---- nesting through lets and defs: E209 ----------------------------------------------------------

def _let_chain(n):
    return "let a0 = conv(1)\n" + "".join(f"let a{i} = mean {{ a{i - 1} -> id }}\n"
                                         for i in range(1, n)) + f"a{n - 1}\n"


def _def_chain(n):
    return "def f0() = conv(1)\n" + "".join(f"def f{i}() = residual {{ f{i - 1} -> id }}\n"
                                           for i in range(1, n)) + f"f{n - 1}\n"


def test_lets_and_defs_nested_within_the_limit_compile_and_run():
    for text in (_let_chain(MAX_DEPTH // 3 - 1), _def_chain(MAX_DEPTH // 3 - 1)):
        p = _with_frames_used(SPARE, lambda: fif.compile(text, input_shape=(1, 8, 8)))
        x = torch.rand(2, 1, 8, 8)
        assert _with_frames_used(SPARE, lambda: p(x)).shape == x.shape


@pytest.mark.parametrize("chain,per_link,first", [(_let_chain, 3, 2), (_def_chain, 2, 1)], ids=["lets", "defs"])
def test_lets_and_defs_nested_past_the_limit_are_E209_at_the_crossing_op(chain, per_link, first):
    # A let link is three levels (the use, the block, the sequence in it), a def link two; the
    # block of the link j below the root sits at level first + per_link * j.
    n = MAX_DEPTH // per_link + 10
    j = (MAX_DEPTH - first) // per_link + 1  # the first link whose block is past the limit
    ((code, line, col),) = _pos(_err(chain(n)))
    assert (code, line) == ("E209", n - j) and col > 1


@pytest.mark.parametrize("chain", [_let_chain, _def_chain], ids=["lets", "defs"])
def test_lets_and_defs_hundreds_deep_are_E209_not_recursion_errors(chain):
    e = _err(chain(400))
    assert e.code == "E209" and e.line is not None


def test_a_long_flat_chain_of_lets_is_E209():
    text = "let a0 = id\n" + "".join(f"let a{i} = a{i - 1}\n" for i in range(1, 400)) + "a399\n"
    assert _err(text).code == "E209"


# ---- programs that unfold to too many stages: E235, not a hang ---------------------------------------

@pytest.mark.parametrize("text", [
    "mean { for q in [2, 4]: " * 30 + "bitdepth(q)" + " }" * 30,
    "def d(x) = x -> x\n" + "d(" * 30 + "id" + ")" * 30,
    "def d0() = id\n" + "".join(f"def d{i}() = d{i - 1} -> d{i - 1}\n" for i in range(1, 40)) + "d39",
    "mean { for q in [" + ", ".join(["2"] * 2010) + "]: bitdepth(q) }",
], ids=["nested-for", "def-using-its-argument-twice", "defs-doubling", "long-for-list"])
def test_programs_unfolding_past_the_stage_limit_are_E235(text, monkeypatch):
    monkeypatch.setattr(limits, "MAX_STAGES", 2000)  # the real limit is larger; this keeps it quick
    e = _err(text)
    assert e.code == "E235" and e.line is not None and e.column is not None


def test_lets_are_unfolded_once_however_often_they_are_used():
    text = "let a0 = id\n" + "".join(f"let a{i} = a{i - 1} -> a{i - 1}\n" for i in range(1, 30)) + "a29"
    assert fif.compile(text, input_shape=(1, 8, 8)).plan.rows() is not None


# ---- defs whose arguments name defs and ops (these used to escape as AttributeError) ----------------

def test_a_def_may_take_its_own_use_as_argument():
    p = fif.compile("def f(x) = x -> clamp\nf(f(f(id)))", input_shape=(1, 8, 8))
    assert [r["op"] for r in p.plan.rows()] == ["id", "clamp", "clamp", "clamp"]


@pytest.mark.parametrize("text,expected", [
    ("def f(x) = x\nf(foo)", [("E201", 2, 3)]),
    ("def f(x) = x\nf(mean2 { id })", [("E201", 2, 3)]),
    ("def f(x) = x(1)\nf(id)", [("E201", 1, 12)]),
    ("def f(x=f) = x\nf", [("E203", 1, 5)]),
    ("def f(x) = x\nlet a = f(a)\na", [("E203", 2, 5)]),
    ("let a = mean { for q in [b]: q }\nlet b = a\na", [("E203", 1, 5), ("E203", 2, 5)]),
], ids=["unknown-name-as-argument", "unknown-block-as-argument", "parameter-with-arguments",
        "default-names-the-def", "let-through-an-argument", "let-through-a-for-list"])
def test_names_reached_only_through_arguments_are_checked(text, expected):
    assert _pos(_err(text)) == expected


def test_a_for_variable_may_share_a_let_name():
    p = fif.compile("let q = mean { for q in [id, zero]: q }\nq", input_shape=(1, 8, 8))
    assert p(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)


# ---- long inputs --------------------------------------------------------------------------------

def test_a_5000_stage_chain_compiles_runs_and_formats():
    text = "id -> " * 4999 + "id"
    program = fif.parse(text)
    assert len(program.items[0].value.steps) == 5000
    p = fif.compile(text, input_shape=(1, 8, 8))
    assert len(p.plan.rows()) == 5000
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(p(x), x)
    canonical = fif.format(text)
    assert len(canonical.splitlines()) == 5000  # too long for one line: one stage a line
    assert fif.format(canonical) == canonical and fif.parse(canonical) == program


def test_long_chains_inside_a_block_and_a_let():
    text = "let a = " + "bitdepth(2) -> " * 500 + "clamp\nmean { a | " + "id -> " * 499 + "id }"
    p = fif.compile(text, input_shape=(1, 8, 8))
    assert p.attack_view()(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)
    assert fif.parse(fif.format(text)) == fif.parse(text)


def test_long_sums_products_lists_arguments_and_branches():
    terms = " + ".join(["l1"] * 500)
    r = recipe_from_text(f"recipe r {{\n  defense = id\n  train {{ loss = {terms} + 2 * 3 * mse }}\n}}")
    (stage,) = r.train
    assert len(stage.loss) == 501 and stage.loss[-1].weight == 6
    many = [
        "bitdepth(" + ", ".join(["2"] * 500) + ")",
        "mean { " + " | ".join(["id"] * 500) + " }",
        "mean { for q in [" + ", ".join(["2"] * 500) + "]: bitdepth(q) }",
        "\n".join(f"let a{i} = id" for i in range(500)) + "\na0",
    ]
    for text in many:
        assert fif.parse(fif.format(text)) == fif.parse(text)
    assert _err(many[0]).code == "E220"
    assert len(fif.compile(many[2], input_shape=(1, 8, 8)).plan.rows()) == 501
