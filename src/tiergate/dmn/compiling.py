"""Compiling the FEEL texts of a model, with errors that say where they are."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Iterable

from lxml import etree

from ..errors import DMNError, FEELError
from .feel import CompiledFEEL, compile_feel
from .feel.builtins import BUILTINS
from .feel.parser import FEELSyntaxError
from .model import DMNSyntaxError
from .typeref import TypeRegistry
from .xml import Reader

#: Rule ids matched during the current ``evaluate`` call (tables append to it).
TRACE: ContextVar[list | None] = ContextVar("tiergate_dmn_trace", default=None)


class Compiler:
    """Compiles the FEEL texts of one model; knows the model's names and types."""

    def __init__(self, reader: Reader, types: TypeRegistry):
        self.reader = reader
        self.types = types
        #: When set, the names every compiled text reads are added to it (for dependencies).
        self.free_sink: set[str] | None = None
        #: Set while a decision compiles: the implicit inputs its tables' input expressions
        #: introduce are appended to it, in column order. None (in BKMs): unknown names are errors.
        self.implicit_sink: list[str] | None = None
        #: Names of the model's inputData, decisions and BKMs: never implicit inputs (a decision
        #: reading its own name is an error, not an input).
        self.model_names: frozenset[str] = frozenset()

    def location(self, el: etree._Element, where: dict[str, Any]) -> str:
        parts = [self.reader.label]
        if where.get("decision"):
            parts.append(f"decision {where['decision']!r}")
        if where.get("rule"):
            parts.append(f"rule {where['rule']!r} (#{where.get('rule_index')})")
        if where.get("column_kind"):
            label = f" {where['column_label']!r}" if where.get("column_label") else ""
            parts.append(f"{where['column_kind']} column {where['column']}{label}")
        parts.append(f"line {el.sourceline}")
        return ", ".join(parts)

    def compile(self, text: str | None, kind: str, names: Iterable[str], el: etree._Element,
                where: dict[str, Any], check_names: bool = True) -> CompiledFEEL:
        names = frozenset(names)
        if text is None or (kind == "expr" and not text.strip()):
            raise self._template_error(el, where)
        lang = _language(el)
        if lang is not None or "${" in text or "#{" in text:
            raise self._language_error(text, lang, el, where)
        try:
            compiled = compile_feel(text, kind, names, self.types.type_check)
        except FEELSyntaxError as exc:
            col = exc.details.get("column")
            what = exc.message.split(": ", 1)[-1]
            raise DMNSyntaxError(
                f"{self.location(el, where)}: FEEL syntax error at character {col} of {text!r}: {what}",
                details={"expression": text, "position": col, **where, "file": self.reader.label,
                         "line": el.sourceline},
            ) from None
        except FEELError as exc:
            raise DMNError(f"{self.location(el, where)}: {exc.message}",
                           details={**exc.details, **where, "file": self.reader.label,
                                    "line": el.sourceline}) from None
        if self.free_sink is not None:
            self.free_sink |= compiled.free | compiled.soft_free
        if check_names:
            unknown = _unknown(compiled, names)
            if unknown:
                raise self._unknown_error(text, sorted(unknown), names, el, where)
        return compiled

    def _what(self, el: etree._Element) -> str:
        tag = self.reader.local(el) or "expression"
        return f"<{tag}>" + (f" id {el.get('id')!r}" if el.get("id") else "")

    def _template_error(self, el: etree._Element, where: dict[str, Any]) -> DMNError:
        tag = self.reader.local(el)
        todo = ("the FEEL expression whose value the column tests (usually the name of an input)"
                if tag == "inputExpression" else "its FEEL expression")
        return DMNError(
            f"{self.location(el, where)}: {self._what(el)} is empty (a template the modeler left "
            f"unfilled); write {todo}",
            details={**where, "element": tag, "id": el.get("id"), "missing": "text",
                     "file": self.reader.label, "line": el.sourceline})

    def _language_error(self, text: str, lang: str | None, el: etree._Element,
                        where: dict[str, Any]) -> DMNError:
        named = _LANGUAGES.get((lang or "").lower(), lang) if lang else "JUEL (${...}, Camunda 7)"
        return DMNError(
            f"{self.location(el, where)}: {self._what(el)} {text!r} is written in {named}"
            + (f" (expressionLanguage {lang!r})" if lang else "")
            + "; tiergate evaluates FEEL only: rewrite it in FEEL (see docs/dmn.md)",
            details={**where, "expression": text, "expression_language": lang or "juel",
                     "file": self.reader.label, "line": el.sourceline})

    def _unknown_error(self, text: str, unknown: list[str], names: frozenset[str],
                       el: etree._Element, where: dict[str, Any]) -> DMNError:
        shown = ", ".join(repr(n) for n in unknown)
        return DMNError(
            f"{self.location(el, where)}: {text!r} uses unknown name(s) {shown}. Names in "
            f"scope: {', '.join(sorted(names)) or 'none'}. Add an inputData/decision/"
            "requirement with that name or fix the spelling.",
            details={**where, "unknown_names": unknown, "expression": text,
                     "file": self.reader.label, "line": el.sourceline},
        )

    def input_expr(self, text, names, el, where) -> tuple[CompiledFEEL, list[str]]:
        """Compile a decision table's input expression: (compiled, its implicit inputs).

        Inside a decision (``implicit_sink`` set), a name it reads that is not in scope is an
        implicit input of the decision -- a variable of the caller's context, as in tables
        written by Camunda Modeler / dmn-js -- and is appended to the sink. Elsewhere (BKMs)
        it is a load error, like in any other text.
        """
        names = frozenset(names)
        compiled = self.compile(text, "expr", names, el, where, check_names=False)
        unknown = _unknown(compiled, names)
        if not unknown:
            return compiled, []
        if self.implicit_sink is None or unknown & self.model_names:
            raise self._unknown_error(text, sorted(unknown), names, el, where)
        implicit = [n for n in compiled.free_order if n in unknown]
        self.implicit_sink.extend(n for n in implicit if n not in self.implicit_sink)
        return compiled, implicit

    def expr(self, text, names, el, where, check_names=True) -> CompiledFEEL:
        return self.compile(text, "expr", names, el, where, check_names)

    def tests(self, text, names, el, where, check_names=True) -> CompiledFEEL:
        return self.compile(text, "tests", names, el, where, check_names)


_LANGUAGES = {"juel": "JUEL (Camunda 7)", "javascript": "JavaScript", "js": "JavaScript",
              "text/javascript": "JavaScript", "groovy": "Groovy", "python": "Python",
              "jruby": "JRuby", "mvel": "MVEL", "spel": "Spring EL", "xpath": "XPath"}


def _language(el: etree._Element) -> str | None:
    """The expressionLanguage in force at ``el`` when it is not FEEL (None: FEEL)."""
    node = el
    while node is not None:
        lang = node.get("expressionLanguage") if isinstance(node.tag, str) else None
        if lang:
            return None if "feel" in lang.lower() else lang
        node = node.getparent()
    return None


def _unknown(compiled: CompiledFEEL, names: frozenset[str]) -> set[str]:
    """The free names of ``compiled`` that are neither in ``names`` nor built-ins."""
    return {n for n in compiled.free if n not in names and n not in BUILTINS}
