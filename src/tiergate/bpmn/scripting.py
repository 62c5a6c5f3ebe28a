"""The script engine every Tier 1 workflow runs with.

SpiffWorkflow sends every expression it evaluates through the workflow's script engine:
gateway conditions, script tasks, timer values, multi-instance cardinalities and a few
internal ones that call ``engine.environment.evaluate`` directly. ``RestrictedScriptEngine``
replaces both the engine methods and its ``environment`` with the restricted interpreter of
``tiergate.bpmn.expressions``; nothing reaches Python's ``eval`` or ``exec``.

The engine is not serialized with a workflow. ``RestrictedWorkflow`` (below) always builds
one, so a workflow restored from the database can never run with SpiffWorkflow's default,
unrestricted engine.

The engine also carries what one advance of a run needs besides the data: the clock timers
compare against (``now``), the run's pinned DMN decisions, and a ``journal`` of what happened
(decisions evaluated, timers fired, data stores written) for the runner to log, and the
move's access to the process's data stores (``tiergate.datastores``).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import datetimes, expressions, feel
from tiergate.bpmn import statelog  # noqa: F401 - installs SpiffWorkflow's quieter task state change
from tiergate.bpmn import tasklean  # noqa: F401 - installs two tree walks answered from the task dictionary
from tiergate.bpmn import loopjoin  # noqa: F401 - installs the rounds of a parallel gateway a loop leads back to
from tiergate.bpmn.expressions import ExpressionError
from tiergate.definitions.decisions import Decision
from tiergate.errors import TiergateError
from tiergate.jsonutil import to_jsonable


_SPIFF_WORKFLOW_LOG = logging.getLogger("spiff.workflow")


@dataclass
class JournalEntry:
    event: str
    element: str | None
    detail: dict[str, Any] = field(default_factory=dict)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """The environment SpiffWorkflow calls directly in a few places; same interpreter."""

    def __init__(self) -> None:
        super().__init__({})

    def evaluate(self, expression: Any, context: dict[str, Any], external_context: Any = None) -> Any:
        if expression is None or not str(expression).strip():
            raise ExpressionError("the expression is empty")
        if feel.is_feel(str(expression)):  # Camunda 8's `= ...`: tiergate's FEEL engine (tiergate.bpmn.feel)
            return feel.evaluate(str(expression), context, external_context or None)
        return expressions.evaluate(str(expression), context, external_context or None)

    def execute(self, script: Any, context: dict[str, Any], external_context: Any = None) -> bool:
        result = expressions.execute(script or "", context, external_context or None)
        context.clear()
        context.update(result)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise ExpressionError("service tasks are not supported in Tier 1 processes")


class RestrictedScriptEngine(PythonScriptEngine):
    def __init__(self, decisions: Mapping[str, Decision] | None = None, now: datetime | None = None,
                 stores: Any = None):
        super().__init__(environment=RestrictedEnvironment())
        self.decisions: Mapping[str, Decision] = decisions or {}
        #: The move's ``tiergate.datastores.StoreAccess`` (None: data stores cannot be reached).
        self.stores = stores
        self.now: datetime = now or datetime.now(timezone.utc)
        self.journal: list[JournalEntry] = []
        #: (limit, message) of the last expression or script that went over a budget of tiergate.limits.
        self.over_limit: tuple[str, str] | None = None

    def validate(self, expression: str) -> None:
        if feel.is_feel(expression):
            feel.check(expression)
        else:
            expressions.check(expression, "eval")

    def evaluate(self, task: Any, expression: Any, external_context: Any = None) -> Any:
        token = datetimes.CLOCK.set(self.now)   # datetime.now() is the move's clock
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ExpressionError as err:
            if err.limit is not None:
                self.over_limit = (err.limit, f"expression {str(expression).strip()[:80]!r} failed: {err}")
            raise WorkflowTaskException(f"expression {str(expression).strip()!r} failed: {err}", task=task) from None
        finally:
            datetimes.CLOCK.reset(token)

    def execute(self, task: Any, script: Any, external_context: Any = None) -> bool:
        token = datetimes.CLOCK.set(self.now)
        try:
            return self.environment.execute(script, task.data, external_context)
        except ExpressionError as err:
            if err.limit is not None:
                self.over_limit = (err.limit, f"script failed at {err}")
            raise WorkflowTaskException(f"script failed at {err}", task=task) from None
        finally:
            datetimes.CLOCK.reset(token)

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        raise WorkflowTaskException("service tasks are not supported in Tier 1 processes", task=task)

    def record(self, event: str, task: Any, detail: dict[str, Any]) -> None:
        """Journal what a task did for the runner to log (``data_store_written``: ``tiergate.bpmn.datastore``)."""
        self.journal.append(JournalEntry(event, task.task_spec.bpmn_id, detail))

    def decide(self, task: Any, decision_id: str, result_variable: str | None) -> None:
        """Evaluate a business rule task with tiergate's DMN engine and merge the outputs."""
        decision = self.decisions.get(decision_id)
        if decision is None:
            raise WorkflowTaskException(f"decision '{decision_id}' is not pinned with this run "
                                        f"(decisions/{decision_id}.dmn)", task=task)
        try:
            outputs, matched = decision.evaluate(task.data)
            inputs = to_jsonable({name: task.data.get(name) for name in decision.input_names})
        except TiergateError as err:
            raise WorkflowTaskException(f"decision '{decision_id}' failed: {err.message}", task=task) from None
        if result_variable:
            task.data[result_variable] = copy.deepcopy(outputs)
        else:
            task.data.update(copy.deepcopy(outputs))
        self.journal.append(JournalEntry("decision_evaluated", task.task_spec.bpmn_id,
                                         {"decision": decision_id, "inputs": inputs, "outputs": outputs,
                                          "matched_rules": matched}))


class RestrictedWorkflow(BpmnWorkflow):
    """A BpmnWorkflow that can only ever hold a RestrictedScriptEngine."""

    def __init__(self, spec: Any, subprocess_specs: Any = None, script_engine: RestrictedScriptEngine | None = None,
                 **kwargs: Any):
        # Set before SpiffWorkflow builds the task tree, which may already evaluate expressions.
        self._tiergate_engine = script_engine or RestrictedScriptEngine()
        super().__init__(spec, subprocess_specs, script_engine=self._tiergate_engine, **kwargs)

    @property
    def script_engine(self) -> RestrictedScriptEngine:
        return self._tiergate_engine

    @script_engine.setter
    def script_engine(self, engine: RestrictedScriptEngine) -> None:
        if not isinstance(engine, RestrictedScriptEngine):
            raise TypeError("a Tier 1 workflow only runs with tiergate's RestrictedScriptEngine")
        self._tiergate_engine = engine

    def update_waiting_tasks(self) -> None:
        """SpiffWorkflow's, skipped when no task waits (it walks the whole tree after every task completed).

        Its walk goes through the task tree, whose tasks are all in ``self.tasks``: if none of
        those is WAITING, the walk would update none."""
        waiting = TaskState.WAITING
        for task in self.tasks.values():  # (a loop, not ``any`` over a generator: after every task completed)
            if task._state == waiting:
                super().update_waiting_tasks()
                return

    def collect_log_extras(self, dct: dict[str, Any] | None = None) -> dict[str, Any]:
        """SpiffWorkflow's record details, which list every task (a walk of the tree), made only when
        its workflow logger would write the record (it logs at INFO: a workflow built, completed)."""
        if not _SPIFF_WORKFLOW_LOG.isEnabledFor(logging.INFO):
            return dct or {}
        return super().collect_log_extras(dct)  # type: ignore[no-any-return]
