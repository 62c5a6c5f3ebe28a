"""Boxed expressions (literal expression, decision table, context, invocation, list, relation,
function definition, conditional, iterators, filter) compiled to ``fn(env) -> value``."""

from __future__ import annotations

from typing import Any, Callable

from lxml import etree

from .compiling import Compiler
from .feel.builtins import invoke
from .feel.limits import budgeted_call
from .feel.types import FEELFunction
from .table import compile_table
from .typeref import FAIL

EXPRESSION_TAGS = ("literalExpression", "decisionTable", "context", "invocation", "list", "relation",
                   "functionDefinition", "conditional", "for", "some", "every", "filter")
_FEEL_LANGS = ("", "feel", "http://www.omg.org/spec/feel/20140401")

Fn = Callable[[dict], Any]


def _typed(fn: Fn, coerce: Callable[[Any], Any]) -> Fn:
    """``fn`` whose value is converted to the expression's typeRef; null when it does not conform."""
    def run(env):
        value = coerce(fn(env))
        return None if value is FAIL else value

    return run


def _booleans(outcomes: list | None) -> list | None:
    """The outcomes of a ``satisfies``, or None when one is neither a boolean nor null."""
    if outcomes is None or any(x is not None and x.__class__ is not bool for x in outcomes):
        return None
    return outcomes


def _null(env: dict) -> None:
    return None


class BoxedCompiler:
    """Compiles the boxed expression elements of one decision or business knowledge model."""

    def __init__(self, compiler: Compiler, owner_id: str):
        self.c = compiler
        self.r = compiler.reader
        self.owner_id = owner_id
        self.table_info = None
        self.literal_text: str | None = None
        self.in_filter = False  # inside a <filter> match, names may be entries of the items

    def find(self, el: etree._Element) -> etree._Element | None:
        for child in self.r.children(el):
            if self.r.local(child) in EXPRESSION_TAGS:
                return child
        return None

    def unsupported_child(self, el: etree._Element) -> etree._Element | None:
        known = set(EXPRESSION_TAGS) | {"description", "extensionElements", "variable",
                                        "informationRequirement", "knowledgeRequirement",
                                        "authorityRequirement", "question", "allowedAnswers",
                                        "supportedObjective", "impactedPerformanceIndicator",
                                        "decisionMaker", "decisionOwner", "usingProcess", "usingTask",
                                        "encapsulatedLogic"}
        for child in self.r.children(el):
            if self.r.local(child) not in known:
                return child
        return None

    def compile(self, el: etree._Element | None, names: frozenset[str]) -> tuple[str, Fn]:
        """(kind, fn) for an expression element; ``None`` compiles to null."""
        if el is None:
            return "empty", _null
        tag = self.r.local(el)
        method = getattr(self, "_" + tag.lower(), None) if tag in EXPRESSION_TAGS else None
        if method is None:
            raise self.r.error(el, f"<{tag}> is not a supported DMN expression")
        kind, fn = method(el, names)
        if tag in ("literalExpression", "invocation") and el.get("typeRef"):
            spec = self.c.types.get(el.get("typeRef"))  # an unknown typeRef here checks nothing
            if spec is not None and spec.base != "Any":
                fn = _typed(fn, spec.coerce)
        return kind, fn

    def _where(self) -> dict:
        return {"decision": self.owner_id}

    def _literalexpression(self, el, names):
        if self.r.child(el, "importedValues") is not None:
            raise self.r.error(el, "importedValues are not supported")
        text = self.r.text(el)  # no text or another expressionLanguage: the compiler says so
        if self.literal_text is None:
            self.literal_text = text
        return "literal", self.c.expr(text, names, el, self._where(), not self.in_filter).fn

    def _decisiontable(self, el, names):
        run, info = compile_table(self.c, el, self.owner_id, names)
        if self.table_info is None:
            self.table_info = info
        return "table", run

    def _coercer(self, variable: etree._Element | None):
        if variable is None:
            return None
        spec = self.c.types.get(variable.get("typeRef"), variable)
        return spec.coerce if spec is not None and spec.base != "Any" else None

    def _context(self, el, names):
        entries = []
        scope = names
        entry_els = list(self.r.children(el, "contextEntry"))
        for i, entry in enumerate(entry_els):
            variable = self.r.child(entry, "variable")
            name = variable.get("name") if variable is not None else None
            if name is None and i != len(entry_els) - 1:
                raise self.r.error(entry, "only the last contextEntry may lack a <variable>")
            _, fn = self.compile(self.find(entry), scope)
            entries.append((name, fn, self._coercer(variable)))
            if name:
                scope = scope | {name}

        def run(env):
            local = dict(env)
            out = {}
            for name, fn, coerce in entries:
                value = fn(local)
                if coerce is not None and value is not None:
                    value = coerce(value)
                    value = None if value is FAIL else value
                if name is None:
                    return value
                out[name] = value
                local[name] = value
            return out

        return "context", run

    def _invocation(self, el, names):
        target = self.find(el)
        if target is None:
            raise self.r.error(el, "invocation without the invoked function (a literalExpression)")
        _, get_fn = self.compile(target, names)
        bindings = []
        for b in self.r.children(el, "binding"):
            param = self.r.child(b, "parameter")
            if param is None or not param.get("name"):
                raise self.r.error(b, "binding without <parameter name=...>")
            _, fn = self.compile(self.find(b), names)
            bindings.append((param.get("name"), fn))

        def run(env):
            fn = get_fn(env)
            if fn.__class__ is not FEELFunction:
                return None
            return invoke(fn, None, {name: f(env) for name, f in bindings})

        return "invocation", run

    def _list(self, el, names):
        items = [self.compile(child, names)[1] for child in self.r.children(el)
                 if self.r.local(child) in EXPRESSION_TAGS]
        return "list", lambda env: [f(env) for f in items]

    def _relation(self, el, names):
        columns = [col.get("name") for col in self.r.children(el, "column")]
        rows = []
        for row in self.r.children(el, "row"):
            cells = [self.compile(child, names)[1] for child in self.r.children(row)
                     if self.r.local(child) in EXPRESSION_TAGS]
            if len(cells) != len(columns):
                raise self.r.error(row, f"relation row has {len(cells)} cells for {len(columns)} columns")
            rows.append(cells)
        return "relation", lambda env: [dict(zip(columns, (f(env) for f in row))) for row in rows]

    def function(self, el, names, fn_name: str) -> Callable[[dict], FEELFunction]:
        """``<functionDefinition>``/``<encapsulatedLogic>`` to ``make(env) -> FEELFunction``."""
        kind = (el.get("kind") or "FEEL").strip().upper()
        if kind != "FEEL":
            raise self.r.error(el, f"function kind {kind!r} is not supported; only FEEL functions are")
        params, coercers = [], []
        for p in self.r.children(el, "formalParameter"):
            if not p.get("name"):
                raise self.r.error(p, "formalParameter without a name")
            params.append(p.get("name"))
            coercers.append(self._coercer(p))
        _, body = self.compile(self.find(el), names | frozenset(params))

        def make(env):
            def impl(*args):
                call_env = dict(env)
                for name, value, coerce in zip(params, args, coercers):
                    if coerce is not None and value is not None:
                        value = coerce(value)
                        if value is FAIL:
                            return None
                    call_env[name] = value
                for name in params[len(args):]:
                    call_env[name] = None
                return budgeted_call(body, call_env)

            return FEELFunction(fn_name, params, impl, min_args=0, max_args=len(params))

        return make

    def _functiondefinition(self, el, names):
        return "function", self.function(el, names, "function")

    def _part(self, el, part: str, names):
        holder = self.r.child(el, part)
        if holder is None:
            raise self.r.error(el, f"<{self.r.local(el)}> without <{part}>")
        return self.compile(self.find(holder), names)[1]

    def _conditional(self, el, names):
        cond, then, other = (self._part(el, p, names) for p in ("if", "then", "else"))

        def run(env):
            c = cond(env)
            if c is not None and c.__class__ is not bool:  # "abc" as a condition: an error
                return None
            return then(env) if c is True else other(env)

        return "conditional", run

    def _iterate(self, el, names, body_part: str):
        var = el.get("iteratorVariable")
        if not var:
            raise self.r.error(el, "iterator without iteratorVariable")
        source = self._part(el, "in", names)
        body = self._part(el, body_part, names | {var})

        def outcomes(env):
            coll = source(env)
            if coll is None:
                return None
            out = []
            for item in (coll if coll.__class__ is list else [coll]):
                inner = dict(env)
                inner[var] = item
                out.append(body(inner))
            return out

        return outcomes

    def _for(self, el, names):
        return "for", self._iterate(el, names, "return")

    def _some(self, el, names):
        run = self._iterate(el, names, "satisfies")
        return "some", lambda env: None if (r := _booleans(run(env))) is None else any(x is True for x in r)

    def _every(self, el, names):
        run = self._iterate(el, names, "satisfies")
        return "every", lambda env: None if (r := _booleans(run(env))) is None else all(x is True for x in r)

    def _filter(self, el, names):
        source = self._part(el, "in", names)
        outer, self.in_filter = self.in_filter, True
        try:
            match = self._part(el, "match", names | {"item"})
        finally:
            self.in_filter = outer

        def run(env):
            coll = source(env)
            if coll is None:
                return None
            out = []
            for item in (coll if coll.__class__ is list else [coll]):
                inner = dict(env)
                if item.__class__ is dict:
                    inner.update(item)
                inner["item"] = item
                m = match(inner)
                if m is True:
                    out.append(item)
                elif m is not None and m.__class__ is not bool:  # a match that is no boolean
                    return None
            return out

        return "filter", run
