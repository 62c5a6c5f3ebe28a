"""Public descriptors of a loaded DMN model (``model.decisions``) and the evaluation result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DMNError
from .feel.parser import FEELSyntaxError


class DMNSyntaxError(FEELSyntaxError, DMNError):
    """A FEEL syntax error inside a DMN model, found by ``load_dmn``.

    It is both a FEELError (what is wrong: the FEEL text) and a DMNError (where: the model
    cannot be loaded). ``details``: ``expression``, ``position`` (1-based character in it),
    ``decision``, and for table cells ``rule``, ``rule_index``, ``column_kind`` ("input" or
    "output"), ``column`` (1-based), ``column_label``; plus ``file`` and ``line``.
    """

    code = "feel_syntax"


@dataclass(frozen=True)
class InputClauseInfo:
    id: str | None
    label: str | None
    expression: str
    type_ref: str | None
    input_values: str | None


@dataclass(frozen=True)
class OutputClauseInfo:
    id: str | None
    name: str | None
    label: str | None
    type_ref: str | None
    allowed_values: str | None
    default: str | None


@dataclass(frozen=True)
class RuleInfo:
    id: str
    """The rule's id, or ``"<decision id>#<1-based index>"`` when the rule has none."""
    index: int
    """1-based position in the table."""
    input_entries: tuple[str, ...]
    output_entries: tuple[str, ...]
    annotations: tuple[str, ...]
    description: str | None = None


@dataclass(frozen=True)
class TableInfo:
    id: str | None
    hit_policy: str
    """UNIQUE, ANY, FIRST, PRIORITY, RULE ORDER, OUTPUT ORDER or COLLECT."""
    aggregation: str | None
    """SUM, MIN, MAX or COUNT for COLLECT; None otherwise."""
    inputs: tuple[InputClauseInfo, ...]
    outputs: tuple[OutputClauseInfo, ...]
    rules: tuple[RuleInfo, ...]
    annotation_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class DecisionInfo:
    id: str
    name: str
    kind: str
    """How the decision is expressed: table, literal, context, invocation, list, relation, function."""
    type_ref: str | None
    required_inputs: tuple[str, ...]
    """inputData names this decision needs, directly or through required decisions (implicit
    inputs are in ``implicit_inputs``)."""
    required_decisions: tuple[str, ...]
    """Names of the decisions it needs directly."""
    required_knowledge: tuple[str, ...]
    """Names of the business knowledge models it invokes directly."""
    table: TableInfo | None = None
    expression: str | None = None
    """The FEEL text of a literal-expression decision."""
    line: int | None = None
    implicit_inputs: tuple[str, ...] = ()
    """Names this decision's tables read in their input expressions that are no inputData,
    decision, BKM or built-in: variables of the caller's context, as in tables written by
    Camunda Modeler / dmn-js. Direct only (``model.input_names`` gives the transitive set)."""

    @property
    def hit_policy(self) -> str | None:
        return self.table.hit_policy if self.table else None


@dataclass(frozen=True)
class DecisionServiceInfo:
    """A ``<decisionService>``: ``evaluate(name, inputs)`` answers its output decisions (the one
    value, or a context by decision name); ``parameters`` are its inputs, inputData first."""

    id: str
    name: str
    output_decisions: tuple[str, ...]
    parameters: tuple[str, ...]
    line: int | None = None


@dataclass
class DecisionResult:
    """What ``model.evaluate`` returns.

    ``value``: the decision's FEEL value as plain Python. ``matched_rules``: ids of the rules
    that matched, in table order, for every decision table evaluated (required decisions first).
    ``decisions``: the value of every decision evaluated on the way, by name.
    """

    decision_id: str
    decision_name: str
    value: Any
    matched_rules: list[str] = field(default_factory=list)
    decisions: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
