"""FEEL type expressions after ``instance of``: ``list<number>``, ``context<a: string>``,
``range<date>``, ``function<number, string> -> boolean``, and plain names.

The tokenizer pass ``merge_generic_types`` folds a generic type into one ``TYPE_GENERIC`` token
(its source text), so the LALR grammar needs no ``<``/``>`` ambiguity with comparisons;
``parse_type`` turns that text into a small tree:

    "number"                       a name (built-in type or itemDefinition)
    ("list", T) / ("range", T)
    ("context", ((key, T), ...))
    ("function", (T, ...), R)
"""

from __future__ import annotations

import re
from typing import Any

from lark import Token

_GENERIC_HEADS = {"list", "range", "context", "function"}
_TYPE_TOKEN = re.compile(r"\s*(->|<|>|,|:|[^<>,:\s-][^<>,:]*?(?=\s*(?:->|[<>,:]|$)))")


def merge_generic_types(tokens: list[Token], text: str) -> list[Token]:
    """Fold each generic type after ``instance of`` into one TYPE_GENERIC token."""
    out: list[Token] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        out.append(tok)
        i += 1
        if (str(tok) == "of" and len(out) >= 2 and str(out[-2]) == "instance" and i + 1 < n
                and str(tokens[i]) in _GENERIC_HEADS and str(tokens[i + 1]) == "<"):
            end = _type_end(tokens, i)
            if end > i:
                merged = Token("TYPE_GENERIC", text[tokens[i].start_pos:tokens[end - 1].end_pos],
                               tokens[i].start_pos, tokens[i].line, tokens[i].column)
                merged.end_pos = tokens[end - 1].end_pos
                out.append(merged)
                i = end
    return out


def _type_end(tokens: list[Token], i: int) -> int:
    """Index after the type that starts at ``i`` (a head followed by ``<``); ``i`` when unbalanced."""
    head = str(tokens[i])
    depth, j = 0, i + 1
    while j < len(tokens):
        s = str(tokens[j])
        if s == "<":
            depth += 1
        elif s == ">":
            depth -= 1
            if depth == 0:
                break
        j += 1
    else:
        return i
    j += 1
    if head == "function":  # -> R
        if j + 1 < len(tokens) and str(tokens[j]) == "-" and str(tokens[j + 1]) == ">":
            j += 2
            if j < len(tokens) and str(tokens[j]) in _GENERIC_HEADS and j + 1 < len(tokens) \
                    and str(tokens[j + 1]) == "<":
                return _type_end(tokens, j)
            while j < len(tokens) and tokens[j].type == "NAME":
                j += 1
            return j
        return i
    return j


class TypeSyntaxError(ValueError):
    pass


def parse_type(text: str) -> Any:
    toks = [m.group(1).strip() for m in _TYPE_TOKEN.finditer(text) if m.group(1).strip()]
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(toks) or (expected is not None and toks[pos] != expected):
            raise TypeSyntaxError(f"type {text!r}: expected {expected or 'a type'}")
        pos += 1
        return toks[pos - 1]

    def one() -> Any:
        name = " ".join(take().split())
        if peek() != "<":
            return name
        take("<")
        if name in ("list", "range"):
            inner = one()
            take(">")
            return (name, inner)
        if name == "context":
            entries = []
            while peek() != ">":
                key = take()
                take(":")
                entries.append((key, one()))
                if peek() == ",":
                    take(",")
            take(">")
            return ("context", tuple(entries))
        if name == "function":
            params = []
            while peek() != ">":
                params.append(one())
                if peek() == ",":
                    take(",")
            take(">")
            take("->")
            return ("function", tuple(params), one())
        raise TypeSyntaxError(f"type {text!r}: {name} takes no <...>")

    result = one()
    if pos != len(toks):
        raise TypeSyntaxError(f"type {text!r}: unexpected {toks[pos]!r}")
    return result
