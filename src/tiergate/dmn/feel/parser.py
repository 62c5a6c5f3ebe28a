"""FEEL text to an abstract syntax tree of plain tuples.

Pipeline: lark's lexer splits the text into tokens; known multi-token names of the scope
(``Date of Birth``, ``date and time``, ``Rule 1``) are merged into single NAME tokens; the
token list is fed to the LALR parser, whose callbacks (``astbuilder.AstBuilder``) build the
tuples. The token passes are in ``tokens.py``.

Node shapes (first item is the tag)::

    ("lit", value)            ("var", name)             ("qmark",)
    ("neg", e)                ("arith", op, a, b)       ("cmp", op, a, b)
    ("and", a, b)             ("or", a, b)              ("between", x, lo, hi)
    ("in", x, tests)          ("instance", e, type)     ("if", c, then, else)
    ("for", [(name, e, end)], body)                     ("quant", kind, [(name, e)], cond)
    ("func", [(name, type)], body)                      ("path", e, name)
    ("filter", e, cond)       ("call", fn, args, named) ("list", [e])
    ("context", [(key, e)])   ("interval", start_incl, lo, hi, end_incl)
    ("builtin", name)         ("cmp_range", op, e)      (``(< 10)``: a comparison's range)
    unary tests: ("tests", [t]) with t one of ("t_any",), ("t_cmp", op, e), ("t_expr", e),
    ("t_not", [t])
"""

from __future__ import annotations

from typing import Iterable

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ...errors import FEELError
from .astbuilder import BuildError
from .grammar import get_parser
from .tokens import NameIndex, lex, mark_interval_opens, merge_context_keys, merge_names, name_index
from .typesyntax import merge_generic_types


class FEELSyntaxError(FEELError):
    """A FEEL text that does not parse. ``details``: expression, column (1-based)."""

    code = "feel_syntax"


def _syntax_error(text: str, column: int, what: str) -> FEELSyntaxError:
    return FEELSyntaxError(
        f'FEEL syntax error at column {column} of "{text}": {what}. '
        "Fix the expression (see docs/dmn.md for the FEEL syntax tiergate accepts).",
        details={"expression": text, "column": column},
    )


def _matching_close(tokens: list[Token], open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(tokens)):
        v = str(tokens[i])
        if v in ("(", "[", "{"):
            depth += 1
        elif v in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return i
    return -1


def parse(text: str, start: str = "expr", names: Iterable[str] | NameIndex | None = None) -> tuple:
    """Parse FEEL ``text`` (``start``: "expr" or "tests") into an AST; raises FEELSyntaxError."""
    if not isinstance(text, str):
        raise _syntax_error(str(text), 1, "the expression is not text")
    index = names if isinstance(names, NameIndex) or names is None else name_index(frozenset(names))
    try:
        tokens = mark_interval_opens(merge_context_keys(
            merge_generic_types(merge_names(lex(text), index), text), text))
    except UnexpectedCharacters as exc:
        raise _syntax_error(text, exc.column, f"unexpected character {text[exc.pos_in_stream]!r}") from None
    if not tokens:
        raise _syntax_error(text, 1, "the expression is empty")
    negate = False
    if (start == "tests" and len(tokens) > 2 and tokens[0].type == "NOT" and str(tokens[1]) == "("
            and _matching_close(tokens, 1) == len(tokens) - 1):
        negate, tokens = True, tokens[2:-1]
    parser = get_parser()
    try:
        ip = parser.parse_interactive(start="start_tests" if start == "tests" else "start_expr")
        for tok in tokens:
            ip.feed_token(tok)
        tree = ip.feed_eof(tokens[-1])
    except UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            raise _syntax_error(text, len(text) + 1, "the expression ends too early") from None
        raise _syntax_error(text, tok.column or 1, f"unexpected {str(tok)!r}") from None
    except BuildError as exc:
        raise _syntax_error(text, exc.token.column or 1, str(exc)) from None
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        raise _syntax_error(text, getattr(exc, "column", 1) or 1, str(exc).splitlines()[0]) from None
    if negate:
        return ("tests", [("t_not", tree[1])])
    return tree

