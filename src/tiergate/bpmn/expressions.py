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
  ``tuple`` or ``set`` value (``x.upper()``, ``d.get("k")``), and reading a field of an object
  (a dict) with a dot, as SpiffWorkflow's data environment allows (``lover.name`` is
  ``lover["name"]``; only ever a key of a dict, never an attribute of a Python object);
  conditions may not call the methods that change a value (``append``, ``pop``, ...);
* builtins other than the small table ``BUILTINS``;
* more than ``MAX_STEPS`` evaluation steps, strings and collections longer than
  ``MAX_LENGTH``, integers wider than ``MAX_INT_BITS`` bits.

Scripts work on a copy of the task's data: a script that fails changes nothing. The data a
script leaves behind must be JSON (objects, arrays, strings, numbers, booleans, null).
"""

from __future__ import annotations

import ast
import copy
import math
import textwrap
from functools import lru_cache
from typing import Any

from tiergate.bpmn import datetimes
from tiergate.bpmn.interpreter import Break, Continue, Interpreter, Scope, with_line
from tiergate.bpmn.language import (ALL_METHOD_NAMES, BUILTINS, EXPRESSION_NODES, MAX_JSON_NODES, MAX_LENGTH,
                                    MAX_SOURCE, MUTATING_METHODS, PURE_METHODS, STATEMENT_NODES, WHAT,
                                    ExpressionError)

__all__ = ["BUILTINS", "MUTATING_METHODS", "PURE_METHODS", "MAX_LENGTH", "ExpressionError", "check", "check_json",
           "compile_source", "evaluate", "execute"]


#: The methods a call may name (``tiergate check`` sees names, not values).
_METHOD_NAMES = ALL_METHOD_NAMES | datetimes.METHOD_NAMES

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
    allowed = EXPRESSION_NODES + (STATEMENT_NODES if mode == "exec" else ())
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
    stored = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in BUILTINS
                and node.func.id not in stored and not node.func.id.startswith("_")):   # data is JSON: no name
            # of it can be a function (a name starting with _ is refused on its own)
            problem(node, f"'{node.func.id}' cannot be called: only these functions may be called: "
                          f"{', '.join(sorted(BUILTINS))} (functions another engine's script environment "
                          "adds have no counterpart here)")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("vars", "globals")
                and node.func.id not in stored and (node.args or node.keywords)):
            problem(node, f"{node.func.id}() takes no arguments here: vars() and globals() give the names the "
                          "script sees, as a dict")
        if not isinstance(node, allowed):
            what = WHAT.get(type(node), f"`{type(node).__name__}`")
            problem(node, f"{what} {'are' if what.endswith('s') else 'is'} not allowed in "
                          f"{'scripts' if mode == 'exec' else 'expressions'}")
        elif isinstance(node, ast.Name) and node.id.startswith("_") and node.id != "_":   # `for _ in ...` is fine
            problem(node, f"names starting with '_' are not allowed ('{node.id}')")
        elif isinstance(node, ast.Attribute):
            called = getattr(node, "tiergate_call", False)
            if node.attr.startswith("_"):
                problem(node, f"attribute '.{node.attr}' is not allowed: names starting with '_' are never read")
            elif called and node.attr not in _METHOD_NAMES:
                problem(node, f"attribute '.{node.attr}' is not allowed: only the listed methods of text, list, "
                              "dict and set values and of dates and durations may be called (docs/tier1.md)")
            elif not called and not isinstance(node.ctx, ast.Load):
                problem(node, f"'.{node.attr}' only reads a field of an object; to set or delete it, write "
                              f"x[\"{node.attr}\"]")
        elif isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
            problem(node, f"keyword arguments starting with '_' are not allowed ('{node.arg}')")
    if found:
        _where, message, line = min(found, key=lambda item: item[0])
        raise ExpressionError(message, line)
    return tree


def _dedent(source: str) -> str:
    """Scripts pasted into XML are often indented as a block; remove the common indent."""
    return textwrap.dedent(source.replace("\t", "    ")).strip("\n")


def check(source: str, mode: str = "eval") -> None:
    compile_source(source, mode)


def evaluate(source: str, variables: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    """Evaluate an expression over ``variables`` (not changed). Raises ExpressionError."""
    tree = compile_source(source, "eval")
    interpreter = Interpreter(extra, allow_mutation=False)
    assert isinstance(tree, ast.Expression)
    try:
        return interpreter.expr(tree.body, Scope(variables))
    except (Break, Continue):  # pragma: no cover - not reachable from an expression
        raise ExpressionError("break/continue outside a loop") from None
    except Exception as exc:  # noqa: BLE001 - every failure becomes an ExpressionError with its line
        raise with_line(interpreter, exc) from None


def execute(source: str, variables: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a script on a copy of ``variables``; return the new variables (JSON only). Raises ExpressionError."""
    tree = compile_source(source, "exec")
    assert isinstance(tree, ast.Module)
    scope_vars = copy.deepcopy(variables)
    interpreter = Interpreter(extra, allow_mutation=True)
    try:
        interpreter.run_block(tree.body, Scope(scope_vars))
    except (Break, Continue):
        raise ExpressionError("break/continue outside a loop", interpreter.line) from None
    except Exception as exc:  # noqa: BLE001
        raise with_line(interpreter, exc) from None
    for name, value in scope_vars.items():
        try:
            check_json(value, f"'{name}'")
        except ExpressionError:
            if not datetimes.holds_time(value):
                raise
            scope_vars[name] = value = datetimes.as_data(value)   # stored as ISO 8601 text
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
