"""BPMN data stores in SpiffWorkflow: every ``bpmn:dataStore`` is one of tiergate's (``tiergate.datastores``).

SpiffWorkflow 3.2 runs a data store only through a class the application registers by the
store's name (``BpmnParser.DATA_STORE_CLASSES``) and refuses a file whose store has none.
tiergate's parser gives every ``dataStore`` ``TiergateDataStore`` whatever its name: its value
lives in the database, keyed by the process and the store's id. As SpiffWorkflow does with a
data object, the task data field is the store's id: a data input association puts the store's
value there when the task becomes ready (``None`` if it was never written), a data output
association takes it from there when the task completes and writes it to the store.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowDataException
from SpiffWorkflow.bpmn.specs.data_spec import BpmnDataStoreSpecification, DataObject

from tiergate.bpmn.xml import BPMN_NS
from tiergate.errors import LimitExceededError, StaleReadError
from tiergate.timestamps import format_time

#: The longest id (and name) of a data store: its key in the ``data_stores`` table.
MAX_ID = 255

#: Where a task keeps the version of each store it read (in its internal data, saved with the run).
READ_VERSIONS = "tiergate_store_versions"


def store_name(element: Any) -> str | None:
    """The store's name as a person reads it (the modeler's line breaks made spaces), or None."""
    name = element.get("name")
    return re.sub(r"\s+", " ", name).strip() or None if name else None


class TiergateDataStore(BpmnDataStoreSpecification):  # type: ignore[misc]
    """A data store whose value is in tiergate's database, shared by the runs of the process.

    ``field`` is the task data field the value goes into or comes from: the store's id (as
    SpiffWorkflow has it), or, on one task's association (``by_association``), the data input or
    output of the task's ioSpecification at the association's other end."""

    field: str | None = None

    @property
    def _field(self) -> str:
        return self.field or self.bpmn_id

    def _access(self, my_task: Any, data_input: Any = None, data_output: Any = None) -> Any:
        access = getattr(my_task.workflow.script_engine, "stores", None)
        if access is None:
            raise WorkflowDataException(f"data store '{self.bpmn_id}' cannot be reached here: data stores are read "
                                        "and written by runs of the engine only", my_task,
                                        data_input=data_input, data_output=data_output)
        return access

    def get(self, my_task: Any) -> None:
        access = self._access(my_task, data_input=self)
        value, version = access.read(self.bpmn_id)
        my_task.data[self._field] = value
        if version is not None:
            my_task.internal_data.setdefault(READ_VERSIONS, {})[self.bpmn_id] = version

    def set(self, my_task: Any) -> None:
        field = self._field
        if field not in my_task.data:
            raise WorkflowDataException(f"data store '{self.bpmn_id}' could not be written: the task's data has no "
                                        f"field '{field}' (set it in the evidence or a script)", my_task,
                                        data_output=self)
        access = self._access(my_task, data_output=self)
        read = (my_task.internal_data.get(READ_VERSIONS) or {}).get(self.bpmn_id)
        try:
            detail = access.write(self.bpmn_id, self.bpmn_name, my_task.data[field],
                                  my_task.task_spec.bpmn_id, read_version=read, task_id=my_task.id)
        except LimitExceededError as err:
            engine = my_task.workflow.script_engine
            engine.over_limit = (err.details.get("limit", "evidence_bytes"),
                                 f"the value for data store '{self.bpmn_id}' is too large: {err.message}")
            raise WorkflowDataException(f"data store '{self.bpmn_id}' could not be written: {err.message}",
                                        my_task, data_output=self) from None
        except (TypeError, ValueError) as err:
            raise WorkflowDataException(f"data store '{self.bpmn_id}' could not be written: its value is not JSON "
                                        f"data ({err})", my_task, data_output=self) from None
        engine = my_task.workflow.script_engine
        engine.record("data_store_written", my_task, detail)
        if field == self.bpmn_id:  # (a data output of the task's ioSpecification goes on after it, as its output)
            del my_task.data[field]
            access.written[-1].taken_from = field


def add_data_stores(parser: Any, bpmn: Any) -> None:
    """Every ``dataStore`` of a file becomes a ``TiergateDataStore`` (in place of SpiffWorkflow's lookup by name)."""
    for element in bpmn.xpath(".//bpmn:dataStore", namespaces=parser.namespaces):
        store_id = element.get("id")
        if store_id:  # `tiergate check` refuses a data store without an id
            parser.data_stores[store_id] = TiergateDataStore(store_id, store_name(element) or store_id,
                                                             element.get("capacity"), element.get("isUnlimited"))


def check(check: Any, tree: Any) -> None:
    """What SpiffWorkflow needs to resolve a data store: an id on each, and each reference naming one."""
    root = tree.getroot()
    stores = {element.get("id") for element in root.iter(f"{{{BPMN_NS}}}dataStore")}
    for element in root.iter(f"{{{BPMN_NS}}}dataStore"):
        if not element.get("id"):
            check.error(element.sourceline or 1, element.get("name"), "a data store needs an id: the id is its key in "
                        "the database and the task data field it is read into. Give it one.")
        elif len(element.get("id")) > MAX_ID or len(element.get("name") or "") > MAX_ID:
            check.error(element.sourceline or 1, element.get("id")[:40], f"a data store's id and name may have at most "
                        f"{MAX_ID} characters (its key in the database). Shorten them.")
    for element in root.iter(f"{{{BPMN_NS}}}dataStoreReference"):
        target = element.get("dataStoreRef")
        if not target:
            check.error(element.sourceline or 1, element.get("id"), "this data store reference names no data store "
                        "(dataStoreRef): a task reads or writes nothing through it. Add a bpmn:dataStore to the "
                        "definitions and set dataStoreRef to its id.")
        elif target not in stores:
            check.error(element.sourceline or 1, element.get("id"), f"dataStoreRef '{target}' is not a data store of "
                        "this file: add <bpmn:dataStore id=\"" + target + "\" name=\"...\"/> to the definitions, or "
                        "name one that is there.")


def read_by(tree: Any, element: Any) -> set[str]:
    """The data stores ``element`` reads (the ``dataStoreRef`` of its data input associations' sources)."""
    stores: set[str] = set()
    for ref in element.iterfind(f"{{{BPMN_NS}}}dataInputAssociation/{{{BPMN_NS}}}sourceRef"):
        for source in tree.getroot().xpath("//*[@id=$id]", id=(ref.text or "").strip()):
            if source.get("dataStoreRef"):
                stores.add(source.get("dataStoreRef"))
    return stores


def by_association(spec: Any, tree: Any) -> None:
    """Give each task's data store associations their task data field (``TiergateDataStore.field``).

    SpiffWorkflow reads and writes a store through the field of the store's id, whatever the
    association's other end, and so it does a data object. BPMN's association links the store to one of the task's data inputs
    (input association: ``targetRef``) or data outputs (output association: ``sourceRef``); when
    that end is a data input or output of the task's ioSpecification, the value goes into (or is
    taken from) that field instead, so that the ioSpecification finds it."""
    root = tree.getroot()
    stores_by_ref = {ref.get("id"): ref.get("dataStoreRef") for ref in root.iter(f"{{{BPMN_NS}}}dataStoreReference")}
    stores_by_ref.update({ref.get("id"): ref.get("dataObjectRef")
                          for ref in root.iter(f"{{{BPMN_NS}}}dataObjectReference")})
    for task_spec in spec.task_specs.values():
        element_id = getattr(task_spec, "bpmn_id", None)
        if not element_id or not (task_spec.data_input_associations or task_spec.data_output_associations):
            continue
        element = next(iter(root.xpath("//*[@id=$id]", id=element_id)), None)
        if element is None:
            continue
        items = {item.get("id") for kind in ("dataInput", "dataOutput")
                 for item in element.iterfind(f"{{{BPMN_NS}}}ioSpecification/{{{BPMN_NS}}}{kind}")}
        for attribute, kind, store_end, task_end in (
                ("data_input_associations", "dataInputAssociation", "sourceRef", "targetRef"),
                ("data_output_associations", "dataOutputAssociation", "targetRef", "sourceRef")):
            fields: dict[str, str] = {}
            for association in element.iterfind(f"{{{BPMN_NS}}}{kind}"):
                store = stores_by_ref.get((association.findtext(f"{{{BPMN_NS}}}{store_end}") or "").strip())
                item = (association.findtext(f"{{{BPMN_NS}}}{task_end}") or "").strip()
                if store and item in items:
                    fields[store] = item
            if fields:
                setattr(task_spec, attribute, [_with_field(each, fields.get(each.bpmn_id))
                                               for each in getattr(task_spec, attribute)])


class MappedDataObject(DataObject):  # type: ignore[misc]
    """A data object read into, or written from, a data input or output of the task's ioSpecification."""

    def __init__(self, original: DataObject, field: str):
        super().__init__(original.bpmn_id, original.bpmn_name)
        self.field = field

    def get(self, my_task: Any) -> None:
        super().get(my_task)
        if self.field != self.bpmn_id:
            my_task.data[self.field] = my_task.data.pop(self.bpmn_id)

    def set(self, my_task: Any) -> None:
        if self.field in my_task.data:  # the data output stays: it goes on after the task, as its output
            my_task.data[self.bpmn_id] = copy.deepcopy(my_task.data[self.field])
        super().set(my_task)


def _with_field(spec: Any, field: str | None) -> Any:
    if field is None or field == spec.bpmn_id:
        return spec
    if type(spec) is DataObject:
        return MappedDataObject(spec, field)
    if not isinstance(spec, TiergateDataStore):
        return spec
    one = TiergateDataStore(spec.bpmn_id, spec.bpmn_name, spec.capacity, spec.is_unlimited)
    one.field = field
    return one


def refuse_stale(move: Any, task: Any, step_id: str) -> None:
    """Before a person's or agent's completion (or skip) of ``task``: if a store it writes was written by
    another run since the task read it (when it became ready), refuse it (``StaleReadError``).

    Nothing of the completion is made. The task reads its stores again, so the step's data shows
    their current values and the next completion is judged against those; the refusal carries that
    state for the engine to save with the ``refused`` entry."""
    access = getattr(move.ctx, "stores", None)
    if access is None or not access.strict:
        return
    stale = _stale(access, task)
    if not stale:
        return
    read_again(task)  # the step's data: the stores as they are now
    status = move.run()
    run_id = move.ctx.run_id
    what = _stale_words(stale)
    raise StaleReadError(
        f"step '{step_id}' of run {run_id} was not completed: {what}. Completing it would overwrite that "
        f"update with a value decided on the old one. The step now shows the store's current value: read it "
        f"(tiergate status {run_id}), then complete the step again. Nothing was written.",
        details={"run": run_id, "step": step_id, "stores": stale, "see": "status"},
        refreshed=(move.state, status, list(move.events)))


def read_again(task: Any) -> None:
    """The task reads its data stores again: their current values in its data, their versions as its read."""
    for spec in task.task_spec.data_input_associations:
        if isinstance(spec, TiergateDataStore):
            spec.get(task)


def retry_reads(move: Any, task: Any, element: str, computes: bool) -> None:
    """Before a retry runs ``task`` again: if a store it writes was written by another run since the task
    read it, a task that ``computes`` its output (a script that failed) reads its stores again and runs on
    their current values; any other (a person's step, whose evidence was decided on the old read, or a
    task that failed while completing) is refused (``StaleReadError``), the run left failed."""
    access = getattr(move.ctx, "stores", None)
    stale = _stale(access, task) if access is not None else []
    if not stale:
        return
    if computes:
        read_again(task)
        return
    run_id = move.ctx.run_id
    raise StaleReadError(
        f"'{element}' of run {run_id} was not retried: {_stale_words(stale)}. Completing it again would overwrite "
        f"that update with a value decided on the old one. Nothing was written; the run is still failed. Cancel it "
        f"(tiergate cancel {run_id} --reason ...) and start a new one on the store's current value.",
        details={"run": run_id, "step": element, "stores": stale, "see": "stores"})


def _stale(access: Any, task: Any) -> list[dict[str, Any]]:
    """Each store ``task`` writes that another run wrote since the task read it (its versions, who wrote it)."""
    versions = task.internal_data.get(READ_VERSIONS) or {}
    stale: list[dict[str, Any]] = []
    for spec in task.task_spec.data_output_associations:
        if not isinstance(spec, TiergateDataStore) or spec.bpmn_id not in versions:
            continue  # (a store the task writes without having read it: nothing to be stale)
        _value, version = access.read(spec.bpmn_id)
        if version == versions[spec.bpmn_id]:
            continue
        last = access.last_write(spec.bpmn_id)
        stale.append({"store": spec.bpmn_id, "name": spec.bpmn_name, "read_version": versions[spec.bpmn_id],
                      "version": version, "written_by_run": last.run_id if last else None,
                      "written_at_step": last.step if last else None,
                      "written_at": format_time(last.updated_at) if last and last.updated_at else None})
    return stale


def _stale_words(stale: list[dict[str, Any]]) -> str:
    return "; ".join(f"data store '{s['store']}'" + (f" ({s['name']})" if s["name"] and s["name"] != s["store"] else "")
                     + f" was written by run {s['written_by_run']}"
                     + (f" at step '{s['written_at_step']}'" if s["written_at_step"] else "")
                     + (f" at {s['written_at']}" if s["written_at"] else "")
                     + f" after this step read it (version {s['read_version']}, now {s['version']})" for s in stale)
