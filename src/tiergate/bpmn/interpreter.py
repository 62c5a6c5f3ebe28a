"""The interpreter of Tier 1 expressions and scripts: one AST node at a time, nothing else.

Only nodes ``tiergate.bpmn.expressions.compile_source`` let through reach it, and it implements
only those; every step is counted, every string, collection and integer it builds is measured
against the limits of ``tiergate.bpmn.language``, and an attribute is only ever a method call on
a value of an allowed type.
"""

from __future__ import annotations

import ast
import time
from typing import Any, Iterable

from tiergate.bpmn import datetimes
from tiergate.bpmn.language import (BINARY, BUILTINS, COMPARE, MAX_FORMAT_WIDTH, MAX_INT_BITS, MAX_LENGTH,
                                    MAX_SECONDS, MAX_STEPS, MAX_VALUES, MUTATING_METHODS, PURE_METHODS, UNARY,
                                    ExpressionError, names_defined)

_CONTAINERS = (list, tuple, dict, set, frozenset)
#: The builtins that walk every value they are given (compare, hash, sum or copy them all).
_WALKERS = frozenset({all, any, dict, list, max, min, set, sorted, sum, tuple, str})
#: The methods that compare, hash or copy every value of their object or arguments.
_WALKING_METHODS = frozenset({"index", "count", "sort", "remove", "copy", "union", "intersection", "difference",
                              "issubset", "issuperset", "update", "extend"})

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


class Interpreter:
    def __init__(self, extra: dict[str, Any] | None, allow_mutation: bool):
        self.steps = 0
        self.extra = extra or {}
        self.allow_mutation = allow_mutation
        self.line: int | None = None
        self.deadline = time.monotonic() + MAX_SECONDS

    # -- bookkeeping --

    def over(self, name: str, what: str) -> ExpressionError:
        return ExpressionError(f"{what} (limit {name}, docs/operations.md)", self.line, limit=name)

    def tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise self.over("tier1_steps", f"stopped after {MAX_STEPS} steps: is there an endless loop?")
        if not self.steps & 1023 and time.monotonic() > self.deadline:
            raise self.over("tier1_seconds", f"stopped after {MAX_SECONDS} seconds")
        line = getattr(node, "lineno", None)
        if line is not None:
            self.line = line

    def sized(self, value: Any) -> Any:
        if isinstance(value, (str, list, tuple, dict, set)) and len(value) > MAX_LENGTH:
            raise self.over("tier1_length", f"a value of {len(value)} items is longer than {MAX_LENGTH}")
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            raise self.over("tier1_int_bits", f"an integer wider than {MAX_INT_BITS} bits is not allowed")
        return value

    def weigh(self, value: Any, times: int = 1) -> int:
        """How many values ``value`` holds, nested ones included and shared ones each time (``times``
        copies of it); refused past ``tier1_values`` without walking further. Native operations
        (comparing, hashing, sorting, copying, repeating) take time in proportion to this."""
        if not isinstance(value, _CONTAINERS):
            return 1
        budget = MAX_VALUES // max(times, 1)
        count, stack = 0, [value]
        while stack:
            item = stack.pop()
            count += 1
            if isinstance(item, dict):
                count += len(item)
                stack.extend(v for v in item.values() if isinstance(v, _CONTAINERS))
            elif isinstance(item, _CONTAINERS):
                count += len(item)
                stack.extend(v for v in item if isinstance(v, _CONTAINERS))
            if count > budget:
                raise self.over("tier1_values", f"a structure of more than {MAX_VALUES} values "
                                f"(nested ones counted each time they appear) is too large to work on")
        return count

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


def _spec_width(spec: str) -> int:
    """The largest number written in a format spec (its width or precision)."""
    digits = "".join(ch if ch.isdigit() else " " for ch in spec).split()
    return max((int(d) if len(d) < 8 else 10**8 for d in digits), default=0)


def _bounded_text_size(value: Any, limit: int = MAX_LENGTH) -> None:
    """Refuse to turn into text a value whose text would exceed ``limit`` characters."""
    budget = [limit]

    def visit(item: Any) -> None:
        budget[0] -= 1
        if isinstance(item, str):
            budget[0] -= len(item)
        elif isinstance(item, dict):
            for key, sub in item.items():
                visit(key)
                visit(sub)
        elif isinstance(item, (list, tuple, set)):
            for sub in item:
                visit(sub)
        else:
            budget[0] -= 8
        if budget[0] < 0:
            raise ExpressionError(f"the value is too large to turn into text (limit {limit} characters)")

    visit(value)


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
