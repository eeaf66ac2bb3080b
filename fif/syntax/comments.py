"""Comments: the parser collects them from the lexer, and this puts each one on the statement or
recipe entry it stands before or inside, so the printer can keep it.

    # the defense itself          <- kept on the `defense = ...` entry that follows
    defense = bitdepth(2)
"""

from __future__ import annotations

from dataclasses import replace

from . import nodes as n


def attach_comments(items, comments):
    """Give each statement (and recipe entry) the comments that stand before or inside it."""
    pending = sorted(comments, key=lambda t: (t.line, t.column))
    out = []
    for item in items:
        taken, pending = _take_until(pending, _end_line(item))
        if isinstance(item, (n.Recipe,)):
            head = [c for c in taken if c.line <= item.span.line]
            inner = [c for c in taken if c.line > item.span.line]
            item = _attach_entries(item, head, inner)
        else:
            item = _with_comments(item, taken)
        out.append(item)
    return out, tuple(str(c).rstrip() for c in pending)


def _attach_entries(node, head, inner):
    entries = []
    pending = inner
    for entry in node.entries:
        taken, pending = _take_until(pending, _end_line(entry))
        if isinstance(entry, n.Section):
            h = [c for c in taken if c.line <= entry.span.line]
            entry = _attach_entries(entry, h, [c for c in taken if c.line > entry.span.line])
        else:
            entry = _with_comments(entry, taken)
        entries.append(entry)
    return _replace(node, entries=tuple(entries), comments=tuple(str(c).rstrip() for c in head),
                    end_comments=tuple(str(c).rstrip() for c in pending))


def _take_until(pending, end_line):
    taken = [c for c in pending if c.line <= end_line]
    rest = [c for c in pending if c.line > end_line]
    return taken, rest


def _end_line(node) -> int:
    return node.span.end_line or node.span.line


def _with_comments(node, comments):
    return _replace(node, comments=tuple(str(c).rstrip() for c in comments))


def _replace(node, **changes):
    return replace(node, **changes)
