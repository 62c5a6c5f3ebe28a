"""FEEL built-ins on ranges (DMN 1.5 10.3.4.9 and 10.3.4.14): ``range``, the interval
relations ``before`` ... ``coincides``, and ``list replace``.

An interval relation takes points (any ordered value) or ranges; values that cannot be compared
(different kinds, an unbounded end) give null.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import ops
from .registry import MISSING, Null, feel, invoke, seq, text
from .types import FEELFunction, Range


def _c(a: Any, b: Any) -> int:
    c = ops.compare(a, b)
    if c is None:
        raise Null
    return c


def _is_range(v: Any) -> bool:
    return v.__class__ is Range


def _before(a: Any, b: Any) -> bool:
    if _is_range(a) and _is_range(b):
        c = _c(a.end, b.start)
        return c < 0 or (c == 0 and not (a.end_included and b.start_included))
    if _is_range(b):
        c = _c(a, b.start)
        return c < 0 or (c == 0 and not b.start_included)
    if _is_range(a):
        c = _c(a.end, b)
        return c < 0 or (c == 0 and not a.end_included)
    return _c(a, b) < 0


def _ranges(*vs: Any) -> None:
    if not all(_is_range(v) for v in vs):
        raise Null


@feel("before", "point1", "point2", alt=(("point", "range"), ("range", "point"), ("range1", "range2")))
def before(a, b):
    return _before(a, b)


@feel("after", "point1", "point2", alt=(("point", "range"), ("range", "point"), ("range1", "range2")))
def after(a, b):
    return _before(b, a)


@feel("meets", "range1", "range2")
def meets(a, b):
    _ranges(a, b)
    return a.end_included and b.start_included and _c(a.end, b.start) == 0


@feel("met by", "range1", "range2")
def met_by(a, b):
    return meets(b, a)


@feel("overlaps", "range1", "range2")
def overlaps(a, b):
    _ranges(a, b)
    c1, c2 = _c(a.end, b.start), _c(a.start, b.end)
    return ((c1 > 0 or (c1 == 0 and a.end_included and b.start_included))
            and (c2 < 0 or (c2 == 0 and a.start_included and b.end_included)))


@feel("overlaps before", "range1", "range2")
def overlaps_before(a, b):
    _ranges(a, b)
    s, m, e = _c(a.start, b.start), _c(a.end, b.start), _c(a.end, b.end)
    return ((s < 0 or (s == 0 and a.start_included and not b.start_included))
            and (m > 0 or (m == 0 and a.end_included and b.start_included))
            and (e < 0 or (e == 0 and (not a.end_included or b.end_included))))


@feel("overlaps after", "range1", "range2")
def overlaps_after(a, b):
    return overlaps_before(b, a)


def _finishes(a, b):
    if not _is_range(b):
        raise Null
    if not _is_range(a):
        return b.end_included and _c(a, b.end) == 0
    s = _c(a.start, b.start)
    return (a.end_included == b.end_included and _c(a.end, b.end) == 0
            and (s > 0 or (s == 0 and (not a.start_included or b.start_included))))


@feel("finishes", "point", "range", alt=(("range1", "range2"),))
def finishes(a, b):
    return _finishes(a, b)


@feel("finished by", "range", "point", alt=(("range1", "range2"),))
def finished_by(a, b):
    return _finishes(b, a)


def _includes(a, b):
    if not _is_range(a):
        raise Null
    if not _is_range(b):
        r = ops.in_range(b, a)
        if r is None:
            raise Null
        return r
    s, e = _c(a.start, b.start), _c(a.end, b.end)
    return ((s < 0 or (s == 0 and (a.start_included or not b.start_included)))
            and (e > 0 or (e == 0 and (a.end_included or not b.end_included))))


@feel("includes", "range", "point", alt=(("range1", "range2"),))
def includes(a, b):
    return _includes(a, b)


@feel("during", "point", "range", alt=(("range1", "range2"),))
def during(a, b):
    return _includes(b, a)


def _starts(a, b):
    if not _is_range(b):
        raise Null
    if not _is_range(a):
        return b.start_included and _c(a, b.start) == 0
    e = _c(a.end, b.end)
    return (a.start_included == b.start_included and _c(a.start, b.start) == 0
            and (e < 0 or (e == 0 and (not a.end_included or b.end_included))))


@feel("starts", "point", "range", alt=(("range1", "range2"),))
def starts(a, b):
    return _starts(a, b)


@feel("started by", "range", "point", alt=(("range1", "range2"),))
def started_by(a, b):
    return _starts(b, a)


@feel("coincides", "point1", "point2", alt=(("range1", "range2"),))
def coincides(a, b):
    if _is_range(a) and _is_range(b):
        return (a.start_included == b.start_included and a.end_included == b.end_included
                and _c(a.start, b.start) == 0 and _c(a.end, b.end) == 0)
    if _is_range(a) or _is_range(b):
        raise Null
    return _c(a, b) == 0


# ---------------------------------------------------------------------------------------------

_ENDPOINT_FUNCTIONS = {"date", "time", "date and time", "duration"}


def _literal_endpoint(node: tuple) -> bool:
    """An endpoint of ``range(from)``: a literal, or date/time/duration of a string literal."""
    if node[0] == "lit":
        return True
    if node[0] == "neg":
        return _literal_endpoint(node[1])
    if node[0] == "call" and node[1][0] == "var" and node[1][1] in _ENDPOINT_FUNCTIONS:
        args = node[2] or []
        return node[3] is None and all(a[0] == "lit" and a[1].__class__ is str for a in args)
    return False


@feel("range", "from")
def range_(source):
    from .interpreter import Scope, CompileInfo, compile_expression
    from .parser import parse

    src = text(source)
    try:
        node = parse(src, "expr", names=("date and time",))
    except Exception:
        raise Null from None
    if node[0] == "interval":
        ends = [n for n in (node[2], node[3]) if not (n[0] == "lit" and n[1] is None)]
    elif node[0] == "cmp_range" and node[1] != "!=":
        ends = [node[2]]
    else:
        raise Null
    if not ends or not all(_literal_endpoint(n) for n in ends):
        raise Null
    value = compile_expression(node, Scope(frozenset(), CompileInfo()))({})
    if not _is_range(value):
        raise Null
    if value.start is not None and value.end is not None and _c(value.start, value.end) > 0:
        raise Null
    return value


@feel("list replace", "list", "position", "newItem", nulls=False, alt=(("list", "match", "newItem"),))
def list_replace(items, where, new_item):
    items = [items] if items is not None and items.__class__ is not list else list(seq(items))
    if where.__class__ is FEELFunction:
        if not where.varargs and len(where.params) != 2:
            raise Null
        out = []
        for x in items:
            hit = invoke(where, [x, new_item], None)
            if hit is not None and hit.__class__ is not bool:  # a match that is no boolean
                raise Null
            out.append(new_item if hit is True else x)
        return out
    if where.__class__ is not Decimal:
        raise Null
    pos = int(where)  # truncated, as positions of the other list functions
    if pos == 0 or abs(pos) > len(items):
        raise Null
    items[pos - 1 if pos > 0 else pos] = new_item
    return items


__all__ = ["MISSING"]
