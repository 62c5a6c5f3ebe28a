"""The checks of a Tier 1 file as a whole document (``check_document``): what SpiffWorkflow would need
an implementation for anywhere in the file, ids shared or repeated, expression languages, the data
outputs a step's gate leaves out. Part of the checks ``tiergate.bpmn.checks`` runs (and re-exports).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lxml import etree

from tiergate.bpmn import adhoc, datastore, feel, prepost, spiffmessages
from tiergate.bpmn.expression_checks import _check_expression
from tiergate.bpmn.model import Node
from tiergate.bpmn.steps import parse_gate
from tiergate.bpmn.timers import is_literal
from tiergate.bpmn.xml import BPMN_NS

if TYPE_CHECKING:
    from tiergate.bpmn.checks import FileCheck


def _check_shared_ids(check: FileCheck, tree: Any) -> None:
    """An element whose id another element of the file also has (a Camunda form field named like its
    task): SpiffWorkflow looks elements up by id and may build the wrong one."""
    found: dict[str, list[etree._Element]] = {}
    for element in tree.getroot().iter():
        if isinstance(element.tag, str) and element.get("id") in check.model.nodes:
            found.setdefault(element.get("id"), []).append(element)
    for key, elements in found.items():
        if len(elements) < 2:
            continue
        mine = next((e for e in elements if etree.QName(e).namespace == BPMN_NS), elements[0])
        other = next(e for e in elements if e is not mine)
        prefix = other.prefix + ":" if other.prefix else ""
        check.error(mine.sourceline or 1, key, f"the {etree.QName(mine).localname} '{key}' shares its id with the "
                    f"{prefix}{etree.QName(other).localname} at line {other.sourceline}: SpiffWorkflow finds elements "
                    "by id, so it may build the wrong one. Give one of them another id.")


def check_document(check: FileCheck, tree: Any) -> None:
    """What SpiffWorkflow would need an implementation for, anywhere in the file."""
    for kind, owner, owner_kind, text, line in prepost.found(tree):
        if owner_kind not in prepost.TASK_KINDS:
            check.error(line, owner, f"spiffworkflow:{kind} runs only on tasks, not on this {owner_kind}: move the "
                        f"script into a scriptTask {'before' if kind == 'preScript' else 'after'} it.")
        elif text.strip():
            _check_expression(check, text, "exec", line, owner, f"spiffworkflow:{kind}")
    _check_step_outputs(check, tree)
    _check_shared_ids(check, tree)
    for _kind, owner, text, line in spiffmessages.found(tree):
        _check_expression(check, text, "eval", line, owner or "", "spiffworkflow:messagePayload")
    adhoc.check(check, tree)
    feel.check_outputs(check, tree)
    feel.check_subscriptions(check, tree)
    for expression, owner in correlation_expressions(tree):   # evaluated when a message is thrown
        _check_expression(check, expression.text or "", "eval", expression.sourceline or 1, owner,
                          "correlation property retrieval expression")
    datastore.check(check, tree)  # data stores run (tiergate.datastores): each must resolve
    _check_unique_ids(check, tree)
    _check_languages(check, tree)


_LANGUAGE_OWNERS_SKIPPED = ("timerEventDefinition", "multiInstanceLoopCharacteristics", "standardLoopCharacteristics")


def _check_languages(check: FileCheck, tree: Any) -> None:
    """An expression whose own ``language`` is neither Python nor FEEL (XPath, JavaScript, JUEL, ...) would be
    run as Python and fail, or mean something else: refused at its line with what to write."""
    for tag in feel.EXPRESSIONS:
        for element in tree.getroot().iter(f"{{{BPMN_NS}}}{tag}"):
            language = (element.get("language") or "").strip()
            text = (element.text or "").strip()
            if not language or not text or "python" in language.lower() or feel.names_feel(language):
                continue
            if tag in ("timeDuration", "timeDate", "timeCycle") and is_literal(tag, text):
                continue   # an ISO 8601 value is the same in every language
            owner, process = None, None
            for ancestor in element.iterancestors():
                name = etree.QName(ancestor).localname
                if owner is None and ancestor.get("id") and name not in _LANGUAGE_OWNERS_SKIPPED:
                    owner = ancestor.get("id")
                if name == "process":
                    process = ancestor.get("id")
                    break
            if process != check.model.id:
                continue
            check.error(element.sourceline or 1, owner, f"the {tag} '{text[:60]}' is declared "
                        f"language=\"{language}\", which tiergate does not evaluate: expressions are restricted "
                        "Python, or FEEL. Write it in Python (`amount > 100`, `True`) and remove the language "
                        "attribute, or in FEEL with language=\"https://www.omg.org/spec/FEEL/20140401\" "
                        "(docs/tier1.md, What expressions and scripts may do).")


def _check_unique_ids(check: FileCheck, tree: Any) -> None:
    """Two elements of one process with one id: a reference to it means either (XML Schema forbids it)."""
    for process in tree.getroot().iter(f"{{{BPMN_NS}}}process"):
        first: dict[str, int] = {}
        for element in process.iter(f"{{{BPMN_NS}}}*"):
            element_id = element.get("id")
            if not element_id or element is process:
                continue
            if element_id in first:
                check.error(element.sourceline or 1, element_id, f"the id '{element_id}' is already used at line "
                            f"{first[element_id]}: every element needs an id of its own. Rename one of them.")
            else:
                first[element_id] = element.sourceline or 1


def _step_requires(check: FileCheck, element: Any, with_post: set[str],
                   absent: Any = None) -> tuple[Node | None, Any]:
    """The step ``element`` belongs to, and what its gate requires (``absent`` when it says nothing,
    None for a gate by ``$ref``);
    (None, None) when it is no step, a post-script sets its outputs, or its gate is reported apart."""
    owner = element.getparent()
    node = check.model.nodes.get(owner.get("id") or "") if owner is not None else None
    if node is None or not node.is_step or node.id in with_post:
        return None, None
    try:
        gate = parse_gate(node.properties.get("gate", ""))
    except (ValueError, json.JSONDecodeError):
        return None, None   # reported with the gate
    return node, (gate.get("required", absent) if "$ref" not in gate else None)


def _check_step_outputs(check: FileCheck, tree: Any) -> None:
    """A step whose ioSpecification names data outputs its gate does not require fails the run when
    completed without them (SpiffWorkflow: Missing data output): say so before a run does."""
    with_post = {owner for kind, owner, _k, text, _l in prepost.found(tree) if kind == "postScript" and text.strip()}
    for io_spec in tree.getroot().iter(f"{{{BPMN_NS}}}ioSpecification"):
        node, required = _step_requires(check, io_spec, with_post)
        if node is None:
            continue
        outputs = [o.get("id") for o in io_spec.iter(f"{{{BPMN_NS}}}dataOutput") if o.get("id")]
        missing = [o for o in outputs if isinstance(required, list) and o not in required]
        if missing:
            check.error(io_spec.sourceline or node.line, node.id, f"its data outputs {', '.join(missing)} are not "
                        "required by its gate, and a completion without them fails the run (Missing data output): "
                        "add them to the gate's `required`, or set them in a postScript.", "warning")
    for association in tree.getroot().iter(f"{{{BPMN_NS}}}dataOutputAssociation"):
        node, required = _step_requires(check, association, with_post, absent=[])
        if node is None:
            continue
        for ref in association.iterfind(f"{{{BPMN_NS}}}targetRef"):
            target = next(iter(tree.getroot().xpath("//*[@id=$id]", id=(ref.text or "").strip())), None)
            store = target.get("dataStoreRef") if target is not None else None
            if store and store in datastore.read_by(tree, association.getparent()):
                continue  # it reads the store too: its data holds the value read, which a completion may change
            name = (store or target.get("dataObjectRef") or target.get("id")) if target is not None else None
            if name and isinstance(required, list) and name not in required:
                what = "data store" if store else "data object"
                check.error(association.sourceline or node.line, node.id, f"it writes the {what} '{name}', "
                            "which its gate does not require, and a completion without it fails the run (A "
                            f"{what} could not be set): add it to the gate's `required`, or set it in a postScript.",
                            "warning")


def correlation_expressions(tree: Any, message: str | None = None) -> list[tuple[Any, str]]:
    """(formalExpression, correlation property id) of each retrieval expression (of ``message``, or of all)."""
    found = []
    for prop in tree.getroot().iter(f"{{{BPMN_NS}}}correlationProperty"):
        for retrieval in prop.iter(f"{{{BPMN_NS}}}correlationPropertyRetrievalExpression"):
            if message is not None and retrieval.get("messageRef") != message:
                continue
            for expression in retrieval.iter(f"{{{BPMN_NS}}}formalExpression"):
                if (expression.text or "").strip():
                    found.append((expression, prop.get("id") or "correlationProperty"))
    return found
