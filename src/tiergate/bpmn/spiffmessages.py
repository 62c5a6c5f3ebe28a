"""Spiff's message extensions: what a thrown message carries, and where a caught one goes.

SpiffArena's modeler writes them inside the message event definition (or inside a send or
receive task, which is its own message event definition)::

    <bpmn:messageEventDefinition messageRef="m_reply"><bpmn:extensionElements>
      <spiffworkflow:messagePayload>{"order": order_id, "ok": True}</spiffworkflow:messagePayload>
      <spiffworkflow:messageVariable>reply</spiffworkflow:messageVariable>
    </bpmn:extensionElements></bpmn:messageEventDefinition>

* ``messagePayload`` (on a throw): an expression, evaluated by the run's restricted script engine;
  its value is the message's data (and what its correlation properties read), instead of the
  whole task data.
* ``messageVariable`` (on a catch): the message's data goes into the data under that one name,
  instead of being merged into it field by field.

SpiffWorkflow's Spiff parser reads them the same way. tiergate parses with the Camunda parser,
so here they are read from the XML and set on the standard message event definition of that
element (the spec is built from the BPMN each time, never stored; a thrown event in a stored
run keeps only its name and data, as any message does).
"""

from __future__ import annotations

import copy
import types
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.util import BpmnEvent

from tiergate.bpmn import datetimes
from tiergate.bpmn.xml import SPIFF_NS

KINDS = ("messagePayload", "messageVariable")


def read(node: etree._Element) -> dict[str, str]:
    """{"messagePayload": ..., "messageVariable": ...} found inside ``node`` (empty ones left out)."""
    found: dict[str, str] = {}
    for kind in KINDS:
        for element in node.iter(f"{{{SPIFF_NS}}}{kind}"):
            if (element.text or "").strip():
                found.setdefault(kind, element.text.strip())
    return found


def found(tree: etree._ElementTree) -> list[tuple[str, str | None, str, int]]:
    """(kind, owner id, text, line) of every message payload expression in the file."""
    out = []
    for element in tree.getroot().iter(f"{{{SPIFF_NS}}}messagePayload"):
        owner = next((e for e in element.iterancestors() if e.get("id")), None)
        out.append(("messagePayload", owner.get("id") if owner is not None else None, element.text or "",
                    element.sourceline or 1))
    return out


def apply(definition: Any, node: etree._Element) -> Any:
    """Give ``definition`` (a message event definition) the extensions written inside ``node``."""
    extensions = read(node)
    payload, variable = extensions.get("messagePayload"), extensions.get("messageVariable")
    if payload is not None:
        definition.throw = types.MethodType(_throw_payload(payload), definition)
    if variable is not None:
        definition.update_task_data = types.MethodType(_into_variable(variable), definition)
    return definition


def _throw_payload(expression: str) -> Any:
    def throw(self: Any, my_task: Any) -> None:
        payload = copy.deepcopy(my_task.workflow.script_engine.evaluate(my_task, expression))
        if datetimes.holds_time(payload):   # it becomes the catching task's data: JSON, dates as ISO text
            payload = datetimes.as_data(payload)
        correlations = self.get_correlations(my_task, payload)
        my_task.workflow.correlations.update(correlations)
        my_task.workflow.top_workflow.catch(BpmnEvent(self, payload=payload, correlations=correlations))
    return throw


def _into_variable(variable: str) -> Any:
    def update_task_data(self: Any, my_task: Any) -> None:
        if self.name in my_task.internal_data:
            my_task.data[variable] = my_task.internal_data.pop(self.name)
    return update_task_data
