"""JSON values that carry their own text, so that a large state is not encoded whole again.

A Tier 1 run's state holds its SpiffWorkflow task tree: with a multi-instance task over 1,000
items, 1,000 task dicts, of which a step changes a few. ``Encoded`` is a dict that also holds
its ``json.dumps`` text, built by its maker from texts it kept (``tiergate.bpmn.dumping``).
``dumps`` writes a value as ``json.dumps`` would, taking the text of every ``Encoded`` inside it
instead of encoding it again: the result is the same string, byte for byte, so the state's hash
and everything that checks it are unchanged.

An ``Encoded`` must never be changed after it is made; the code that holds one replaces it
whole, as the BPMN runner does with ``state["workflow"]``. Its *text* is what counts: a kept
dump's dict may share nested values with the live workflow it was dumped from, so whatever
rebuilds from it reads the text (``tiergate.bpmn.persistence.restore`` does).
"""

from __future__ import annotations

import json
from typing import Any

_encode_key = json.encoder.encode_basestring_ascii  # what json.dumps (ensure_ascii) uses for a str


class Encoded(dict):  # type: ignore[type-arg]
    """A dict with its ``json.dumps`` text (``text``); never changed once made."""

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str):
        super().__init__(value)
        self.text = text


def member(key: str, text: str) -> str:
    """One member of an object's text: the key and the value's text, as ``json.dumps`` spells them."""
    return f"{_encode_key(key)}: {text}"


def join(items: list[tuple[str, str]]) -> str:
    """The JSON object text of (key, value text) pairs, spelled as ``json.dumps`` spells an object."""
    return "{" + ", ".join([member(key, text) for key, text in items]) + "}"


def holds_encoded(value: Any) -> bool:
    return isinstance(value, dict) and any(isinstance(v, Encoded) for v in value.values())


def dumps(value: Any) -> str:
    """``json.dumps(value)``, reusing the text of each ``Encoded`` among a dict's values (nested ones too).

    The values between two that hold an ``Encoded`` are encoded together, as one object whose
    braces are left off: ``json.dumps`` spells ``{"a": 1, "b": 2}`` as the members ``"a": 1`` and
    ``"b": 2`` joined by ``", "``, so the text is the same, with one call instead of one per value."""
    if isinstance(value, Encoded):
        return value.text
    if not holds_encoded(value) or not all(isinstance(k, str) for k in value):
        return json.dumps(value)
    pieces: list[str] = []
    plain: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and (isinstance(item, Encoded) or holds_encoded(item)):
            if plain:
                pieces.append(json.dumps(plain)[1:-1])
                plain = {}
            pieces.append(member(key, dumps(item)))
        else:
            plain[key] = item
    if plain:
        pieces.append(json.dumps(plain)[1:-1])
    return "{" + ", ".join(pieces) + "}"

