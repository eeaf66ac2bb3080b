"""Reading fif source files: the one reader behind `fif.load_recipe` and the command line.

    text = read_source("recipes/tiny.fif")      # E401 missing, E406 not UTF-8 (with line:column)
"""

from __future__ import annotations

import codecs
from pathlib import Path

from .errors import FifError, Span, diagnostic, did_you_mean


def read_source(path, what: str = "file") -> str:
    """The text of a `.fif` file, decoded as UTF-8 (a leading byte-order mark is dropped).

    E401 when the file is missing or cannot be read; E406 when it is not UTF-8, positioned at the
    line and column of the first bad byte (columns count characters, as the parser does)."""
    p = Path(path)
    if not p.is_file():
        message = f"{path} is a folder, not a {what}" if p.is_dir() else f"no such {what}: {path}"
        raise FifError(diagnostic("E401", message, file=str(path), hint=_missing_hint(p)))
    try:
        data = p.read_bytes()
    except OSError as e:
        raise FifError(diagnostic("E401", f"cannot read the {what}: {e.strerror or e}",
                                  file=str(path))) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise not_utf8(data, e, str(path)) from None


def not_utf8(data: bytes, e: UnicodeDecodeError, file: str) -> FifError:
    """E406 at the first byte that is not UTF-8, with the line shown (bad bytes as U+FFFD)."""
    before = data[:e.start].decode("utf-8")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return FifError(diagnostic(
        "E406", f"the file is not UTF-8 text: byte 0x{data[e.start]:02x} here is not valid UTF-8",
        Span(line, column, column + 1), file=file,
        source=data.decode("utf-8", errors="replace"),
        hint="save it as UTF-8 (fif files are UTF-8 text)"))


def _missing_hint(p: Path) -> str:
    if p.suffix != ".fif" and p.with_suffix(".fif").is_file():
        return f"did you mean {p.with_suffix('.fif')}?"
    names = sorted(c.name for c in p.parent.glob("*.fif")) if p.parent.is_dir() else []
    close = did_you_mean(p.name, names)
    if close:
        return close
    if names:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return f"check the path; fif files there: {shown}"
    return "check the path"
