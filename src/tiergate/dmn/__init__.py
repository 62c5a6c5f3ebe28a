"""tiergate's own DMN engine (decision tables, literal expressions, DRDs, BKMs) and FEEL.

    from tiergate.dmn import load_dmn
    model = load_dmn("decisions/routing.dmn")        # path, or XML bytes
    result = model.evaluate("Tier", {"client_data": True})
    result.value, result.matched_rules

No Python ``eval``/``exec`` anywhere: FEEL texts are parsed by a lark grammar and compiled to
closures once, when the model loads. See docs/dmn.md.
"""

from __future__ import annotations

from pathlib import Path

from .evaluate import DMNModel
from .feel import evaluate_expression, evaluate_unary_tests
from .feel.parser import FEELSyntaxError
from .feel.types import FEELFunction, Range, YearsMonthsDuration
from .model import (DecisionInfo, DecisionResult, DecisionServiceInfo, DMNSyntaxError, InputClauseInfo, OutputClauseInfo,
                    RuleInfo, TableInfo)


def load_dmn(source: str | Path | bytes) -> DMNModel:
    """Load and compile a DMN 1.1-1.5 model from a file path or XML bytes.

    Raises DMNError for unsafe, malformed or unsupported documents (with file, element id and
    line in ``details``), and DMNSyntaxError (a DMNError and a FEELError) for FEEL syntax errors.
    """
    return DMNModel(source)


__all__ = [
    "DMNModel", "DMNSyntaxError", "DecisionInfo", "DecisionResult", "DecisionServiceInfo", "FEELFunction", "FEELSyntaxError",
    "InputClauseInfo", "OutputClauseInfo", "Range", "RuleInfo", "TableInfo", "YearsMonthsDuration",
    "evaluate_expression", "evaluate_unary_tests", "load_dmn",
]
