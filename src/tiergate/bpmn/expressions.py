"""Restricted expressions and scripts for Tier 1 processes.

Every gateway condition, script task, timer value and Spiff-internal expression of a Tier 1
process is run here, never through Python's ``eval``/``exec``. The language is a small subset
of Python, interpreted node by node:

    approved == True and risk_score < 0.3          # a condition
    total = sum(l["amount"] for l in lines)         # a script
    notes.append(f"checked {len(lines)} lines")

What it refuses, both when ``tiergate check`` reads the file and again while running:

* imports, function and class definitions, lambdas, ``with``/``try``/``global``, walrus;
* every name that starts with ``_`` (so no dunders at all);
* attribute access, except calling an allowed method of a ``str``, ``list``, ``dict``,
  ``tuple`` or ``set`` value (``x.upper()``, ``d.get("k")``); conditions may not call the
  methods that change a value (``append``, ``pop``, ...);
* builtins other than the small table ``BUILTINS``;
* more than ``MAX_STEPS`` evaluation steps, strings and collections longer than
  ``MAX_LENGTH``, integers wider than ``MAX_INT_BITS`` bits.

Scripts work on a copy of the task's data: a script that fails changes nothing. The data a
script leaves behind must be JSON (objects, arrays, strings, numbers, booleans, null).
"""

from __future__ import annotations

import ast
import math
import operator
from functools import lru_cache
from typing import Any, Callable, Iterable

MAX_STEPS = 200_000
MAX_LENGTH = 100_000
MAX_INT_BITS = 4096
MAX_SOURCE = 20_000
MAX_JSON_NODES = 200_000


class ExpressionError(Exception):
    """An expression or script that is not allowed, or that failed while running."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


# --- what is allowed -----------------------------------------------------------------------

def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_LENGTH:
        raise ExpressionError(f"range of {len(result)} numbers is longer than the limit of {MAX_LENGTH}")
    return result


BUILTINS: dict[str, Callable[..., Any]] = {
    "abs": abs, "all": all, "any": any, "bool": bool, "dict": dict, "enumerate": enumerate, "float": float,
    "int": int, "len": len, "list": list, "max": max, "min": min, "range": _safe_range, "reversed": reversed,
    "round": round, "set": set, "sorted": sorted, "str": str, "sum": sum, "tuple": tuple, "zip": zip,
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
_ALL_METHOD_NAMES = frozenset().union(*PURE_METHODS.values(), *MUTATING_METHODS.values())

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}

_EXPRESSION_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Store, ast.Del, ast.BoolOp, ast.And, ast.Or, ast.BinOp,
    ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice,
    ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.comprehension, ast.JoinedStr, ast.FormattedValue, ast.Starred,
    *_BINARY, *_UNARY, *_COMPARE,
)
_STATEMENT_NODES = (
    ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.If, ast.For, ast.While, ast.Break, ast.Continue,
    ast.Pass, ast.Delete, ast.Assert,
)

_WHAT = {
    ast.Import: "imports", ast.ImportFrom: "imports", ast.FunctionDef: "function definitions",
    ast.AsyncFunctionDef: "function definitions", ast.Lambda: "lambdas", ast.ClassDef: "class definitions",
    ast.With: "`with`", ast.Try: "`try`", ast.Raise: "`raise`", ast.Global: "`global`", ast.Nonlocal: "`nonlocal`",
    ast.NamedExpr: "`:=`", ast.Await: "`await`", ast.Yield: "`yield`", ast.YieldFrom: "`yield`",
    ast.Return: "`return`", ast.LShift: "`<<`", ast.RShift: "`>>`", ast.MatMult: "`@`",
}


# --- checking ------------------------------------------------------------------------------

@lru_cache(maxsize=2048)
def compile_source(source: str, mode: str) -> ast.AST:
    """Parse and check ``source`` (``mode`` "eval" or "exec"). Raises ExpressionError."""
    if not isinstance(source, str):
        raise ExpressionError("an expression must be text")
    if len(source) > MAX_SOURCE:
        raise ExpressionError(f"the {'script' if mode == 'exec' else 'expression'} is {len(source)} characters "
                              f"long; the limit is {MAX_SOURCE}")
    text = source.strip() if mode == "eval" else _dedent(source)
    try:
        tree = ast.parse(text, mode=mode)
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}", exc.lineno) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("the expression is nested too deeply or is not valid text") from None
    allowed = _EXPRESSION_NODES + (_STATEMENT_NODES if mode == "exec" else ())
    found: list[tuple[tuple[int, int], str, int | None]] = []

    def problem(node: ast.AST, message: str) -> None:
        if isinstance(node, ast.Attribute) and getattr(node, "end_lineno", None) is not None:
            where = (node.end_lineno or 0, (node.end_col_offset or 0) - len(node.attr))
        elif getattr(node, "lineno", None) is not None:
            where = (node.lineno, getattr(node, "col_offset", 0) or 0)  # type: ignore[attr-defined]
        else:  # helper nodes (arguments, operators) have no position: report their owner first
            where = (1 << 30, 1 << 30)
        found.append((where, message, getattr(node, "lineno", None)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node.func.tiergate_call = True  # type: ignore[attr-defined]
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            what = _WHAT.get(type(node), f"`{type(node).__name__}`")
            problem(node, f"{what} {'are' if what.endswith('s') else 'is'} not allowed in "
                          f"{'scripts' if mode == 'exec' else 'expressions'}")
        elif isinstance(node, ast.Name) and node.id.startswith("_"):
            problem(node, f"names starting with '_' are not allowed ('{node.id}')")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_") or node.attr not in _ALL_METHOD_NAMES:
                problem(node, f"attribute '.{node.attr}' is not allowed: only the listed methods of text, list, "
                              "dict and set values may be called (docs/tier1.md)")
            elif not getattr(node, "tiergate_call", False):
                problem(node, f"'.{node.attr}' may only be used to call the method, e.g. x.{node.attr}(...)")
        elif isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
            problem(node, f"keyword arguments starting with '_' are not allowed ('{node.arg}')")
    if found:
        _where, message, line = min(found, key=lambda item: item[0])
        raise ExpressionError(message, line)
    return tree


def _dedent(source: str) -> str:
    """Scripts pasted into XML are often indented as a block; remove the common indent."""
    import textwrap

    return textwrap.dedent(source.replace("\t", "    ")).strip("\n")


def check(source: str, mode: str = "eval") -> None:
    compile_source(source, mode)


# --- running -------------------------------------------------------------------------------

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Scope:
    """Variables: the task data at the bottom, comprehension variables on top."""

    __slots__ = ("vars", "parent")

    def __init__(self, variables: dict[str, Any], parent: "_Scope | None" = None):
        self.vars = variables
        self.parent = parent

    def lookup(self, name: str) -> Any:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        if name in BUILTINS:
            return BUILTINS[name]
        raise NameError(f"name '{name}' is not defined")


class _Interpreter:
    def __init__(self, extra: dict[str, Any] | None, allow_mutation: bool):
        self.steps = 0
        self.extra = extra or {}
        self.allow_mutation = allow_mutation
        self.line: int | None = None

    # -- bookkeeping --

    def tick(self, node: ast.AST) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ExpressionError(f"stopped after {MAX_STEPS} steps: is there an endless loop?", self.line)
        line = getattr(node, "lineno", None)
        if line is not None:
            self.line = line

    def sized(self, value: Any) -> Any:
        if isinstance(value, (str, list, tuple, dict, set)) and len(value) > MAX_LENGTH:
            raise ExpressionError(f"a value of {len(value)} items is longer than the limit of {MAX_LENGTH}",
                                  self.line)
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            raise ExpressionError(f"an integer wider than {MAX_INT_BITS} bits is not allowed", self.line)
        return value

    # -- statements --

    def run_block(self, body: list[ast.stmt], scope: _Scope) -> None:
        for stmt in body:
            self.statement(stmt, scope)

    def statement(self, node: ast.stmt, scope: _Scope) -> None:
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
                except _Break:
                    broke = True
                    break
                except _Continue:
                    continue
            if not broke:
                self.run_block(node.orelse, scope)
        elif isinstance(node, ast.Break):
            raise _Break
        elif isinstance(node, ast.Continue):
            raise _Continue
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

    def loop_for(self, node: ast.For, scope: _Scope) -> None:
        broke = False
        for item in self.iterate(self.expr(node.iter, scope)):
            self.tick(node)
            self.assign(node.target, item, scope)
            try:
                self.run_block(node.body, scope)
            except _Break:
                broke = True
                break
            except _Continue:
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

    def assign(self, target: ast.expr, value: Any, scope: _Scope) -> None:
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

    def delete(self, target: ast.expr, scope: _Scope) -> None:
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

    def expr(self, node: ast.expr, scope: _Scope) -> Any:
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
            return _UNARY[type(node.op)](self.expr(node.operand, scope))
        if isinstance(node, ast.Compare):
            left = self.expr(node.left, scope)
            for op, right_node in zip(node.ops, node.comparators):
                right = self.expr(right_node, scope)
                if not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.expr(node.body if self.expr(node.test, scope) else node.orelse, scope)
        if isinstance(node, ast.Call):
            return self.call(node, scope)
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
            if len(spec) > 20 or any(ch.isdigit() for ch in spec) and _spec_width(spec) > 1000:
                raise ExpressionError(f"format spec '{spec}' is not allowed (widths above 1000)", self.line)
            return format(value, spec)
        raise ExpressionError(f"{type(node).__name__} is not allowed", self.line)

    def comprehension(self, generators: list[ast.comprehension], scope: _Scope) -> Iterable[_Scope]:
        def walk(index: int, current: _Scope) -> Iterable[_Scope]:
            if index == len(generators):
                yield current
                return
            gen = generators[index]
            for item in self.iterate(self.expr(gen.iter, current)):
                self.tick(gen.target)
                inner = _Scope({}, current)
                self.assign(gen.target, item, inner)
                if all(self.expr(cond, inner) for cond in gen.ifs):
                    yield from walk(index + 1, inner)

        return walk(0, scope)

    def index(self, node: ast.expr, scope: _Scope) -> Any:
        if isinstance(node, ast.Slice):
            return slice(*(self.expr(part, scope) if part is not None else None
                           for part in (node.lower, node.upper, node.step)))
        return self.expr(node, scope)

    def binary(self, op: ast.operator, left: Any, right: Any) -> Any:
        kind = type(op)
        if kind not in _BINARY:
            raise ExpressionError(f"operator {kind.__name__} is not allowed", self.line)
        if kind is ast.Mod and isinstance(left, str):
            raise ExpressionError("%-formatting of strings is not allowed; use an f-string", self.line)
        if kind is ast.Mult:
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
                    if len(seq) * max(count, 0) > MAX_LENGTH:
                        raise ExpressionError(f"repeating a value of {len(seq)} items {count} times exceeds the "
                                              f"limit of {MAX_LENGTH}", self.line)
            if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise ExpressionError(f"an integer wider than {MAX_INT_BITS} bits is not allowed", self.line)
        if kind is ast.Pow and _is_int(left) and _is_int(right):
            if right > 0 and abs(left) > 1 and right * max(left.bit_length(), 1) > MAX_INT_BITS:
                raise ExpressionError(f"an integer wider than {MAX_INT_BITS} bits is not allowed", self.line)
        if kind is ast.Add and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if len(left) + len(right) > MAX_LENGTH:
                raise ExpressionError(f"a value longer than {MAX_LENGTH} items is not allowed", self.line)
        return self.sized(_BINARY[kind](left, right))

    def call(self, node: ast.Call, scope: _Scope) -> Any:
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
            if name in PURE_METHODS.get(kind, ()):
                pass
            elif name in MUTATING_METHODS.get(kind, ()):
                if not self.allow_mutation:
                    raise ExpressionError(f".{name}() changes a value and may only be used in scripts, not in "
                                          "conditions or other expressions", self.line)
            else:
                raise ExpressionError(f"{kind.__name__} values have no allowed method '.{name}()'", self.line)
            self._precheck_method(target, name, args)
            result = getattr(target, name)(*args, **kwargs)
            self.sized(target)
            return self.sized(result)
        function = self.expr(node.func, scope)
        if not any(function is allowed for allowed in BUILTINS.values()):
            raise ExpressionError(f"only these functions may be called: {', '.join(sorted(BUILTINS))}", self.line)
        if function is str:
            for arg in args:
                _bounded_text_size(arg)
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
    digits = "".join(ch if ch.isdigit() else " " for ch in spec).split()
    return max((int(d) for d in digits if len(d) < 8), default=0) if digits else 0


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


def _with_line(interpreter: _Interpreter, exc: BaseException) -> ExpressionError:
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


def evaluate(source: str, variables: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    """Evaluate an expression over ``variables`` (not changed). Raises ExpressionError."""
    tree = compile_source(source, "eval")
    interpreter = _Interpreter(extra, allow_mutation=False)
    assert isinstance(tree, ast.Expression)
    try:
        return interpreter.expr(tree.body, _Scope(variables))
    except (_Break, _Continue):  # pragma: no cover - not reachable from an expression
        raise ExpressionError("break/continue outside a loop") from None
    except Exception as exc:  # noqa: BLE001 - every failure becomes an ExpressionError with its line
        raise _with_line(interpreter, exc) from None


def execute(source: str, variables: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a script on a copy of ``variables``; return the new variables (JSON only). Raises ExpressionError."""
    import copy

    tree = compile_source(source, "exec")
    assert isinstance(tree, ast.Module)
    scope_vars = copy.deepcopy(variables)
    interpreter = _Interpreter(extra, allow_mutation=True)
    try:
        interpreter.run_block(tree.body, _Scope(scope_vars))
    except (_Break, _Continue):
        raise ExpressionError("break/continue outside a loop", interpreter.line) from None
    except Exception as exc:  # noqa: BLE001
        raise _with_line(interpreter, exc) from None
    for name, value in scope_vars.items():
        check_json(value, f"'{name}'")
    return scope_vars


def check_json(value: Any, where: str) -> None:
    """Raise ExpressionError unless ``value`` is plain JSON of bounded size."""
    budget = [MAX_JSON_NODES]

    def visit(item: Any) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise ExpressionError(f"{where} is too large (more than {MAX_JSON_NODES} values)")
        if item is None or isinstance(item, (bool, str, int)):
            return
        if isinstance(item, float):
            if math.isnan(item) or math.isinf(item):
                raise ExpressionError(f"{where} holds {item}, which is not a JSON number")
            return
        if isinstance(item, list):
            for sub in item:
                visit(sub)
            return
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise ExpressionError(f"{where} has a key of type {type(key).__name__}; keys must be strings")
                visit(sub)
            return
        raise ExpressionError(f"{where} holds a {type(item).__name__}; the data must be JSON (use a list instead "
                              "of a tuple or set)")

    try:
        visit(value)
    except RecursionError:
        raise ExpressionError(f"{where} is nested too deeply (or contains itself)") from None
