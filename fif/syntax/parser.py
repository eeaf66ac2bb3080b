"""Text -> syntax tree. Lark (LALR) does the parsing; this module turns its tree and its errors into
fif's own nodes and positioned diagnostics.

    parse("dwt -> <HH,HL,LH: chancompress(1/6, noise), LL: downup> -> idwt")
"""

from __future__ import annotations

import functools
import math
import re
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import (UnexpectedCharacters, UnexpectedEOF, UnexpectedInput,
                             VisitError)

from ..errors import FifError, Span, diagnostic
from . import nodes as n
from .comments import attach_comments

# How deep brackets, blocks, part maps and unary minus may nest (E108). Real programs stay below
# ten. Each level costs the printer and the passes about 8 Python frames and a running pipeline
# about 13 (`mean { a -> mean { ... } }`), so 32 levels stay far below Python's limit of 1000.
MAX_NESTING = 32

_OPENERS = {"LESSTHAN": ">", "LBRACE": "}", "LPAR": ")", "LSQB": "]"}
_CLOSERS = {"MORETHAN": "LESSTHAN", "RBRACE": "LBRACE", "RPAR": "LPAR", "RSQB": "LSQB"}
_TOKEN_WORDS = {
    "_ARROW": "'->'", "LESSTHAN": "'<'", "MORETHAN": "'>'", "LBRACE": "'{'", "RBRACE": "'}'",
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "COLON": "':'",
    "EQUAL": "'='", "VBAR": "'|'", "SLASH": "'/'", "PLUS": "'+'", "STAR": "'*'", "MINUS": "'-'",
    "SEMICOLON": "';'", "NAME": "a name", "NUMBER": "a number", "STRING": "a string",
    "$END": "the end of the input", "LET": "'let'", "DEF": "'def'", "RECIPE": "'recipe'",
    "FOR": "'for'", "IN": "'in'",
}


def grammar_text() -> str:
    """The grammar: packaged copy in an installed wheel, else the repository's `grammars/`."""
    try:
        packaged = resources.files("fif").joinpath("grammars/fif.lark")
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover
        pass
    source_tree = Path(__file__).resolve().parents[2] / "grammars" / "fif.lark"
    if source_tree.is_file():
        return source_tree.read_text(encoding="utf-8")
    raise FileNotFoundError("fif's grammar (grammars/fif.lark) is missing from this installation")


def _span(meta_or_token) -> Span:
    m = meta_or_token
    if isinstance(m, Token):
        return Span(m.line, m.column, m.end_column, m.end_line)
    if getattr(m, "empty", False):
        return n.NOSPAN
    return Span(m.line, m.column, m.end_column, m.end_line)


@v_args(meta=True)
class _Build(Transformer_NonRecursive):
    """Lark tree -> fif nodes (comments attached afterwards). Non-recursive, so depth never
    reaches Python's recursion limit here; `_check_nesting` bounds it for the passes after."""

    def number(self, meta, ch):
        return n.Number(_finite(ch[0]), _span(meta))

    def fraction(self, meta, ch):
        num, den = (_finite(t) for t in ch)
        if den == 0:
            raise FifError(diagnostic("E106", "a fraction cannot divide by zero", _span(ch[1]),
                                      hint="write a non-zero denominator, e.g. 1/6"))
        return n.Fraction(num, den, _span(meta))

    def string(self, meta, ch):
        raw = str(ch[0])[1:-1]
        try:
            value = _ESCAPE.sub(_unescape, raw) if "\\" in raw else raw
            # Escaped surrogate pairs (\ud83d\ude00) become one character; lone ones are errors.
            value = value.encode("utf-16", "surrogatepass").decode("utf-16")
        except (ValueError, UnicodeError):
            raise FifError(diagnostic("E107", "the string has an invalid escape", _span(meta),
                                      hint="escapes look like \\n, \\\", \\u00e9")) from None
        return n.String(value, _span(meta))

    def list(self, meta, ch):
        return n.ListLit(tuple(c for c in ch if c is not None), _span(meta))

    def call(self, meta, ch):
        name, args = ch
        return n.Call(str(name), tuple(args or ()), _span(meta), _span(name))

    def arguments(self, meta, ch):
        return tuple(c for c in ch if c is not None)

    def positional(self, meta, ch):
        return n.Arg(None, ch[0], _span(meta))

    def keyword(self, meta, ch):
        return n.Arg(str(ch[0]), ch[1], _span(meta), _span(ch[0]))

    def block(self, meta, ch):
        return n.Block(ch[0], tuple(ch[1:]), _span(meta))

    def plain_branch(self, meta, ch):
        return ch[0]

    def for_branch(self, meta, ch):
        names = ch[0]
        return n.ForBranch(str(names[0]), ch[1], ch[2], _span(meta), _span(names[0]),
                           tuple(str(t) for t in names[1:]))

    for_item = for_branch

    def for_names(self, meta, ch):
        return tuple(ch)

    def partmap(self, meta, ch):
        return n.PartMap(tuple(c for c in ch if c is not None), _span(meta))

    def group(self, meta, ch):
        return n.Group(tuple(ch[:-1]), ch[-1], _span(meta))

    def part_name(self, meta, ch):
        return n.PartName(str(ch[0]), _span(meta))

    def star_part(self, meta, ch):
        return n.PartName("*", _span(meta))

    def seq(self, meta, ch):
        return n.Seq(_flat(ch, n.Seq, "steps"), _span(meta))

    def add(self, meta, ch):
        return n.Sum(_flat(ch, n.Sum, "terms"), _span(meta))

    def mul(self, meta, ch):
        return n.Product(_flat(ch, n.Product, "factors"), _span(meta))

    def neg(self, meta, ch):
        if isinstance(ch[0], n.Number):
            return n.Number(-ch[0].value, _span(meta))
        return n.Neg(ch[0], _span(meta))

    def param(self, meta, ch):
        return n.ParamDecl(str(ch[0]), ch[1], _span(meta))

    def let_stmt(self, meta, ch):
        return n.Let(str(ch[0]), ch[1], _span(meta), _span(ch[0]))

    def def_stmt(self, meta, ch):
        params = tuple(c for c in ch[1:-1] if c is not None)
        return n.Def(str(ch[0]), params, ch[-1], _span(meta), _span(ch[0]))

    def field(self, meta, ch):
        return n.FieldEntry(str(ch[0]), ch[1], _span(meta), _span(ch[0]))

    def section(self, meta, ch):
        kind, label, *entries = ch
        return n.Section(str(kind), str(label) if label is not None else None, tuple(entries),
                         _span(meta), _span(kind))

    def recipe(self, meta, ch):
        return n.Recipe(str(ch[0]), tuple(ch[1:]), _span(meta), _span(ch[0]))

    def start(self, meta, ch):
        items = []
        for c in ch:
            if c is None:
                continue
            if isinstance(c, (n.Let, n.Def, n.Recipe)):
                items.append(c)
            else:
                items.append(n.Statement(c, c.span))
        return tuple(items)


# One backslash escape: \uXXXX, \UXXXXXXXX, \xXX, an octal run, or any single character.
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "a": "\a", "0": "\0"}


def _unescape(m) -> str:
    """Python-style escapes in a string literal; other characters, é included, stay as written."""
    body = m.group(1)
    if body[0] in "uUx" and len(body) > 1:
        return chr(int(body[1:], 16))
    if body[0] in "01234567":
        return chr(int(body, 8))
    return _SIMPLE.get(body, body)


def _finite(token) -> int | float:
    """The value of a NUMBER token; E106 for one too large for a float (`1e999`)."""
    value = n.number_value(str(token))
    if isinstance(value, float) and math.isinf(value):
        raise FifError(diagnostic("E106", f"the number {token} is too large", _span(token),
                                  hint="numbers must be below about 1.8e308"))
    return value


def _flat(children, cls, attr):
    """`a -> (b -> c)` and `(a -> b) -> c` mean the same: keep one flat tuple."""
    out = []
    for c in children:
        if isinstance(c, cls):
            out.extend(getattr(c, attr))
        else:
            out.append(c)
    return tuple(out)


def parse(text: str, name: str = "<string>") -> n.Program:
    """Parse fif text into a `Program`. Raises `FifError` (E1xx) with positions on bad syntax."""
    if not isinstance(text, str):
        raise FifError(diagnostic("E100", f"expected fif source text, got {type(text).__name__}"))
    comments: list[Token] = []
    try:
        tree = _parse_collecting(text, comments)
        _check_nesting(text)
        items = _Build().transform(tree)
    except FifError as e:
        raise e.with_source(text, name) from None
    except VisitError as e:
        if isinstance(e.orig_exc, FifError):
            raise e.orig_exc.with_source(text, name) from None
        raise
    except UnexpectedInput as e:
        raise _syntax_error(e, text, name) from None
    items, end_comments = attach_comments(items, comments)
    return n.Program(tuple(items), tuple(end_comments), file=name, source=text)


def _parse_collecting(text, comments):
    parser = _lark_with_comments()
    _COMMENT_SINK.clear()
    try:
        return parser.parse(text)
    finally:
        comments.extend(_COMMENT_SINK)
        _COMMENT_SINK.clear()


_COMMENT_SINK: list[Token] = []


@functools.lru_cache(maxsize=1)
def _lark_with_comments() -> Lark:
    from .lark_build import lark_parser   # its tables cached as JSON in fif's cache folder
    return lark_parser(grammar_text(), {"COMMENT": _COMMENT_SINK.append, "NAME": _reserved})


_KEYWORDS = {"let": "LET", "def": "DEF", "recipe": "RECIPE", "for": "FOR", "in": "IN"}


def _reserved(token: Token) -> Token:
    """Keywords are never names. Lark's contextual lexer would read `recipe` as a name where no
    keyword fits, but which places those are depends on the layout, so `recipe = 1` inside a
    section could parse on one line and not after `fif fmt` moved it to another."""
    return token.update(type=_KEYWORDS[token]) if token in _KEYWORDS else token


def _check_nesting(text):
    """E108 at the first token nested deeper than MAX_NESTING: `(`, `[`, `{`, `<` and each `-` of
    a run like `- - x` open a level. Runs on text that parsed, so brackets pair up."""
    if sum(text.count(c) for c in "([{<-") <= MAX_NESTING:
        return
    depth = run = 0
    try:
        for tok in _lark_with_comments().lex(text):
            if tok.type in _OPENERS:
                depth += 1
            elif tok.type in _CLOSERS:
                depth -= 1
            run = run + 1 if tok.type == "_MINUS" else 0
            if depth + run > MAX_NESTING:
                raise FifError(diagnostic(
                    "E108", f"nested too deeply: more than {MAX_NESTING} levels of brackets, "
                    "blocks, part maps and signs", Span(tok.line, tok.column, tok.end_column),
                    hint="flatten it: join stages with '->' rather than nesting them"))
    finally:
        _COMMENT_SINK.clear()


# ---- errors ---------------------------------------------------------------------------------

def _syntax_error(e: UnexpectedInput, text: str, name: str) -> FifError:
    line, col = getattr(e, "line", None), getattr(e, "column", None)
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(line, col, col + 1)
        if ch in "\"'":
            d = diagnostic("E107", "unterminated string", span, hint=f"close it with {ch} on the same line")
        elif ch.isdigit() or ch == ".":
            d = diagnostic("E106", f"malformed number starting with {ch!r}", span,
                           hint="numbers look like 3, 0.5, 2e-4 or 1/6")
        else:
            d = diagnostic("E101", f"unexpected character {ch!r}", span,
                           hint=_char_hint(ch))
        return FifError(d).with_source(text, name)
    token = getattr(e, "token", None)
    expected = sorted(getattr(e, "expected", None) or getattr(e, "accepts", None) or [])
    at_end = isinstance(e, UnexpectedEOF) or (token is not None and token.type == "$END")
    if at_end:
        opener = _unclosed(text)
        if opener is not None:
            tok, closer = opener
            d = diagnostic("E104", f"'{tok}' is never closed", Span(tok.line, tok.column, tok.column + 1),
                           hint=f"add '{closer}'")
        else:
            end_line, end_col = _end_position(text)
            d = diagnostic("E102", "unexpected end of input" + _expected_words(expected),
                           Span(end_line, end_col, end_col + 1), hint=_end_hint(expected))
        return FifError(d).with_source(text, name)
    span = Span(token.line, token.column, token.end_column)
    if token.type == "_ARROW":
        d = diagnostic("E105", "stray '->': it must join two stages", span,
                       hint="remove it, or put a stage on both sides")
    elif token.type in _CLOSERS:
        d = diagnostic("E103", f"unexpected {_TOKEN_WORDS.get(token.type, repr(str(token)))}"
                       + _expected_words(expected), span, hint=_closer_hint(token, expected))
    elif token.type in ("NUMBER", "NAME") and _follows_number(text, token):
        d = diagnostic("E106", f"malformed number near '{token}'", span,
                       hint="numbers look like 3, 0.5, 2e-4 or 1/6")
    else:
        d = diagnostic("E103", f"unexpected {_describe(token)}" + _expected_words(expected), span,
                       hint=_token_hint(token, expected))
    return FifError(d).with_source(text, name)


def _describe(token) -> str:
    if token.type in ("NAME", "NUMBER", "STRING"):
        return f"{token.type.lower()} '{token}'"
    return _TOKEN_WORDS.get(token.type, repr(str(token)))


def _expected_words(expected) -> str:
    words = sorted({_TOKEN_WORDS.get(x, x) for x in expected if not x.startswith("__")})
    if not words or len(words) > 6:
        return ""
    return "; expected " + (words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1])


def _end_hint(expected) -> str | None:
    if "NAME" in expected or "NUMBER" in expected:
        return "the text stops in the middle of an expression: finish it"
    return None


def _closer_hint(token, expected) -> str | None:
    if token.type == "MORETHAN":
        return "'>' closes a part map such as <LL: downup>; is a stage missing before it?"
    return "check that brackets pair up"


def _token_hint(token, expected) -> str | None:
    if token.type in _KEYWORDS.values() and "NAME" in expected:
        return f"'{token}' is a keyword and cannot be a name; choose another"
    if "_ARROW" in expected and token.type in ("NAME", "LESSTHAN"):
        return "join stages with '->'"
    if "COLON" in expected and token.type in ("NAME", "RPAR"):
        return "in a part map, name parts then ':' then a pipeline, e.g. <LL: downup>"
    if token.type == "EQUAL":
        return "keyword arguments go inside parentheses: op(name=value)"
    return None


def _char_hint(ch) -> str | None:
    return {"%": "write fractions as 1/6 and percentages as numbers",
            "&": "stages are joined with '->'"}.get(ch)


def _follows_number(text, token) -> bool:
    return token.start_pos > 0 and (text[token.start_pos - 1].isdigit() or text[token.start_pos - 1] == ".")


def _end_position(text):
    lines = text.split("\n")
    # Point just after the last non-blank character.
    for i in range(len(lines) - 1, -1, -1):
        stripped = lines[i].split("#", 1)[0].rstrip()
        if stripped:
            return i + 1, len(stripped) + 1
    return 1, 1


def _unclosed(text):
    """The innermost bracket left open at the end of the text, if any."""
    stack = []
    try:
        for tok in _lark_with_comments().lex(text):
            if tok.type in _OPENERS:
                stack.append(tok)
            elif tok.type in _CLOSERS and stack and stack[-1].type == _CLOSERS[tok.type]:
                stack.pop()
    except UnexpectedInput:
        return None
    finally:
        _COMMENT_SINK.clear()
    if stack:
        return stack[-1], _OPENERS[stack[-1].type]
    return None
