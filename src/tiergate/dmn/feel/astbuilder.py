"""The LALR parser's callbacks: each grammar rule to its AST tuple (the shapes: ``parser.py``).

Literals are decoded here: numbers to ``Decimal``, string escapes (``unescape``), and ``@"..."``
temporal literals (a text that is no valid date, time or duration is null at run time).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable

from lark import Token, Transformer

from .types import parse_date, parse_date_and_time, parse_duration, parse_time
from .typesyntax import TypeSyntaxError, parse_type


class BuildError(Exception):
    """A construct the builder refuses; ``token`` says where (parse turns it into a syntax error)."""

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
            raise BuildError(str(exc), c[0]) from None

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
            raise BuildError("external functions (Java, PMML) are not supported", c[-2])
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

