"""FEEL built-ins: string and numeric functions."""

from __future__ import annotations

from datetime import timedelta
from decimal import (ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_EVEN,
                     ROUND_HALF_UP, ROUND_UP, Decimal)

from .limits import check_string
from .registry import MISSING, Null, feel, integer, num, seq, text
from .types import DECIMAL_CONTEXT as _C
from .types import YearsMonthsDuration
from .xsdregex import compile_xsd


# ---------------------------------------------------------------------------------------------
# strings

@feel("substring", "string", "start position", "length")
def substring(s, start, length=MISSING):
    s, start = text(s), integer(num(start))
    chars = list(s)  # code points
    n = len(chars)
    if start == 0 or abs(start) > n + (1 if start > 0 else 0):
        raise Null
    begin = start - 1 if start > 0 else n + start
    if length is MISSING:
        return "".join(chars[begin:])
    length = num(length)
    if length < 0:
        raise Null
    count = int(length.to_integral_value(ROUND_DOWN))
    return "".join(chars[begin:begin + count])


@feel("string length", "string")
def string_length(s):
    return Decimal(len(text(s)))


@feel("upper case", "string")
def upper_case(s):
    return text(s).upper()


@feel("lower case", "string")
def lower_case(s):
    return text(s).lower()


@feel("substring before", "string", "match")
def substring_before(s, match):
    s, match = text(s), text(match)
    i = s.find(match)
    return "" if i < 0 else s[:i]


@feel("substring after", "string", "match")
def substring_after(s, match):
    s, match = text(s), text(match)
    i = s.find(match)
    return "" if i < 0 else s[i + len(match):]


@feel("contains", "string", "match")
def contains(s, match):
    return text(match) in text(s)


@feel("starts with", "string", "match")
def starts_with(s, match):
    return text(s).startswith(text(match))


@feel("ends with", "string", "match")
def ends_with(s, match):
    return text(s).endswith(text(match))


def _regex(pattern, flags):
    """The XSD regex on RE2 (linear time; see xsdregex.py); an invalid pattern or flag is null."""
    return compile_xsd(text(pattern), "" if flags is MISSING or flags is None else text(flags))


def _replacement(template: str) -> str:
    """XPath replacement string (``$1``, ``\\$``) to Python's (``\\g<1>``)."""
    out, i = [], 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template) and template[i + 1] in "\\$":
            out.append("\\\\" if template[i + 1] == "\\" else "$")
            i += 2
        elif ch == "$":
            j = i + 1
            while j < len(template) and template[j].isdigit():
                j += 1
            if j == i + 1:
                raise Null
            out.append(f"\\g<{template[i + 1:j]}>")
            i = j
        elif ch == "\\":
            raise Null
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@feel("matches", "input", "pattern", "flags", nulls=False)
def matches(s, pattern, flags=MISSING):  # null flags are no flags
    return _regex(pattern, flags).search(text(s)) is not None


@feel("replace", "input", "pattern", "replacement", "flags")
def replace(s, pattern, replacement, flags=MISSING):
    rx = _regex(pattern, flags)
    if rx.search("") is not None:  # XPath: a pattern that matches "" is an error
        raise Null
    template = text(replacement)
    if "q" in ("" if flags is MISSING else flags):
        return check_string(rx.sub(lambda m: template, text(s)))
    return check_string(rx.sub(_replacement(template), text(s)))


@feel("split", "string", "delimiter")
def split(s, delimiter):
    rx = compile_xsd(text(delimiter), "")
    if rx.search("") is not None:
        raise Null
    return rx.split(text(s))


@feel("string join", "list", "delimiter", nulls=False)
def string_join(items, delimiter=MISSING):
    items = [items] if items.__class__ is str else seq(items)  # a single string is a one-item list
    sep = "" if delimiter is MISSING or delimiter is None else text(delimiter)
    parts = []
    for item in items:
        if item is None:
            continue
        parts.append(text(item))
    return sep.join(parts)


# ---------------------------------------------------------------------------------------------
# numbers

def _scale(scale) -> int:
    s = int(num(scale))  # a fractional scale is truncated
    if not -6111 <= s <= 6176:
        raise Null
    return s


def _round(n, scale, mode) -> Decimal:
    n = num(n)
    places = _scale(scale)
    exp = Decimal(1).scaleb(-places)
    try:
        return n.quantize(exp, rounding=mode, context=_C) if n else Decimal(0).quantize(exp)
    except ArithmeticError:  # more places than 34 digits hold: the number has fewer already
        if n.as_tuple().exponent >= -places:
            return n
        raise


@feel("decimal", "n", "scale")
def decimal_(n, scale):
    return _round(n, scale, ROUND_HALF_EVEN)


@feel("floor", "n", "scale")
def floor(n, scale=Decimal(0)):
    return _round(n, scale, ROUND_FLOOR)


@feel("ceiling", "n", "scale")
def ceiling(n, scale=Decimal(0)):
    return _round(n, scale, ROUND_CEILING)


@feel("round up", "n", "scale")
def round_up(n, scale=Decimal(0)):
    return _round(n, scale, ROUND_UP)


@feel("round down", "n", "scale")
def round_down(n, scale=Decimal(0)):
    return _round(n, scale, ROUND_DOWN)


@feel("round half up", "n", "scale")
def round_half_up(n, scale=Decimal(0)):
    return _round(n, scale, ROUND_HALF_UP)


@feel("round half down", "n", "scale")
def round_half_down(n, scale=Decimal(0)):
    return _round(n, scale, ROUND_HALF_DOWN)


@feel("abs", "n")
def abs_(n):
    if n.__class__ in (Decimal, timedelta):
        return abs(n)
    if n.__class__ is YearsMonthsDuration:
        return YearsMonthsDuration(abs(n.months_total))
    raise Null


@feel("modulo", "dividend", "divisor")
def modulo(dividend, divisor):
    a, b = num(dividend), num(divisor)
    if not b:
        raise Null
    q = _C.divide(a, b).to_integral_value(ROUND_FLOOR)
    return _C.subtract(a, _C.multiply(b, q))


@feel("sqrt", "number")
def sqrt(n):
    n = num(n)
    if n < 0:
        raise Null
    return n.sqrt(_C)


@feel("log", "number")
def log(n):
    n = num(n)
    if n <= 0:
        raise Null
    return n.ln(_C)


@feel("exp", "number")
def exp(n):
    return num(n).exp(_C)


@feel("odd", "number")
def odd(n):
    return integer(num(n)) % 2 == 1


@feel("even", "number")
def even(n):
    return integer(num(n)) % 2 == 0
