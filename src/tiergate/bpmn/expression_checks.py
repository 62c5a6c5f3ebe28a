"""The checks of the expressions and scripts a Tier 1 file holds, and of its timers: each parsed as
``tiergate.bpmn.expressions`` (or FEEL) would run it, refused at its line. Part of the checks
``tiergate.bpmn.checks`` runs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tiergate.bpmn import expressions, feel
from tiergate.bpmn.model import Node
from tiergate.bpmn.timers import is_literal

if TYPE_CHECKING:
    from tiergate.bpmn.checks import FileCheck


def _foreign_language(source: str) -> str | None:
    """The expression language a condition is written in, when it is not tiergate's restricted Python."""
    text = source.strip()
    if (text.startswith("${") or text.startswith("#{")) and text.endswith("}"):
        return "a JUEL expression (Camunda 7, `${...}`)"
    return None


def _check_expression(check: FileCheck, source: str, mode: str, line: int, element: str, what: str) -> None:
    language = _foreign_language(source) if mode == "eval" else None
    if language is not None:
        check.error(line, element, f"{what}: '{source.strip()}' is {language}, but tiergate evaluates conditions as "
                    "restricted Python: write it without the wrapper, e.g. `amount > 100` or `approved == True` "
                    "(docs/tier1.md).")
        return
    if mode == "exec":  # a script's line 1 is its first line with text (the ones before are dropped)
        line += source[:len(source) - len(source.lstrip())].count("\n")
    try:
        if mode == "eval" and feel.is_feel(source):
            feel.check(source)
        else:
            expressions.check(source, mode)
    except expressions.ExpressionError as err:
        offset = (err.line or 1) - 1 if mode == "exec" else 0
        check.error(line + offset, element, f"{what}: {err.message} (see docs/tier1.md for what expressions may do).")


def _check_timer(check: FileCheck, node: Node) -> None:
    timer = node.timer
    assert timer is not None
    if not timer.kind or not timer.text:
        check.error(timer.line, node.id, "the timer has no timeDuration, timeDate or timeCycle value.")
        return
    if is_literal(timer.kind, timer.text):
        return
    if re.fullmatch(r"[A-Za-z0-9:/+.\-]+", timer.text.strip()) and timer.text.strip()[:1] in "PRpr0123456789":
        check.error(timer.line, node.id, f"{timer.kind} '{timer.text}' is not valid ISO 8601 (e.g. PT48H, P2D, "
                    "2026-12-01T09:00:00Z, R3/PT1H).")
        return
    _check_expression(check, timer.text, "eval", timer.line, node.id, f"{timer.kind} expression")


def _check_schedule(check: FileCheck, node: Node) -> None:
    """A timeCycle on the process's own start event: the schedule `tiergate worker` starts runs on."""
    from datetime import datetime, timezone

    from tiergate.bpmn.schedule import parse

    assert node.timer is not None
    try:
        parse(node.timer.text, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except ValueError as err:
        check.error(node.timer.line, node.id, f"timeCycle: {err}. `tiergate worker` starts one run of the process "
                    "at each due time of the cycle (docs/tier1.md, timer start events).")
