"""Malformed and ill-typed programs: each pinned to its (code, line, column), never its wording.
Also: several errors at once, rendering, a mutation fuzz (nothing but FifError escapes), the CLI."""

import importlib.util
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from torch import nn

import fif
from fif.kinds import TensorKind
from fif.registry import KindError, register_op, unregister_op

# ---- ops only these tests use: a size-changing part op (E333) and a shape-changing,
# non-differentiable op without a surrogate (E350). Registered for this module only.


class _Pool(nn.Module):
    def forward(self, x):
        return nn.functional.avg_pool2d(x, 2)


def _halve(inp, args, ctx):
    if not isinstance(inp, TensorKind):
        raise KindError("E301", f"t_halve needs a tensor, got {inp}")
    return inp.with_shape(H=inp.H // 2, W=inp.W // 2, kind="features")


@pytest.fixture(scope="module", autouse=True)
def test_ops():
    register_op("t_halve", lambda args, inp, out: _Pool(), infer=_halve, family="test")
    register_op("t_halve_nd", lambda args, inp, out: _Pool(), infer=_halve, differentiable=False,
                family="test")
    yield
    unregister_op("t_halve")
    unregister_op("t_halve_nd")


MISSION = "dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt"

# (id, source, (code, line, column), input_shape or None for (1, 28, 28)).
# Exactly one diagnostic is expected for each.
ERRORS = [
    # -- E1xx: syntax ---------------------------------------------------------------------------
    ("eof-after-arrow", "dwt ->", ("E102", 1, 7)),
    ("eof-after-arrow-multiline", "dwt\n  -> idwt\n  ->\n\n", ("E102", 3, 5)),
    ("eof-after-equals", "let a =", ("E102", 1, 8)),
    ("eof-after-let", "let", ("E102", 1, 4)),
    ("eof-after-minus", "id -> -", ("E102", 1, 8)),
    ("eof-arrow-then-comment", "dwt -> # more later\n", ("E102", 1, 7)),
    ("unclosed-angle", "dwt -> <LL: downup", ("E104", 1, 8)),
    ("unclosed-angle-multiline", "dwt\n  -> <LL: downup\n  -> idwt", ("E104", 2, 6)),
    ("unclosed-brace", "mean { id | id", ("E104", 1, 6)),
    ("unclosed-brace-after-arrow", "mean { id | id ->", ("E104", 1, 6)),
    ("unclosed-paren", "conv(3", ("E104", 1, 5)),
    ("unclosed-paren-group", "id -> (id", ("E104", 1, 7)),
    ("unclosed-bracket", "mean { for q in [1, 2", ("E104", 1, 17)),
    ("unclosed-innermost", "dwt -> <LL: mean { conv(4", ("E104", 1, 24)),
    ("unclosed-recipe", "recipe r {\n  data = mnist5k\n", ("E104", 1, 10)),
    ("stray-arrow-at-start", "-> dwt", ("E105", 1, 1)),
    ("stray-arrow-doubled", "dwt -> -> idwt", ("E105", 1, 8)),
    ("stray-arrow-in-partmap", "dwt -> <LL: -> downup> -> idwt", ("E105", 1, 13)),
    ("stray-arrow-after-let", "let a = -> id\na", ("E105", 1, 9)),
    ("stray-arrow-at-end", "dwt -> idwt ->", ("E102", 1, 15)),
    ("bad-number-two-dots", "bitdepth(1.2.3)", ("E106", 1, 13)),
    ("bad-number-exponent", "bitdepth(1e)", ("E106", 1, 11)),
    ("bad-number-double-exponent", "noise(2e-4e5)", ("E106", 1, 11)),
    ("bad-number-hex", "bitdepth(0x10)", ("E106", 1, 11)),
    ("bad-number-trailing-dot", "noise(.5.)", ("E106", 1, 9)),
    ("divide-by-zero", "clamp(1/0)", ("E106", 1, 9)),
    ("divide-by-float-zero", "noise(1/0.0)", ("E106", 1, 9)),
    ("number-too-large", "noise(1e999)", ("E106", 1, 7)),
    ("unterminated-double", 'noise("abc)', ("E107", 1, 7)),
    ("unterminated-single", "noise('abc", ("E107", 1, 7)),
    ("string-across-lines", 'noise("ab\ncd")', ("E107", 1, 7)),
    ("bad-escape", 'noise("\\ud800")', ("E107", 1, 7)),
    ("char-at", "dwt @ idwt", ("E101", 1, 5)),
    ("char-dollar", "dwt $", ("E101", 1, 5)),
    ("char-percent", "noise(10%)", ("E101", 1, 9)),
    ("char-ampersand-line-2", "dwt\n  & idwt", ("E101", 2, 3)),
    ("two-names", "dwt idwt", ("E103", 1, 5)),
    ("stray-close-paren", "id -> id)", ("E103", 1, 9)),
    ("stray-close-angle", "id>", ("E103", 1, 3)),
    ("stray-close-brace", "id}", ("E103", 1, 3)),
    ("empty-block", "mean { }", ("E103", 1, 8)),
    ("empty-partmap", "dwt -> <> -> idwt", ("E103", 1, 9)),
    ("partmap-without-colon", "dwt -> <LL> -> idwt", ("E103", 1, 11)),
    ("empty-argument", "conv(3,,)", ("E103", 1, 8)),
    ("let-without-name", "let = id", ("E103", 1, 5)),
    ("let-without-equals", "let a id", ("E103", 1, 7)),
    ("def-without-parens", "def f = id", ("E103", 1, 7)),
    ("recipe-without-name", "recipe { }", ("E103", 1, 8)),
    ("recipe-field-without-value", "recipe r { a = }", ("E103", 1, 16)),
    ("two-pipelines", "dwt -> idwt\nid", ("E103", 2, 1)),
    ("main-starts-with-paren", "(id -> id)", ("E103", 1, 1)),
    ("fraction-of-negative", "noise(3/-1)", ("E103", 1, 9)),
    # Keywords are never names, wherever they stand (fif fmt may move a field to another line).
    ("keyword-as-field-name", "recipe r {\n  eval { n = 1; recipe = 2 }\n  defense = id\n}", ("E103", 2, 17)),
    ("keyword-as-keyword-argument", "noise(in=0.1)", ("E103", 1, 7)),
    ("keyword-as-for-variable", "mean { for for in [1]: id }", ("E103", 1, 12)),
    ("syntax-error-line-4", "# comment\nlet a = conv(4)\n\na -> dwt -> <LL: id,, HH: zero> -> idwt", ("E103", 4, 21)),
    # -- E2xx: names and arguments -----------------------------------------------------------------
    ("unknown-op", "dwt -> <LL: downpu> -> idwt", ("E201", 1, 13)),
    ("unknown-op-first", "dwtt", ("E201", 1, 1)),
    ("unknown-op-in-block", "mean { bitdepht(2) | id }", ("E201", 1, 8)),
    ("unknown-op-in-let", "let a = conv(4) -> nosie(0.1)\na", ("E201", 1, 20)),
    ("unknown-op-line-3", "let a = id\n\ndwt -> <LL: a, HH: zer0> -> idwt", ("E201", 3, 20)),
    ("declared-twice", "let a = id\nlet a = zero\na", ("E204", 2, 5)),
    ("declared-twice-let-def", "let a = id\ndef a() = zero\na", ("E204", 2, 5)),
    ("def-param-twice", "def f(a, b, a) = id\nf(1, 2, 3)", ("E204", 1, 13)),
    ("let-shadows-op", "let dwt = id\ndwt", ("E205", 1, 5)),
    ("def-shadows-op", "def noise(s) = id\nid", ("E205", 1, 5)),
    ("recursive-def", "def f(r) = id -> f(r)\nf(1)", ("E203", 1, 5)),
    ("recursive-let", "let a = id -> a\na", ("E203", 1, 5)),
    ("no-pipeline", "let a = id", ("E206", 1, 11)),
    ("no-pipeline-empty", "", ("E206", 1, 1)),
    ("no-pipeline-comment", "# only a comment\n", ("E206", 1, 1)),
    ("number-as-stage", "3", ("E207", 1, 1)),
    ("number-in-sequence", "dwt -> 3 -> idwt", ("E207", 1, 8)),
    ("fraction-as-stage", "id -> 1/6", ("E207", 1, 7)),
    ("string-as-stage", 'id -> "x"', ("E207", 1, 7)),
    ("list-as-stage", "id -> [1, 2]", ("E207", 1, 7)),
    ("number-as-part-pipeline", "dwt -> <LL: 2> -> idwt", ("E207", 1, 13)),
    ("sum-as-stage", "id + id", ("E208", 1, 1)),
    ("product-as-stage", "2 * id", ("E208", 1, 1)),
    ("neg-as-stage", "id -> -id", ("E208", 1, 7)),
    ("too-many-args", "bitdepth(4, 5)", ("E220", 1, 13)),
    ("too-many-args-block", "residual(3) { id }", ("E220", 1, 10)),
    ("too-many-args-def", "def f(r=1) = noise(r)\nf(1, 2)", ("E220", 2, 6)),
    ("unknown-keyword", "conv(kk=3)", ("E221", 1, 6)),
    ("unknown-keyword-def", "def f(r=1) = noise(r)\nf(q=1)", ("E221", 2, 3)),
    ("unknown-keyword-second", "noise(0.1, clip=true, clop=false)", ("E221", 1, 23)),
    ("missing-required", "bitdepth", ("E222", 1, 1)),
    ("missing-required-in-sequence", "dwt -> idwt -> noise()", ("E222", 1, 16)),
    ("missing-required-def", "def f(r) = noise(r)\nf", ("E222", 2, 1)),
    ("wrong-type-name-for-int", "bitdepth(x)", ("E223", 1, 10)),
    ("wrong-type-list", "bitdepth([1, 2])", ("E223", 1, 10)),
    ("wrong-type-string", 'bitdepth("4")', ("E223", 1, 10)),
    ("wrong-type-float-for-int", "conv(2.5)", ("E223", 1, 6)),
    ("wrong-type-number-for-choice", "dwt(wavelet=3) -> idwt", ("E223", 1, 13)),
    ("wrong-type-bool", "noise(0.1, clip=maybe)", ("E223", 1, 17)),
    ("out-of-range-low", "bitdepth(1)", ("E224", 1, 10)),
    ("out-of-range-high", "bitdepth(levels=300)", ("E224", 1, 17)),
    ("out-of-range-bits", "bitdepth(9, bits=true)", ("E224", 1, 10)),
    ("bits-is-keyword-only", "bitdepth(2, true)", ("E220", 1, 13)),
    ("out-of-range-negative", "noise(-0.5)", ("E224", 1, 7)),
    ("out-of-range-ratio", "chancompress(7)", ("E224", 1, 14)),
    ("out-of-range-clamp", "clamp(1, 0)", ("E224", 1, 10)),
    ("even-kernel", "conv(k=4)", ("E224", 1, 8)),
    ("out-of-range-in-for", "mean { for q in [1, 2]: bitdepth(q) }", ("E224", 1, 18)),
    ("given-twice", "bitdepth(4, levels=4)", ("E225", 1, 13)),
    ("given-twice-keywords", "noise(sigma=0.1, sigma=0.2)", ("E225", 1, 18)),
    ("given-twice-flag", "chancompress(noise, noise=3)", ("E225", 1, 21)),
    ("given-twice-def", "def f(r) = noise(r)\nf(r=1, r=2)", ("E225", 2, 8)),
    ("bad-choice-wavelet", "dwt(haarr) -> idwt", ("E226", 1, 5)),
    ("bad-choice-mode", "dwt(mode=per) -> idwt", ("E226", 1, 10)),
    ("bad-choice-act", "conv(act=relux)", ("E226", 1, 10)),
    ("braces-on-plain-op", "bitdepth(4) { id }", ("E230", 1, 1)),
    ("braces-on-let", "let e = conv(4)\ne { id }", ("E230", 2, 1)),
    ("braces-on-def", "def f() = conv(4)\nid -> f { id }", ("E230", 2, 7)),
    ("residual-two-branches", "residual { id | id }", ("E231", 1, 1)),
    ("for-over-number", "mean { for q in 3: id }", ("E232", 1, 17)),
    ("for-over-empty-list", "mean { for q in []: id }", ("E232", 1, 17)),
    ("for-over-name", "mean { id | for q in qs: noise(q) }", ("E232", 1, 22)),
    ("block-without-braces", "mean", ("E233", 1, 1)),
    ("block-without-braces-in-part", "dwt -> <LL: residual> -> idwt", ("E233", 1, 13)),
    ("let-with-args", "let a = id\na(3)", ("E234", 2, 1)),
    # -- E3xx: kinds, parts, shapes ----------------------------------------------------------------
    ("idwt-first", "idwt", ("E301", 1, 1)),
    ("idwt-twice", "dwt -> idwt -> idwt", ("E301", 1, 16)),
    ("bitdepth-after-conv", "conv(4) -> bitdepth(4)", ("E301", 1, 12)),
    ("bitdepth-on-parts", "dwt -> bitdepth(4)", ("E301", 1, 8)),
    ("conv-on-parts", "dwt -> conv(4) -> idwt", ("E301", 1, 8)),
    ("partmap-on-image", "<LL: id>", ("E310", 1, 1)),
    ("partmap-after-idwt", "dwt -> idwt -> <LL: id>", ("E310", 1, 16)),
    ("unknown-part", "dwt -> <XX: id> -> idwt", ("E311", 1, 9)),
    ("unknown-part-level-suffix", "dwt -> <HH1: zero> -> idwt", ("E311", 1, 9)),
    ("unknown-part-two-levels", "dwt(levels=2) -> <HH: zero> -> idwt", ("E311", 1, 19)),
    ("repeated-part", "dwt -> <LL: id, LL: zero> -> idwt", ("E312", 1, 17)),
    ("repeated-part-same-group", "dwt -> <HH, HL, HH: zero> -> idwt", ("E312", 1, 17)),
    ("star-twice", "dwt -> <*: id, *: zero> -> idwt", ("E313", 1, 16)),
    ("mean-different-kinds", "mean { id | dwt }", ("E320", 1, 1)),
    ("mean-different-channels", "mean { for q in [1, 2]: conv(q) }", ("E320", 1, 1)),
    ("residual-changes-shape", "residual { conv(4) }", ("E321", 1, 1)),
    ("downup-not-dividing", "dwt -> <LL: downup(3)> -> idwt", ("E330", 1, 20)),
    ("downup-keyword-not-dividing", "dwt -> <LL: downup, HH: conv(1), HL: downup(factor=5)> -> idwt", ("E330", 1, 52)),
    ("odd-size-before-dwt", "dwt -> idwt", ("E331", 1, 1), (1, 27, 28)),
    ("odd-size-second-level", "dwt(levels=2) -> idwt", ("E331", 1, 12), (1, 14, 14)),
    ("odd-size-third-level", "dwt(haar, 3)", ("E331", 1, 11)),
    ("idwt-after-channels-changed", "dwt -> <LL: conv(4)> -> idwt", ("E332", 1, 25)),
    ("idwt-after-size-changed", "dwt -> <HH: t_halve> -> idwt", ("E333", 1, 25)),
    ("idwt-on-nested-parts", "dwt -> <LL: dwt -> <LL: id>> -> idwt", ("E304", 1, 33)),
    ("let-on-two-kinds", "let enc = conv(4)\nenc -> enc", ("E340", 2, 8)),
    ("let-on-two-sizes", "let enc = conv(1)\nenc -> dwt -> <LL: enc> -> idwt", ("E340", 2, 20)),
    ("nondifferentiable-shape-change", "t_halve_nd", ("E350", 1, 1)),
    # -- positions deep in multi-line programs, recipes and defs ---------------------------------------
    ("line-4-kind-error", "# a comment line\nlet enc = conv(4)\n\ndwt -> <LL: downup(3)>\n    -> idwt", ("E330", 4, 20)),
    ("line-5-unknown-part", "let a = id\nlet b = zero\n\ndwt\n  -> <HH: a, XY: b>\n  -> idwt", ("E311", 5, 14)),
    ("recipe-defense-unknown-op",
     "recipe acm {\n  data = mnist5k\n  classifier = smallcnn\n  defense = conv(8)\n      -> dwt\n"
     "      -> <HH, HL, LH: chancompress(1/6, noise), LL: downpu>\n      -> idwt\n}", ("E201", 6, 53)),
    ("recipe-defense-unknown-part",
     "recipe r {\n  data = mnist5k\n  defense = dwt -> <XX: id> -> idwt\n}", ("E311", 3, 21)),
    ("recipe-defense-bad-arg",
     "recipe r {\n  def band(r=1/6) = chancompress(r, noise)\n  defense = dwt -> <HH: band(2)> -> idwt\n}",
     ("E224", 3, 30)),
    ("recipe-without-defense", "recipe r {\n  data = mnist5k\n}", ("E419", 1, 8)),
    ("def-body-error-through-use", "def f() = dwt -> <XX: id> -> idwt\nid -> f", ("E311", 1, 19)),
    ("def-body-bad-keyword-through-use", "def f(c) = conv(c, kk=3)\n\nf(2)", ("E221", 1, 20)),
    ("def-arg-out-of-range-at-use", "def f(r) = chancompress(r)\ndwt -> <HH: f(7)> -> idwt", ("E224", 2, 15)),
    ("def-changes-channels-at-use", "def band(r=1/6) = chancompress(r, noise) -> conv(3)\ndwt -> <HH: band> -> idwt",
     ("E332", 2, 22)),
]


def _cases():
    for case in ERRORS:
        name, src, expected = case[:3]
        shape = case[3] if len(case) > 3 else (1, 28, 28)
        yield pytest.param(src, expected, shape, id=name)


def test_error_table_is_big_enough():
    assert len(ERRORS) >= 70
    assert len({c[0] for c in ERRORS}) == len(ERRORS)


def _compile_error(src, shape=(1, 28, 28), name="<string>") -> fif.FifError:
    with pytest.raises(fif.FifError) as info:
        fif.compile(src, input_shape=shape, name=name)
    return info.value


@pytest.mark.parametrize("src,expected,shape", list(_cases()))
def test_error_code_line_column(src, expected, shape):
    err = _compile_error(src, shape)
    got = [(d.code, d.line, d.column) for d in err.diagnostics]
    assert got == [expected]
    assert (err.code, err.line, err.column) == expected


@pytest.mark.parametrize("src,expected,shape", list(_cases()))
def test_every_error_renders_with_position_and_caret(src, expected, shape):
    err = _compile_error(src, shape, name="defense.fif")
    code, line, column = expected
    text = err.render()
    lines = text.splitlines()
    assert lines[0].startswith(f"defense.fif:{line}:{column}: error[{code}]: "), text
    assert str(err) == text
    assert "Traceback" not in text
    # The excerpt: `N | source line`, then a caret under the column.
    source_lines = src.splitlines() or [""]
    shown = source_lines[line - 1] if line <= len(source_lines) else ""
    assert lines[2] == f"{line} | {shown}"
    caret = lines[3]
    prefix = " " * len(str(line)) + " | "
    assert caret.startswith(prefix)
    marks = caret[len(prefix):]
    assert marks.index("^") == column - 1
    assert set(marks.strip()) == {"^"}
    for d in err.diagnostics:
        assert d.message and d.file == "defense.fif"


def test_did_you_mean_hints():
    err = _compile_error("dwt -> <LL: downpu> -> idwt")
    assert "downup" in err.hint
    assert "did you mean 'downup'?" in err.render()
    assert "dwt" in _compile_error("dwtt -> idwt").hint
    assert "'k'" in _compile_error("conv(kk=3)").hint
    assert "clip" in _compile_error("noise(0.1, clop=false)").hint
    assert "haar" in _compile_error("dwt(haarr) -> idwt").hint
    assert "relu" in _compile_error("conv(act=relux)").hint
    assert "HH" in _compile_error("dwt -> <hh: zero> -> idwt").hint
    # An unknown part lists the parts that exist.
    message = _compile_error("dwt -> <XX: id> -> idwt").message
    assert all(p in message for p in ("LL", "LH", "HL", "HH"))


def test_let_named_in_hint():
    err = _compile_error("let encoder = conv(4)\nencodr")
    assert err.code == "E201" and "encoder" in err.hint


def test_mission_example_rendering_matches_the_design():
    src = "recipe acm {\n  data = mnist5k\n  defense = dwt\n  -> <HH, HL, LH: chancompress(1/6, noise), LL: downpu> -> idwt\n}\n"
    err = _compile_error(src, name="acm.fif")
    assert err.render() == (
        "acm.fif:4:49: error[E201]: unknown operator 'downpu'\n"
        "  |\n"
        "4 |   -> <HH, HL, LH: chancompress(1/6, noise), LL: downpu> -> idwt\n"
        "  |                                                 ^^^^^^\n"
        "  = hint: did you mean 'downup'?"
    )


# ---- several errors in one program -------------------------------------------------------------

MANY = [
    ("three-unknown-ops", "dwtt -> <LL: downpu> -> idwtt", [("E201", 1, 1), ("E201", 1, 14), ("E201", 1, 25)]),
    ("unknown-ops-on-lines", "let a = nosie(1)\n\nid -> a -> <LL: zer0>\n  -> idwtt",
     [("E201", 1, 9), ("E201", 3, 17), ("E201", 4, 6)]),
    ("errors-in-branches", "mean { bitdepth(1) | conv(kk=2) | noise(-1) }",
     [("E224", 1, 17), ("E221", 1, 27), ("E224", 1, 41)]),
    ("arguments-of-one-call", "noise(0.1, 0.2, true, colour=3)",
     [("E223", 1, 12), ("E220", 1, 17), ("E221", 1, 23)]),
    ("part-map-problems", "dwt -> <XX: id, LL: id, LL: zero, *: id, *: zero> -> idwt",
     [("E311", 1, 9), ("E312", 1, 25), ("E313", 1, 42)]),
    ("mutual-recursion", "let a = b\nlet b = a\na", [("E203", 1, 5), ("E203", 2, 5)]),
    ("declarations", "let dwt = id\nlet a = id\nlet a = zero\ndef idwt() = id\na",
     [("E205", 1, 5), ("E204", 3, 5), ("E205", 4, 5)]),
    ("several-parts", "dwt -> <LL: downup(3), HH: conv(2), HL: bitdepth(4)> -> idwt",
     [("E330", 1, 20), ("E301", 1, 41)]),
]


@pytest.mark.parametrize("src,expected", [m[1:] for m in MANY], ids=[m[0] for m in MANY])
def test_several_errors_are_all_reported_in_order(src, expected):
    err = _compile_error(src)
    assert len(err.diagnostics) == len(expected)
    assert [(d.code, d.line, d.column) for d in err.diagnostics] == expected
    rendered = err.render()
    positions = [rendered.index(f"<string>:{line}:{col}: error[{code}]") for code, line, col in expected]
    assert positions == sorted(positions)


def test_diagnostics_are_sorted_even_when_found_out_of_order():
    """Names are checked in declarations first, but reported by position."""
    err = _compile_error("bitdepht(2) -> a\nlet a = zer0")
    assert [(d.code, d.line) for d in err.diagnostics] == [("E201", 1), ("E201", 2)]


# ---- fuzz: mutated valid programs only ever raise FifError -----------------------------------

SEEDS = [
    MISSION,
    "conv(4, depth=2) -> conv(out=input) -> clamp",
    "mean { bitdepth(2) | bitdepth(4) | for q in [3, 5]: bitdepth(q) }",
    "let enc = conv(4)\ndef band(r=1/6) = chancompress(r, noise)\nenc -> conv(out=input) -> dwt -> <HH: band, *: id> -> idwt",
    "residual { conv(8, k=5) -> conv(out=input) } -> clamp(0, 1)",
    "dwt(db2, levels=2) -> <HH1, HL1: zero, LL: downup(2)> -> idwt",
    "noise(0.1, clip=false) -> clamp(-0.5, 1.5) # comment\n",
    "recipe r {\n data = mnist5k\n defense = dwt -> <LL: downup(2)> -> idwt\n"
    " train { loss = 0.9 * ce(clean) + 0.1 * ce(jpeg(50) -> noise(0.1)); optim = adam(lr=2e-4) }\n}",
    'dwt(haar, mode="periodization") -> <LL: chancompress(code=1, test_noise=true)> -> idwt',
]
# The canonical fixtures and the grammar's table of valid programs are mutated too.
_HERE = Path(__file__).parent
FUZZ_SOURCES = SEEDS + [f.read_text(encoding="utf-8") for f in sorted((_HERE / "fixtures" / "canonical").glob("*.fif"))]


def _grammar_table():
    spec = importlib.util.spec_from_file_location("_fif_test_grammar", _HERE / "test_grammar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [text for _, text, _ in module.VALID] + [text for _, text, _ in module.PROGRAMS]


FUZZ_SOURCES += _grammar_table()

TOKENS = ["->", "<", ">", "{", "}", "(", ")", "[", "]", ",", ":", "|", "*", "+", "=", ";", "-", "/", ".",
          "0", "1", "7", "2e-4", "1/0", '"', "'", "#", "\n", " ", "x", "dwt", "idwt", "LL", "let", "def",
          "for", "in", "recipe", "mean", "residual", "conv", "@", "é"]


def _mutate(text, rng):
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(text) + 1)
        op = rng.randrange(4)
        if op == 0 and text:
            text = text[:k] + text[k + 1:]
        elif op == 1 and text:
            text = text[:k] + text[k:k + 1] + text[k:]
        elif op == 2 and len(text) > 1:
            i, j = sorted((rng.randrange(len(text)), rng.randrange(len(text))))
            text = text[:i] + text[j] + text[i + 1:j] + text[i] + text[j + 1:]
        else:
            text = text[:k] + rng.choice(TOKENS) + text[k:]
    return text


def test_seeds_compile():
    for seed in SEEDS:
        fif.compile(seed, input_shape=(1, 8, 8))


def test_mutations_only_raise_fif_errors():
    rng = random.Random(20240601)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(1500):
        text = _mutate(rng.choice(FUZZ_SOURCES), rng)
        try:
            fif.compile(text, input_shape=(1, 8, 8))
            outcomes["ok"] += 1
        except fif.FifError as e:
            outcomes["error"] += 1
            rendered = e.render()
            assert re.match(r"^\S+:(\d+:\d+: )?error\[E\d{3}\]: ", rendered), rendered
        except Exception as e:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{type(e).__name__}: {e} escaped for {text!r}")
    assert outcomes["error"] > 500 and outcomes["ok"] > 30


# ---- the command line -------------------------------------------------------------------------

def _cli():
    from fif.cli import main
    return main


def test_cli_compile_bad_expression_exits_1_with_rendered_diagnostic():
    result = CliRunner().invoke(_cli(), ["compile", "-e", "dwt -> <LL: downpu> -> idwt"])
    assert result.exit_code == 1
    err = result.stderr
    assert err.startswith("<expr>:1:13: error[E201]: ")
    assert "^^^^^^" in err and "did you mean 'downup'?" in err
    assert "error[" not in result.stdout
    assert "Traceback" not in result.output


def test_cli_compile_bad_file_points_into_it(tmp_path):
    f = tmp_path / "bad.fif"
    f.write_text("# defense\n\ndwt -> <LL: downup(3)> -> idwt\n", encoding="utf-8")
    result = CliRunner().invoke(_cli(), ["compile", str(f)])
    assert result.exit_code == 1
    assert f"{f}:3:20: error[E330]" in result.output
    assert "Traceback" not in result.output


def test_cli_compile_missing_file_is_E401():
    result = CliRunner().invoke(_cli(), ["compile", "no/such/file.fif"])
    assert result.exit_code == 1
    assert "error[E401]" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("shape", ["1,28", "a,b,c", "0,28,28", "1,28,28,3", "-1,28,28"])
def test_cli_compile_bad_input_shape_is_usage_error(shape):
    result = CliRunner().invoke(_cli(), ["compile", "-e", "dwt -> idwt", "--input-shape", shape])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_cli_compile_good_expression_exits_0():
    result = CliRunner().invoke(_cli(), ["compile", "-e", MISSION, "--input-shape", "1,28,28"])
    assert result.exit_code == 0, result.output
    assert "chancompress" in result.output


def test_cli_compile_odd_shape_from_command_line():
    result = CliRunner().invoke(_cli(), ["compile", "-e", "dwt -> idwt", "--input-shape", "1,27,28"])
    assert result.exit_code == 1
    assert "<expr>:1:1: error[E331]" in result.output


# ---- source files: one reader for fif.load_recipe and the command line ---------------------------

BAD_BYTES = [
    # (id, bytes, (line, column) of the first bad byte, in characters as the parser counts them)
    ("latin-1-on-line-3", "recipe r {\n  defense = id\n  # café\n}\n".encode("latin-1"), (3, 8)),
    ("after-a-multibyte-character", "# é\n# ü \xff".encode("utf-8").replace(b"\xc3\xbf", b"\xff"), (2, 5)),
    ("utf-16", "recipe r { defense = id }".encode("utf-16"), (1, 1)),
    ("truncated-at-the-end", "recipe r { defense = id }\n# \u20ac".encode("utf-8")[:-1], (2, 3)),
]


@pytest.mark.parametrize("data,where", [b[1:] for b in BAD_BYTES], ids=[b[0] for b in BAD_BYTES])
def test_recipe_file_that_is_not_utf8_is_E406_at_the_first_bad_byte(tmp_path, data, where):
    path = tmp_path / "r.fif"
    path.write_bytes(data)
    with pytest.raises(fif.FifError) as info:
        fif.load_recipe(path)
    e = info.value
    assert (e.code, e.file, (e.line, e.column)) == ("E406", str(path), where)
    assert e.render().startswith(f"{path}:{where[0]}:{where[1]}: error[E406]")
    assert e.hint


@pytest.mark.parametrize("command", [["compile"], ["fmt", "--check"]])
def test_cli_reads_files_with_the_same_reader(tmp_path, command):
    path = tmp_path / "d.fif"
    path.write_bytes(b"dwt -> idwt # \xe9\n")
    result = CliRunner().invoke(_cli(), command + [str(path)])
    assert result.exit_code == 1
    assert f"{path}:1:15: error[E406]" in result.output and "Traceback" not in result.output


def test_a_utf8_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.fif"
    path.write_bytes(b"\xef\xbb\xbfrecipe r { defense = bitdepth(2) }\n")
    assert fif.load_recipe(path).name == "r"


def test_missing_or_unreadable_paths_are_E401(tmp_path):
    (tmp_path / "tiny.fif").write_text("recipe t { defense = id }\n", encoding="utf-8")
    for path, hint in [(tmp_path, None), (tmp_path / "tiny", "tiny.fif"), (tmp_path / "tinyy.fif", "tiny.fif")]:
        with pytest.raises(fif.FifError) as info:
            fif.load_recipe(path)
        assert info.value.code == "E401" and info.value.file == str(path)
        assert hint is None or hint in info.value.hint
