"""Filters: ``l[item > 10]`` (the items for which the condition is true) and ``l[2]``, ``l[-1]`` (one item).

Inside the condition ``item`` is the item, and the entries of an item that is a context are names.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .interpreter import Scope, compile_expression, compiles, constant


@compiles("filter")
def _filter(node, scope):
    f = compile_expression(node[1], scope)
    is_const, index = constant(node[2])
    if is_const and index.__class__ is Decimal:
        return lambda env: _index(f(env), index)
    cond = compile_expression(node[2], Scope(scope.bound | {"item"}, scope.info, True))

    def run(env):
        value = f(env)
        if value is None:
            return None
        items = value if value.__class__ is list else [value]
        first = cond(env)
        if first.__class__ is Decimal:
            return _index(items, first)
        out = []
        for item in items:
            inner = dict(env)
            inner["item"] = item
            if item.__class__ is dict:  # the item's entries win, even one named "item"
                inner.update(item)
            if cond(inner) is True:
                out.append(item)
        return out

    return run


def _index(value: Any, index: Decimal) -> Any:
    items = value if value.__class__ is list else ([] if value is None else [value])
    if index != index.to_integral_value():
        return None
    i = int(index)
    if i > 0 and i <= len(items):
        return items[i - 1]
    if i < 0 and -i <= len(items):
        return items[i]
    return None

