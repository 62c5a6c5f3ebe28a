"""A step's evidence gate (JSON Schema) in plain words, precise enough to pass on the first try.

    text, required = gate_words(step.done_when, definition.resources)
    text             # "a JSON object with only these fields:\\n- `severity` (required): one of ..."
    required         # ["severity", ...]
    inline_refs(step.done_when, definition.resources)   # the same gate, self-contained

The wording is a small, fixed vocabulary (docs/guidance.md lists it), so people read it as
prose and a program can read it back: each field is one bullet
``- `name` (required|optional): CONSTRAINTS — DESCRIPTION``, nested objects indent their
fields by two spaces, and conditional requirements are bullets starting with ``If``.
Values are written as JSON inside backticks (`"S1"`, `true`, `0`), so a string is never
mistaken for a number. Anything the vocabulary cannot say is given as the raw JSON Schema
rather than left out: the words may be clumsy, never silently incomplete.

``$ref`` is followed into the definition's shared schema files (``resources``: URI -> schema,
as pinned with the run), relative to the file the reference sits in; keywords next to a
``$ref`` narrow it, as they do in the gate.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from tiergate.guidance.schema import (MAX_REF_DEPTH, TYPE_ORDER, Merged, Merger, Part, Scope, compact, conjoin,
                                      copy_merged, has_constraints, without_alternative)

_FORMATS = {
    "date": "a date written YYYY-MM-DD",
    "date-time": "a date and time in RFC 3339 form with a time zone, like `2025-03-14T09:30:00Z`",
    "time": "a time of day in RFC 3339 form with a time zone, like `09:30:00Z`",
    "email": "an e-mail address",
    "uri": "a URI",
    "uri-reference": "a URI reference",
    "uuid": "a UUID, like `123e4567-e89b-12d3-a456-426614174000`",
    "hostname": "a host name",
    "ipv4": "an IPv4 address",
    "ipv6": "an IPv6 address",
    "duration": "an ISO 8601 duration, like `P3DT4H`",
}


def gate_words(schema: Mapping[str, Any] | bool | None,
               resources: Mapping[str, Any] | None = None) -> tuple[str, list[str]]:
    """A step's ``done_when`` in words (see the module docstring for the vocabulary), and the
    top-level fields it always requires. ``context.evidence_words`` adds the self-contained schema."""
    describer = _Describer(resources or {})
    scope = Scope("", schema)
    merged = describer.merge([(schema, scope)])
    phrase, children = describer.phrase(merged, top=True)
    return "\n".join([phrase, *children]), list(merged.required)


def who_may(view: Any) -> str:
    """Who may do a step, in words: "an agent or a person with the role `support-engineer`".

    ``view`` has a step's ``decide``, ``actors``, ``roles`` and ``distinct_from`` (a ``StepView``)."""
    if view.decide is not None:
        return f"the engine (decision `{view.decide}`); nobody completes it by hand"
    kinds = {"agent": "an agent", "human": "a person"}
    words = " or ".join(kinds.get(k, k) for k in view.actors) or "anyone"
    if view.roles:
        words += f" with the role {' or '.join(f'`{r}`' for r in view.roles)}"
    if view.distinct_from:
        words += f", other than whoever completed `{view.distinct_from}`"
    return words


def describe(schema: Any, resources: Mapping[str, Any] | None = None) -> str:
    """One schema (a field, a start-data schema, ...) in words; nested fields on indented lines."""
    describer = _Describer(resources or {})
    phrase, children = describer.phrase(describer.merge([(schema, Scope("", schema))]))
    return "\n".join([phrase, *children])


def _chars(count: int) -> str:
    return f"{count} character{'s' if count != 1 else ''}"


def _lit(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)



class _Describer(Merger):
    """Merged constraints in words."""

    # --- phrases -------------------------------------------------------------------------

    def phrase(self, m: Merged, *, top: bool = False, depth: int = 0) -> tuple[str, list[str]]:
        """A one-line phrase for the value, plus indented lines for the fields of an object."""
        if m.impossible:
            return "must not be given (no value passes)", []
        if depth > MAX_REF_DEPTH:
            return "a value (the schema nests too deep to describe; see the JSON Schema)", []
        alternatives = self._alternatives(m)
        if alternatives is not None:
            return self._either(m, alternatives, top=top, depth=depth)
        if m.consts:
            first = m.consts[0]
            if any(c != first for c in m.consts) or (m.enum is not None and first not in m.enum):
                return "must not be given (its constraints contradict each other, so no value passes)", []
            return self._with_raw(f"exactly {_lit(first)}", m), []
        if m.enum is not None:
            if not m.enum:
                return "must not be given (its allowed values do not overlap, so no value passes)", []
            words = f"exactly {_lit(m.enum[0])}" if len(m.enum) == 1 else \
                "one of " + ", ".join(_lit(v) for v in m.enum)
            return self._with_raw(words, m), []
        kind = self._kind(m)
        if kind == "object":
            return self._object(m, top=top, depth=depth)
        if kind == "array":
            return self._array(m, depth=depth)
        if kind == "string":
            return self._with_raw(self._string(m, kind), m), []
        if kind in ("integer", "number"):
            return self._with_raw(self._number(m, kind), m), []
        if kind == "boolean":
            return self._with_raw("`true` or `false`", m), []
        if kind == "null":
            return "`null`", []
        return self._with_raw("any JSON value", m), []

    def _kind(self, m: Merged) -> str | None:
        if m.types is not None:
            if not m.types:
                return None
            return next(iter(m.types))
        if m.properties or m.required or m.closed or m.conditionals:
            return "object"
        if m.items or m.min_items is not None or m.max_items is not None:
            return "array"
        if m.patterns or m.formats or m.min_length is not None or m.max_length is not None:
            return "string"
        if m.minimum is not None or m.maximum is not None or m.exclusive_minimum is not None \
                or m.exclusive_maximum is not None:
            return "number"
        return None

    def _alternatives(self, m: Merged) -> list[Merged] | None:
        """Each way the value may look, with the common constraints folded into every way."""
        if m.types is not None and len(m.types) > 1 and not m.consts and m.enum is None:
            options: list[Merged] = []
            for kind in sorted(m.types, key=TYPE_ORDER.index):
                option = copy_merged(m)
                option.types = {kind}
                options.append(option)
            return options
        if not m.alternatives:
            return None
        group, rest = m.alternatives[0], m.alternatives[1:]
        options = []
        for schema, scope in group:
            option = self.merge([(schema, scope)])
            common = copy_merged(m)
            common.alternatives = rest
            common.descriptions = []
            joined = conjoin(common, option)
            joined.sources = [*without_alternative(m.sources, group), (schema, scope)]
            options.append(joined)
        return options

    def _either(self, m: Merged, options: list[Merged], *, top: bool, depth: int) -> tuple[str, list[str]]:
        phrases = []
        for option in options:
            words, lines = self.phrase(option, top=top, depth=depth + 1)
            if lines:
                # A structured alternative cannot share one line: give it as JSON Schema.
                words = f"a value that passes the JSON Schema `{self.json(option.sources)}`"
            phrases.append(words)
        unique = list(dict.fromkeys(phrases))
        if len(unique) == 1:
            return unique[0], []
        return "either " + ", or ".join(unique), []

    def _string(self, m: Merged, kind: str) -> str:
        words = _FORMATS.get(m.formats[0], f"text in the `{m.formats[0]}` format") if m.formats else "text"
        for extra in m.formats[1:]:
            words += f", also in the `{extra}` format,"
        lo, hi = m.min_length, m.max_length
        if lo is not None and hi is not None:
            words += f" of exactly {_chars(lo)}" if lo == hi else f" of {lo} to {hi} characters"
        elif lo is not None:
            words += f" of at least {_chars(lo)}"
        elif hi is not None:
            words += f" of at most {_chars(hi)}"
        if m.patterns:
            words += " matching the regular expression " + " and ".join(f"`{p}`" for p in m.patterns)
        return words

    def _number(self, m: Merged, kind: str) -> str:
        words = "a whole number" if kind == "integer" else "a number"
        if m.minimum is not None:
            words += f", at least {_num(m.minimum)}"
        if m.exclusive_minimum is not None:
            words += f", greater than {_num(m.exclusive_minimum)}"
        if m.maximum is not None:
            words += f", at most {_num(m.maximum)}"
        if m.exclusive_maximum is not None:
            words += f", less than {_num(m.exclusive_maximum)}"
        for step in m.multiple_of:
            words += f", a multiple of {_num(step)}"
        return words

    def _array(self, m: Merged, *, depth: int) -> tuple[str, list[str]]:
        lo, hi = m.min_items, m.max_items
        words = "a list"
        if lo is not None and hi is not None:
            words += f" of exactly {lo} item{'s' if lo != 1 else ''}" if lo == hi else f" of {lo} to {hi} items"
        elif lo is not None and lo > 0:
            words += f" of at least {lo} item{'s' if lo != 1 else ''}"
        elif hi is not None:
            words += f" of at most {hi} item{'s' if hi != 1 else ''}"
        if m.unique_items:
            words += ", no duplicates"
        children: list[str] = []
        if m.items:
            item_words, item_lines = self.phrase(self.merge(m.items), depth=depth + 1)
            if item_words.startswith("an object"):
                words += f"; each item is {item_words}"
            else:
                words += f"; each item: {item_words}"
            children = item_lines
        else:
            words += " of any values"
        for schema, scope in m.contains:
            contained, lines = self.phrase(self.merge([(schema, scope)]), depth=depth + 1)
            if lines:
                contained = f"a value that passes the JSON Schema `{self.json([(schema, scope)])}`"
            words += f"; at least one item must be {contained}"
        return self._with_raw(words, m), children

    def _object(self, m: Merged, *, top: bool, depth: int) -> tuple[str, list[str]]:
        allowed = list(m.properties)
        for name in m.required:
            if name not in allowed:
                allowed.append(name)
        closed = bool(m.closed)
        if closed:
            permitted = set.intersection(*m.closed)
            allowed = [name for name in allowed if name in permitted]
        noun = "a JSON object" if top else "an object"
        if not allowed:
            words = f"{noun} with no fields (`{{}}`)" if closed else f"{noun} (any fields)"
            lines: list[str] = []
        else:
            words = f"{noun} with only these fields:" if closed else f"{noun} with these fields (others are allowed):"
            lines = []
            for name in allowed:
                lines.extend(self._field(name, m, depth))
        for name, needs in m.dependent_required.items():
            lines.append(f"- If `{name}` is given, {_also_required(needs)}.")
        for condition, then, otherwise in m.conditionals:
            lines.append(self._conditional(condition, then, otherwise, depth))
        if m.min_properties is not None:
            words += f" (at least {m.min_properties} of them)"
        if m.max_properties is not None:
            words += f" (at most {m.max_properties} of them)"
        if m.raw:
            lines.append(f"- It must also pass the JSON Schema {', '.join(f'`{compact(r)}`' for r in m.raw)}.")
        return words, lines

    def _field(self, name: str, m: Merged, depth: int) -> list[str]:
        parts = m.properties.get(name, [])
        sub = self.merge(parts, depth)
        words, children = self.phrase(sub, depth=depth + 1)
        status = "required" if name in m.required else "optional"
        line = f"- `{name}` ({status}): {words}"
        description = _description(sub, self)
        if description and not children:
            line += f" — {description}"
        elif description:
            line = f"- `{name}` ({status}, {description.rstrip('.')}): {words}"
        return [line, *("  " + child for child in children)]

    def _conditional(self, condition: Part, then: Part | None, otherwise: Part | None, depth: int) -> str:
        when = self._condition(condition)
        text = f"- If {when}: {self._consequence(then, depth)}." if then is not None else f"- If {when}: nothing more."
        if otherwise is not None:
            text = text[:-1] + f". Otherwise: {self._consequence(otherwise, depth)}."
        return text

    def _condition(self, part: Part) -> str:
        schema, scope = part
        m = self.merge([part])
        clauses = []
        simple = isinstance(schema, dict) and not m.raw and not m.alternatives and not m.conditionals
        for name, parts in m.properties.items():
            sub = self.merge(parts)
            clause = _condition_clause(name, sub)
            if clause is None:
                simple = False
                break
            clauses.append(clause if name in m.required else f"{clause} or `{name}` is not given")
        for name in m.required:
            if name not in m.properties:
                clauses.append(f"`{name}` is given")
        if not simple or not clauses:
            return f"the evidence passes the JSON Schema `{self.json([part])}`"
        return " and ".join(clauses)

    def _consequence(self, part: Part, depth: int) -> str:
        schema, _scope = part
        m = self.merge([part])
        pieces = []
        new_required = list(m.required)
        if new_required:
            pieces.append(_also_required(new_required))
        for name, parts in m.properties.items():
            sub = self.merge(parts)
            narrowing = self._narrowing(sub)
            if narrowing is not None:
                pieces.append(f"`{name}` must {' and '.join(verb for verb, _ in narrowing)}")
                continue
            words, lines = self.phrase(sub, depth=depth + 1)
            if lines:
                words = f"a value that passes the JSON Schema `{self.json(parts)}`"
            pieces.append(f"`{name}` must be {words}")
        leftover = copy_merged(m)
        leftover.required, leftover.properties, leftover.descriptions, leftover.sources = [], {}, [], []
        if has_constraints(leftover):
            pieces.append(f"the evidence must also pass the JSON Schema `{self.json([part])}`")
        return "; ".join(pieces) if pieces else "nothing more"

    def _narrowing(self, m: Merged, depth: int = 0) -> list[tuple[str, str]] | None:
        """A bare narrowing (``{minItems: 1}`` in a ``then``) as (verb, adjective) phrases, or None.

        It adds to what the field's own bullet already says: "`x` must have at least 1 item",
        "`checks` must have `result` exactly `"pass"` in every item".
        """
        if m.types is not None or m.alternatives or m.raw or m.conditionals or m.closed or depth > 4:
            return None
        said: list[tuple[str, str]] = []
        if m.consts:
            said.append((f"be exactly {_lit(m.consts[0])}", f"exactly {_lit(m.consts[0])}"))
        elif m.enum is not None:
            values = ", ".join(_lit(v) for v in m.enum)
            said.append((f"be one of {values}", f"one of {values}"))
        for count, word in ((m.min_items, "at least"), (m.max_items, "at most")):
            if count is not None:
                items = f"{count} item{'s' if count != 1 else ''}"
                said.append((f"have {word} {items}", f"with {word} {items}"))
        for count, word in ((m.min_length, "at least"), (m.max_length, "at most")):
            if count is not None:
                said.append((f"have {word} {_chars(count)}", f"of {word} {_chars(count)}"))
        for bound, word in ((m.minimum, "at least"), (m.maximum, "at most")):
            if bound is not None:
                said.append((f"be {word} {_num(bound)}", f"{word} {_num(bound)}"))
        for pattern in m.patterns:
            said.append((f"match the regular expression `{pattern}`", f"matching the regular expression `{pattern}`"))
        for name in m.required:
            said.append((f"have `{name}` given", f"with `{name}` given"))
        for name, parts in m.properties.items():
            inner = self._narrowing(self.merge(parts), depth + 1)
            if inner is None:
                return None
            adjectives = " and ".join(adjective for _, adjective in inner)
            said.append((f"have `{name}` {adjectives}", f"with `{name}` {adjectives}"))
        if m.items:
            inner = self._narrowing(self.merge(m.items), depth + 1)
            if inner is None:
                return None
            adjectives = " and ".join(adjective for _, adjective in inner)
            said.append((f"have {adjectives.removeprefix('with ')} in every item", f"with every item {adjectives}"))
        rest = copy_merged(m)
        for attr in ("consts", "patterns", "descriptions", "sources", "required", "items"):
            setattr(rest, attr, [])
        rest.properties = {}
        rest.enum = rest.min_items = rest.max_items = rest.min_length = rest.max_length = None
        rest.minimum = rest.maximum = None
        if not said or has_constraints(rest):
            return None
        return said

    def _with_raw(self, words: str, m: Merged) -> str:
        if m.unresolved:
            words += "; it must also match " + ", ".join(f"`{r}`" for r in m.unresolved) + \
                     " (a shared schema that could not be found)"
        if m.raw:
            words += "; it must also pass the JSON Schema " + ", ".join(f"`{compact(r)}`" for r in m.raw)
        return words



def _description(m: Merged, _d: _Describer) -> str:
    """The field's own description, else the one of what it refers to (the first one found)."""
    if m.descriptions:
        return m.descriptions[0]
    for group in m.alternatives:
        for schema, scope in group:
            found = _d.merge([(schema, scope)]).descriptions
            if found:
                return found[0]
    return ""


def _condition_clause(name: str, m: Merged) -> str | None:
    if m.consts and not m.raw:
        return f"`{name}` is {_lit(m.consts[0])}"
    if m.enum is not None and not m.raw:
        return f"`{name}` is one of " + ", ".join(_lit(v) for v in m.enum)
    clauses = []
    if m.minimum is not None:
        clauses.append(f"`{name}` is at least {_num(m.minimum)}")
    if m.exclusive_minimum is not None:
        clauses.append(f"`{name}` is greater than {_num(m.exclusive_minimum)}")
    if m.maximum is not None:
        clauses.append(f"`{name}` is at most {_num(m.maximum)}")
    if m.exclusive_maximum is not None:
        clauses.append(f"`{name}` is less than {_num(m.exclusive_maximum)}")
    others = copy_merged(m)
    others.minimum = others.maximum = others.exclusive_minimum = others.exclusive_maximum = None
    others.types = None
    others.descriptions = []
    if clauses and not has_constraints(others):
        return " and ".join(clauses)
    return None


def _also_required(names: list[str]) -> str:
    listed = [f"`{n}`" for n in names]
    if len(listed) == 1:
        return f"{listed[0]} is also required"
    return f"{', '.join(listed[:-1])} and {listed[-1]} are also required"
