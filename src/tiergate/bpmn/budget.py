"""The budget of one evaluation of a Tier 1 expression or script: every step counted, its time
bounded, and every string, collection and integer it builds measured against the limits of
``tiergate.bpmn.language``. ``tiergate.bpmn.interpreter.Interpreter`` inherits it.
"""

from __future__ import annotations

import ast
import time
from typing import Any

from tiergate.bpmn.language import MAX_INT_BITS, MAX_LENGTH, MAX_SECONDS, MAX_STEPS, MAX_VALUES, ExpressionError

_CONTAINERS = (list, tuple, dict, set, frozenset)


class Budget:
    """What an evaluation has used so far, and its refusal once it would go over a limit."""

    steps: int
    line: int | None
    deadline: float

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
