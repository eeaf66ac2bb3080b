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
        inner = {k: v for k, v in mapping.items() if k not in node.names}
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


def expand_items(items) -> tuple[list | None, tuple | None]:
    """A list's items with every `for` unfolded: (items, None), or (None, (code, message, span,
    hint)) for the first `for` that cannot be unfolded (E232).

        [0, for q in [1, 2]: bitdepth(q)]   ->  [0, bitdepth(1), bitdepth(2)]
    """
    out = []
    for item in items:
        if isinstance(item, n.ForBranch):
            got, err = expand_for(item)
            if err is not None:
                return None, err
            out += got
        else:
            out.append(item)
    return out, None


def expand_for(b: n.ForBranch) -> tuple[list | None, tuple | None]:
    """The expressions `for names in [...]: body` stands for, one per list item (see expand_items).
    With several names (`for q, m in [[90, 1], [70, 3]]`) each item is a list of that many values."""
    from ..syntax.printer import expr as show
    names = ", ".join(b.names)
    it = b.iterable
    if not isinstance(it, n.ListLit) or not it.items:
        return None, ("E232", f"'for {names} in ...' needs a non-empty list, got {show(it)}", it.span,
                      f"write for {names} in [1, 2, 3]: ..." if not b.more else
                      f"write for {names} in [{', '.join(['[1, 2]'] * 2)}]: ... (one value per name)")
    values, err = expand_items(it.items)
    if err is not None:
        return None, err
    out = []
    for v in values:
        if not b.more:
            out.append(substitute(b.body, {b.var: v}))
            continue
        parts = v.items if isinstance(v, n.ListLit) else None
        if parts is None or len(parts) != len(b.names) or any(isinstance(p, n.ForBranch) for p in parts):
            return None, ("E232", f"'for {names} in ...' takes each item apart into {len(b.names)} values, "
                          f"but {show(v)} is not a list of {len(b.names)}", v.span,
                          f"write each item as [{', '.join(b.names)}] values, e.g. [90, 1]")
        out.append(substitute(b.body, dict(zip(b.names, parts))))
    return out, None
