"""Multi-instance and loop activities: how they are parsed and how each instance is named.

**Parsing.** SpiffWorkflow reads the standard BPMN form (``loopDataInputRef``/``inputDataItem``,
``loopDataOutputRef``/``outputDataItem``, ``loopCardinality``, ``completionCondition``). Its
Camunda parser reads Camunda Modeler's ``camunda:collection``/``camunda:elementVariable`` by
changing the shared task spec while a run goes (not safe for a spec cached across runs), so
here the Camunda form is turned into the standard one when parsing: the collection is the
input, the element variable the input item (with a number as ``loopCardinality`` beside them,
the collection is the output instead, gathering each instance's element variable, which holds
its number, as SpiffWorkflow's Camunda parser reads it). Every expression (cardinality, completion
condition, loop condition) goes through tiergate's restricted script engine like any other.

**Data.** Each instance works on a copy of the data with its own item. When the activity names
no output (``loopDataOutputRef``), what the instances set is merged back into the activity's
data when each finishes, without the item (so a sequential activity can set the item again for
the next one). With an output, SpiffWorkflow collects each instance's output item into it.

**Names.** Each instance of a multi-instance or loop user task is its own step, named
``ELEMENT[KEY]``: the index in the input list (from 0), the key of the input dict, the number
of the instance for a cardinality, or the iteration of a loop (from 0).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.TaskParser import TaskParser
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.data_spec import TaskDataReference
from SpiffWorkflow.bpmn.specs.defaults import (
    ParallelMultiInstanceTask,
    SequentialMultiInstanceTask,
)
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import (
    LoopTask,
    MultiInstanceTask,
)
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.deep_merge import DeepMerge
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import datetimes
from tiergate.bpmn.language import ExpressionError
from tiergate.bpmn.xml import BPMN_NS, CAMUNDA_NS

ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"

CHILD_SUFFIX = " [child]"
_INSTANCE = re.compile(r"^(?P<base>[^\[\]]+)\[(?P<key>[^\[\]]*)\]$")


class _MergeWithoutItem:
    """Merge an instance's data back without its input item, when there is no output."""

    def merge_child(self, workflow: Any, child: Task) -> None:
        spec: Any = self
        if spec.data_output is not None and spec.output_item is not None:
            MultiInstanceTask.merge_child(spec, workflow, child)
        else:
            data = dict(child.data)
            if spec.input_item is not None:
                data.pop(spec.input_item.bpmn_id, None)
            DeepMerge.merge(child.parent.data, data)
            child.parent.internal_data["merged"].append(str(child.id))
        self.merge_after(child.parent)

    def merge_after(self, my_task: Task) -> None:
        raise NotImplementedError

    def create_children(self, my_task: Task) -> None:
        """Name the collection when it is missing or not one, instead of failing inside SpiffWorkflow."""
        spec: Any = self
        if spec.data_input is None and spec.cardinality is not None:
            value = my_task.workflow.script_engine.evaluate(my_task, spec.cardinality)
            if isinstance(value, (list, dict)) and datetimes.holds_time(value):
                value = datetimes.as_data(value)   # each item becomes an instance's data: dates as ISO text
            if isinstance(value, (list, dict)):  # Camunda: a cardinality that names the input collection
                if spec.data_output is not None:
                    spec.init_data_output_with_cardinality(my_task)
                for key, item in (value.items() if isinstance(value, dict) else enumerate(value)):
                    self.create_child(my_task, item, key)
                return
        if isinstance(spec.data_input, TaskDataReference):
            value = spec.data_input.get(my_task)
            if not isinstance(value, (list, dict)):
                shown = "missing" if value is None else f"{json.dumps(value, default=str)[:40]}, not a list or an object"
                raise WorkflowTaskException(
                    f"the multi-instance collection '{spec.data_input.bpmn_id}' is {shown}: give it in the start "
                    "data or an earlier step's evidence, or retry this element with it", task=my_task)
        super().create_children(my_task)  # type: ignore[misc]

    def check_completion_condition(self, my_task: Task) -> Any:
        """The condition sees the activity's data (with the collection) under the finishing instance's."""
        spec: Any = self
        merged = my_task.internal_data.get("merged", [])
        if not merged or spec.condition is None:
            return None
        last = _merged_last(my_task, merged[-1])
        engine = my_task.workflow.script_engine
        try:
            return engine.environment.evaluate(spec.condition, {**my_task.data, **last.data})
        except ExpressionError as err:
            raise WorkflowTaskException(f"completion condition {spec.condition.strip()!r} failed: {err}",
                                        task=last) from None

    def create_child(self, my_task: Task, item: Any, key_or_index: Any = None) -> None:
        """Each instance gets the data without the input collection: it has its item, and a copy of
        the whole collection in each of N instances would make a run's state grow with N squared."""
        spec: Any = self
        MultiInstanceTask.create_child(spec, my_task, item, key_or_index)
        collection = getattr(spec.data_input, "bpmn_id", None)
        if collection and isinstance(spec.data_input, TaskDataReference) and my_task._children:
            my_task.workflow.tasks[my_task._children[-1]].data.pop(collection, None)  # (not the list of all children)


def _merged_last(my_task: Task, task_id: str) -> Task:
    """The child of ``my_task`` with the id ``task_id`` (the instance merged last), found by its id
    rather than by listing the activity's children (1,000 of them, each looked up by its UUID)."""
    try:
        found = my_task.workflow.tasks.get(UUID(task_id))
    except ValueError:
        found = None
    if found is not None and found._parent == my_task.id and found.id in my_task._children:
        return found  # type: ignore[no-any-return]
    return next(c for c in my_task.children if str(c.id) == task_id)


class ParallelInstances(_MergeWithoutItem, ParallelMultiInstanceTask):
    def children_complete(self, my_task: Task) -> bool:
        """SpiffWorkflow's (every instance completed), stopping at the first open one instead of
        listing every child first (a completed instance is pruned, so the first is mostly open)."""
        tasks, name = my_task.workflow.tasks, self.task_spec
        for child_id in my_task._children:
            child = tasks[child_id]
            if child.task_spec.name == name and child._state != TaskState.COMPLETED:
                return False
        return True

    def merge_after(self, my_task: Task) -> None:
        if self.check_completion_condition(my_task):
            for other in self._instances(my_task):
                other.cancel()
            my_task._set_state(TaskState.READY)
        elif self.children_complete(my_task):
            my_task._set_state(TaskState.READY)


class SequentialInstances(_MergeWithoutItem, SequentialMultiInstanceTask):
    def merge_after(self, my_task: Task) -> None:
        if self.children_complete(my_task) or self.check_completion_condition(my_task):
            my_task._set_state(TaskState.READY)
        else:
            self.add_next_child(my_task)

    def get_next_index(self, my_task: Task) -> tuple[Any, Any]:
        """A cardinality that evaluated to a list or a dict (Camunda): its items, one by one; the
        count is kept, not the collection, and the item is read again when its instance starts."""
        data = my_task.internal_data
        if isinstance(data.get("cardinality"), (list, dict)):
            data["cardinality"], data["by_item"] = len(data["cardinality"]), True
        if not data.get("by_item"):
            return super().get_next_index(my_task)  # type: ignore[no-any-return]
        current = data.get("current", 0)
        if current >= data["cardinality"]:
            return None, None
        value = my_task.workflow.script_engine.evaluate(my_task, self.cardinality)
        key = list(value)[current] if isinstance(value, dict) else current
        data["current"] = current + 1
        item = value[key]
        return key, datetimes.as_data(item) if datetimes.holds_time(item) else item


class InstanceParsing:
    """Mixed into every task parser tiergate uses: the Camunda collection form, read safely."""

    PARALLEL_MI_CLASS = ParallelInstances
    SEQUENTIAL_MI_CLASS = SequentialInstances

    def _add_multiinstance_task(self, loop_characteristics: etree._Element) -> None:
        parser: Any = self
        collection = loop_characteristics.get(f"{{{CAMUNDA_NS}}}collection")
        element = loop_characteristics.get(f"{{{CAMUNDA_NS}}}elementVariable")
        output = output_item = None
        camunda = bool(collection)
        zeebe = loop_characteristics.find(f"{{{BPMN_NS}}}extensionElements/{{{ZEEBE_NS}}}loopCharacteristics")
        if not collection and zeebe is not None and zeebe.get("inputCollection"):
            # Camunda 8 (Zeebe): inputCollection="=documents" inputElement="document", outputs likewise.
            collection = _zeebe_name(parser, zeebe, "inputCollection")
            element = zeebe.get("inputElement")
            if zeebe.get("outputCollection"):
                output = _zeebe_name(parser, zeebe, "outputCollection")
                output_item = _zeebe_name(parser, zeebe, "outputElement")
        if not collection:
            TaskParser._add_multiinstance_task(parser, loop_characteristics)
            return
        item = TaskDataReference(element.strip()) if element else None
        condition = parser.xpath("./bpmn:multiInstanceLoopCharacteristics/bpmn:completionCondition")
        cardinality = parser.xpath("./bpmn:multiInstanceLoopCharacteristics/bpmn:loopCardinality")
        count = (cardinality[0].text or "").strip() if len(cardinality) else ""
        original = parser.spec.task_specs.pop(parser.task.name)
        params = {"task_spec": "", "cardinality": None, "data_input": TaskDataReference(collection.strip()),
                  "data_output": TaskDataReference(output) if output else None,
                  "input_item": item,
                  "output_item": TaskDataReference(output_item) if output_item else None,
                  "condition": condition[0].text if len(condition) else None}
        if count and camunda:
            # With a cardinality, Camunda's collection is what the instances make: each one's element
            # variable (its index, unless it changes it) is collected into it. A cardinality that turns
            # out to be a list or a dict is the input instead (SpiffWorkflow's Camunda reading).
            params.update(cardinality=count, data_input=None, data_output=TaskDataReference(collection.strip()),
                          output_item=item)
        sequential = loop_characteristics.get("isSequential") == "true"
        cls = self.SEQUENTIAL_MI_CLASS if sequential else self.PARALLEL_MI_CLASS
        parser.task = cls(parser.spec, original.name, description="MultiInstance", **params)
        parser._copy_task_attrs(original, loop_characteristics)


def _zeebe_name(parser: Any, zeebe: etree._Element, attribute: str) -> str:
    """A field of the data named by a Zeebe attribute (``=documents`` or ``documents``); anything else is refused."""
    text = (zeebe.get(attribute) or "").strip().lstrip("=").strip()
    if not text.isidentifier():
        shown = zeebe.get(attribute)
        raise ValidationException(f"zeebe:loopCharacteristics {attribute}=\"{shown}\" is not the name of a field "
                                  "of the data; tiergate reads a multi-instance collection and its items by name "
                                  "(`=documents`): compute the collection in an earlier step or script",
                                  node=parser.node, file_name=parser.filename)
    return text


def with_instances(parser_class: type) -> type:
    return type(f"Tiergate{parser_class.__name__}", (InstanceParsing, parser_class), {})


def instance_key(task: Task) -> str | None:
    """The instance's key (see the module docstring), or None if the task is not an instance."""
    spec = task.task_spec
    if not spec.name.endswith(CHILD_SUFFIX):
        return None
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, LoopTask):
        return None
    data = task.internal_data
    for name in ("key_or_index", "item", "iteration"):
        if data.get(name) is not None and (name != "item" or isinstance(data[name], int)):
            return str(data[name])
    return None


def step_id(element: str, key: str | None) -> str:
    return element if key is None else f"{element}[{key}]"


@lru_cache(maxsize=16384)  # every answer lists every instance's step (1,000 of one task)
def split(step: str) -> tuple[str, str | None]:
    """``verify[2]`` -> (``verify``, ``2``); ``verify`` -> (``verify``, None)."""
    match = _INSTANCE.match(step)
    if match is None:
        return step, None
    return match.group("base"), match.group("key")


def by_element(records: dict[str, Any]) -> dict[str, list[tuple[str, str | None]]]:
    """The instance step ids among ``records``' keys (``verify[2]``), with their keys, by element, in the
    records' order."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    for step in records:
        if step.endswith("]"):
            base, key = split(step)
            if key is not None:
                found.setdefault(base, []).append((step, key))
    return found


def instance_item(task: Task) -> Any:
    """The input item an instance works on (for its title and instructions), or None."""
    parent = task.parent
    spec = parent.task_spec if parent is not None else None
    item = getattr(spec, "input_item", None)
    if item is not None and item.bpmn_id in task.data:
        return task.data[item.bpmn_id]
    return task.internal_data.get("item")


def connect_instances(spec: Any) -> None:
    """Merge each finished instance into its activity, in every process that runs the spec.

    SpiffWorkflow connects an activity's ``merge_child`` to its instance spec's completion only when
    it creates an instance, on the spec in memory. A run restored in another process (the next CLI
    command, the worker) has its instances already, so without this its instances would finish
    unmerged and the activity would never complete."""
    for task_spec in list(spec.task_specs.values()):
        if isinstance(task_spec, LoopTask | MultiInstanceTask) and task_spec.task_spec in spec.task_specs:
            child = spec.task_specs[task_spec.task_spec]
            if not child.completed_event.is_connected(task_spec.merge_child):
                child.completed_event.connect(task_spec.merge_child)

