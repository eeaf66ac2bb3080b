"""Replace names by expressions: how `def` parameters and `for` variables take their values.

    def band(r) = chancompress(r)   ;   band(1/6)   ->   chancompress(1/6)
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace

from ..syntax import nodes as n


def substitute(node, mapping: dict):
    """A copy of `node` where every bare name in `mapping` is replaced by its expression."""
    if not mapping:
        return node
    if isinstance(node, n.Call) and not node.args and node.name in mapping:
        return mapping[node.name]
    if isinstance(node, n.ForBranch):
        inner = {k: v for k, v in mapping.items() if k != node.var}
        return replace(node, iterable=substitute(node.iterable, mapping), body=substitute(node.body, inner))
    if isinstance(node, tuple):
        return tuple(substitute(x, mapping) for x in node)
    if is_dataclass(node):
        changes = {}
        for f in fields(node):
            if f.name in ("span", "name_span", "var_span"):
                continue
            value = getattr(node, f.name)
            if isinstance(value, (tuple,)) or is_dataclass(value):
                new = substitute(value, mapping)
                if new is not value:
                    changes[f.name] = new
        return replace(node, **changes) if changes else node
    return node
