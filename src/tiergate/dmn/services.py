"""Decision services: a named set of decisions callable as a function.

A ``<decisionService>`` lists output decisions (its result), encapsulated decisions (computed
inside), and input decisions and inputData (its parameters, inputData first, then input
decisions, each in document order). Calling it evaluates the output decisions in a fresh scope
that holds only the parameters: an input decision is *given*, never computed. The result is the
value of the one output decision, or a context of all of them by name.

A service is a FEEL function in the model (a decision that names it in a knowledgeRequirement, or
a BKM/decision invoking it by name) and an entry point of ``DMNModel.evaluate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from lxml import etree

from ..errors import EvaluationError, FEELError
from .compiling import TRACE
from .feel.types import FEELFunction, to_feel
from .model import DecisionResult
from .typeref import FAIL

if TYPE_CHECKING:
    from .evaluate import DMNModel


class DecisionService:
    __slots__ = ("id", "name", "el", "outputs", "input_decisions", "input_data", "params", "_plan",
                 "function", "out_spec")

    def __init__(self, model: "DMNModel", el: etree._Element, name: str, href):
        r = model._reader
        self.id, self.name, self.el = el.get("id"), name, el
        self.outputs = [href(x) for x in r.children(el, "outputDecision")]
        self.input_decisions = [href(x) for x in r.children(el, "inputDecision")]
        self.input_data = [href(x) for x in r.children(el, "inputData")]
        if not self.outputs:
            raise r.error(el, "decision service without <outputDecision>; add the decision(s) it answers")
        self.params: list[str] = []
        self.out_spec = None
        self._plan = None
        self.function = FEELFunction(name, [], lambda *args: None, min_args=0, max_args=0)

    def bind(self, model: "DMNModel") -> None:
        """Resolve the references once every decision and inputData is known."""
        r = model._reader
        for ref, pool, what in ((self.outputs, model._decisions, "outputDecision"),
                                (self.input_decisions, model._decisions, "inputDecision"),
                                (self.input_data, model._input_by_id, "inputData")):
            for target in ref:
                if target not in pool:
                    raise r.error(self.el, f"{what} points to {target!r}, which is not in this model")
        self.params = ([model._input_by_id[i] for i in self.input_data]
                       + [model._decisions[i].name for i in self.input_decisions])
        self.function.params = self.params
        self.function.max_args = self.function.min_args = len(self.params)  # every one is needed
        self.out_spec = _output_spec(model, self.el)
        self.function.impl = lambda *args: self.call(model, dict(zip(self.params, args)), None)

    def plan(self, model: "DMNModel") -> list:
        if self._plan is None:
            given = set(self.input_decisions)
            order: list = []
            seen: set[str] = set()

            def visit(d) -> None:
                if d.id in seen or d.id in given:
                    return
                seen.add(d.id)
                for name in d.decisions:
                    visit(model._by_name[name])
                order.append(d)

            for target in self.outputs:
                visit(model._decisions[target])
            self._plan = order
        return self._plan

    def call(self, model: "DMNModel", args: dict[str, Any], values: dict | None) -> Any:
        """Evaluate the service with parameter values ``args`` (already FEEL values)."""
        env = dict(model._base_env)
        for name in self.params:
            value = args.get(name)
            spec = model._input_specs.get(name) if name in model._input_specs else (
                model._by_name[name].spec if name in model._by_name else None)
            if spec is not None and value is not None:
                value = spec.coerce(value)
                if value is FAIL:  # a parameter of the wrong type: the invocation is null
                    return None
            env[name] = value
        for d in self.plan(model):
            value = d.fn(env)
            if d.spec is not None and value is not None:
                value = d.spec.coerce(value)
                if value is FAIL:
                    value = None
            env[d.name] = value
            if values is not None:
                values[d.name] = value
        outs = [model._decisions[i].name for i in self.outputs]
        result = env[outs[0]] if len(outs) == 1 else {name: env[name] for name in outs}
        if self.out_spec is not None and result is not None:
            result = self.out_spec.coerce(result)
            if result is FAIL:  # the service's function type names another output type
                return None
        return result

    def evaluate(self, model: "DMNModel", inputs: Mapping[str, Any] | None, strict: bool) -> DecisionResult:
        """``DMNModel.evaluate`` of the service: its parameters are the inputs (``strict``: all given)."""
        inputs = {} if inputs is None else inputs
        if not isinstance(inputs, Mapping):
            raise EvaluationError("inputs must be a mapping of input names to values",
                                  details={"decision_service": self.id})
        missing = [p for p in self.params if p not in inputs]
        if missing and strict:
            raise EvaluationError(f"decision service {self.name!r}: missing input(s) "
                                  f"{', '.join(map(repr, missing))}", details={"decision_service": self.id,
                                                                                "missing": missing})
        args = {}
        for name in self.params:
            try:
                args[name] = to_feel(inputs.get(name))
            except TypeError as exc:
                raise EvaluationError(f"decision service {self.name!r}: input {name!r}: {exc}",
                                      details={"decision_service": self.id, "input": name}) from None
        trace: list[str] = []
        values: dict[str, Any] = {}
        token = TRACE.set(trace)
        try:
            value = self.call(model, args, values)
        except RecursionError:
            raise FEELError(f"decision service {self.name!r}: evaluation recursed too deeply",
                            details={"decision_service": self.id}) from None
        finally:
            TRACE.reset(token)
        return DecisionResult(self.id, self.name, value, trace, values, [])


def _output_spec(model: "DMNModel", el: etree._Element):
    """The output type a service's variable declares (a function type's outputTypeRef), or None."""
    var = model._reader.child(el, "variable")
    spec = model._types.function_output(var.get("typeRef") if var is not None else None)
    return spec if spec is not None and spec.base != "Any" else None
