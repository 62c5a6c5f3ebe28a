"""What an expression applies to values: binary operators, and calls of the functions and methods
``tiergate.bpmn.language`` allows, each measured before it runs so that nothing is built past
the limits. ``tiergate.bpmn.interpreter.Interpreter`` inherits it.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any, Iterable

from tiergate.bpmn import datetimes
from tiergate.bpmn.budget import Budget, _bounded_text_size
from tiergate.bpmn.language import (BINARY, BUILTINS, MAX_INT_BITS, MAX_LENGTH, MUTATING_METHODS, PURE_METHODS,
                                    ExpressionError, names_defined)

if TYPE_CHECKING:
    from tiergate.bpmn.interpreter import Scope

#: The builtins that walk every value they are given (compare, hash, sum or copy them all).
_WALKERS = frozenset({all, any, dict, list, max, min, set, sorted, sum, tuple, str})
#: The methods that compare, hash or copy every value of their object or arguments.
_WALKING_METHODS = frozenset({"index", "count", "sort", "remove", "copy", "union", "intersection", "difference",
                              "issubset", "issuperset", "update", "extend"})


class Operators(Budget):
    """Binary operators and calls, for the interpreter (``self`` is the Interpreter)."""

    allow_mutation: bool

    if TYPE_CHECKING:
        def expr(self, node: ast.expr, scope: Scope) -> Any: ...

        def iterate(self, value: Any) -> Iterable[Any]: ...

    def binary(self, op: ast.operator, left: Any, right: Any) -> Any:
        kind = type(op)
        if kind not in BINARY:
            raise ExpressionError(f"operator {kind.__name__} is not allowed", self.line)
        if kind is ast.Mod and isinstance(left, str):
            raise ExpressionError("%-formatting of strings is not allowed; use an f-string", self.line)
        if kind is ast.Mult:
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    if len(seq) * max(count, 0) > MAX_LENGTH:
                        raise self.over("tier1_length", f"repeating a value of {len(seq)} items {count} times "
                                        f"makes more than {MAX_LENGTH}")
                    if count > 0 and not isinstance(seq, str):
                        self.weigh(seq, count)  # [[0] * 100000] * 100000 is small to build, huge to use
            if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise self.over("tier1_int_bits", f"an integer wider than {MAX_INT_BITS} bits is not allowed")
        if kind is ast.Pow and _is_int(left) and _is_int(right):
            if right > 0 and abs(left) > 1 and right * max(left.bit_length(), 1) > MAX_INT_BITS:
                raise self.over("tier1_int_bits", f"an integer wider than {MAX_INT_BITS} bits is not allowed")
        if kind is ast.Add and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if len(left) + len(right) > MAX_LENGTH:
                raise self.over("tier1_length", f"a value longer than {MAX_LENGTH} items is not allowed")
            if not isinstance(left, str):
                self.weigh(left, 1)
                self.weigh(right, 1)
        return self.sized(BINARY[kind](left, right))

    def call(self, node: ast.Call, scope: Scope) -> Any:
        args: list[Any] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                args.extend(self.iterate(self.expr(arg.value, scope)))
            else:
                args.append(self.expr(arg, scope))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            value = self.expr(kw.value, scope)
            if kw.arg is None:
                if not isinstance(value, dict) or not all(isinstance(k, str) and not k.startswith("_") for k in value):
                    raise ExpressionError("** arguments must be a dict of plain names", self.line)
                kwargs.update(value)
            else:
                kwargs[kw.arg] = value
        if isinstance(node.func, ast.Attribute):
            target = self.expr(node.func.value, scope)
            name = node.func.attr
            kind = type(target)
            function = datetimes.class_call(target, name)
            if function is not None:
                return self.sized(function(*args, **kwargs))
            if name in PURE_METHODS.get(kind, ()) or name in datetimes.VALUE_METHODS.get(kind, ()):
                datetimes.check_method(target, name, args, kwargs)
            elif name in MUTATING_METHODS.get(kind, ()):
                if not self.allow_mutation:
                    raise ExpressionError(f".{name}() changes a value and may only be used in scripts, not in "
                                          "conditions or other expressions", self.line)
            else:
                raise ExpressionError(f"{kind.__name__} values have no allowed method '.{name}()'", self.line)
            self._precheck_method(target, name, args)
            if name in _WALKING_METHODS:
                self.weigh(target)
                for arg in args:
                    self.weigh(arg)
            result = getattr(target, name)(*args, **kwargs)
            self.sized(target)
            return self.sized(result)
        function = self.expr(node.func, scope)
        if not any(function is allowed for allowed in BUILTINS.values()):
            raise ExpressionError(f"only these functions may be called: {', '.join(sorted(BUILTINS))}", self.line)
        if function is names_defined:
            if args or kwargs:
                raise ExpressionError("vars() and globals() take no arguments here: they give the names the "
                                      "script sees, as a dict", self.line)
            return self.sized(scope.visible())
        if function is str:
            for arg in args:
                _bounded_text_size(arg)
        if function in _WALKERS or function is BUILTINS["sum"]:
            for arg in (*args, *kwargs.values()):
                self.weigh(arg)
        if function is sum and args:
            args[0] = list(self.iterate(args[0]))
        if function is sum and (len(args) > 1 or "start" in kwargs or any(
                not isinstance(item, (int, float)) for item in (args[0] if args else ()))):
            raise ExpressionError("sum() adds numbers only (sum(lists, []) copies every list again for each "
                                  "one); join lists with a comprehension: [x for part in parts for x in part]",
                                  self.line)
        return self.sized(function(*args, **kwargs))

    def _precheck_method(self, target: Any, name: str, args: list[Any]) -> None:
        if isinstance(target, str) and name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            if isinstance(old, str) and isinstance(new, str):
                estimate = len(target) + target.count(old) * max(len(new) - len(old), 0)
                if estimate > MAX_LENGTH:
                    raise ExpressionError(f"replace() would make a string of {estimate} characters (limit "
                                          f"{MAX_LENGTH})", self.line)
        if isinstance(target, str) and name == "join" and args:
            items = list(self.iterate(args[0]))
            total = sum(len(i) for i in items if isinstance(i, str)) + len(target) * max(len(items) - 1, 0)
            if total > MAX_LENGTH:
                raise ExpressionError(f"join() would make a string of {total} characters (limit {MAX_LENGTH})",
                                      self.line)
            args[0] = items


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

