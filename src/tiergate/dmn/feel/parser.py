"""FEEL text to an abstract syntax tree of plain tuples.

Pipeline: lark's lexer splits the text into tokens; known multi-token names of the scope
(``Date of Birth``, ``date and time``, ``Rule 1``) are merged into single NAME tokens; the
token list is fed to the LALR parser, whose callbacks (:class:`AstBuilder`) build the tuples.

Node shapes (first item is the tag)::

    ("lit", value)            ("var", name)             ("qmark",)
    ("neg", e)                ("arith", op, a, b)       ("cmp", op, a, b)
    ("and", a, b)             ("or", a, b)              ("between", x, lo, hi)
    ("in", x, tests)          ("instance", e, type)     ("if", c, then, else)
    ("for", [(name, e, end)], body)                     ("quant", kind, [(name, e)], cond)
    ("func", [(name, type)], body)                      ("path", e, name)
    ("filter", e, cond)       ("call", fn, args, named) ("list", [e])
    ("context", [(key, e)])   ("interval", start_incl, lo, hi, end_incl)
    ("builtin", name)
    unary tests: ("tests", [t]) with t one of ("t_any",), ("t_cmp", op, e), ("t_expr", e),
    ("t_not", [t])
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable

from lark import Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ...errors import FEELError
from .types import parse_date, parse_date_and_time, parse_duration, parse_time
from .typesyntax import TypeSyntaxError, merge_generic_types, parse_type


class FEELSyntaxError(FEELError):
    """A FEEL text that does not parse. ``details``: expression, column (1-based)."""

    code = "feel_syntax"


class _LiteralError(Exception):
    def __init__(self, message: str, token: Token):
        super().__init__(message)
        self.token = token


_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "'": "'", "/": "/", "b": "\b",
            "f": "\f"}


def unescape(body: str) -> str:
    """Decode the escapes of a FEEL string literal body (no quotes)."""
    if "\\" not in body:
        return body
    out, i, n = [], 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\" or i + 1 == n:
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "uU":
            width = 4 if nxt == "u" else 6
            digits = body[i + 2:i + 2 + width]
            if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                code = int(digits, 16)
                out.append(chr(code) if code <= 0x10FFFF else "\ufffd")
                i += 2 + width
            else:
                out.append(ch)
                i += 1
        else:
            out.append(ch)
            i += 1
    text = "".join(out)
    try:  # join surrogate pairs written as two \u escapes
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeError:
        return text


def _at_literal(text: str) -> Any:
    if text[:1] == "P" or text[:2] == "-P":
        return parse_duration(text)
    if "T" in text:
        return parse_date_and_time(text)
    if ":" in text:
        return parse_time(text)
    return parse_date(text)


def _tests(children: Iterable[Any]) -> list:
    return [c for c in children if c is not None]


class AstBuilder(Transformer):
    """LALR callbacks: lark rule name -> AST tuple."""

    # -- entry points
    def start_expr(self, c):
        return c[0]

    def start_tests(self, c):
        return ("tests", c[0])

    def any_test(self, c):
        return ("tests", [("t_any",)])

    def positive_unary_tests(self, c):
        return list(c)

    def cmp_test(self, c):
        return ("t_cmp", str(c[0]), c[1])

    def expr_test(self, c):
        return ("t_expr", c[0])

    # -- names and literals
    def name(self, c):
        return " ".join(str(t) for t in c)

    def var(self, c):
        return ("var", c[0])

    def qmark(self, c):
        return ("qmark",)

    def number(self, c):
        return ("lit", Decimal(str(c[0])))

    def string(self, c):
        return ("lit", unescape(str(c[0])[1:-1]))

    def at_literal(self, c):
        tok = c[0]
        value = _at_literal(unescape(str(tok)[2:-1]))
        # not a valid date, time, date and time or duration: null at run time, as the spec says
        return ("lit", value)

    def true(self, c):
        return ("lit", True)

    def false(self, c):
        return ("lit", False)

    def null(self, c):
        return ("lit", None)

    # -- operators
    def neg(self, c):
        e = c[0]
        if e[0] == "lit" and isinstance(e[1], Decimal):
            return ("lit", -e[1])
        return ("neg", e)

    def add(self, c):
        return ("arith", "+", c[0], c[1])

    def sub(self, c):
        return ("arith", "-", c[0], c[1])

    def mul(self, c):
        return ("arith", "*", c[0], c[1])

    def div(self, c):
        return ("arith", "/", c[0], c[1])

    def pow(self, c):
        return ("arith", "**", c[0], c[1])

    def compare(self, c):
        return ("cmp", str(c[1]), c[0], c[2])

    def and_(self, c):
        return ("and", c[0], c[1])

    def or_(self, c):
        return ("or", c[0], c[1])

    def between(self, c):
        return ("between", c[0], c[1], c[2])

    def in_(self, c):
        return ("in", c[0], c[1])

    def in_cmp(self, c):
        return [("t_cmp", str(c[0]), c[1])]

    def cmp_range(self, c):
        return ("cmp_range", str(c[0]), c[1])

    def in_expr(self, c):
        if c[0][0] == "cmp_range":  # x in (< 10): the comparison test itself
            return [("t_cmp", c[0][1], c[0][2])]
        return [("t_expr", c[0])]

    def in_list(self, c):
        return _tests(c)

    def instance_of(self, c):
        return ("instance", c[0], c[1])

    def type(self, c):
        return ".".join(c)

    def generic_type(self, c):
        try:
            return parse_type(str(c[0]))
        except TypeSyntaxError as exc:
            raise _LiteralError(str(exc), c[0]) from None

    # -- textual expressions
    def if_expr(self, c):
        return ("if", c[0], c[1], c[2])

    def iteration(self, c):
        return (c[0], c[1], c[2])

    def for_expr(self, c):
        return ("for", list(c[:-1]), c[-1])

    def quantifier_in(self, c):
        return (c[0], c[1])

    def some_expr(self, c):
        return ("quant", "some", list(c[1:-1]), c[-1])

    def every_expr(self, c):
        return ("quant", "every", list(c[1:-1]), c[-1])

    def param(self, c):
        return (c[0], c[1])

    def function_def(self, c):
        params = [p for p in c[:-2] if p is not None]
        if c[-2] is not None:
            raise _LiteralError("external functions (Java, PMML) are not supported", c[-2])
        return ("func", params, c[-1])

    # -- postfix
    def path(self, c):
        return ("path", c[0], c[1])

    def filter(self, c):
        return ("filter", c[0], c[1])

    def positional(self, c):
        return ("args", list(c))

    def named_arg(self, c):
        return (c[0], c[1])

    def named(self, c):
        return ("named", list(c))

    def call(self, c):
        fn, args = c
        return _call(fn, args)

    def not_call(self, c):
        return _call(("builtin", "not"), c[1])

    def and_call(self, c):  # DMN 1.1 name of all()
        return _call(("builtin", "all"), c[0])

    def or_call(self, c):  # DMN 1.1 name of any()
        return _call(("builtin", "any"), c[0])

    # -- structures
    def list_(self, c):
        return ("list", _tests(c))

    def context_entry(self, c):
        key = c[0]
        return (key[1] if isinstance(key, tuple) else key, c[1])

    def context(self, c):
        return ("context", _tests(c))

    def interval_close(self, c):
        return str(c[0])

    def interval_closed_start(self, c):
        return ("interval", True, c[0], c[1], c[2] == "]")

    def interval_open_start(self, c):
        c = [x for x in c if not isinstance(x, Token)]  # drop the IVL_OPEN token
        return ("interval", False, c[0], c[1], c[2] == "]")


def _call(fn: tuple, args: tuple | None) -> tuple:
    if args is None:
        return ("call", fn, [], None)
    if args[0] == "args":
        return ("call", fn, args[1], None)
    return ("call", fn, None, args[1])


# ---------------------------------------------------------------------------------------------
# tokens and multi-word names

def _lex(text: str) -> list[Token]:
    from .grammar import get_parser

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
        toks = _lex(name)
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


def _merge_context_keys(tokens: list[Token], text: str) -> list[Token]:
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


def _mark_interval_opens(tokens: list[Token]) -> list[Token]:
    prev = None
    for i, tok in enumerate(tokens):
        if tok.type == "RSQB" and (prev is None or prev.type not in _ENDS_OPERAND):
            tokens[i] = Token("IVL_OPEN", str(tok), tok.start_pos, tok.line, tok.column)
        prev = tokens[i]
    return tokens


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
    from .grammar import get_parser

    if not isinstance(text, str):
        raise _syntax_error(str(text), 1, "the expression is not text")
    index = names if isinstance(names, NameIndex) or names is None else name_index(frozenset(names))
    try:
        tokens = _mark_interval_opens(_merge_context_keys(
            merge_generic_types(merge_names(_lex(text), index), text), text))
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
    except _LiteralError as exc:
        raise _syntax_error(text, exc.token.column or 1, str(exc)) from None
    except UnexpectedInput as exc:  # pragma: no cover - other lark input errors
        raise _syntax_error(text, getattr(exc, "column", 1) or 1, str(exc).splitlines()[0]) from None
    if negate:
        return ("tests", [("t_not", tree[1])])
    return tree
