"""Turning a parsed BPMN tree into SpiffWorkflow specs.

SpiffWorkflow's Camunda parser does the work, with a pass before, one change and a pass afterwards:

* Business rule tasks become ``DecisionTask``: the decision is named by ``camunda:decisionRef``
  or by SpiffWorkflow's ``spiffworkflow:calledDecisionId``, and evaluated with tiergate's own
  DMN engine (``RestrictedScriptEngine.decide``) from the decisions pinned with the run.
  SpiffWorkflow's DMN engine (Python ``eval`` in every cell) is never used.
* Before parsing, the shapes BPMN defines that SpiffWorkflow's parser refuses (implicit splits,
  subprocesses without a start event) are drawn as gateways and events on a copy of the tree
  (``tiergate.bpmn.implicit``).
* After parsing, every timer definition is replaced by its clock-aware version
  (``tiergate.bpmn.timers``), with plain ISO 8601 literals quoted.

The parser is only ever given a tree from ``tiergate.bpmn.xml.parse_bpmn``.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CANCEL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TERMINATION_EVENT_XPATH,
    TIMER_EVENT_XPATH,
    EventDefinitionParser,
    ReceiveTaskParser,
    SendTaskParser,
)
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import ManualTask, ReceiveTask, SendTask, StartEvent
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.defaults import NoneTask
from SpiffWorkflow.bpmn.specs.mixins import BpmnSpecMixin
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.event_parsers import (
    CamundaEndEventParser,
    CamundaEventDefinitionParser,
    CamundaStartEventParser,
)
from SpiffWorkflow.camunda.parser.task_spec import CamundaTaskParser

from tiergate.bpmn import datastore, feel, implicit, prepost, spiffmessages
from tiergate.bpmn.adhoc import TiergateAdHocParser
from tiergate.bpmn.instances import with_instances
from tiergate.bpmn.model import ProcessModel
from tiergate.bpmn.model import _decision as model_decision
from tiergate.bpmn.model import result_variable as model_result_variable
from tiergate.bpmn.model import TIMER_KINDS
from tiergate.bpmn.timers import clock_timer, is_literal, literal_or_expression
from tiergate.bpmn.xml import BPMN_NS, CAMUNDA_NS, SPIFF_NS, BpmnError


class DecisionTask(BpmnSpecMixin):
    """A business rule task, decided by tiergate's DMN engine."""

    def __init__(self, wf_spec: Any, bpmn_id: str, decision_id: str, result_variable: str | None = None,
                 **kwargs: Any):
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.decision_id = decision_id
        self.result_variable = result_variable

    def _run_hook(self, my_task: Any) -> bool:
        my_task.workflow.script_engine.decide(my_task, self.decision_id, self.result_variable)
        return bool(super()._run_hook(my_task))


class DecisionTaskParser(CamundaTaskParser):
    @staticmethod
    def get_decision_ref(node: etree._Element) -> str:
        """The decision id, from ``camunda:decisionRef``, ``spiffworkflow:calledDecisionId`` or Zeebe's
        ``zeebe:calledDecision decisionId`` ("" if none)."""
        return model_decision(node) or ""

    def create_task(self) -> Any:
        decision = self.get_decision_ref(self.node)
        if not decision:  # no decision to evaluate: someone applies the rule, a step like a manual task
            return ManualTask(self.spec, self.bpmn_id, **self.bpmn_attributes)
        return DecisionTask(self.spec, self.bpmn_id, decision_id=decision,
                            result_variable=model_result_variable(self.node), **self.bpmn_attributes)


class PlainTask(NoneTask):
    """A plain ``bpmn:task``: nobody is asked to do it, so it completes by itself (docs/tier1.md).

    SpiffWorkflow marks it manual, and a manual task waits for a person forever; tiergate's steps
    are user and manual tasks only, so no one could ever complete it and the run would hang."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any):
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class EventStartParser(CamundaStartEventParser):
    """Start events, also with an error or escalation definition (event subprocesses catch those)."""

    def create_task(self) -> Any:
        event_definition = self.get_event_definition([MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH,
                                                      ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH])
        task = self._create_task(event_definition)
        self.spec.start.connect(task)
        return task


class SignalEndParser(CamundaEndEventParser):
    """An end event as BPMN has it: SpiffWorkflow 3.2's parser leaves out the signal end event (it would
    be a none end event that throws nothing), so its signal is read here with the other kinds."""

    def create_task(self) -> Any:
        event_definition = self.get_event_definition([MESSAGE_EVENT_XPATH, CANCEL_EVENT_XPATH, ERROR_EVENT_XPATH,
                                                      ESCALATION_EVENT_XPATH, TERMINATION_EVENT_XPATH,
                                                      SIGNAL_EVENT_XPATH])
        task = self._create_task(event_definition)
        task.connect(self.spec.end)
        return task


_CLASSES = {
    **CamundaParser.OVERRIDE_PARSER_CLASSES,
    full_tag("businessRuleTask"): (DecisionTaskParser, DecisionTask),
    full_tag("startEvent"): (EventStartParser, StartEvent),
    full_tag("endEvent"): (SignalEndParser, CamundaParser.OVERRIDE_PARSER_CLASSES[full_tag("endEvent")][1]),
    # A service task is a step for an agent: it waits, like a manual task, until one completes it.
    full_tag("serviceTask"): (CamundaTaskParser, ManualTask),
    full_tag("task"): (CamundaTaskParser, PlainTask),
    full_tag("sendTask"): (SendTaskParser, SendTask),
    full_tag("receiveTask"): (ReceiveTaskParser, ReceiveTask),
}


class StandardMessages:
    """Message events as BPMN has them (payload: the task data), not Camunda's expression/result variable,
    with Spiff's messagePayload and messageVariable when written (``tiergate.bpmn.spiffmessages``)."""

    def parse_message_event(self, message_event: etree._Element) -> Any:
        definition = EventDefinitionParser.parse_message_event(self, message_event)  # type: ignore[arg-type]
        return spiffmessages.apply(definition, message_event)


def _adapted(parser: type) -> type:
    if issubclass(parser, (CamundaEventDefinitionParser, SendTaskParser)):
        parser = type(f"Tiergate{parser.__name__}", (StandardMessages, parser), {})
    return with_instances(parser) if issubclass(parser, TaskParser) else parser


class TiergateParser(CamundaParser):
    OVERRIDE_PARSER_CLASSES = {tag: (_adapted(parser), spec) for tag, (parser, spec) in _CLASSES.items()}
    AD_HOC_PARSER_CLASS = TiergateAdHocParser

    def _add_data_stores(self, bpmn: Any) -> None:
        datastore.add_data_stores(self, bpmn)  # every data store is tiergate's, whatever its name


def _clock_timers(spec: Any, model: ProcessModel) -> None:
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if definition is None:
            continue
        node = model.nodes.get(getattr(task_spec, "bpmn_id", None) or "")
        kind = node.timer.kind if node is not None and node.timer is not None else ""
        if isinstance(definition, TimerEventDefinition):
            task_spec.event_definition = _converted(definition, kind)
        elif isinstance(definition, MultipleEventDefinition):
            definition.event_definitions = [_converted(d, kind) if isinstance(d, TimerEventDefinition) else d
                                            for d in definition.event_definitions]


def _converted(definition: TimerEventDefinition, kind: str) -> TimerEventDefinition:
    if not kind:  # a timer after an event-based gateway: the gateway holds it; tell its kind by its value
        kind = next((k for k in TIMER_KINDS if is_literal(k, (definition.expression or "").strip())), "")
    replacement = clock_timer(definition)
    replacement.expression = literal_or_expression(kind, definition.expression or "")
    return replacement


#: SpiffWorkflow's refusals that say what is wrong but not what to draw instead.
_ADVICE = {
    "Multiple outgoing flows are not supported for tasks of type":
        "a task with several outgoing flows (an implicit split) is not run; draw a parallel gateway after "
        "it for all the paths, or an exclusive gateway with conditions for one",
    "Non-default exclusive outgoing sequence flow without condition":
        "a flow out of the exclusive gateway has no condition and is not its default flow; give it a "
        "condition, or make it the gateway's default flow",
    "Ad hoc subprocesses may not contain start or end events":
        "an ad-hoc subprocess holds activities only, without start or end events: remove them (each activity "
        "without an incoming flow is offered when the subprocess starts)",
}


def _unresolved_association(tree: etree._ElementTree, element: str | None) -> str | None:
    """SpiffWorkflow names the unresolved data association by its XML object; name what it points to."""
    owner = next(iter(tree.getroot().xpath("//*[@id=$id]", id=element or "")), None)
    if owner is None:
        return None
    for kind, end in (("dataInputAssociation", "sourceRef"), ("dataOutputAssociation", "targetRef")):
        for ref in owner.iterfind(f"{{{BPMN_NS}}}{kind}/{{{BPMN_NS}}}{end}"):
            target = (ref.text or "").strip()
            if not tree.getroot().xpath("//*[@id=$id]", id=target):
                return (f"its {kind} points to '{target}', which is not an element of this file; connect it to "
                        "a data object reference of the process, or delete it")
    return None


def build_specs(tree: etree._ElementTree, model: ProcessModel, source: str,
                called: list[etree._ElementTree] | None = None) -> tuple[Any, dict[str, Any]]:
    """The SpiffWorkflow spec of ``model.id`` and of its subprocesses and the processes it calls.

    Raises BpmnError with element and line.
    """
    parser = TiergateParser()
    for each in (tree, *(called or [])):
        feel.mark_languages(each)
    trees = [implicit.normalised(each) for each in (tree, *(called or []))]  # BPMN's implicit shapes drawn
    made = implicit.generated(trees)
    try:
        for each in trees:
            parser.add_bpmn_xml(each, filename=source)
        spec = parser.get_spec(model.id)
        subprocess_specs = parser.get_subprocess_specs(model.id)
    except ValidationException as exc:
        element = getattr(exc, "id", "") or None
        element = made.get(element or "", (element, ""))[0]  # a generated element: the drawn one it was made for
        node = model.nodes.get(element or "") or model.flows.get(element or "")
        line = node.line if node is not None else model.line
        message = str(exc).split(". ")[0].rstrip(".")
        message = next((advice for start, advice in _ADVICE.items() if message.startswith(start)), message)
        if message.startswith("Cannot resolve data"):
            message = _unresolved_association(tree, element) or message.split(" <", 1)[0]
        where = f" (element '{element}')" if element else ""
        raise BpmnError(f"{source}:{line}: SpiffWorkflow cannot execute this process{where}: {message}.",
                        line=line, element=element, source=source) from None
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise BpmnError(f"{source}:{model.line}: SpiffWorkflow cannot read this process: {exc!r}. Check the "
                        "elements `tiergate check` lists, or simplify the diagram.", line=model.line,
                        source=source) from None
    implicit.mark_generated([spec, *subprocess_specs.values()], made)
    _clock_timers(spec, model)
    for each in (tree, *(called or [])):
        for one in (spec, *subprocess_specs.values()):
            if one is not None:
                datastore.by_association(one, each)
    scripts = prepost.scripts_by_element([tree, *(called or [])])
    prepost.attach(spec, scripts)
    outputs = feel.output_mappings([tree, *(called or [])])
    feel.attach_outputs(spec, outputs)
    for sub in subprocess_specs.values():
        if sub is not None:
            _clock_timers(sub, model)
            prepost.attach(sub, scripts)
            feel.attach_outputs(sub, outputs)
    return spec, subprocess_specs
