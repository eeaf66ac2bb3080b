"""Diagnostics: every error fif raises on bad input is a `FifError` carrying positioned diagnostics.

    acm.fif:3:49: error[E201]: unknown operator 'downpu'
      |
    3 |   -> <HH, HL, LH: chancompress(1/6, noise), LL: downpu> -> idwt
      |                                                  ^^^^^^
      = hint: did you mean 'downup'?

Codes are stable: E1xx syntax, E2xx names and arguments, E3xx kinds, parts and shapes,
E4xx recipes and data, E5xx runtime; `fif.error_codes.CODES` says what each one means. Tests
pin code, line and column, never wording.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Span:
    """A 1-based source position; `end_column` is exclusive, on `end_line` (default: `line`)."""

    line: int
    column: int
    end_column: int | None = None
    end_line: int | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    file: str = "<string>"
    line: int | None = None
    column: int | None = None
    end_column: int | None = None
    hint: str | None = None
    source: str | None = field(default=None, compare=False, repr=False)

    def sort_key(self):
        return (self.file, self.line or 0, self.column or 0, self.code)

    def render(self) -> str:
        """The `FILE:LINE:COL: error[CODE]: message` form with a caret excerpt and hint."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        out = [f"{where}: error[{self.code}]: {self.message}"]
        excerpt = _excerpt(self.source, self.line, self.column, self.end_column)
        if excerpt:
            out.extend(excerpt)
        if self.hint:
            pad = " " * (len(str(self.line)) if excerpt else 0)
            out.append(f"{pad} = hint: {self.hint}")
        return "\n".join(out)


def _excerpt(source, line, column, end_column) -> list[str]:
    if source is None or line is None:
        return []
    lines = source.split("\n")  # lines as the parser counts them: \f, \v or \r alone do not end one
    if not 1 <= line <= len(lines):
        return []
    text = lines[line - 1].rstrip("\r")
    col = max(1, column or 1)
    width = max(1, (end_column - col) if end_column and end_column > col else 1)
    width = min(width, max(1, len(text) - col + 1))
    num = str(line)
    pad = " " * len(num)
    # Tabs keep their width under the caret so it stays aligned.
    lead = "".join("\t" if ch == "\t" else " " for ch in text[: col - 1])
    return [f"{pad} |", f"{num} | {text}", f"{pad} | {lead}{'^' * width}"]


class FifError(Exception):
    """The one base class of every error fif raises on bad input. Holds one or more diagnostics."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = sorted(diagnostics, key=Diagnostic.sort_key)
        if not self.diagnostics:
            raise ValueError("FifError needs at least one diagnostic")
        super().__init__(self.render())

    # The first diagnostic's fields, for callers that expect one error.
    @property
    def code(self) -> str:
        return self.diagnostics[0].code

    @property
    def line(self):
        return self.diagnostics[0].line

    @property
    def column(self):
        return self.diagnostics[0].column

    @property
    def file(self):
        return self.diagnostics[0].file

    @property
    def message(self):
        return self.diagnostics[0].message

    @property
    def hint(self):
        return self.diagnostics[0].hint

    def render(self) -> str:
        return "\n\n".join(d.render() for d in self.diagnostics)

    def with_source(self, source: str, file: str) -> "FifError":
        """Attach source text and file name to diagnostics that lack them."""
        fixed = [
            replace(d, source=d.source if d.source is not None else source,
                    file=file if d.file == "<string>" else d.file)
            for d in self.diagnostics
        ]
        return type(self)(fixed)


def error(code: str, message: str, span: Span | None = None, *, hint: str | None = None,
          file: str = "<string>", source: str | None = None) -> FifError:
    """Build a one-diagnostic FifError; `raise error("E201", "...", node.span)`."""
    return FifError(diagnostic(code, message, span, hint=hint, file=file, source=source))


def diagnostic(code: str, message: str, span: Span | None = None, *, hint: str | None = None,
               file: str = "<string>", source: str | None = None) -> Diagnostic:
    return Diagnostic(
        code=code, message=message, file=file,
        line=span.line if span else None,
        column=span.column if span else None,
        end_column=(span.end_column if span and span.end_line in (None, span.line) else None),
        hint=hint, source=source,
    )


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close. Among similar ones the
    fewest edits win, then the same length: `stepz` -> 'steps' (not 'step')."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    close.sort(key=lambda c: (_edits(word, c), abs(len(c) - len(word))))  # stable: ties keep difflib's order
    if not close:
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"did you mean '{close[0]}'?" if close else None


def _edits(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute, swap two neighbours) between two short words."""
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if prev2 is not None and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


class DiagnosticSink:
    """Collects diagnostics from a pass so they can be reported together, sorted."""

    def __init__(self):
        self.items: list[Diagnostic] = []

    def add(self, code: str, message: str, span: Span | None = None, *, hint: str | None = None):
        self.items.append(diagnostic(code, message, span, hint=hint))

    def raise_if_any(self):
        if self.items:
            raise FifError(self.items)
