"""Registry of FEEL built-in functions and the one way to invoke any FEEL function."""

from __future__ import annotations

import inspect
import re
from decimal import Decimal, DecimalException
from typing import Any, Callable

from ...errors import FEELError
from .types import FEELFunction

BUILTINS: dict[str, FEELFunction] = {}

#: Marks an optional argument that was not given (distinct from an explicit null).
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


class Null(Exception):
    """Raised inside a built-in to make its result null (outside the function's domain)."""


#: Exceptions that mean "this invocation is outside the function's domain": the result is null.
_NULL_ERRORS = (Null, TypeError, ValueError, ArithmeticError, DecimalException, KeyError, IndexError,
                AttributeError, OverflowError, re.error)


def feel(name: str, *params: str, nulls: bool = True, alt: tuple[tuple[str, ...], ...] = ()):
    """Register a built-in under its FEEL ``name`` with FEEL parameter names ``params``.

    ``nulls=True``: any null argument gives null without calling the function. Parameters with
    Python defaults are optional; a ``*args`` parameter makes the function variadic. ``alt``
    lists other parameter-name signatures (for named arguments of overloaded functions).
    """

    def register(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        varargs = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
        required = sum(1 for p in sig.parameters.values()
                       if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD)
        impl = fn
        if nulls:
            def impl(*args, _fn=fn):
                for a in args:
                    if a is None:
                        return None
                return _fn(*args)
        positional = sum(1 for p in sig.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD)
        f = FEELFunction(name, params, impl, varargs=varargs, min_args=required, max_args=positional)
        f.alt_params = alt  # type: ignore[attr-defined]
        BUILTINS[name] = f
        return fn

    return register


def _bind_named(fn: FEELFunction, named: dict[str, Any]) -> list | None:
    for params in (tuple(fn.params), *getattr(fn, "alt_params", ())):
        if set(named) <= set(params):
            last = max(params.index(k) for k in named) if named else -1
            args = [named.get(p, MISSING) for p in params[: last + 1]]
            return args
    return None


def invoke(fn: FEELFunction, args: list | None, named: dict[str, Any] | None) -> Any:
    """Call ``fn`` with positional ``args`` or ``named`` arguments; FEEL errors give null."""
    if args is None:
        args = _bind_named(fn, named or {})
        if args is None:
            return None
        check = getattr(fn, "check_named", None)
        if check is not None and not check(named or {}):
            return None
        if getattr(fn, "omitted_is_null", False):  # is(value1: x): the other one is null
            args = [None if a is MISSING else a for a in args] + [None] * (len(fn.params) - len(args))
    n = len(args)
    if fn.min_args is not None and n < fn.min_args:
        if not fn.varargs or n < fn.min_args:
            return None
    if not fn.varargs and n > (fn.max_args if fn.max_args is not None else len(fn.params)):
        return None
    while args and args[-1] is MISSING:
        args = args[:-1]
    if any(a is MISSING for a in args):
        return None
    try:
        return fn.impl(*args)
    except _NULL_ERRORS:
        return None
    except RecursionError:
        raise FEELError(f"FEEL function {fn.name} recursed too deeply",
                        details={"function": fn.name}) from None


# ---------------------------------------------------------------------------------------------
# argument checks used by the built-ins

def num(v: Any) -> Decimal:
    if v.__class__ is not Decimal:
        if v.__class__ is list and len(v) == 1 and v[0].__class__ is Decimal:  # a singleton list
            return v[0]
        raise Null
    return v


def integer(v: Any) -> int:
    if v.__class__ is not Decimal or v != v.to_integral_value():
        raise Null
    return int(v)


def text(v: Any) -> str:
    if v.__class__ is not str:
        if v.__class__ is list and len(v) == 1 and v[0].__class__ is str:  # a singleton list
            return v[0]
        raise Null
    return v


def seq(v: Any) -> list:
    if v.__class__ is not list:
        raise Null
    return v


def items_of(args: tuple) -> list:
    """The items of a function taking either one list or several values (``min(1, 2)``)."""
    if len(args) == 1 and args[0].__class__ is list:
        return args[0]
    if not args or (len(args) == 1 and args[0] is None):  # min(), sum(): no list at all
        raise Null
    return list(args)
