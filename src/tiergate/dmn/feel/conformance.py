"""Type conformance: ``v instance of T``, and the checks of typed function parameters.

``T`` is a FEEL type as ``typesyntax.py`` parses it (a name, or ``list<T>``, ``range<T>``,
``context<k: T>``, ``function<T, ...> -> R``), or the name of an itemDefinition of the model, which
``CompileInfo.type_check`` resolves.
"""

from __future__ import annotations

from typing import Any, Callable

from ...errors import FEELError
from .interpreter import CompileInfo, compile_expression, compiles
from .types import FEELFunction, Range, builtin_type, conforms_builtin


@compiles("instance")
def _instance(node, scope):
    f, type_name = compile_expression(node[1], scope), node[2]
    check = type_predicate(type_name, scope.info)
    return lambda env: check(f(env))


def type_predicate(type_name: Any, info: CompileInfo) -> Callable[[Any], bool]:
    """``v instance of T``: false for null (except ``Null``), true when v conforms to T."""
    check = _conforms(type_name, info)
    if isinstance(type_name, str) and builtin_type(type_name) == "Null":
        return check
    return lambda v: v is not None and check(v)


def _conforms(t: Any, info: CompileInfo) -> Callable[[Any], bool]:
    """Conformance to a type (null conforms to every type, as items and entries of generics)."""
    if isinstance(t, tuple):
        if t[0] == "list":
            item = _conforms(t[1], info)
            return lambda v: v.__class__ is list and all(item(x) for x in v)
        if t[0] == "range":
            end = _conforms(t[1], info)
            return lambda v: v.__class__ is Range and end(v.start) and end(v.end)
        if t[0] == "context":
            entries = [(k, _conforms(kt, info)) for k, kt in t[1]]
            return lambda v: v.__class__ is dict and all(k in v and c(v[k]) for k, c in entries)
        arity = len(t[1])
        return lambda v: v.__class__ is FEELFunction and (
            v.varargs or (v.min_args if v.min_args is not None else len(v.params)) <= arity <= (
                v.max_args if v.max_args is not None else len(v.params)))
    builtin = builtin_type(t)
    if builtin is not None:
        if builtin == "Null":
            return lambda v: v is None
        return lambda v: v is None or conforms_builtin(v, builtin)
    check = info.type_check(t) if info.type_check else None
    if check is None:
        raise FEELError(f'unknown type "{t}" after "instance of": use a FEEL type or an '
                        "itemDefinition of the model", details={"type": t})
    return lambda v: v is None or check(v)

