"""The restricted expression language of Tier 1: what it allows, and its limits.

``tiergate.bpmn.expressions`` checks and runs it; ``tiergate.bpmn.interpreter`` is the
node-by-node interpreter. Everything here is data: the tables both of them read.
"""

from __future__ import annotations

import ast
import operator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from tiergate.limits import limit

# The budgets, declared in tiergate.limits (docs/operations.md).
MAX_STEPS = limit("tier1_steps")
MAX_LENGTH = limit("tier1_length")
MAX_VALUES = limit("tier1_values")
MAX_INT_BITS = limit("tier1_int_bits")
MAX_SOURCE = limit("tier1_source_chars")
MAX_JSON_NODES = limit("tier1_json_values")
MAX_FORMAT_WIDTH = limit("tier1_format_width")
MAX_SECONDS = limit("tier1_seconds")


class ExpressionError(Exception):
    """An expression or script that is not allowed, or that failed while running.

    ``limit`` names the budget of tiergate.limits it went over, if that is why it stopped.
    """

    def __init__(self, message: str, line: int | None = None, *, limit: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.limit = limit

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


# --- what is allowed -----------------------------------------------------------------------

def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_LENGTH:
        raise ExpressionError(f"range of {len(result)} numbers is longer than the limit tier1_length of {MAX_LENGTH}",
                              limit="tier1_length")
    return result


def _print(*_args: Any, **_kwargs: Any) -> None:
    """``print`` in a script is accepted and writes nothing: a script's only effect is the data it sets."""


def names_defined() -> dict[str, Any]:
    """``vars()`` and ``globals()``: the names a script or condition sees (the task's data and what the script
    set), as a new dict; SpiffWorkflow's processes ask ``'x' in vars()`` to tell whether ``x`` is set. The
    interpreter answers the call itself (``Interpreter.call``): this body never runs."""
    raise AssertionError("answered by the interpreter")


BUILTINS: dict[str, Callable[..., Any]] = {
    "abs": abs, "all": all, "any": any, "bool": bool, "dict": dict, "enumerate": enumerate, "float": float,
    "int": int, "len": len, "list": list, "max": max, "min": min, "print": _print, "range": _safe_range,
    "reversed": reversed,
    "round": round, "set": set, "sorted": sorted, "str": str, "sum": sum, "tuple": tuple, "zip": zip,
    "vars": names_defined, "globals": names_defined,
    # Dates and durations, as values (tiergate.bpmn.datetimes says what of them may be used).
    "datetime": datetime, "timedelta": timedelta, "timezone": timezone,
}

PURE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit",
                    "join", "replace", "find", "rfind", "count", "title", "capitalize", "casefold", "isdigit",
                    "isalpha", "isalnum", "isspace", "islower", "isupper", "splitlines", "removeprefix",
                    "removesuffix", "partition", "rpartition"}),
    dict: frozenset({"get", "keys", "values", "items", "copy"}),
    list: frozenset({"index", "count", "copy"}),
    tuple: frozenset({"index", "count"}),
    set: frozenset({"union", "intersection", "difference", "issubset", "issuperset", "copy"}),
}
MUTATING_METHODS: dict[type, frozenset[str]] = {
    dict: frozenset({"pop", "setdefault", "update", "clear"}),
    list: frozenset({"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"}),
    set: frozenset({"add", "discard", "remove", "clear"}),
}
ALL_METHOD_NAMES = frozenset().union(*PURE_METHODS.values(), *MUTATING_METHODS.values())

BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
UNARY: dict[type, Callable[[Any], Any]] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}

EXPRESSION_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.Del, ast.BoolOp, ast.And, ast.Or, ast.BinOp,
    ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice,
    ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.comprehension, ast.JoinedStr, ast.FormattedValue, ast.Starred,
    *BINARY, *UNARY, *COMPARE,
)
STATEMENT_NODES = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.While, ast.Break, ast.Continue,
    ast.Pass, ast.Delete, ast.Assert,
)

WHAT = {
    ast.Import: "imports", ast.ImportFrom: "imports", ast.FunctionDef: "function definitions",
    ast.AsyncFunctionDef: "function definitions", ast.Lambda: "lambdas", ast.ClassDef: "class definitions",
    ast.With: "`with`", ast.Try: "`try`", ast.Raise: "`raise`", ast.Global: "`global`", ast.Nonlocal: "`nonlocal`",
    ast.NamedExpr: "`:=`", ast.Await: "`await`", ast.Yield: "`yield`", ast.YieldFrom: "`yield`",
    ast.Return: "`return`", ast.LShift: "`<<`", ast.RShift: "`>>`", ast.MatMult: "`@`",
}
