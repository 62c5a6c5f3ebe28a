"""FEEL expressions in Tier 1 processes, as Camunda 8 (Zeebe) writes them: evaluated by tiergate's FEEL engine.

An expression is FEEL when its text starts with ``=`` (``= approved``, ``=fraud``,
``= some risk in riskLevels satisfies risk = "red"``), or when its ``conditionExpression`` (or
another formal expression) has a ``language`` naming FEEL; ``mark_languages`` turns the second
form into the first as a file is read, so everything downstream sees one form. The script
engine (``tiergate.bpmn.scripting``) hands such a text here instead of to the restricted Python
interpreter: the FEEL engine of ``tiergate.dmn.feel`` evaluates it against the data, with its own
budgets (docs/dmn.md, *Limits*) and tier1_source_chars on its length. Names the data does not
have are FEEL's null, as in Zeebe (a condition ``= approved`` is then not true). What it gives
back is plain JSON (numbers as int or float, dates as ISO text).

Scripts are never FEEL: a script task's ``scriptFormat`` other than Python is a warning of
``tiergate check`` (tiergate.bpmn.checks), and its text is run as restricted Python.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn.language import MAX_SOURCE, ExpressionError
from tiergate.bpmn.xml import BPMN_NS
from tiergate.dmn.feel import compile_feel, evaluate_expression
from tiergate.errors import LimitExceededError, TiergateError
from tiergate.jsonutil import to_jsonable

ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"

#: The formal expressions of a file a ``language`` attribute may make FEEL.
EXPRESSIONS = ("conditionExpression", "completionCondition", "loopCondition", "loopCardinality",
                "timeDuration", "timeDate", "timeCycle", "formalExpression")


def is_feel(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("=") and not stripped.startswith("==")


def names_feel(language: str | None) -> bool:
    """Whether a ``language`` attribute names FEEL (``feel``, ``http://www.omg.org/spec/FEEL/20140401``, ...)."""
    return bool(language) and "feel" in (language or "").lower()


def mark_languages(tree: Any) -> None:
    """Prefix ``=`` to each expression whose ``language`` attribute names FEEL, or that has none in a file
    whose ``expressionLanguage`` (on ``bpmn:definitions``) does (in place)."""
    default = names_feel(tree.getroot().get("expressionLanguage"))
    for tag in EXPRESSIONS:
        for element in tree.getroot().iter(f"{{{BPMN_NS}}}{tag}"):
            language = element.get("language")
            feel = names_feel(language) if language else default
            if feel and element.text and element.text.strip() and not is_feel(element.text):
                element.text = "= " + element.text.strip()


def _body(text: str) -> str:
    if len(text) > MAX_SOURCE:
        raise ExpressionError(f"the expression is {len(text)} characters long; the limit is {MAX_SOURCE}",
                              limit="tier1_source_chars")
    return text.strip()[1:].strip()


def feel_check(text: str) -> None:
    """Raise ExpressionError unless ``text`` (``= ...``) is FEEL tiergate's engine parses."""
    body = _body(text)
    if not body:
        raise ExpressionError("the FEEL expression after '=' is empty")
    try:
        compile_feel(body)
    except TiergateError as err:
        raise ExpressionError(f"FEEL: {err.message}") from None


check = feel_check


def evaluate(text: str, data: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    """The value of the FEEL expression ``text`` (``= ...``) over ``data`` (and ``extra``: data objects)."""
    body = _body(text)
    context = {k: v for k, v in {**(extra or {}), **data}.items() if isinstance(k, str)}
    try:
        return to_jsonable(evaluate_expression(body, context))
    except LimitExceededError as err:
        name = "tier1_seconds" if "seconds" in str(err.details.get("limit")) else "tier1_length"
        raise ExpressionError(f"FEEL: {err.message}", limit=name) from None
    except TiergateError as err:
        raise ExpressionError(f"FEEL: {err.message}") from None
    except (TypeError, ValueError, ArithmeticError) as err:
        raise ExpressionError(f"FEEL: {err}") from None


def names_read(text: str) -> set[str]:
    """The names of the data the FEEL expression ``text`` reads (none if it does not parse)."""
    try:
        return set(compile_feel(_body(text)).free)
    except (TiergateError, ExpressionError):
        return set()


# --- Zeebe's output mappings (zeebe:ioMapping/zeebe:output) ---------------------------------------

def output_mappings(trees: list[Any]) -> dict[str, list[tuple[str, str, int]]]:
    """{task id: [(source, target, line)]} of each task's ``zeebe:ioMapping`` outputs, in order."""
    found: dict[str, list[tuple[str, str, int]]] = {}
    for tree in trees:
        for output in tree.getroot().iter(f"{{{ZEEBE_NS}}}output"):
            mapping = output.getparent()
            extensions = mapping.getparent() if mapping is not None else None
            owner = extensions.getparent() if extensions is not None else None
            if owner is None or not owner.get("id") or not (output.get("target") or "").strip():
                continue
            found.setdefault(owner.get("id"), []).append(
                ((output.get("source") or "").strip(), output.get("target").strip(), output.sourceline or 1))
    return found


def attach_outputs(spec: Any, mappings: dict[str, list[tuple[str, str, int]]]) -> None:
    """Set each task's output mappings into its data when it completes (before what follows it runs)."""
    for task_spec in spec.task_specs.values():
        element = getattr(task_spec, "bpmn_id", None)
        if element in mappings and task_spec.name == element and not getattr(task_spec, "_tiergate_outputs", False):
            _wrap_outputs(task_spec, mappings[element])


def _wrap_outputs(task_spec: Any, outputs: list[tuple[str, str, int]]) -> None:
    complete = task_spec._on_complete_hook

    def _on_complete_hook(my_task: Any) -> None:
        values = []
        try:
            for source, target, _line in outputs:
                values.append((target, evaluate(source, my_task.data) if is_feel(source) else source))
        except ExpressionError as err:
            my_task._set_state(TaskState.ERROR)  # as a failing post-script: `tiergate retry` runs it again
            raise WorkflowTaskException(f"output mapping failed: {err}", task=my_task) from None
        for target, value in values:
            _set_path(my_task.data, target, value)
        complete(my_task)

    task_spec._on_complete_hook = _on_complete_hook
    task_spec._tiergate_outputs = True


def _set_path(data: dict[str, Any], target: str, value: Any) -> None:
    """``to.email`` sets ``data["to"]["email"]`` (making ``to`` an object if it is not one)."""
    *parents, last = target.split(".")
    here = data
    for name in parents:
        if not isinstance(here.get(name), dict):
            here[name] = {}
        here = here[name]
    here[last] = value


def check_outputs(check: Any, tree: Any) -> None:
    """``tiergate check``: each FEEL source of an output mapping parses, and each target is a name."""
    for element, outputs in output_mappings([tree]).items():
        for source, target, line in outputs:
            if not all(part.isidentifier() for part in target.split(".")):
                check.error(line, element, f"zeebe:output target '{target}' is not a field name (`total` or "
                            "`order.total`).")
            if is_feel(source):
                try:
                    feel_check(source)
                except ExpressionError as err:
                    check.error(line, element, f"zeebe:output source: {err.message}.")


def check_subscriptions(check: Any, tree: Any) -> None:
    """``tiergate check``: a Zeebe subscription's correlationKey is read as the field a catch correlates on, so
    it must name one (``= documentReferenceId``), or be a constant (``=01``), which correlates on nothing."""
    for subscription in tree.getroot().iter(f"{{{ZEEBE_NS}}}subscription"):
        extensions = subscription.getparent()
        message = extensions.getparent() if extensions is not None else None
        key = (subscription.get("correlationKey") or "").strip()
        body = key.lstrip("=").strip()
        constant = body.replace(".", "", 1).isdigit() or (len(body) > 1 and body[0] == body[-1] == '"')
        if body and not body.isidentifier() and not constant:
            check.error(subscription.sourceline or 1, message.get("id") if message is not None else None,
                        f"zeebe:subscription correlationKey '{key}' is not the name of a field: tiergate matches a "
                        "message on fields of the run's data. Compute the key into a field in an earlier step, and "
                        "name it (`= order_id`), or give each catch of the message the property correlate.")
