"""Call activities: the called process runs inside the caller's run, pinned with it.

A call activity's ``calledElement`` names another Tier 1 process of the home
(``processes/<id>.bpmn``). When the caller is loaded, the called process is read too (and what
it calls, in turn), its XML is pinned in the caller's definition (so a run keeps the version of
the called process it started with, whatever happens to the file later), and its elements join
the caller's: **the called process's steps are steps of the caller's run**, with their own ids,
gates and lanes, shown by ``tiergate status`` and logged in the caller's log. The called
process gets a copy of the caller's data and gives all of its data back when it ends.

An id that names something in the run (a step, any other task, a subprocess: what status, the
log, gates, retries and commands address) must be unique across the caller and what it calls, and
``tiergate check`` reports such a clash, naming both elements. Events, gateways, sequence flows and
lanes of a called process (in another file) whose id the caller, or a process called before, has
(``StartEvent_1``, which Camunda Modeler gives every first start event) are renamed in the run to
``<called process>.<id>`` (``CommonActivity.StartEvent_1``): in the model and in the trees
SpiffWorkflow reads, so the log, ``passed``, lanes' roles and the dumps never mix two elements. The
pinned XML is kept as it is; the renaming is redone, the same, whenever the definition is read.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from lxml import etree

from tiergate.bpmn.model import EVENT_KINDS, GATEWAY_KINDS, ProcessModel, read_process
from tiergate.bpmn.xml import BPMN_NS, BpmnError, local, parse_bpmn

MAX_DEPTH = 10
#: Kinds of a called process's elements that may repeat an id of the caller (they are renamed).
RENAMED_KINDS = EVENT_KINDS | GATEWAY_KINDS | {"sequenceFlow", "lane"}
#: Attributes and elements that refer to an element by its id, in a process and its diagram.
_REF_ATTRIBUTES = ("id", "sourceRef", "targetRef", "default", "attachedToRef", "bpmnElement", "sourceElement",
                   "targetElement")
_REF_ELEMENTS = frozenset({"incoming", "outgoing", "flowNodeRef", "sourceRef", "targetRef"})


def read_called(model: ProcessModel, folder: Path | dict[str, str], shown: str, error: Any,
                tree: etree._ElementTree | None = None) -> dict[str, str]:
    """Merge every process ``model`` calls into it, read from ``folder`` (or from pinned XML by id),
    or from ``tree`` when the called process is in the same file; ``error(line, element, message)``
    reports problems. Returns the XML of the called processes of other files, by id.
    """
    called: dict[str, str] = {}
    same_file = {p.get("id"): tree for p in tree.getroot().iter(f"{{{BPMN_NS}}}process")} if tree is not None else {}
    _visit(model, model, folder, shown, error, called, [model.id], None, same_file)
    for process_id in same_file:
        called.pop(process_id or "", None)
    return called


def _read(folder: Path | dict[str, str], target: str) -> str:
    if isinstance(folder, dict):
        if target not in folder:
            raise OSError(target)
        return folder[target]
    return (folder / f"{target}.bpmn").read_text(encoding="utf-8")


def _visit(root: ProcessModel, caller: ProcessModel, folder: Path | dict[str, str], shown: str, report: Any,
           called: dict[str, str], path: list[str], top: int | None, same_file: dict[Any, Any]) -> None:
    for node in list(caller.nodes.values()):
        if node.kind != "callActivity":
            continue

        def error(line: int, element: str, message: str, at: int | None = top) -> None:
            """Problems inside a called process are reported at the call activity of this file that leads there."""
            report(line if at is None else at, element, message if at is None else
                   f"{message} (in processes/{caller.id}.bpmn, line {line})")

        target = (node.called or "").strip()
        if not target:
            error(node.line, node.id, "the call activity names no process: set calledElement to the id of a process "
                                      "in processes/.")
            continue
        if target in path:
            error(node.line, node.id, f"calls '{target}', which calls back into {' -> '.join(path)}: a process "
                                      "cannot call itself.")
            continue
        if len(path) > MAX_DEPTH:
            error(node.line, node.id, f"calls nested more than {MAX_DEPTH} deep.")
            continue
        if target in called:
            continue
        display = f"{shown.rsplit('/', 1)[0]}/{target}.bpmn" if "/" in shown else f"{target}.bpmn"
        try:
            if target in same_file:
                text, child = "", read_process(same_file[target], target, shown)
            else:
                text = _read(folder, target)
                child = read_process(parse_bpmn(text, display), target, display)
        except OSError:
            error(node.line, node.id, f"calls '{target}', but {display} does not exist. Set calledElement to a "
                                      "process of processes/.")
            continue
        except BpmnError as err:
            error(node.line, node.id, f"calls '{target}', which cannot be read: {err.message}")
            continue
        called[target] = text
        clash = sorted((set(child.nodes) | set(child.flows)) & (set(root.nodes) | set(root.flows))
                       | set(child.lanes) & set(root.lanes))
        if clash:
            refused = [i for i in clash if target in same_file or _kind(child, i) not in RENAMED_KINDS]
            names = {i: f"{target}.{i}" for i in clash if i not in refused}
            used = {*root.nodes, *root.flows, *root.lanes, *child.nodes, *child.flows, *child.lanes}
            taken = sorted(n for n in names.values() if n in used)
            if refused or taken:
                where = shown if target in same_file else display
                clashes = "; ".join(f"{_kind(child, i)} '{i}' (line {_line(child, i)} of {where}) and "
                                    f"{_kind(root, i)} '{i}' (line {_line(root, i)})" for i in refused[:5])
                why = ("In one file SpiffWorkflow finds elements by id" if target in same_file else
                       "A step, task or subprocess id names one thing in the run")
                error(node.line, node.id, f"calls '{target}', whose element ids are also used here: {clashes}. "
                                          f"{why}: rename one of each pair." if refused else
                      f"calls '{target}', whose repeated ids would be renamed to {', '.join(taken)}, which are "
                      "also used: rename those elements.")
                continue
            child = read_process(rename(parse_bpmn(text, display), names), target, display)
            root.renamed[target] = names
        merge(root, child, node.id)
        _visit(root, child, folder, shown, report, called, [*path, target], node.line if top is None else top,
               same_file)


def _kind(model: ProcessModel, element: str) -> str:
    node = model.nodes.get(element)
    return node.kind if node is not None else "sequenceFlow" if element in model.flows else "lane"


def _line(model: ProcessModel, element: str) -> int:
    found = model.nodes.get(element) or model.flows.get(element) or model.lanes.get(element)
    return found.line if found is not None else model.line


def rename(tree: etree._ElementTree, names: dict[str, str]) -> etree._ElementTree:
    """Rename elements of ``tree`` (``names``: {id: new id}), and every reference to them, in place."""
    if not names:
        return tree
    for element in tree.getroot().iter():
        if not isinstance(element.tag, str):
            continue
        for attribute in _REF_ATTRIBUTES:
            value = element.get(attribute)
            if value is not None and value in names:
                element.set(attribute, names[value])
        if local(element) in _REF_ELEMENTS and element.text and element.text.strip() in names:
            element.text = names[element.text.strip()]
    return tree


def merge(root: ProcessModel, child: ProcessModel, call: str) -> None:
    for node_id, node in child.nodes.items():
        root.nodes[node_id] = replace(node, container=call if node.container == child.id else node.container)
    root.flows.update(child.flows)
    root.lanes.update(child.lanes)  # a lane id the caller also has was renamed


def called_trees(called: dict[str, str], renamed: dict[str, dict[str, str]] | None = None) -> list[etree._ElementTree]:
    """The trees of the called processes for SpiffWorkflow, with the ids ``read_called`` renamed."""
    return [rename(parse_bpmn(xml, f"processes/{process_id}.bpmn"), (renamed or {}).get(process_id, {}))
            for process_id, xml in sorted(called.items())]
