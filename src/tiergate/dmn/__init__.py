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
from .imports import Siblings
from .feel import evaluate_expression, evaluate_unary_tests
from .feel.parser import FEELSyntaxError
from .feel.types import FEELFunction, Range, YearsMonthsDuration
from .model import (DecisionInfo, DecisionResult, DecisionServiceInfo, DMNSyntaxError, InputClauseInfo, OutputClauseInfo,
                    RuleInfo, TableInfo)


def load_dmn(source: str | Path | bytes, *, label: str | None = None,
             imports: dict[str, bytes] | None = None, home: bool = False) -> DMNModel:
    """Load and compile a DMN 1.1-1.5 model from a file path or XML bytes.

    ``imports``: the files its ``<import>``s may name (file name -> XML), pinned instead of the
    file's directory; ``label``: the name messages use (e.g. ``decisions/x.dmn``). ``home``: the
    file is in a home's ``decisions/`` (imports must stay in that folder, no symbolic links).
    ``model.imported_files`` are the imported files read (file name -> XML), to pin them.

    Raises DMNError for unsafe, malformed or unsupported documents (with file, element id and
    line in ``details``), and DMNSyntaxError (a DMNError and a FEELError) for FEEL syntax errors.
    """
    siblings = None
    if imports is not None:
        shown = label.rsplit("/", 1)[0] if label and "/" in label else "decisions"
        siblings = Siblings(pinned=imports, shown=shown, home=home)
    elif home:
        siblings = Siblings.of(source)
        if siblings is not None:
            siblings.home = True
            siblings.shown = label.rsplit("/", 1)[0] if label and "/" in label else siblings.shown
    return DMNModel(source, _label=label, _siblings=siblings)


__all__ = [
    "DMNModel", "DMNSyntaxError", "DecisionInfo", "DecisionResult", "DecisionServiceInfo", "FEELFunction", "FEELSyntaxError",
    "InputClauseInfo", "OutputClauseInfo", "Range", "RuleInfo", "TableInfo", "YearsMonthsDuration",
    "evaluate_expression", "evaluate_unary_tests", "load_dmn",
]
