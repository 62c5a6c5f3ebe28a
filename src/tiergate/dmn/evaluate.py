"""A loaded DMN model: its decision requirements graph, compiled once, and ``evaluate``.

Each decision compiles in ``decision.py`` (its logic, requirements and evaluation order); a
decision service evaluated by name runs in ``services.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from lxml import etree

from ..errors import EvaluationError, FEELError, NotFoundError
from .boxed import BoxedCompiler
from .compiling import TRACE, Compiler
from .decision import Decision, compile_decision, evaluation_order, local_href, union_in_order
from .imports import Siblings, context_of, load_imports
from .feel.types import kind, to_feel
from .model import DecisionInfo, DecisionResult, DecisionServiceInfo
from .services import DecisionService
from .typeref import FAIL, TypeRegistry, TypeSpec
from .xml import Reader, parse_xml

_IGNORED = {"description", "extensionElements", "itemDefinition", "inputData", "decision",
            "businessKnowledgeModel", "knowledgeSource", "textAnnotation", "association", "group",
            "elementCollection", "performanceIndicator", "organizationUnit", "DMNDI",
            "decisionService", "import"}


class _Step:
    __slots__ = ("id", "name", "fn", "spec")

    def __init__(self, d: Decision):
        self.id, self.name, self.fn, self.spec = d.id, d.name, d.fn, d.spec


class DMNModel:
    """A compiled DMN model. Build it with :func:`tiergate.dmn.load_dmn`."""

    def __init__(self, source: str | Path | bytes, *, _chain: tuple[str, ...] = (), _label: str | None = None,
                 _siblings: Siblings | None = None):
        root, ns, label = parse_xml(source, _label)
        r = self._reader = Reader(ns, label)
        self.name = root.get("name")
        self.namespace = root.get("namespace")
        self.source = label
        for child in r.children(root):
            tag = r.local(child)
            if tag not in _IGNORED:
                raise r.error(child, f"<{tag}> is not supported by tiergate's DMN engine; remove it "
                              "or express it with decisions, inputData and business knowledge models")
        self._types = TypeRegistry(r, root)
        self._compiler = Compiler(r, self._types)
        siblings = _siblings if _siblings is not None else Siblings.of(source)
        self._imports = load_imports(r, root, siblings, _chain + (Path(label).name,))
        #: every imported file (transitively), by file name: what a definition snapshot pins
        self.imported_files: dict[str, bytes] = dict(siblings.loaded) if siblings is not None else {}
        for imp in self._imports:
            self._types.add_imported(imp.alias, imp.model._types)
        self._input_specs: dict[str, TypeSpec | None] = {}
        self._input_by_id: dict[str, str] = {}
        names: dict[str, etree._Element] = {}

        def claim(el: etree._Element, what: str) -> str:
            var = r.child(el, "variable")
            name = el.get("name") or (var.get("name") if var is not None else None)
            if not name:
                raise r.error(el, f"{what} without a name; give it a name")
            if name in names:
                raise r.error(el, f"the name {name!r} is used twice (also at line "
                              f"{names[name].sourceline}); names of inputData, decisions and "
                              "business knowledge models must be unique")
            if not el.get("id"):
                el.set("id", name)
            names[name] = el
            return name

        for el in r.children(root, "inputData"):
            name = claim(el, "inputData")
            var = r.child(el, "variable")
            self._input_specs[name] = self._types.get(var.get("typeRef") if var is not None else None,
                                                      var if var is not None else el)
            self._input_by_id[el.get("id")] = name
        bkm_els = list(r.children(root, "businessKnowledgeModel"))
        self._bkm_by_id = {}
        for el in bkm_els:
            self._bkm_by_id[el.get("id") or ""] = claim(el, "businessKnowledgeModel")
        decision_els = list(r.children(root, "decision"))
        self._decisions: dict[str, Decision] = {}
        for el in decision_els:
            d = Decision()
            d.name = claim(el, "decision")
            d.id, d.el = el.get("id"), el
            self._decisions[d.id] = d
        self._by_name = {d.name: d for d in self._decisions.values()}
        self._services: dict[str, DecisionService] = {}
        for el in r.children(root, "decisionService"):
            svc = DecisionService(self, el, claim(el, "decisionService"), lambda x: local_href(r, x, self.namespace))
            self._services[svc.id] = self._services[svc.name] = svc
            self._bkm_by_id[svc.id] = svc.name
        for imp, el in zip(self._imports, r.children(root, "import")):
            if imp.alias in names:
                raise r.error(el, f"the import name {imp.alias!r} is also the name of an element "
                              f"at line {names[imp.alias].sourceline}; rename one of them")
            names[imp.alias] = el
        self._all_names = self._compiler.model_names = frozenset(names)

        self._base_env: dict[str, Any] = {imp.alias: context_of(imp.model) for imp in self._imports}
        #: (line, message) of each decision without logic: it loads (DMN allows it), `check` says so
        self.incomplete: list[tuple[int, str]] = []
        for svc in self._services.values():
            svc.bind(self)
            self._base_env[svc.name] = svc.function
        self._compile_bkms(bkm_els)
        for d in self._decisions.values():
            compile_decision(self, d)
        self._plans: dict[str, list[_Step]] = {}
        self._needed: dict[str, list[str]] = {}
        for d in self._decisions.values():
            order = evaluation_order(d, self._by_name, r)
            self._plans[d.id] = [_Step(x) for x in order]
            needed = {name for x in order for name in x.inputs}
            # inputData first (model order), then implicit inputs in evaluation order
            self._needed[d.id] = union_in_order([n for n in self._input_specs if n in needed],
                                                [name for x in order for name in x.implicit])
        self.decisions: list[DecisionInfo] = [self._info(d) for d in self._decisions.values()]
        self.services: list[DecisionServiceInfo] = [
            DecisionServiceInfo(s.id, s.name, tuple(self._decisions[i].name for i in s.outputs),
                                tuple(s.params), s.el.sourceline)
            for key, s in self._services.items() if key == s.id]

    # -- loading

    def _compile_bkms(self, bkm_els: list[etree._Element]) -> None:
        r = self._reader
        bkm_names = frozenset(self._bkm_by_id.values())
        for el in bkm_els:
            name = self._bkm_by_id[el.get("id") or ""]
            logic = r.child(el, "encapsulatedLogic")
            if logic is None:
                raise r.error(el, "business knowledge model without <encapsulatedLogic>")
            boxed = BoxedCompiler(self._compiler, el.get("id") or name)
            make = boxed.function(logic, bkm_names, name)
            self._base_env[name] = make(self._base_env)  # sees every BKM, filled in this loop

    def _info(self, d: Decision) -> DecisionInfo:
        var = self._reader.child(d.el, "variable")
        return DecisionInfo(
            id=d.id, name=d.name, kind=d.kind, type_ref=var.get("typeRef") if var is not None else None,
            required_inputs=tuple(n for n in self._needed[d.id] if n in self._input_specs),
            required_decisions=tuple(d.decisions), required_knowledge=tuple(d.knowledge),
            table=d.table, expression=d.literal, line=d.el.sourceline, implicit_inputs=d.implicit)

    # -- public API

    def _find(self, decision: str) -> Decision:
        d = self._decisions.get(decision) or self._by_name.get(decision)
        if d is None:
            available = [f"{x.name!r} (id {x.id!r})" for x in self._decisions.values()]
            raise NotFoundError(
                f"no decision {decision!r} in {self.source}; available: {', '.join(available) or 'none'}",
                details={"decision": decision, "available": [x.id for x in self._decisions.values()]})
        return d

    def decision(self, decision: str) -> DecisionInfo:
        """The descriptor of a decision, by id or name."""
        d = self._find(decision)
        return next(info for info in self.decisions if info.id == d.id)

    def input_names(self, decision: str) -> list[str]:
        """The input names ``decision`` needs, directly or through required decisions.

        inputData names first (in model order), then the implicit inputs of its tables
        (``DecisionInfo.implicit_inputs``) in evaluation order: required decisions first, each
        in column order, without duplicates.
        """
        svc = self._services.get(decision)
        if svc is not None and decision not in self._decisions and decision not in self._by_name:
            return list(svc.params)
        return list(self._needed[self._find(decision).id])

    def evaluate(self, decision: str, inputs: Mapping[str, Any] | None = None, *,
                 strict: bool = False) -> DecisionResult:
        """Evaluate ``decision`` (id or name) with ``inputs`` (input name -> Python value).

        Input names are those of ``input_names(decision)``: inputData and implicit inputs.
        A missing input is null; with ``strict=True`` a missing input, or one that does not
        conform to its inputData typeRef, raises EvaluationError naming it.
        """
        d = self._decisions.get(decision) or self._by_name.get(decision)
        if d is None:
            if decision in self._services:
                return self._services[decision].evaluate(self, inputs, strict)
            d = self._find(decision)
        inputs = {} if inputs is None else inputs
        if not isinstance(inputs, Mapping):
            raise EvaluationError(f"inputs must be a mapping of input names to values, not "
                                  f"{type(inputs).__name__}", details={"decision": d.id})
        env = dict(self._base_env)
        warnings: list[str] = []
        missing = []
        for name in self._needed[d.id]:
            if name not in inputs:
                missing.append(name)
                env[name] = None
                continue
            env[name] = self._input_value(d, name, inputs[name], strict, warnings)
        if missing and strict:
            raise EvaluationError(
                f"decision {d.name!r}: missing input(s) {', '.join(map(repr, missing))}; "
                f"it needs {', '.join(map(repr, self._needed[d.id]))}",
                details={"decision": d.id, "missing": missing})
        trace: list[str] = []
        token = TRACE.set(trace)
        values: dict[str, Any] = {}
        try:
            for step in self._plans[d.id]:
                value = step.fn(env)
                if step.spec is not None and value is not None:
                    converted = step.spec.coerce(value)
                    if converted is FAIL:
                        msg = (f"decision {step.name!r}: the result ({kind(value)}) does not conform to "
                               f"its type {step.spec.describe()}")
                        if strict:
                            raise EvaluationError(msg, details={"decision": step.id})
                        warnings.append(msg + "; it is null")
                        converted = None
                    value = converted
                env[step.name] = value
                values[step.name] = value
        except RecursionError:
            raise FEELError(f"decision {d.name!r}: evaluation recursed too deeply",
                            details={"decision": d.id}) from None
        finally:
            TRACE.reset(token)
        return DecisionResult(d.id, d.name, values[d.name], trace, values, warnings)

    def _input_value(self, d: Decision, name: str, raw: Any, strict: bool, warnings: list) -> Any:
        try:
            value = to_feel(raw)
        except TypeError as exc:
            raise EvaluationError(f"decision {d.name!r}: input {name!r}: {exc}",
                                  details={"decision": d.id, "input": name,
                                           "type": type(raw).__name__}) from None
        spec = self._input_specs.get(name)
        if spec is None or value is None:
            return value
        converted = spec.coerce(value)
        if converted is FAIL:
            msg = (f"input {name!r} should be {spec.describe()}"
                   + (f" with allowed values {spec.allowed_text}" if spec.allowed_text else "")
                   + f", got {kind(value)} {raw!r}")
            if strict:
                raise EvaluationError(f"decision {d.name!r}: {msg}",
                                      details={"decision": d.id, "input": name,
                                               "expected": spec.describe(), "actual": kind(value)})
            warnings.append(msg + "; it is null")
            return None
        return converted

    def __repr__(self) -> str:
        return f"<DMNModel {self.name!r}: {', '.join(d.name for d in self.decisions)}>"
