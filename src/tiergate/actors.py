"""Who does something: an agent, a person, or the engine itself.

Actors are written ``agent:NAME`` or ``human:NAME`` on the command line (``--actor``) and in
``TIERGATE_ACTOR``. ``system`` is the engine's own kind; nobody can claim it.

Every actor id has one canonical form, and every comparison of actors (roles, four eyes, who
started a run) is made on it, so that spellings do not make different people:

    >>> canonical_actor("human:Alice")
    'human:alice'
    >>> canonical_actor("human:ａｌｉｃｅ")      # NFKC folds full-width letters
    'human:alice'

The text is NFKC-normalised and case-folded; the name must then be ASCII letters, digits and
``. _ @ -``, start and end with a letter or digit and have no two separators in a row, so
``human:alice.`` or ``human:a..lice`` are refused rather than taken for a new person.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from tiergate.errors import UsageError

ActorKindName = Literal["agent", "human", "system"]
_ACTOR = re.compile(r"^(?P<kind>[a-z]+):(?P<id>[a-z0-9](?:[._@-]?[a-z0-9])*)$")
_MAX_NAME = 128
_NAME_RULE = ("NAME: letters, digits and single '.', '_', '@' or '-' between them; it starts and ends with a "
              "letter or digit")


@dataclass(frozen=True)
class Actor:
    kind: ActorKindName
    id: str
    #: The door this actor came through (``direct``, ``token:<id>``, ``session:<id>``), recorded
    #: with every log entry of its attempts. Not part of who the actor is: equal actors may differ.
    door: str | None = field(default=None, compare=False, repr=False)
    #: The way in (``api``, ``mcp``, ``mcp-stdio``, ``web``, ``cli``), as a row of ``door_refusals``
    #: names it; None: the engine's own (``Engine.via``).
    via: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    def through(self, door: str, via: str | None = None) -> "Actor":
        """The same actor, arriving through ``door`` (by way of ``via``)."""
        return replace(self, door=door, via=via or self.via)

    @classmethod
    def parse(cls, text: str | None) -> "Actor":
        """Parse a claimed actor into its canonical form. ``system`` and unknown kinds are refused."""
        if text is not None and not isinstance(text, str):  # a number or an object from a JSON body
            raise UsageError(f"an actor must be text such as agent:NAME or human:NAME, not {type(text).__name__}.",
                             code="actor_invalid", details={"actor": str(text)[:80]})
        return _parse(text)


def canonical_actor(text: str) -> str:
    """The one spelling of an actor id (``kind:name``), or ``UsageError`` (``actor_invalid``).

    Other code compares actors with this: ``canonical_actor(a) == canonical_actor(b)`` means the
    same agent or person. ``system:tiergate`` is accepted here (it is stored in logs), never as a claim.
    """
    if text == str(SYSTEM):
        return text
    return str(_parse(text))


def same_actor(a: str | None, b: str | None) -> bool:
    """Whether two stored actor ids name the same actor (a spelling that is not valid matches only itself)."""
    if a is None or b is None:
        return False
    try:
        return canonical_actor(a) == canonical_actor(b)
    except UsageError:
        return a == b


def fold(text: str) -> str:
    """NFKC, then case-folded: the normal form of an actor spelling before it is checked."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


# A long-lived process (the MCP server, a program) names the same few actors on every call;
# an Actor is immutable, so one parse serves them all.
@lru_cache(maxsize=256)
def _parse(text: str | None) -> Actor:
    if text is None or not text.strip():
        raise UsageError("no actor given. Say who is acting with --actor agent:NAME or --actor human:NAME "
                         "(or set TIERGATE_ACTOR).", code="actor_missing")
    if len(text) > 4 * _MAX_NAME:
        raise UsageError(f"actor '{text[:40]}...' is too long: a NAME has at most {_MAX_NAME} characters.",
                         code="actor_invalid", details={"actor": text[:_MAX_NAME]})
    folded = fold(text.strip())
    match = _ACTOR.match(folded)
    if match is None or len(match.group("id")) > _MAX_NAME:
        raise UsageError(f"actor '{text}' is not valid. Write it as agent:NAME or human:NAME ({_NAME_RULE}).",
                         code="actor_invalid", details={"actor": text})
    kind = match.group("kind")
    if kind == "system":
        raise UsageError("the actor kind 'system' is reserved for the engine itself and cannot be claimed. "
                         "Use agent:NAME or human:NAME.", code="actor_invalid", details={"actor": text})
    if kind not in ("agent", "human"):
        raise UsageError(f"actor kind '{kind}' is unknown. Use agent:NAME or human:NAME.",
                         code="actor_invalid", details={"actor": text})
    return Actor(kind, match.group("id"))  # type: ignore[arg-type]


SYSTEM = Actor("system", "tiergate")
