"""The grammar (grammars/fif.lark) and the parser: strict LALR, the mission example's exact tree, and a
table of valid programs covering every construct of the language."""

from fractions import Fraction as PyFraction

import pytest
from lark import Lark

import fif
from fif.syntax import grammar_text
from fif.syntax import nodes as n


def call(name, *args, **kwargs):
    """A Call node; positional args are nodes, keyword args become named Args."""
    out = [n.Arg(None, a) for a in args] + [n.Arg(k, v) for k, v in kwargs.items()]
    return n.Call(name, tuple(out))


def num(v):
    return n.Number(v)


def frac(a, b):
    return n.Fraction(a, b)


def seq(*steps):
    return n.Seq(tuple(steps))


def group(names, body):
    return n.Group(tuple(n.PartName(x) for x in names.split(",")), body)


def pmap(*groups):
    return n.PartMap(tuple(groups))


def block(c, *branches):
    return n.Block(c, tuple(branches))


def only_value(program):
    """The single statement's expression."""
    (item,) = program.items
    assert isinstance(item, n.Statement)
    return item.value


MISSION = "dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt"


def test_grammar_is_strict_lalr():
    """No shift/reduce or reduce/reduce conflicts, no colliding terminals (needs interegular)."""
    pytest.importorskip("interegular")
    parser = Lark(grammar_text(), parser="lalr", strict=True)
    assert parser.parse(MISSION) is not None


def test_grammar_file_is_the_repository_reference():
    from pathlib import Path
    reference = Path(__file__).resolve().parents[1] / "grammars" / "fif.lark"
    assert grammar_text() == reference.read_text(encoding="utf-8")


def test_mission_example_parses_exactly_as_written():
    program = fif.parse(MISSION)
    expected = seq(
        call("dwt"),
        pmap(
            group("HH,HL,LH", call("chancompress", frac(1, 6), call("noise"))),
            group("LL", call("downup")),
        ),
        call("idwt"),
    )
    value = only_value(program)
    assert value == expected
    # Spelled out, independent of the helper constructors above.
    assert isinstance(value, n.Seq) and len(value.steps) == 3
    dwt, partmap, idwt = value.steps
    assert dwt == n.Call("dwt") and dwt.args == ()
    assert idwt == n.Call("idwt") and idwt.args == ()
    assert [[p.name for p in g.names] for g in partmap.groups] == [["HH", "HL", "LH"], ["LL"]]
    cc = partmap.groups[0].body
    assert cc.name == "chancompress" and [a.name for a in cc.args] == [None, None]
    ratio, noise = (a.value for a in cc.args)
    assert isinstance(ratio, n.Fraction) and (ratio.num, ratio.den) == (1, 6)
    assert PyFraction(ratio.num, ratio.den) == PyFraction(1, 6)
    assert noise == n.Call("noise") and noise.args == ()  # the bare name, not a call with ()
    assert partmap.groups[1].body == n.Call("downup")


def test_mission_example_positions():
    value = only_value(fif.parse(MISSION))
    dwt, partmap, idwt = value.steps
    assert (dwt.span.line, dwt.span.column) == (1, 1)
    assert (partmap.span.line, partmap.span.column) == (1, 8)
    assert (idwt.name_span.line, idwt.name_span.column) == (1, 60)
    ll = partmap.groups[1].names[0]
    assert (ll.span.line, ll.span.column) == (1, 45)


# ---- valid programs: (id, text, expected value of the single statement or None) ----------------

VALID = [
    ("bare-name", "dwt", call("dwt")),
    ("empty-parens", "dwt()", call("dwt")),
    ("sequence", "a -> b -> c", seq(call("a"), call("b"), call("c"))),
    ("sequence-no-spaces", "a->b->c", seq(call("a"), call("b"), call("c"))),
    ("sequence-across-lines", "conv(8)\n  -> dwt\n  -> <LL: downup>\n  -> idwt\n",
     seq(call("conv", num(8)), call("dwt"), pmap(group("LL", call("downup"))), call("idwt"))),
    ("arrow-at-line-start", "a\n-> b", seq(call("a"), call("b"))),
    ("comment-lines", "# a defense\ndwt # split\n# then\n-> idwt # merge\n", seq(call("dwt"), call("idwt"))),
    ("comment-only-tail", "dwt -> idwt\n# the end", seq(call("dwt"), call("idwt"))),
    ("keyword-args", "conv(out=input, k=3, act=relu)",
     call("conv", out=call("input"), k=num(3), act=call("relu"))),
    ("mixed-args", "conv(32, depth=3)", call("conv", num(32), depth=num(3))),
    ("trailing-comma-args", "conv(32, depth=3,)", call("conv", num(32), depth=num(3))),
    ("number-int", "f(42)", call("f", num(42))),
    ("number-float", "f(0.25)", call("f", num(0.25))),
    ("number-exp", "f(2e-4)", call("f", num(2e-4))),
    ("number-exp-plus", "f(1E+3)", call("f", num(1000.0))),
    ("number-leading-dot", "f(.5)", call("f", num(0.5))),
    ("number-trailing-dot", "f(5.)", call("f", num(5.0))),
    ("number-negative", "f(-0.5)", call("f", num(-0.5))),
    ("number-negative-int", "clamp(-1, 2)", call("clamp", num(-1), num(2))),
    ("fraction", "f(8/255)", call("f", frac(8, 255))),
    ("fraction-negative", "f(-1/6)", call("f", n.Neg(frac(1, 6)))),
    ("fraction-float", "f(1.5/3)", call("f", frac(1.5, 3))),
    ("list", "f([1/255, 2/255, 0.1])", call("f", n.ListLit((frac(1, 255), frac(2, 255), num(0.1))))),
    ("list-empty", "f([])", call("f", n.ListLit(()))),
    ("list-trailing-comma", "f([1, 2,])", call("f", n.ListLit((num(1), num(2))))),
    ("list-nested", "f([[1], [2, 3]])",
     call("f", n.ListLit((n.ListLit((num(1),)), n.ListLit((num(2), num(3))))))),
    ("list-of-calls", "f([fgsm, pgd(steps=20)])",
     call("f", n.ListLit((call("fgsm"), call("pgd", steps=num(20)))))),
    ("string-double", 'f("a b")', call("f", n.String("a b"))),
    ("string-single", "f('a b')", call("f", n.String("a b"))),
    ("string-escapes", r'f("tab\there \"q\" \\ é")', call("f", n.String('tab\there "q" \\ é'))),
    ("partmap", "<LL: downup>", pmap(group("LL", call("downup")))),
    ("partmap-groups", "<HH, HL: zero, LL: downup(2)>",
     pmap(group("HH,HL", call("zero")), group("LL", call("downup", num(2))))),
    ("partmap-star", "<HH: zero, *: id>", pmap(group("HH", call("zero")), group("*", call("id")))),
    ("partmap-star-in-group", "<LL, *: id>", pmap(group("LL,*", call("id")))),
    ("partmap-trailing-comma", "<LL: id,>", pmap(group("LL", call("id")))),
    ("partmap-pipeline-body", "<LL: conv(4) -> conv(1)>",
     pmap(group("LL", seq(call("conv", num(4)), call("conv", num(1)))))),
    ("partmap-nested", "dwt -> <LL: dwt -> <HH: zero> -> idwt> -> idwt",
     seq(call("dwt"), pmap(group("LL", seq(call("dwt"), pmap(group("HH", call("zero"))), call("idwt")))),
         call("idwt"))),
    ("partmap-multiline", "<\n  HH: zero,\n  LL: id,\n>", pmap(group("HH", call("zero")), group("LL", call("id")))),
    ("block-one", "residual { conv(4) }", block(call("residual"), call("conv", num(4)))),
    ("block-several", "mean { bitdepth(2) | bitdepth(4) | id }",
     block(call("mean"), call("bitdepth", num(2)), call("bitdepth", num(4)), call("id"))),
    ("block-with-args", "vote(k=2) { a | b }", block(call("vote", k=num(2)), call("a"), call("b"))),
    ("block-pipeline-branches", "mean { a -> b | c -> d }",
     block(call("mean"), seq(call("a"), call("b")), seq(call("c"), call("d")))),
    ("block-for", "vote { for q in [90, 70, 50, 30]: jpeg(q) -> smallcnn }",
     block(call("vote"), n.ForBranch("q", n.ListLit((num(90), num(70), num(50), num(30))),
                                     seq(call("jpeg", call("q")), call("smallcnn"))))),
    ("block-for-and-plain", "mean { id | for s in [0.1, 0.2]: noise(s) }",
     block(call("mean"), call("id"), n.ForBranch("s", n.ListLit((num(0.1), num(0.2))), call("noise", call("s"))))),
    ("block-in-sequence", "conv(4) -> residual { conv(4) } -> clamp",
     seq(call("conv", num(4)), block(call("residual"), call("conv", num(4))), call("clamp"))),
    ("block-multiline", "mean {\n  a\n  | b\n}", block(call("mean"), call("a"), call("b"))),
    ("paren-group", "a -> (b -> c) -> d", seq(call("a"), call("b"), call("c"), call("d"))),
    ("paren-in-arg", "f((a -> b))", call("f", seq(call("a"), call("b")))),
    ("neg-main", "-a", n.Neg(call("a"))),
    ("sum", "ce + kl", n.Sum((call("ce"), call("kl")))),
    ("product", "2 * rep", n.Product((num(2), call("rep")))),
    ("loss-arithmetic", "0.9 * ce(clean) + 0.1 * ce(jpeg(50) -> noise(0.1))",
     n.Sum((n.Product((num(0.9), call("ce", call("clean")))),
            n.Product((num(0.1), call("ce", seq(call("jpeg", num(50)), call("noise", num(0.1))))))))),
    ("paren-arithmetic-in-arg", "f((a + b) * c)", call("f", n.Product((n.Sum((call("a"), call("b"))), call("c"))))),
    ("product-binds-looser-than-arrow", "2 * a -> b", n.Product((num(2), seq(call("a"), call("b"))))),
    ("arith-in-keyword", "f(w=0.5 * a + b)",
     call("f", w=n.Sum((n.Product((num(0.5), call("a"))), call("b"))))),
    ("semicolons", ";dwt -> idwt;", seq(call("dwt"), call("idwt"))),
    ("crlf-and-tabs", "dwt\r\n\t-> idwt\r\n", seq(call("dwt"), call("idwt"))),
    ("unicode-in-comment", "# défense über alles\nid", call("id")),
]


@pytest.mark.parametrize("text,expected", [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_program_parses_to_tree(text, expected):
    assert only_value(fif.parse(text)) == expected


# Programs with declarations and recipes: (id, text, check).

def _let_check(p):
    (let,) = p.lets
    assert let.name == "enc" and let.value == call("conv", num(32), depth=num(3))
    assert p.statements[0].value == seq(call("enc"), call("dwt"), call("idwt"), call("enc"))


def _def_check(p):
    (d,) = p.defs
    assert d.name == "band"
    assert d.params == (n.ParamDecl("r", frac(1, 6)), n.ParamDecl("sigma", None), n.ParamDecl("k", num(3)))
    assert d.body == seq(call("chancompress", call("r"), noise=call("sigma")), call("clamp"))


def _def_empty_check(p):
    (d,) = p.defs
    assert d.params == () and d.body == call("conv", num(4))


def _recipe_check(p):
    (r,) = p.recipes
    assert r.name == "acm" and not p.statements
    fields = {e.name: e.value for e in r.entries if isinstance(e, n.FieldEntry)}
    assert fields["data"] == call("mnist5k")
    assert fields["defense"] == seq(
        call("conv", num(32), depth=num(3)), call("dwt", call("haar")),
        pmap(group("HH,HL,LH", call("chancompress", frac(1, 6), noise=num(20))),
             group("LL", call("downup", num(2)))),
        call("idwt"), call("conv", out=call("input")))
    sections = [e for e in r.entries if isinstance(e, n.Section)]
    assert [(s.kind, s.label) for s in sections] == [("train", None), ("eval", None), ("variants", None)]
    train = sections[0]
    stages = [e for e in train.entries if isinstance(e, n.Section)]
    assert [(s.kind, s.label) for s in stages] == [("stage", "warmup"), ("stage", "robust")]
    loss = {e.name: e.value for e in stages[1].entries}["loss"]
    assert isinstance(loss, n.Sum) and len(loss.terms) == 2
    optim = {e.name: e.value for e in train.entries if isinstance(e, n.FieldEntry)}["optim"]
    assert optim == call("adam", lr=num(2e-4))
    eval_fields = {e.name: e.value for e in sections[1].entries}
    assert eval_fields["eps"] == n.ListLit((num(0.1), num(0.2), num(0.3)))
    assert isinstance(eval_fields["attacks"], n.ListLit) and len(eval_fields["attacks"].items) == 3


def _recipe_inner_decls_check(p):
    (r,) = p.recipes
    kinds = [type(e).__name__ for e in r.entries]
    assert kinds == ["Let", "Def", "FieldEntry"]


def _several_decls_check(p):
    assert [type(i).__name__ for i in p.items] == ["Let", "Let", "Def", "Statement"]
    assert p.statements[0].value == block(call("mean"), call("a"), call("b"))


def _decls_after_main_check(p):
    assert [type(i).__name__ for i in p.items] == ["Let", "Statement", "Def"]


def _only_decls_check(p):
    assert not p.statements and len(p.lets) == 1


RECIPE = """\
recipe acm {
  data       = mnist5k
  classifier = smallcnn
  defense    = conv(32, depth=3) -> dwt(haar)
               -> <HH, HL, LH: chancompress(1/6, noise=20), LL: downup(2)>
               -> idwt -> conv(out=input)
  train {
    optim = adam(lr=2e-4); batch = 64
    stage warmup { loss = l1; epochs = 3 }
    stage robust {
      loss = 0.9 * ce(clean) + 0.1 * ce(jpeg(50) -> noise(0.1))
      epochs = 2
    }
  }
  eval  { attacks = [fgsm, pgd(steps=20), mifgsm]; eps = [0.1, 0.2, 0.3]; threat = [graybox, adaptive] }
  variants { no_high = <HH, HL, LH: id, LL: downup(2)> }
}
"""

PROGRAMS = [
    ("let", "let enc = conv(32, depth=3)\nenc -> dwt -> idwt -> enc", _let_check),
    ("def-defaults", "def band(r=1/6, sigma, k=3) = chancompress(r, noise=sigma) -> clamp\nband", _def_check),
    ("def-no-params", "def enc() = conv(4)\nenc", _def_empty_check),
    ("recipe", RECIPE, _recipe_check),
    ("recipe-inner-decls", "recipe r { let e = conv(4); def f(a) = noise(a); defense = e -> f(0.1) }",
     _recipe_inner_decls_check),
    ("decls-and-semicolons", "let a = id; let b = zero; def f(x=1) = noise(x); mean { a | b }",
     _several_decls_check),
    ("decls-after-main", "let a = id\na\ndef f() = id", _decls_after_main_check),
    ("only-decls", "let a = id", _only_decls_check),
]


@pytest.mark.parametrize("text,check", [p[1:] for p in PROGRAMS], ids=[p[0] for p in PROGRAMS])
def test_valid_program_with_declarations(text, check):
    check(fif.parse(text))


def test_empty_and_comment_only_programs_parse():
    assert fif.parse("").items == ()
    assert fif.parse("# nothing here\n\n").items == ()


def test_spans_and_comments_do_not_take_part_in_equality_and_sequences_flatten():
    assert fif.parse("dwt->idwt") == fif.parse("# c\n  dwt\n\n   ->   idwt  # d\n")
    assert only_value(fif.parse("a -> (b -> c)")) == only_value(fif.parse("a -> b -> c"))
    assert only_value(fif.parse("x -> ((a -> b) -> c)")) == seq(call("x"), call("a"), call("b"), call("c"))


def test_positions_on_later_lines():
    program = fif.parse("# head\nlet enc = conv(4)\n\nenc\n  -> dwt\n  -> <LL: downup(2)>\n  -> idwt\n")
    let = program.lets[0]
    assert (let.name_span.line, let.name_span.column) == (2, 5)
    steps = program.statements[0].value.steps
    assert [(s.span.line, s.span.column) for s in steps] == [(4, 1), (5, 6), (6, 6), (7, 6)]
    factor = steps[2].groups[0].body.args[0].value
    assert (factor.span.line, factor.span.column) == (6, 18)


def test_parse_keeps_file_name_and_source():
    text = "dwt -> idwt\n"
    program = fif.parse(text, name="x.fif")
    assert program.file == "x.fif" and program.source == text


def test_names_that_start_with_a_keyword_are_names():
    assert only_value(fif.parse("letter -> define -> format -> index")) == seq(
        call("letter"), call("define"), call("format"), call("index"))


def test_the_parser_skips_only_the_terminal_collision_check():
    """fif builds its parser without Lark's terminal-collision check (0.15-0.25 s of every start
    of `fif fmt` when interegular is installed; test_grammar_is_strict_lalr makes that check): it
    parses every recipe to the same tree as a parser built with the check, and leaves lark's switch
    as it found it."""
    from pathlib import Path

    import lark.lexer

    from fif.syntax import parser as fif_parser
    before = getattr(lark.lexer, "has_interegular", False)
    fif_parser._lark_with_comments.cache_clear()
    ours = fif_parser._lark_with_comments()
    assert getattr(lark.lexer, "has_interegular", False) == before
    checked = Lark(grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=True,
                   lexer_callbacks={"COMMENT": lambda tok: None, "NAME": fif_parser._reserved})
    for path in sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.fif")):
        text = path.read_text(encoding="utf-8")
        assert ours.parse(text) == checked.parse(text), path.name
    fif_parser._COMMENT_SINK.clear()


def test_the_nesting_check_lexes_with_the_parser_s_own_lexer(monkeypatch):
    """Texts with many brackets are lexed a second time for the nesting check (E108); Lark built a
    new lexer for every such call (30 of the 46 ms of parsing recipes/pafilt.fif). It is built once
    now, and the check still finds the first token nested too deeply."""
    from fif.syntax import parser as fif_parser
    text = "mean { " * 20 + "id" + " }" * 20
    fif.parse(text)
    lark_parser = fif_parser._lark_with_comments()

    def rebuilt(*args, **kwargs):
        raise AssertionError("a lexer was built again")
    monkeypatch.setattr(type(lark_parser), "_build_lexer", rebuilt)
    assert fif.parse(text) == fif.parse(text)
    deep = "mean { " * 40 + "id" + " }" * 40
    with pytest.raises(fif.FifError) as e:
        fif.parse(deep)
    assert (e.value.code, e.value.line, e.value.column) == ("E108", 1, 1 + 7 * fif_parser.MAX_NESTING + 5)


def test_the_parser_tables_are_kept_as_json_and_load_to_the_same_parser(tmp_path, monkeypatch):
    """A new process loads the LALR tables from fif's cache folder (~7 ms) instead of computing them
    (~70 ms of every `fif fmt`, benchmarks/comparisons/startup.py): plain JSON, keyed by the
    grammar; the loaded parser gives the same trees and the same errors; a damaged file is rebuilt."""
    import json
    from pathlib import Path

    from lark.exceptions import UnexpectedInput

    from fif.syntax import lark_build
    from fif.syntax import parser as fif_parser
    monkeypatch.setenv("FIF_CACHE", str(tmp_path))
    callbacks = {"COMMENT": lambda tok: None, "NAME": fif_parser._reserved}
    built = lark_build.lark_parser(grammar_text(), callbacks)
    (cache,) = tmp_path.glob("parser-*.json")
    json.loads(cache.read_text(encoding="utf-8"))

    real_build = lark_build._build
    monkeypatch.setattr(lark_build, "_build", lambda *args: pytest.fail("the tables were computed again"))
    loaded = lark_build.lark_parser(grammar_text(), callbacks)
    texts = [p.read_text(encoding="utf-8") for p in sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.fif"))]
    for text in texts + [MISSION, "let a = conv(8)\nmean { a | a -> b(1/6, x=[1, 2]) }"]:
        assert loaded.parse(text) == built.parse(text)
    for bad in ["dwt -> ", "dwt -> <HH: > -> idwt", "recipe r { defense = }", "conv(8,, 2)", "a -> @"]:
        errors = []
        for parser in (built, loaded):
            with pytest.raises(UnexpectedInput) as e:
                parser.parse(bad)
            errors.append((type(e.value), e.value.line, e.value.column, sorted(getattr(e.value, "expected", ()) or ())))
        assert errors[0] == errors[1], bad

    cache.write_text("{damaged", encoding="utf-8")
    monkeypatch.setattr(lark_build, "_build", real_build)
    assert lark_build.lark_parser(grammar_text(), callbacks).parse(MISSION) == built.parse(MISSION)
    json.loads(cache.read_text(encoding="utf-8"))   # written again
