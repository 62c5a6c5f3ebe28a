"""One decision of a model, compiled: its logic, its requirements, and the order to evaluate it in.

:func:`compile_decision` compiles a decision's logic (any boxed expression, ``boxed.py``) and
resolves its requirements: the inputData, decisions (also of imported models) and business
knowledge models its ``informationRequirement``s and ``knowledgeRequirement``s name, joined with
the ones its expressions read without declaring them. :func:`evaluation_order` gives the
decisions to evaluate for one of them, required decisions first; a cycle is an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from lxml import etree

from ..errors import EvaluationError
from .boxed import BoxedCompiler
from .imports import Imported, imported_href, with_imported_decisions
from .model import TableInfo
from .typeref import TypeSpec
from .xml import Reader

if TYPE_CHECKING:
    from .evaluate import DMNModel


class Decision:
    """A ``<decision>`` (``el``) and what compiling it found; ``fn(env)`` evaluates its logic."""

    __slots__ = ("id", "name", "el", "spec", "kind", "fn", "inputs", "implicit", "decisions",
                 "knowledge", "table", "literal")
    id: str
    name: str
    el: etree._Element
    spec: TypeSpec | None  # its variable's typeRef
    kind: str  # as DecisionInfo.kind: "table", "literal", ...; "none" without logic
    fn: Callable[[dict], Any]
    inputs: list[str]  # inputData it reads directly
    implicit: tuple[str, ...]  # implicit inputs of its tables
    decisions: list[str]  # decisions it requires, by name
    knowledge: list[str]  # BKMs, decision services and import aliases it invokes
    table: TableInfo | None
    literal: str | None  # the text of a literal expression


def local_href(reader: Reader, el: etree._Element, namespace: str | None = None) -> str:
    """The id an ``href`` (``#id``, or ``namespace#id`` with this model's namespace) points to."""
    href = (el.get("href") or "").strip()
    if namespace and href.startswith(namespace + "#"):  # qualified with this model's namespace
        href = href[len(namespace):]
    if not href.startswith("#"):
        raise reader.error(el, f"reference {href!r} points outside this file; imports are not supported")
    return href[1:]


def compile_decision(model: "DMNModel", d: Decision) -> None:
    """Compile ``d``'s logic and resolve its requirements (``d``'s other slots), once every
    inputData, decision and business knowledge model of ``model`` is known."""
    r = model._reader
    el = d.el
    var = r.child(el, "variable")
    d.spec = model._types.get(var.get("typeRef") if var is not None else None,
                              var if var is not None else el)
    boxed = BoxedCompiler(model._compiler, d.id)
    odd = boxed.unsupported_child(el)
    if odd is not None:
        raise r.error(odd, f"<{r.local(odd)}> in a decision is not supported")
    expr = boxed.find(el)
    scope = model._all_names - {d.name}
    if expr is None:  # allowed by DMN (a decision taken by people); evaluating it is an error
        d.kind, d.fn = "none", _no_logic(r.where(el), d)
        model.incomplete.append((el.sourceline or 1, f"{r.where(el)}: the decision has no decision "
                                 "logic yet; add a decisionTable, literalExpression, context, ..."))
        d.implicit, d.table, d.literal = (), None, None
        d.inputs, d.decisions, d.knowledge = [], [], []
        return
    used: set[str] = set()
    implicit: list[str] = []
    model._compiler.free_sink, model._compiler.implicit_sink = used, implicit
    try:
        d.kind, d.fn = boxed.compile(expr, scope)
    finally:
        model._compiler.free_sink = model._compiler.implicit_sink = None
    d.implicit = tuple(implicit)
    d.table, d.literal = boxed.table_info, boxed.literal_text if d.kind == "literal" else None
    declared_inputs, declared_decisions, knowledge, imported = [], [], [], []
    for req in r.children(el, "informationRequirement"):
        for ref in r.children(req, "requiredInput"):
            _refuse_imported(model, ref, "inputData")
            target = local_href(r, ref, model.namespace)
            if target not in model._input_by_id:
                raise r.error(ref, f"requiredInput points to {target!r}, which is no inputData")
            declared_inputs.append(model._input_by_id[target])
        for ref in r.children(req, "requiredDecision"):
            imp = imported_href(model._imports, (ref.get("href") or "").strip())
            if imp is not None:
                imported.append(_imported_decision(model, imp, ref))
                continue
            target = local_href(r, ref, model.namespace)
            if target not in model._decisions:
                raise r.error(ref, f"requiredDecision points to {target!r}, which is no decision")
            declared_decisions.append(model._decisions[target].name)
    for req in r.children(el, "knowledgeRequirement"):
        for ref in r.children(req, "requiredKnowledge"):
            imp = imported_href(model._imports, (ref.get("href") or "").strip())
            if imp is not None:  # a BKM of an imported model: reached as alias.name
                knowledge.append(imp.alias)
                continue
            target = local_href(r, ref, model.namespace)
            if target not in model._bkm_by_id:
                raise r.error(ref, f"requiredKnowledge points to {target!r}, which is no "
                              "business knowledge model")
            knowledge.append(model._bkm_by_id[target])
    if imported:  # their inputs are inputs of this decision, by name
        d.fn = with_imported_decisions(d.fn, imported)
        d.implicit = tuple(union_in_order(list(d.implicit), [n for _, m, name in imported
                                                             for n in m.input_names(name)]))
    d.inputs = union_in_order(declared_inputs, [n for n in model._input_specs if n in used])
    # a name it reads that is its own is a context entry named like the decision, never a cycle
    d.decisions = union_in_order(declared_decisions, [n for n in model._by_name if n in used and n != d.name])
    d.knowledge = union_in_order(knowledge, [n for n in model._base_env if n in used])


def _imported_decision(model: "DMNModel", imp: Imported, ref: etree._Element) -> tuple[str, "DMNModel", str]:
    target = (ref.get("href") or "").strip().split("#", 1)[1]
    d = imp.model._decisions.get(target)
    if d is None:
        raise model._reader.error(ref, f"requiredDecision points to {target!r}, which is no "
                                  f"decision of the imported model {imp.alias!r}")
    return imp.alias, imp.model, d.name


def _refuse_imported(model: "DMNModel", ref: etree._Element, what: str) -> None:
    imp = imported_href(model._imports, (ref.get("href") or "").strip())
    if imp is not None:
        raise model._reader.error(ref, f"{what} of the imported model {imp.alias!r} are not "
                                  "supported: require its decisions (their inputs are inputs "
                                  "of this decision, by name), or copy the inputData here")


def evaluation_order(target: Decision, by_name: dict[str, Decision], reader: Reader) -> list[Decision]:
    """The decisions to evaluate for ``target``, each after those it requires; a cycle is an error."""
    order: list[Decision] = []
    state: dict[str, int] = {}

    def visit(d: Decision, path: list[str]) -> None:
        if state.get(d.id) == 2:
            return
        if state.get(d.id) == 1:
            cycle = path[path.index(d.name):] + [d.name]
            raise reader.error(d.el, "the decisions require each other in a cycle: "
                               + " -> ".join(cycle), cycle=cycle)
        state[d.id] = 1
        for name in d.decisions:
            visit(by_name[name], path + [d.name])
        state[d.id] = 2
        order.append(d)

    visit(target, [])
    return order


def _no_logic(where: str, d: Decision):
    def run(env):
        raise EvaluationError(f"{where}: decision {d.name!r} has no decision logic yet (no "
                              "decisionTable, literalExpression, context, invocation, ...); add "
                              "one in the modeler", details={"decision": d.id})
    return run


def union_in_order(first: list[str], second: list[str]) -> list[str]:
    """The names of ``first``, then those of ``second`` not among them, each once."""
    out = list(dict.fromkeys(first))
    out.extend(n for n in second if n not in out)
    return out

