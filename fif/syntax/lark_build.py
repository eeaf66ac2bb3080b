"""Making fif's Lark parser fast to get: its LALR tables kept as JSON in fif's cache folder.

    parser = lark_parser(grammar_text(), {"COMMENT": sink.append, "NAME": reserved})

Computing the tables takes ~70 ms of every new process that parses (`fif fmt`, `fif compile`, any
recipe), loading them ~7 ms. The file is plain data (JSON, never pickle) in `$FIF_CACHE` or
`~/.cache/fif`, named by a hash of the grammar, lark's version and the options, so a changed grammar
or another lark gets its own file. Any problem reading or writing it (a read-only home, a damaged
file, another lark's layout) just means the tables are computed as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import lark
from lark import Lark

OPTIONS = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}
_LOADED = {"propagate_positions"}   # options Lark takes again when it loads tables (with the callbacks)


def lark_parser(grammar: str, callbacks: dict) -> Lark:
    """fif's parser: loaded from the cache when it holds this grammar's tables, else built (and saved)."""
    path = _cache_file(grammar)
    parser = _load(path, callbacks) if path is not None else None
    if parser is None:
        parser = _build(grammar, callbacks)
        if path is not None:
            _save(parser, path)
    # `Lark.lex` (the nesting check, the unclosed-bracket hint) builds a new lexer at every call
    # unless the parser has one: 30 of the 46 ms of parsing recipes/pafilt.fif. Build it once.
    if not hasattr(parser, "lexer") and hasattr(parser, "_build_lexer"):
        parser.lexer = parser._build_lexer()
    return parser


def _build(grammar: str, callbacks: dict) -> Lark:
    # With interegular installed (a dev dependency) Lark compares every pair of terminals for
    # collisions when it builds a parser: 0.15-0.25 s, for an answer that changes only with the
    # grammar, which tests/test_grammar.py checks (strict=True).
    import lark.lexer
    saved = getattr(lark.lexer, "has_interegular", False)
    lark.lexer.has_interegular = False
    try:
        return Lark(grammar, lexer_callbacks=callbacks, **OPTIONS)
    finally:
        lark.lexer.has_interegular = saved


def _cache_file(grammar: str) -> Path | None:
    folder = os.environ.get("FIF_CACHE")
    try:
        folder = Path(folder).expanduser() if folder else Path.home() / ".cache" / "fif"
    except RuntimeError:  # no home folder
        return None
    key = hashlib.sha256(json.dumps([grammar, lark.__version__, OPTIONS], sort_keys=True).encode()).hexdigest()
    return folder / f"parser-{key[:24]}.json"


def _load(path: Path, callbacks: dict) -> Lark | None:
    try:
        data = _decode(json.loads(path.read_text(encoding="utf-8")))
        return Lark.__new__(Lark)._load(data, lexer_callbacks=callbacks,
                                        **{k: v for k, v in OPTIONS.items() if k in _LOADED})
    except Exception:  # missing, damaged, or written by a lark with another layout: build instead
        return None


def _save(parser: Lark, path: Path) -> None:
    try:
        from lark.grammar import Rule
        from lark.lexer import TerminalDef
        data, memo = parser.memo_serialize([TerminalDef, Rule])
        data["options"] = {k: v for k, v in data["options"].items() if k != "lexer_callbacks"}
        text = json.dumps(_encode({"data": data, "memo": memo}))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".parser-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except Exception:  # a read-only cache folder, or data JSON cannot hold: next time builds again
        return


# Lark's serialised tables hold tuples and dicts with integer keys, which JSON has not: tag them.
def _encode(v):
    if isinstance(v, tuple):
        return {"t": [_encode(x) for x in v]}
    if isinstance(v, list):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {"d": {k: _encode(x) for k, x in v.items()}}
        return {"i": [[k, _encode(x)] for k, x in v.items()]}
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    raise TypeError(f"cannot keep a {type(v).__name__} in the parser cache")


def _decode(v):
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, dict):
        if "t" in v:
            return tuple(_decode(x) for x in v["t"])
        if "d" in v:
            return {k: _decode(x) for k, x in v["d"].items()}
        return {k: _decode(x) for k, x in v["i"]}
    return v
