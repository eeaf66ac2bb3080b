"""The canonical printer (`fif.format`, `fif fmt`): canonical fixtures are fixed points, messy inputs
have one canonical form, comments survive, and random programs round-trip (hypothesis)."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

import fif

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "canonical").glob("*.fif"))


def test_there_are_enough_canonical_fixtures():
    assert len(FIXTURES) >= 12


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_canonical_fixture_is_a_fixed_point(path):
    text = path.read_text(encoding="utf-8")
    assert fif.format(text) == text
    assert fif.parse(fif.format(text)) == fif.parse(text)


# Fixtures whose layout can be squashed by plain text replacement (no comments, no strings).
SQUASHABLE = [p for p in FIXTURES if not set(p.read_text(encoding="utf-8")) & set("#\"'")]


@pytest.mark.parametrize("path", SQUASHABLE, ids=[p.stem for p in SQUASHABLE])
def test_canonical_fixture_survives_being_messed_up(path):
    """Squash the layout: the canonical form comes back."""
    text = path.read_text(encoding="utf-8")
    messy = text.replace("\n    ", "\n").replace(" -> ", "->").replace(", ", " ,").replace(": ", " :")
    assert fif.parse(messy) == fif.parse(text)
    assert fif.format(messy) == text


def test_long_pipeline_breaks_before_arrows():
    text = (FIXTURES[0].parent / "10_long_pipeline.fif").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) > 1
    assert all(line.startswith("    -> ") for line in lines[1:])
    assert all(len(line) <= 100 for line in lines)
    assert len(" ".join(l.strip() for l in lines)) > 100  # it would not fit on one line


# ---- (messy input, canonical output) --------------------------------------------------------

PAIRS = [
    ("mission-as-written", "dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt",
     "dwt -> <HH, HL, LH: chancompress(1/6, noise), LL: downup> -> idwt\n"),
    ("no-spaces", "dwt->< LL :downup >->idwt", "dwt -> <LL: downup> -> idwt\n"),
    ("extra-spaces", "  dwt   ->   idwt   ", "dwt -> idwt\n"),
    ("split-lines", "dwt\n->\nidwt\n\n\n", "dwt -> idwt\n"),
    ("crlf", "dwt\r\n-> idwt\r\n", "dwt -> idwt\n"),
    ("tabs", "dwt\t->\tidwt", "dwt -> idwt\n"),
    ("empty-parens", "dwt() -> idwt()", "dwt -> idwt\n"),
    ("trailing-commas", "conv(4, k=3,) -> <LL: id,> -> f([1, 2,])", "conv(4, k=3) -> <LL: id> -> f([1, 2])\n"),
    ("keyword-spacing", "conv( out = input , k = 5 )", "conv(out=input, k=5)\n"),
    ("numbers", "f(2e-4, 1E3, .5, 5., 007, 1.50, -0.50, 1e+2)", "f(0.0002, 1000.0, 0.5, 5.0, 7, 1.5, -0.5, 100.0)\n"),
    ("small-and-large-numbers", "f(1e-7, 1e16, 123456789012345678901)", "f(1e-7, 1e16, 123456789012345678901)\n"),
    ("fractions", "f(1 / 6, 8/ 255, -1/6)", "f(1/6, 8/255, -1/6)\n"),
    ("strings", "f('a', 'say \"hi\"', \"it's\")", 'f("a", "say \\"hi\\"", "it\'s")\n'),
    ("block", "mean{bitdepth(2)|bitdepth(4)}", "mean { bitdepth(2) | bitdepth(4) }\n"),
    ("block-multiline", "mean {\n  a\n  | b\n}", "mean { a | b }\n"),
    ("for-branch", "vote{for q in[90,70]:jpeg(q)->smallcnn}", "vote { for q in [90, 70]: jpeg(q) -> smallcnn }\n"),
    ("star", "dwt-><HH:zero,*:id>->idwt", "dwt -> <HH: zero, *: id> -> idwt\n"),
    ("redundant-parens", "a -> (b -> c) -> ((d))", "a -> b -> c -> d\n"),
    ("needed-parens-kept", "f((a + b) * c, a * (b + c), -(a -> b))", "f((a + b) * c, a * (b + c), -(a -> b))\n"),
    ("needed-parens-seq", "f((a * b) -> c, (a + b) -> c)", "f((a * b) -> c, (a + b) -> c)\n"),
    ("dropped-parens-arith", "f((a * b) + c, a * (b -> c), (a) * b)", "f(a * b + c, a * b -> c, a * b)\n"),
    ("double-negation", "f(--1, - -a)", "f(1, --a)\n"),
    ("semicolons", "let a = id; let b = zero;; a -> b;", "let a = id\nlet b = zero\na -> b\n"),
    ("let-def-spacing", "let   enc=conv(4)\ndef  f( r = 1/6 ,s )=noise(r)\nenc->f(s=1)",
     "let enc = conv(4)\ndef f(r=1/6, s) = noise(r)\nenc -> f(s=1)\n"),
    ("def-empty-params", "def f( ) = id\nf", "def f() = id\nf\n"),
    ("recipe-one-line", "recipe r { data = mnist5k; train { epochs = 3; stage s { loss = l1 } }; eval { } }",
     "recipe r {\n  data = mnist5k\n  train {\n    epochs = 3\n    stage s {\n      loss = l1\n    }\n  }\n"
     "  eval {}\n}\n"),
    ("recipe-blank-line-around", "let a = id\nrecipe r {}\na", "let a = id\n\nrecipe r {}\n\na\n"),
    ("long-pipeline",
     "conv(32, depth=3) -> dwt(haar) -> <HH, HL, LH: chancompress(1/6, noise=20), LL: downup(2)> -> idwt -> conv(out=input)",
     "conv(32, depth=3)\n    -> dwt(haar)\n    -> <HH, HL, LH: chancompress(1/6, noise=20), LL: downup(2)>\n"
     "    -> idwt\n    -> conv(out=input)\n"),
    ("long-field-in-recipe",
     "recipe r { defense = conv(32, depth=3) -> dwt(haar) -> <HH, HL, LH: chancompress(1/6, noise=20), LL: downup(2)> -> idwt }",
     "recipe r {\n  defense = conv(32, depth=3)\n      -> dwt(haar)\n"
     "      -> <HH, HL, LH: chancompress(1/6, noise=20), LL: downup(2)>\n      -> idwt\n}\n"),
    ("empty", "", ""),
    ("only-whitespace", "\n\n  \n", ""),
]


@pytest.mark.parametrize("messy,canonical", [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_messy_input_has_one_canonical_form(messy, canonical):
    assert fif.format(messy) == canonical
    assert fif.format(canonical) == canonical
    assert fif.parse(canonical) == fif.parse(messy)


# ---- comments -------------------------------------------------------------------------------

COMMENTED = [
    ("before-statement", "# top\ndwt -> idwt", "# top\ndwt -> idwt\n"),
    ("end-of-line", "dwt -> idwt  # trailing", "# trailing\ndwt -> idwt\n"),
    ("inside-pipeline", "dwt # split\n  -> <LL: downup> # low\n  # between\n  -> idwt # back",
     "# split\n# low\n# between\n# back\ndwt -> <LL: downup> -> idwt\n"),
    ("after-everything", "dwt -> idwt\n# the end", "dwt -> idwt\n\n# the end\n"),
    ("only-comments", "# just\n# notes", "# just\n# notes\n"),
    ("per-declaration", "let a = id # x\nlet b = zero\n# y\na -> b",
     "# x\nlet a = id\nlet b = zero\n# y\na -> b\n"),
    ("in-recipe", "recipe r { # head\n  data = mnist5k # tail\n  train { # t\n    loss = l1\n    # last in train\n  }\n  # last in recipe\n}",
     "# head\nrecipe r {\n  # tail\n  data = mnist5k\n  # t\n  train {\n    loss = l1\n    # last in train\n  }\n"
     "  # last in recipe\n}\n"),
    ("hash-in-string", 'f("#not a comment") # but this is', '# but this is\nf("#not a comment")\n'),
]


@pytest.mark.parametrize("text,canonical", [c[1:] for c in COMMENTED], ids=[c[0] for c in COMMENTED])
def test_comments_survive_formatting(text, canonical):
    out = fif.format(text)
    assert out == canonical
    assert fif.format(out) == out
    for line in text.splitlines():
        if "#" in line and '"#' not in line:
            comment = line[line.index("#"):].strip()
            assert comment in out


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_format_is_idempotent_on_fixture_variants(path):
    text = path.read_text(encoding="utf-8")
    once = fif.format(text.replace("\n", "\n\n  "))
    assert fif.format(once) == once


# ---- property: random valid programs round-trip ----------------------------------------------

NAMES = st.sampled_from(["a", "b", "enc", "dwt", "idwt", "conv", "noise", "mean", "x_1", "LL", "Abc9"])
PART_NAMES = st.sampled_from(["LL", "LH", "HL", "HH", "LH1", "*"])
SEP = st.sampled_from(["", " ", "  ", "\n", " \n  ", "\t", " # note\n", "\n# a -> <b\n  "])
GAP = st.sampled_from([" ", "\n", "  ", " # gap\n"])  # where whitespace is required


def _number_text(i, f, e, style):
    if style == 0:
        return str(i)
    if style == 1:
        return f"{i}.{f}"
    if style == 2:
        return f".{f}"
    if style == 3:
        return f"{i}."
    return f"{i}e{'-' if e < 0 else '+' if e % 2 else ''}{abs(e)}"


NUMBERS = st.builds(_number_text, st.integers(0, 10 ** 6), st.integers(0, 999), st.integers(-12, 12),
                    st.integers(0, 4))
FRACTIONS = st.builds(lambda a, b: f"{a}/{b}", NUMBERS, st.integers(1, 999).map(str))


def _string_text(chars, single):
    if single:
        return "'" + "".join("\\" + c if c in "'\\" else "\\n" if c == "\n" else c for c in chars) + "'"
    return '"' + "".join("\\" + c if c in '"\\' else "\\n" if c == "\n" else c for c in chars) + '"'


STRINGS = st.builds(_string_text, st.text(alphabet="ab \"'\\\né#<>", max_size=6), st.booleans())
ATOMS = st.one_of(NAMES, NUMBERS, FRACTIONS, STRINGS)


def _extend(children):
    s = SEP

    def joined(items, sep):
        return sep.join(items)

    arg = st.one_of(children, st.tuples(NAMES, s, children).map(lambda t: f"{t[0]}{t[1]}={t[1]}{t[2]}"))
    call_args = st.tuples(NAMES, s, st.lists(arg, min_size=0, max_size=3), st.booleans()).map(
        lambda t: f"{t[0]}({t[1]}{(',' + t[1]).join(t[2])}{',' if t[3] and t[2] else ''})")
    lst = st.tuples(s, st.lists(children, max_size=3)).map(lambda t: f"[{t[0]}{', '.join(t[1])}]")
    seq = st.tuples(children, s, children).map(lambda t: f"{t[0]}{t[1]}->{t[1]}{t[2]}")
    paren = st.tuples(s, children).map(lambda t: f"({t[0]}{t[1]}{t[0]})")
    group = st.tuples(st.lists(PART_NAMES, min_size=1, max_size=3), s, children).map(
        lambda t: f"{', '.join(t[0])}{t[1]}:{t[1]}{t[2]}")
    partmap = st.tuples(st.lists(group, min_size=1, max_size=3), st.booleans(), s).map(
        lambda t: f"<{t[2]}{(',' + t[2]).join(t[0])}{',' if t[1] else ''}{t[2]}>")
    for_branch = st.tuples(NAMES, GAP, lst, children).map(lambda t: f"for{t[1]}{t[0]}{t[1]}in{t[1]}{t[2]}: {t[3]}")
    branch = st.one_of(children, for_branch)
    head = st.one_of(NAMES, call_args)
    blk = st.tuples(head, s, st.lists(branch, min_size=1, max_size=3)).map(
        lambda t: f"{t[0]}{t[1]}{{{t[1]}{(t[1] + '|' + t[1]).join(t[2])}{t[1]}}}")
    neg = children.map(lambda c: f"-{c}")
    arith = st.tuples(children, st.sampled_from(["+", "*"]), s, children).map(
        lambda t: f"{t[0]}{t[2]}{t[1]}{t[2]}{t[3]}")
    return st.one_of(call_args, lst, seq, paren, partmap, blk, neg, arith)


EXPRS = st.recursive(ATOMS, _extend, max_leaves=10)


def _main(expr):
    # A program's pipeline may not begin with '(' (`let a = b (c)` would be ambiguous).
    return f"id -> {expr}" if expr.lstrip().startswith("(") else expr


def _decl(kind, name, params, value):
    if kind == "let":
        return f"let {name} = {value}"
    ps = ", ".join(p if d is None else f"{p}={d}" for p, d in params)
    return f"def {name}({ps}) = {value}"


DECLS = st.builds(_decl, st.sampled_from(["let", "def"]), NAMES,
                  st.lists(st.tuples(NAMES, st.one_of(st.none(), NUMBERS, FRACTIONS)), max_size=2), EXPRS)
SECTIONS = st.recursive(
    st.tuples(NAMES, EXPRS).map(lambda t: f"{t[0]} = {t[1]}"),
    lambda inner: st.tuples(NAMES, st.one_of(st.just(""), NAMES.map(lambda x: " " + x)),
                            st.lists(inner, max_size=3)).map(
        lambda t: f"{t[0]}{t[1]} {{ {'; '.join(t[2])} }}"),
    max_leaves=4)
RECIPES = st.tuples(NAMES, st.lists(SECTIONS, max_size=3)).map(lambda t: f"recipe {t[0]} {{\n{chr(10).join(t[1])}\n}}")


@st.composite
def programs(draw):
    items = draw(st.lists(st.one_of(DECLS, RECIPES), max_size=3))
    if draw(st.booleans()) or not items:
        items.insert(draw(st.integers(0, len(items))), _main(draw(EXPRS)))
    seps = draw(st.lists(st.sampled_from(["\n", "; ", "\n\n", " # c\n", ";\n"]), min_size=len(items),
                         max_size=len(items)))
    return "".join(item + sep for item, sep in zip(items, seps))


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_random_programs_round_trip(text):
    tree = fif.parse(text)
    canonical = fif.format(text)
    assert fif.parse(canonical) == tree
    assert fif.format(canonical) == canonical


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(EXPRS)
def test_random_expressions_round_trip(expr):
    text = _main(expr)
    tree = fif.parse(text)
    canonical = fif.format(text)
    assert fif.parse(canonical) == tree
    assert fif.format(canonical) == canonical


# ---- the command line -------------------------------------------------------------------------

def _cli():
    from fif.cli import main
    return main


def test_cli_fmt_check_canonical_file_exits_0(tmp_path):
    f = tmp_path / "ok.fif"
    f.write_text(FIXTURES[0].read_text(encoding="utf-8"), encoding="utf-8")
    result = CliRunner().invoke(_cli(), ["fmt", "--check", str(f)])
    assert result.exit_code == 0, result.output
    assert f.read_text(encoding="utf-8") == FIXTURES[0].read_text(encoding="utf-8")


def test_cli_fmt_check_non_canonical_file_exits_1_and_leaves_it(tmp_path):
    f = tmp_path / "messy.fif"
    f.write_text("dwt->< LL :downup >->idwt", encoding="utf-8")
    result = CliRunner().invoke(_cli(), ["fmt", "--check", str(f)])
    assert result.exit_code == 1
    assert "messy.fif" in result.output
    assert f.read_text(encoding="utf-8") == "dwt->< LL :downup >->idwt"


def test_cli_fmt_rewrites_file(tmp_path):
    f = tmp_path / "messy.fif"
    f.write_text("# keep me\ndwt->< LL :downup >->idwt  # and me", encoding="utf-8")
    result = CliRunner().invoke(_cli(), ["fmt", str(f)])
    assert result.exit_code == 0, result.output
    assert f.read_text(encoding="utf-8") == "# keep me\n# and me\ndwt -> <LL: downup> -> idwt\n"
    again = CliRunner().invoke(_cli(), ["fmt", "--check", str(f)])
    assert again.exit_code == 0


def test_cli_fmt_several_files(tmp_path):
    good, bad = tmp_path / "good.fif", tmp_path / "bad.fif"
    good.write_text("dwt -> idwt\n", encoding="utf-8")
    bad.write_text("dwt->idwt", encoding="utf-8")
    result = CliRunner().invoke(_cli(), ["fmt", "--check", str(good), str(bad)])
    assert result.exit_code == 1
    assert "bad.fif" in result.output and "good.fif" not in result.output


def test_cli_fmt_syntax_error_exits_1_with_diagnostic(tmp_path):
    f = tmp_path / "broken.fif"
    f.write_text("dwt -> <LL: downup\n", encoding="utf-8")
    result = CliRunner().invoke(_cli(), ["fmt", str(f)])
    assert result.exit_code == 1
    assert "broken.fif:1:8: error[E104]" in result.output
    assert "Traceback" not in result.output
    assert f.read_text(encoding="utf-8") == "dwt -> <LL: downup\n"
