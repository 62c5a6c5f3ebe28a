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
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

_encode_key = json.encoder.encode_basestring_ascii  # what json.dumps (ensure_ascii) uses for a str
_default = json.JSONEncoder().default  # what json.dumps calls for a value it cannot encode (its TypeError)
_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # the C encoder json.dumps makes (None without _json)


def encode(value: Any) -> str:
    """``json.dumps(value)`` (its default arguments): the same text, the same errors.

    ``json.dumps`` makes the C encoder anew on each call (``JSONEncoder.iterencode``: a circularity
    map, the default function, the key and item separators, NaN allowed) and joins its chunks, through
    three Python calls; this makes the same encoder with the same arguments and calls it, which
    saves about half of a small value's time (≈ 1–2 µs). A Tier 1 state's text is spliced from a
    dozen such pieces a run (``dumps``, ``splice``, ``spliced``, ``Frozen.of``, the kept state's copy)."""
    if isinstance(value, str):
        return _encode_key(value)  # json.dumps's own shortcut for a string (JSONEncoder.encode)
    if _make_encoder is None:
        return json.dumps(value)
    return "".join(_make_encoder({}, _default, _encode_key, None, ": ", ", ", False, False, True)(value, 0))


class Encoded(dict):  # type: ignore[type-arg]
    """A dict with its ``json.dumps`` text (``text``); never changed once made."""

    __slots__ = ("text",)

    def __init__(self, value: dict[str, Any], text: str):
        super().__init__(value)
        self.text = text


_TEXT = Encoded.__dict__["text"]  # the slot, for ``Lazy``


class Lazy(Encoded):
    """An ``Encoded`` whose text is joined from texts already made, when it is first read: a Tier 1
    run's state stored in parts (``tiergate.store.parts``) never reads its task tree's whole text
    (500 kB at 1,000 open instances), only its members'. ``make`` must read nothing that can change
    after the ``Lazy`` is made (texts, not live values). Copies are plain ``Encoded`` ones."""

    __slots__ = ("_make",)

    def __init__(self, value: dict[str, Any], make: Callable[[], str]):
        dict.__init__(self, value)
        self._make: Callable[[], str] | None = make

    @property
    def text(self) -> str:  # type: ignore[override]
        make = self._make
        if make is None:
            return _TEXT.__get__(self, Lazy)  # type: ignore[no-any-return]
        made = make()
        _TEXT.__set__(self, made)
        self._make = None
        return made

    def __reduce__(self) -> Any:
        return (Encoded, (dict(self), self.text))


class Frozen(Encoded):
    """An ``Encoded`` that refuses to be changed: a Tier 1 run's step record (``tiergate.bpmn.records``).

    Records are shared between the state a move starts from and the one it returns, so one that
    a move changes is first copied (``dict(record)``); changing a shared one in place would change
    a state already saved, so it raises instead. Copies (``copy``, ``deepcopy``, pickling) are
    plain dicts."""

    __slots__ = ("memo",)

    def __init__(self, value: dict[str, Any], text: str):
        super().__init__(value, text)
        #: Whatever a reader works out from this record alone and keeps beside it (the step's view).
        self.memo: Any = None

    @classmethod
    def of(cls, value: dict[str, Any]) -> "Frozen":
        return cls(value, encode(value))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a frozen record is shared between states: copy it (dict(record)) before changing it")

    __setitem__ = __delitem__ = __ior__ = update = pop = popitem = setdefault = clear = _refuse  # type: ignore[assignment]

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        import copy

        return copy.deepcopy(dict(self), memo)

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


#: A ``Parted`` object whose text is this long or longer is stored a member a row (``tiergate.store.parts``).
PARTED_MIN_TEXT = 16_384


class Member:
    """One member of a ``Parted`` object: its key, its value's JSON text, and the two spelled as in the
    object's text (``member``). ``leaf`` is kept for whoever stores it apart (``tiergate.store.parts``)."""

    __slots__ = ("key", "text", "member", "leaf")

    def __init__(self, key: str, text: str):
        self.key, self.text, self.member = key, text, member(key, text)
        self.leaf: bytes | None = None


class Parted(Lazy):
    """An ``Encoded`` object whose members may be stored apart, one row each (``tiergate.store.parts``):
    a Tier 1 run's task tree, where a step changes a few of 1,000 tasks. ``members`` are in order;
    the text is theirs joined, when first read (``Lazy``; ``reaches`` measures it without it). Like
    every ``Encoded``, never changed once made.

    Its maker may say what it was made from: ``base`` is the ``token`` of the ``Parted`` it
    followed, every member of this one not in ``fresh`` being a member of that one, unchanged;
    a store that kept what it wrote of that one then looks at ``fresh`` only."""

    __slots__ = ("members", "token", "base", "fresh")

    def __init__(self, value: dict[str, Any], members: Sequence[Member], *, base: object | None = None,
                 fresh: Sequence[Member] = ()):
        super().__init__(value, self._joined)
        self.members = members
        self.token, self.base, self.fresh = object(), base, fresh

    def __reduce__(self) -> Any:
        return (Parted, (dict(self), list(self.members)))

    def _joined(self) -> str:
        return "{" + ", ".join(map(_MEMBER, self.members)) + "}"

    def reaches(self, size: int) -> bool:
        """Whether ``len(self.text) >= size``, without joining the text when it is not made yet: each
        member adds its own length and 2 (``", "`` between members, the braces around them)."""
        if self._make is None:
            return len(self.text) >= size
        total = 2
        for index, item in enumerate(self.members):
            if total >= size:
                return True
            total += len(item.member) + (2 if index else 0)
        return total >= size


_MEMBER = attrgetter("member")


def member(key: str, text: str) -> str:
    """One member of an object's text: the key and the value's text, as ``json.dumps`` spells them."""
    return f"{_encode_key(key)}: {text}"


def join(items: list[tuple[str, str]]) -> str:
    """The JSON object text of (key, value text) pairs, spelled as ``json.dumps`` spells an object."""
    return "{" + ", ".join([member(key, text) for key, text in items]) + "}"


def holds_encoded(value: Any) -> bool:
    """Whether ``value`` is a dict with an ``Encoded`` among its values. (A loop, not ``any`` over a
    generator: every JSON column a store writes is asked this, a Tier 2 state's too.)"""
    if not isinstance(value, dict):
        return False
    for item in value.values():
        if isinstance(item, Encoded):
            return True
    return False


def dumps(value: Any) -> str:
    """``json.dumps(value)``, reusing the text of each ``Encoded`` among a dict's values (nested ones too).

    The values between two that hold an ``Encoded`` are encoded together, as one object whose
    braces are left off: ``json.dumps`` spells ``{"a": 1, "b": 2}`` as the members ``"a": 1`` and
    ``"b": 2`` joined by ``", "``, so the text is the same, with one call instead of one per value."""
    if isinstance(value, Encoded):
        return value.text
    if not holds_encoded(value):
        return json.dumps(value)
    for key in value:
        if not isinstance(key, str):
            return json.dumps(value)
    pieces: list[str] = []
    plain: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and (isinstance(item, Encoded) or holds_encoded(item)):
            if plain:
                pieces.append(encode(plain)[1:-1])
                plain = {}
            pieces.append(member(key, dumps(item)))
        else:
            plain[key] = item
    if plain:
        pieces.append(encode(plain)[1:-1])
    return "{" + ", ".join(pieces) + "}"


def splice(members: list[tuple[str, Any, str | None]]) -> str:
    """The text of the object of ``(key, value, member text or None)``: each member text as it is, the
    values between them encoded together (as one object with its braces left off: ``json.dumps``
    spells the same members, joined the same way), so one ``json.dumps`` per stretch."""
    pieces: list[str] = []
    plain: dict[str, Any] = {}
    for key, value, text in members:
        if text is None:
            plain[key] = value
            continue
        if plain:
            pieces.append(encode(plain)[1:-1])
            plain = {}
        pieces.append(text)
    if plain:
        pieces.append(encode(plain)[1:-1])
    return "{" + ", ".join(pieces) + "}"


def spliced(items: list[tuple[str, Any]]) -> Encoded:
    """The object of ``items`` (plain values, or ``Encoded`` ones whose text is taken), as an ``Encoded``:
    the plain values' text is made now (they may be the live workflow's); the whole text too, unless
    an item's text is not made yet (a ``Lazy`` one: a large task tree), then when it is first read
    (``Lazy``: a state stored in parts never reads it)."""
    if not items:
        return Encoded({}, "{}")
    pieces: list[str | tuple[str, Encoded]] = []
    plain: dict[str, Any] = {}
    for key, value in items:
        if isinstance(value, Encoded):
            if plain:
                pieces.append(encode(plain)[1:-1])
                plain = {}
            pieces.append((key, value))
        else:
            plain[key] = value
    if plain:
        pieces.append(encode(plain)[1:-1])

    def joined() -> str:
        return "{" + ", ".join([piece if type(piece) is str else member(piece[0], piece[1].text)  # type: ignore[index,union-attr]
                                for piece in pieces]) + "}"

    if not any(isinstance(piece, tuple) and isinstance(piece[1], Lazy) and piece[1]._make is not None
               for piece in pieces):  # every text is made already: an ``Encoded`` like any other
        return Encoded(dict(items), joined())
    return Lazy(dict(items), joined)
