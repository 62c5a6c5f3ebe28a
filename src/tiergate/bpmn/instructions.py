"""What ``tiergate check`` says of a Tier 1 step's instructions, and the names a process sets.

A step's instructions (``spiffworkflow:instructionsForEndUser``, else its ``documentation``) are
a Jinja template. Besides ``data``, ``run`` and ``steps`` they may read the run's data by name,
as SpiffWorkflow's templates read the task's data (``{{ investigator }}``; the three names above
come first when a field is named like one of them). A name that nothing in the file ever sets
(no gate's field, script, data input or output, data object, multi-instance item, message
variable, event payload, decision result, form field or start ``inputs``) is a warning, not a
refusal: start data or a message may still bring it, and until the run has it, it shows as empty
text (``tiergate.runview``). What the processes it calls set, and what the processes of processes/
that call it set (a called process gets a copy of its caller's data), counts as set.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from tiergate.bpmn.model import ZEEBE_NS
from tiergate.bpmn.steps import parse_gate
from tiergate.bpmn.xml import BPMN_NS, CAMUNDA_NS, SPIFF_NS, BpmnError, parse_bpmn
from tiergate.definitions.decisions import Decision
from tiergate.runview import RESERVED_NAMES
from tiergate.templating import check_syntax, unknown_names

_SCHEMA_BRANCHES = ("allOf", "anyOf", "oneOf")
_ITEM_NAMES: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def item_names(definition: Any) -> dict[str, str]:
    """{element: the name of its instances' item} for each multi-instance task of ``definition``'s specs
    that names one (``inputDataItem``, Camunda's ``elementVariable``)."""
    found = _ITEM_NAMES.get(definition)
    if found is None:
        from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask

        spec, subprocess_specs = definition.specs
        found = {}
        for one in (spec, *subprocess_specs.values()):
            for task_spec in (one.task_specs.values() if one is not None else ()):
                item = getattr(task_spec, "input_item", None)
                if isinstance(task_spec, MultiInstanceTask) and item is not None and item.bpmn_id:
                    found[task_spec.bpmn_id or task_spec.name] = item.bpmn_id
        _ITEM_NAMES[definition] = found
    return found


def check_instructions(check: Any, tree: etree._ElementTree, resources: dict[str, Any],
                       decisions: dict[str, Decision], *, called: dict[str, str] | None = None,
                       folder: Path | None = None) -> None:
    """Each step's instructions: a syntax error is an error; a bare name nothing sets is a warning.

    "Nothing" is this file, the processes it calls (``called``: their steps are steps of its runs),
    and the processes of ``folder`` (processes/) that call it: a called process gets a copy of its
    caller's data, so what a caller sets is there when its steps are ready."""
    written: set[str] | None = None
    callers: list[str] = []
    for node in check.model.steps:
        if not node.documentation:
            continue
        error = check_syntax(node.documentation)
        if error is not None:
            check.error(node.line, node.id, f"instructions (documentation) template syntax error on its line "
                        f"{error[0]}: {error[1]}.")
            continue
        bare = unknown_names(node.documentation, set(RESERVED_NAMES))
        if not bare:
            continue
        if written is None:
            written = names_written(tree, resources, decisions)
            for text in (called or {}).values():
                written |= _names_of(text, resources)
            if any(n not in written for n in bare) and folder is not None:
                for caller, text in _callers(folder, check.model.id):
                    callers.append(caller)
                    written |= _names_of(text, resources)
        by_callers = f" or the processes that call it ({', '.join(callers)})" if callers else ""
        for name in (n for n in bare if n not in written):
            check.error(node.line, node.id, f"instructions use `{name}`, which nothing in this process{by_callers} "
                        "sets (no step's gate, script, data input or output, data object, multi-instance item, "
                        "message variable, decision or start `inputs` names it): a run shows it as empty until its "
                        f"data has it. Name `{name}` in the gate of the step that gives it (or in `inputs`), or fix "
                        "the name.", "warning")


def _names_of(text: str, resources: dict[str, Any]) -> set[str]:
    try:
        return names_written(parse_bpmn(text, "called"), resources, {})
    except BpmnError:
        return set()   # reported where that file is checked


def _callers(folder: Path, process_id: str) -> Iterator[tuple[str, str]]:
    """(id, XML) of each other process file of ``folder`` with a call activity that calls ``process_id``."""
    calling = re.compile(r"""calledElement\s*=\s*["']\s*""" + re.escape(process_id) + r"""\s*["']""")
    try:
        files = sorted(folder.glob("*.bpmn"))
    except OSError:
        return
    for path in files:
        if path.name == f"{process_id}.bpmn":
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if calling.search(text):
            yield path.name[:-len(".bpmn")], text


def names_written(tree: etree._ElementTree, resources: dict[str, Any], decisions: dict[str, Decision]) -> set[str]:
    """Every top-level data name something in the file may set."""
    root = tree.getroot()
    names: set[str] = set()
    for prop in root.iter(f"{{{CAMUNDA_NS}}}property", f"{{{SPIFF_NS}}}property"):
        if prop.get("name") in ("gate", "inputs"):
            names.update(_schema_fields(prop.get("value") or prop.text or "", resources))
    scripts = [e.text or "" for e in root.iter(f"{{{BPMN_NS}}}script", f"{{{SPIFF_NS}}}preScript",
                                                f"{{{SPIFF_NS}}}postScript")]
    for script in scripts:
        names.update(_assigned(script))
    for tag in ("dataInput", "dataOutput", "dataObject", "inputDataItem", "outputDataItem"):
        for element in root.iter(f"{{{BPMN_NS}}}{tag}"):
            names.update(v for v in (element.get("id"), element.get("name")) if v)
    for element in root.iter(f"{{{BPMN_NS}}}dataObjectReference"):
        names.update(v for v in (element.get("dataObjectRef"), element.get("name")) if v)
    for element in root.iter(f"{{{BPMN_NS}}}loopDataOutputRef", f"{{{SPIFF_NS}}}messageVariable",
                             f"{{{SPIFF_NS}}}variableName"):
        names.update(_words(element.text))
    for element in root.iter(f"{{{BPMN_NS}}}multiInstanceLoopCharacteristics"):
        names.update(_words(element.get(f"{{{CAMUNDA_NS}}}elementVariable")))
        names.update(_words(element.get(f"{{{CAMUNDA_NS}}}collection")))
    for element in root.iter(f"{{{ZEEBE_NS}}}loopCharacteristics"):
        names.update(_words(element.get("inputElement"), element.get("outputElement"), element.get("outputCollection")))
    for element in root.iter(f"{{{ZEEBE_NS}}}input", f"{{{ZEEBE_NS}}}output"):
        names.update(_words(element.get("target")))
    for element in root.iter(f"{{{CAMUNDA_NS}}}inputParameter", f"{{{CAMUNDA_NS}}}outputParameter",
                             f"{{{CAMUNDA_NS}}}formField"):
        names.update(_words(element.get("name") or element.get("id")))
    for element in root.iter(f"{{{BPMN_NS}}}businessRuleTask"):
        names.update(_words(element.get(f"{{{CAMUNDA_NS}}}resultVariable")))
    for decision in decisions.values():
        try:
            names.update(decision.output_names)
        except Exception:  # noqa: BLE001, S112 - a decision that fails to load is reported on its own
            continue
    return names


def _words(*texts: str | None) -> Iterator[str]:
    for text in texts:
        value = (text or "").strip().lstrip("=").strip()
        head = value.split(".", 1)[0].split("[", 1)[0].strip()
        if head.isidentifier():
            yield head


def _assigned(script: str) -> set[str]:
    """The top-level names a script (restricted Python) assigns."""
    try:
        parsed = ast.parse(textwrap.dedent(script).strip("\n"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {node.id for node in ast.walk(parsed) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}


def _schema_fields(text: str, resources: dict[str, Any]) -> set[str]:
    """The fields a gate or ``inputs`` schema names (its properties and required), through allOf/anyOf/oneOf,
    if/then/else and ``$ref``s to schema files."""
    try:
        schema = parse_gate(text)
    except (ValueError, json.JSONDecodeError):
        return set()
    fields: set[str] = set()
    stack: list[Any] = [schema]
    seen = 0
    while stack and seen < 1000:
        current = stack.pop()
        seen += 1
        if not isinstance(current, dict):
            continue
        properties = current.get("properties")
        if isinstance(properties, dict):
            fields.update(k for k in properties if isinstance(k, str))
        required = current.get("required")
        if isinstance(required, list):
            fields.update(k for k in required if isinstance(k, str))
        for key in _SCHEMA_BRANCHES:
            if isinstance(current.get(key), list):
                stack.extend(current[key])
        stack.extend(current.get(key) for key in ("if", "then", "else"))
        ref = current.get("$ref")
        if isinstance(ref, str) and ref.split("#", 1)[0] in resources:
            stack.append(resources[ref.split("#", 1)[0]])
    return fields
