"""The interpreter of Tier 1 expressions and scripts: one AST node at a time, nothing else.

Only nodes ``tiergate.bpmn.expressions.compile_source`` let through reach it, and it implements
only those; every step is counted, every string, collection and integer it builds is measured
against the limits of ``tiergate.bpmn.language``, and an attribute is only ever a method call on
a value of an allowed type. Its budget (``tiergate.bpmn.budget``) and its operators and calls
(``tiergate.bpmn.operators``) are parts it inherits.
"""

from __future__ import annotations

import ast
import time
from typing import Any, Iterable

from tiergate.bpmn import datetimes
from tiergate.bpmn.budget import _CONTAINERS, _bounded_text_size
from tiergate.bpmn.language import BUILTINS, COMPARE, MAX_FORMAT_WIDTH, MAX_SECONDS, UNARY, ExpressionError
from tiergate.bpmn.operators import Operators


class Break(Exception):
    pass


class Continue(Exception):
    pass


class Scope:
    """Variables: the task data at the bottom, comprehension variables on top."""

    __slots__ = ("vars", "parent")

    def __init__(self, variables: dict[str, Any], parent: "Scope | None" = None):
        self.vars = variables
        self.parent = parent

    def lookup(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        if name in BUILTINS:
            return BUILTINS[name]
        raise NameError(f"name '{name}' is not defined")

    def visible(self) -> dict[str, Any]:
        """Every name this scope sees, inner ones over outer ones: ``vars()``."""
        chain: list[dict[str, Any]] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope.vars)
            scope = scope.parent
        found: dict[str, Any] = {}
        for variables in reversed(chain):
            found.update(variables)
        return found


class Interpreter(Operators):
    def __init__(self, extra: dict[str, Any] | None, allow_mutation: bool):
        self.steps = 0
        self.extra = extra or {}
        self.allow_mutation = allow_mutation
        self.line: int | None = None
        self.deadline = time.monotonic() + MAX_SECONDS

    # -- statements --

    def run_block(self, body: list[ast.stmt], scope: Scope) -> None:
        for stmt in body:
            self.statement(stmt, scope)

    def statement(self, node: ast.stmt, scope: Scope) -> None:
        self.tick(node)
        if isinstance(node, ast.Expr):
            self.expr(node.value, scope)
        elif isinstance(node, ast.Assign):
            value = self.expr(node.value, scope)
            for target in node.targets:
                self.assign(target, value, scope)
        elif isinstance(node, ast.AugAssign):
            current = self.expr(self._as_load(node.target), scope)
            value = self.binary(node.op, current, self.expr(node.value, scope))
            self.assign(node.target, value, scope)
        elif isinstance(node, ast.If):
            self.run_block(node.body if self.expr(node.test, scope) else node.orelse, scope)
        elif isinstance(node, ast.For):
            self.loop_for(node, scope)
        elif isinstance(node, ast.While):
            broke = False
            while self.expr(node.test, scope):
                try:
                    self.run_block(node.body, scope)
                except Break:
                    broke = True
                    break
                except Continue:
                    continue
            if not broke:
                self.run_block(node.orelse, scope)
        elif isinstance(node, ast.Break):
            raise Break
        elif isinstance(node, ast.Continue):
            raise Continue
        elif isinstance(node, ast.Pass):
            pass
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.delete(target, scope)
        elif isinstance(node, ast.Assert):
            if not self.expr(node.test, scope):
                message = self.expr(node.msg, scope) if node.msg is not None else "assertion failed"
                raise ExpressionError(str(message), self.line)
        else:  # pragma: no cover - compile_source refuses everything else
            raise ExpressionError(f"{type(node).__name__} is not allowed", self.line)

    def loop_for(self, node: ast.For, scope: Scope) -> None:
        broke = False
        for item in self.iterate(self.expr(node.iter, scope)):
            self.tick(node)
            self.assign(node.target, item, scope)
            try:
                self.run_block(node.body, scope)
            except Break:
                broke = True
                break
            except Continue:
                continue
        if not broke:
            self.run_block(node.orelse, scope)

    def iterate(self, value: Any) -> Iterable[Any]:
        if isinstance(value, (dict, list, tuple, set, str, range, enumerate, zip, reversed)):
            return value
        if type(value).__name__ in ("dict_keys", "dict_values", "dict_items", "list_reverseiterator",
                                    "range_iterator", "reversed"):
            return value  # type: ignore[no-any-return]
        raise TypeError(f"'{type(value).__name__}' object is not iterable")

    @staticmethod
    def _as_load(target: ast.expr) -> ast.expr:
        clone = ast.copy_location(type(target)(**{f: getattr(target, f) for f in target._fields}), target)
        clone.ctx = ast.Load()  # type: ignore[attr-defined]
        return clone

    def assign(self, target: ast.expr, value: Any, scope: Scope) -> None:
        if isinstance(target, ast.Name):
            scope.vars[target.id] = value
        elif isinstance(target, ast.Subscript):
            container = self.expr(target.value, scope)
            if not isinstance(container, (dict, list)):
                raise TypeError(f"cannot assign into a {type(container).__name__}")
            container[self.index(target.slice, scope)] = value
            self.sized(container)
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = list(self.iterate(value))
            if len(items) != len(target.elts):
                raise ValueError(f"expected {len(target.elts)} values to unpack, got {len(items)}")
            for elt, item in zip(target.elts, items):
                self.assign(elt, item, scope)
        else:
            raise ExpressionError(f"cannot assign to {type(target).__name__}", self.line)

    def delete(self, target: ast.expr, scope: Scope) -> None:
        if isinstance(target, ast.Name):
            if target.id not in scope.vars:
                raise NameError(f"name '{target.id}' is not defined")
            del scope.vars[target.id]
        elif isinstance(target, ast.Subscript):
            container = self.expr(target.value, scope)
            if not isinstance(container, (dict, list)):
                raise TypeError(f"cannot delete from a {type(container).__name__}")
            del container[self.index(target.slice, scope)]
        else:
            raise ExpressionError(f"cannot delete {type(target).__name__}", self.line)

    # -- expressions --

    def expr(self, node: ast.expr, scope: Scope) -> Any:
        self.tick(node)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (bytes, complex)) or node.value is Ellipsis:
                raise ExpressionError(f"{type(node.value).__name__} constants are not allowed", self.line)
            return node.value
        if isinstance(node, ast.Name):
            try:
                return scope.lookup(node.id)
            except NameError:
                if node.id in self.extra:
                    return self.extra[node.id]
                raise
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for value_node in node.values:
                result = self.expr(value_node, scope)
                if isinstance(node.op, ast.And) and not result:
                    return result
                if isinstance(node.op, ast.Or) and result:
                    return result
            return result
        if isinstance(node, ast.BinOp):
            return self.binary(node.op, self.expr(node.left, scope), self.expr(node.right, scope))
        if isinstance(node, ast.UnaryOp):
            return UNARY[type(node.op)](self.expr(node.operand, scope))
        if isinstance(node, ast.Compare):
            left = self.expr(node.left, scope)
            for op, right_node in zip(node.ops, node.comparators):
                right = self.expr(right_node, scope)
                if isinstance(left, _CONTAINERS) or isinstance(right, _CONTAINERS):
                    self.weigh(left)
                    self.weigh(right)
                if not COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.expr(node.body if self.expr(node.test, scope) else node.orelse, scope)
        if isinstance(node, ast.Call):
            return self.call(node, scope)
        if isinstance(node, ast.Attribute):  # a field of an object, read with a dot (never getattr)
            mapping = self.expr(node.value, scope)
            if not isinstance(mapping, dict):
                found, field = datetimes.read_field(mapping, node.attr)
                if found:
                    return field
                raise ExpressionError(f"'.{node.attr}' reads a field of an object, not of a {type(mapping).__name__} "
                                      f"value: call a method with (...), or index a list with [...]", self.line)
            if node.attr not in mapping:
                raise KeyError(node.attr)
            return self.sized(mapping[node.attr])
        if isinstance(node, ast.Subscript):
            container = self.expr(node.value, scope)
            if not isinstance(container, (dict, list, tuple, str)):
                raise TypeError(f"'{type(container).__name__}' object is not subscriptable")
            return self.sized(container[self.index(node.slice, scope)])
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items: list[Any] = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    items.extend(self.iterate(self.expr(elt.value, scope)))
                else:
                    items.append(self.expr(elt, scope))
            kind = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
            return self.sized(kind(items))
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for key_node, value_node in zip(node.keys, node.values):
                if key_node is None:
                    mapping = self.expr(value_node, scope)
                    if not isinstance(mapping, dict):
                        raise TypeError("** needs a dict")
                    out.update(mapping)
                else:
                    out[self.expr(key_node, scope)] = self.expr(value_node, scope)
            return self.sized(out)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            items = []
            for inner in self.comprehension(node.generators, scope):
                items.append(self.expr(node.elt, inner))
                self.sized(items)
            return set(items) if isinstance(node, ast.SetComp) else items
        if isinstance(node, ast.DictComp):
            result_dict: dict[Any, Any] = {}
            for inner in self.comprehension(node.generators, scope):
                result_dict[self.expr(node.key, inner)] = self.expr(node.value, inner)
                self.sized(result_dict)
            return result_dict
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value_node in node.values:
                parts.append(self.expr(value_node, scope) if not isinstance(value_node, ast.Constant)
                             else value_node.value)
            return self.sized("".join(str(p) for p in parts))
        if isinstance(node, ast.FormattedValue):
            value = self.expr(node.value, scope)
            _bounded_text_size(value)
            if node.conversion == ord("r"):
                value = repr(value)
            elif node.conversion in (ord("s"), ord("a")):
                value = str(value) if node.conversion == ord("s") else ascii(value)
            spec = self.expr(node.format_spec, scope) if node.format_spec is not None else ""
            if not isinstance(spec, str) or len(spec) > 20 or _spec_width(spec) > MAX_FORMAT_WIDTH:
                raise self.over("tier1_format_width", f"format spec {str(spec)[:30]!r} asks for a width or precision "
                                f"above {MAX_FORMAT_WIDTH}")
            return self.sized(format(value, spec))
        raise ExpressionError(f"{type(node).__name__} is not allowed", self.line)

    def comprehension(self, generators: list[ast.comprehension], scope: Scope) -> Iterable[Scope]:
        def walk(index: int, current: Scope) -> Iterable[Scope]:
            if index == len(generators):
                yield current
                return
            gen = generators[index]
            for item in self.iterate(self.expr(gen.iter, current)):
                self.tick(gen.target)
                inner = Scope({}, current)
                self.assign(gen.target, item, inner)
                if all(self.expr(cond, inner) for cond in gen.ifs):
                    yield from walk(index + 1, inner)

        return walk(0, scope)

    def index(self, node: ast.expr, scope: Scope) -> Any:
        if isinstance(node, ast.Slice):
            return slice(*(self.expr(part, scope) if part is not None else None
                           for part in (node.lower, node.upper, node.step)))
        return self.expr(node, scope)


def _spec_width(spec: str) -> int:
    """The largest number written in a format spec (its width or precision)."""
    digits = "".join(ch if ch.isdigit() else " " for ch in spec).split()
    return max((int(d) if len(d) < 8 else 10**8 for d in digits), default=0)


def with_line(interpreter: Interpreter, exc: BaseException) -> ExpressionError:
    if isinstance(exc, ExpressionError):
        if exc.line is None:
            exc.line = interpreter.line
        return exc
    if isinstance(exc, RecursionError):
        return ExpressionError("the value is nested too deeply", interpreter.line)
    if isinstance(exc, MemoryError):
        return ExpressionError("ran out of memory", interpreter.line)
    detail = str(exc)
    if isinstance(exc, KeyError):
        detail = f"key {detail} is not in the data"
    return ExpressionError(f"{type(exc).__name__}: {detail}", interpreter.line)
