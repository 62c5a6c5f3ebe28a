"""The token passes between lark's lexer and the LALR parser.

- Known names of the scope that span several tokens (``Date of Birth``, ``date and time``,
  ``Rule 1``) become one NAME token (:func:`merge_names`, with a :class:`NameIndex`).
- A context key with name symbols (``{a.b: 1}``) becomes one NAME token.
- A ``]`` that opens an interval (``]1..10]``) becomes an IVL_OPEN token.

(``typesyntax.merge_generic_types`` is the pass for generic types such as ``list<number>``.)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from lark import Token
from lark.exceptions import LarkError

from .grammar import get_parser


def lex(text: str) -> list[Token]:
    return list(get_parser().lex(text))


class NameIndex:
    """Known names that span several tokens, indexed by their first token."""

    def __init__(self, names: Iterable[str]):
        self.by_first: dict[str, list[tuple[tuple[str, ...], tuple[bool, ...], str]]] = {}
        for name in names:
            shape = _name_shape(name)
            if shape is None:
                continue
            values, gaps = shape
            self.by_first.setdefault(values[0], []).append((values, gaps, name))
        for entries in self.by_first.values():
            entries.sort(key=lambda e: -len(e[0]))


@lru_cache(maxsize=4096)
def _name_shape(name: str) -> tuple[tuple[str, ...], tuple[bool, ...]] | None:
    try:
        toks = lex(name)
    except LarkError:
        return None
    if len(toks) < 2 or any(t.type in ("STRING", "AT_STRING") for t in toks):
        return None
    gaps = tuple(toks[i].start_pos > toks[i - 1].end_pos for i in range(1, len(toks)))
    return tuple(str(t) for t in toks), gaps


@lru_cache(maxsize=256)
def name_index(names: frozenset[str]) -> NameIndex:
    return NameIndex(names)


def merge_names(tokens: list[Token], index: NameIndex | None) -> list[Token]:
    if index is None or not index.by_first:
        return tokens
    out: list[Token] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        for values, gaps, name in index.by_first.get(str(tok), ()):
            k = len(values)
            if i + k > n:
                continue
            if all(str(tokens[i + j]) == values[j] for j in range(1, k)) and all(
                (tokens[i + j].start_pos > tokens[i + j - 1].end_pos) == gaps[j - 1] for j in range(1, k)
            ):
                merged = Token("NAME", name, tok.start_pos, tok.line, tok.column)
                merged.end_pos = tokens[i + k - 1].end_pos
                out.append(merged)
                i += k
                break
        else:
            out.append(tok)
            i += 1
    return out


_ENDS_OPERAND = {"NAME", "NUMBER", "STRING", "AT_STRING", "QMARK", "RPAR", "RSQB", "RBRACE", "TRUE",
                 "FALSE", "NULL", "LSQB"}


_NAME_SYMBOLS = {"+", "-", "*", "/", "."}


def merge_context_keys(tokens: list[Token], text: str) -> list[Token]:
    """A context key with name symbols (``{foo+bar: 1}``, ``{a.b: 1}``) becomes one NAME token."""
    if "{" not in text:
        return tokens
    out: list[Token] = []
    stack: list[str] = []
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        v = str(tok)
        out.append(tok)
        i += 1
        if v in ("(", "[", "{"):
            stack.append(v)
        elif v in (")", "]", "}") and stack:
            stack.pop()
        if v in ("{", ",") and stack and stack[-1] == "{":
            j = i
            while j < n and (tokens[j].type == "NAME" or str(tokens[j]) in _NAME_SYMBOLS):
                j += 1
            if (j < n and str(tokens[j]) == ":" and j - i > 1
                    and any(str(t) in _NAME_SYMBOLS for t in tokens[i:j])):
                name = " ".join(text[tokens[i].start_pos:tokens[j - 1].end_pos].split())
                merged = Token("NAME", name, tokens[i].start_pos, tokens[i].line, tokens[i].column)
                merged.end_pos = tokens[j - 1].end_pos
                out.append(merged)
                i = j
    return out


def mark_interval_opens(tokens: list[Token]) -> list[Token]:
    prev = None
    for i, tok in enumerate(tokens):
        if tok.type == "RSQB" and (prev is None or prev.type not in _ENDS_OPERAND):
            tokens[i] = Token("IVL_OPEN", str(tok), tok.start_pos, tok.line, tok.column)
        prev = tokens[i]
    return tokens

