"""XML Schema / XPath regular expressions (what FEEL's ``matches``, ``replace`` and ``split``
take) on RE2, a linear-time engine: no pattern and no input can make matching backtrack.

``compile_xsd(pattern, flags)`` translates the XSD syntax to RE2's and returns a compiled
``re2`` pattern, or raises ``ValueError`` for a pattern that is not a valid XSD regex:

- flags ``s``, ``m``, ``i`` map to RE2's; ``x`` removes whitespace outside character classes;
  ``q`` takes the pattern literally; any other flag is an error.
- character-class subtraction ``[A-Z-[OI]]`` is computed into a plain class.
- back-references (``(a)\\1``, XPath's addition to XSD) need a group closed before them, and
  not inside a character class; RE2 cannot run them, so such a pattern runs on the ``regex``
  module under ``regex_seconds`` per call (over it: ``LimitExceededError``).
- no ``\\i``/``\\c`` name classes: those are errors.
"""

from __future__ import annotations

import re
from functools import lru_cache

import re2
import regex

from .limits import FEEL_LIMITS, over

_FLAGS = set("smixq")
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_META_ESCAPES = set("\\|.-^?*+{}()[]$")
_CLASS_ESCAPES = set("sSdDwW")


def _options() -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False
    opts.max_mem = FEEL_LIMITS.regex_memory_bytes
    return opts


@lru_cache(maxsize=512)
def compile_xsd(pattern: str, flags: str = ""):
    if not set(flags) <= _FLAGS:
        raise ValueError(f"unknown regex flag(s) {flags!r}")
    if len(pattern) > FEEL_LIMITS.regex_pattern_chars:
        raise ValueError("the pattern is too long")
    if "q" in flags:
        body = "".join("\\" + c if not c.isalnum() and c != " " else c for c in pattern)
        body = body.replace("\n", "\\n")
    else:
        body = _translate(pattern, "x" in flags, "s" in flags)
    inline = "".join(f for f in "smi" if f in flags)
    text = (f"(?{inline})" if inline else "") + body
    if _BACKREF_MARK in body:
        try:
            return _Backtracking(regex.compile(_for_regex_module(text), regex.VERSION0))
        except (regex.error, OverflowError) as exc:
            raise ValueError(str(exc)) from None
    try:
        return re2.compile(text, _options())
    except re2.error as exc:
        raise ValueError(str(exc)) from None


_BACKREF_MARK = "(?:\\"  # how _translate writes a back-reference: (?:\1)
_HEX = re.compile(r"(?<!\\)((?:\\\\)*)\\x\{([0-9A-Fa-f]+)\}")


def _for_regex_module(text: str) -> str:
    """RE2's ``\\x{HHHH}`` as the regex module writes it, ``\\UHHHHHHHH``."""
    return _HEX.sub(lambda m: m.group(1) + "\\U%08X" % int(m.group(2), 16), text)


class _Backtracking:
    """A pattern with back-references on the ``regex`` module: each call under ``regex_seconds``."""

    __slots__ = ("rx",)

    def __init__(self, rx):
        self.rx = rx

    def _run(self, method, *args):
        try:
            return method(*args, timeout=FEEL_LIMITS.regex_seconds)
        except TimeoutError:
            raise over("regex_seconds", FEEL_LIMITS.regex_seconds,
                       "a pattern with back-references took too long") from None

    def search(self, s: str):
        return self._run(self.rx.search, s)

    def sub(self, repl, s: str):
        return self._run(self.rx.sub, repl, s)

    def split(self, s: str):
        return self._run(self.rx.split, s)


def _translate(p: str, extended: bool, dotall: bool = False) -> str:
    out: list[str] = []
    i, n = 0, len(p)
    opened, stack, closed = 0, [], set()  # capturing groups: how many opened, open ones, closed
    while i < n:
        c = p[i]
        if c == "\\":
            if extended:  # x: whitespace goes before escapes are read ("\ s" is "\s")
                j = i + 1
                while j < n and p[j] in " \t\n\r":
                    j += 1
                p, n = p[:i + 1] + p[j:], n - (j - i - 1)
            if i + 1 < n and p[i + 1].isdigit():
                ref, i = _backref(p, i, opened, closed)
                out.append(ref)
                continue
            esc, i = _escape(p, i, extended)
            out.append(esc)
            continue
        if c == "[":
            cls, i = _char_class(p, i, extended)
            out.append(cls)
            continue
        if extended and c in " \t\n\r":
            i += 1
            continue
        if c == "(" and p.startswith("(?", i) and not p.startswith("(?:", i):
            raise ValueError("(? groups other than (?: are not XSD syntax")
        if c == "(":
            if p.startswith("(?:", i):
                stack.append(None)
            else:
                opened += 1
                stack.append(opened)
        elif c == ")" and stack:
            group = stack.pop()
            if group is not None:
                closed.add(group)
        if c == "." and not dotall:  # XSD's . matches neither \n nor \r
            out.append("[^\\n\\r]")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


#: Unicode blocks of XSD's ``\\p{IsName}`` (the common ones), first and last code point.
_BLOCKS = {
    "BasicLatin": (0x0000, 0x007F), "Latin-1Supplement": (0x0080, 0x00FF),
    "LatinExtended-A": (0x0100, 0x017F), "LatinExtended-B": (0x0180, 0x024F),
    "IPAExtensions": (0x0250, 0x02AF), "Greek": (0x0370, 0x03FF), "Cyrillic": (0x0400, 0x04FF),
    "Armenian": (0x0530, 0x058F), "Hebrew": (0x0590, 0x05FF), "Arabic": (0x0600, 0x06FF),
    "Devanagari": (0x0900, 0x097F), "Thai": (0x0E00, 0x0E7F),
    "GeneralPunctuation": (0x2000, 0x206F), "CurrencySymbols": (0x20A0, 0x20CF),
    "Hiragana": (0x3040, 0x309F), "Katakana": (0x30A0, 0x30FF),
    "CJKUnifiedIdeographs": (0x4E00, 0x9FFF), "HangulSyllables": (0xAC00, 0xD7AF),
}


def _backref(p: str, i: int, opened: int, closed: set) -> tuple[str, int]:
    """``\\N`` at ``i``: the longest number naming an opened group, which must be closed."""
    j = i + 2
    num = p[i + 1]
    while j < len(p) and p[j].isdigit() and int(num + p[j]) <= opened:
        num += p[j]
        j += 1
    if int(num) not in closed:
        raise ValueError(f"back-reference \\{num} to a group that is not closed before it")
    return f"(?:\\{int(num)})", j


def _escape(p: str, i: int, extended: bool = False) -> tuple[str, int]:
    if i + 1 >= len(p):
        raise ValueError("the pattern ends with a backslash")
    c = p[i + 1]
    if c.isdigit():
        raise ValueError("back-references are not XSD regex syntax")
    if c in _SIMPLE_ESCAPES or c in _META_ESCAPES or c in _CLASS_ESCAPES:
        return "\\" + c, i + 2
    if c in "pP":
        end = p.find("}", i)
        if end < 0 or p[i + 2:i + 3] != "{":
            raise ValueError("\\p needs {name}")
        name = p[i + 3:end]
        if extended:  # x: whitespace inside the braces goes too
            name = "".join(name.split())
        if name.startswith("Is"):
            block = _BLOCKS.get(name[2:])
            if block is None:
                raise ValueError(f"block escape \\p{{{name}}} is not supported")
            lo, hi = block
            return f"[{'^' if c == 'P' else ''}\\x{{{lo:X}}}-\\x{{{hi:X}}}]", end + 1
        return f"\\{c}{{{name}}}", end + 1
    raise ValueError(f"\\{c} is not an XSD escape")


def _class_items(p: str, i: int, extended: bool) -> tuple[list, int, str | None]:
    """Parse the inside of ``[...]`` from ``i`` (after ``[`` and ``^``): items and the position of
    the closing ``]``; a subtraction ``-[...]`` is returned as its own raw text."""
    items: list = []
    sub = None
    n = len(p)
    while i < n:
        c = p[i]
        if c == "]":
            return items, i, sub
        if c == "-" and i + 1 < n and p[i + 1] == "[":
            inner, j = _char_class(p, i + 1, extended)
            if j >= n or p[j] != "]":
                raise ValueError("a subtraction must end the character class")
            return items, j, inner
        if c == "\\":
            esc, i = _escape(p, i)
            if esc.startswith("[^"):
                raise ValueError("\\P{Is...} inside a character class is not supported")
            items.append(esc[1:-1] if esc.startswith("[") else esc)  # a block: its range
        else:
            items.append(c)
            i += 1
    raise ValueError("unclosed character class")


def _char_class(p: str, i: int, extended: bool) -> tuple[str, int]:
    """Translate ``[...]`` starting at ``i``; returns RE2 text and the index after ``]``."""
    j = i + 1
    negate = p[j:j + 1] == "^"
    if negate:
        j += 1
    items, end, sub = _class_items(p, j, extended)
    if not items:
        raise ValueError("empty character class")
    body = "".join("\\[" if x == "[" else x for x in items)
    if sub is None:
        return ("[^" if negate else "[") + body + "]", end + 1
    base = _codepoints(items)
    removed = _codepoints_of_class(sub)
    if base is None or removed is None:
        raise ValueError("character-class subtraction is supported on ranges and plain characters")
    keep = sorted(base - removed) if not negate else sorted(base - removed)
    if not keep:
        return "[^\\x{0}-\\x{10FFFF}]", end + 1
    return ("[^" if negate else "[") + _ranges_text(keep) + "]", end + 1


def _literal(x: str) -> str | None:
    if len(x) == 1:
        return x
    if len(x) == 2 and x[0] == "\\":
        if x[1] in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[x[1]]
        if x[1] in _META_ESCAPES:
            return x[1]
    return None


def _codepoints(items: list) -> set[int] | None:
    out: set[int] = set()
    k = 0
    while k < len(items):
        a = _literal(items[k])
        if a is None:
            return None
        if k + 2 < len(items) and items[k + 1] == "-":
            b = _literal(items[k + 2])
            if b is None or ord(b) - ord(a) > 70000:
                return None
            out.update(range(ord(a), ord(b) + 1))
            k += 3
        else:
            out.add(ord(a))
            k += 1
    return out


def _codepoints_of_class(cls: str) -> set[int] | None:
    if cls.startswith("[^"):
        return None
    body = cls[1:-1]
    items, k = [], 0
    while k < len(body):
        if body[k] == "\\":
            items.append(body[k:k + 2])
            k += 2
        else:
            items.append(body[k])
            k += 1
    return _codepoints(items)


def _ranges_text(points: list[int]) -> str:
    out, start, prev = [], points[0], points[0]
    for cp in points[1:] + [None]:
        if cp is not None and cp == prev + 1:
            prev = cp
            continue
        out.append(f"\\x{{{start:X}}}" + (f"-\\x{{{prev:X}}}" if prev != start else ""))
        if cp is not None:
            start = prev = cp
    return "".join(out)
