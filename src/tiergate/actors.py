"""Who does something: an agent, a person, or the engine itself.

Actors are written ``agent:NAME`` or ``human:NAME`` on the command line (``--actor``) and in
``TIERGATE_ACTOR``. ``system`` is the engine's own kind; nobody can claim it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from tiergate.errors import UsageError

ActorKindName = Literal["agent", "human", "system"]
_ACTOR = re.compile(r"^(?P<kind>[a-z]+):(?P<id>[A-Za-z0-9][A-Za-z0-9._@-]{0,127})$")


@dataclass(frozen=True)
class Actor:
    kind: ActorKindName
    id: str
    #: The door this actor came through (``direct``, ``token:<id>``, ``session:<id>``), recorded
    #: with every log entry of its attempts. Not part of who the actor is: equal actors may differ.
    door: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    def through(self, door: str) -> "Actor":
        """The same actor, arriving through ``door``."""
        return replace(self, door=door)

    @classmethod
    def parse(cls, text: str | None) -> "Actor":
        """Parse a claimed actor. ``system`` and unknown kinds are refused."""
        return _parse(text)


# A long-lived process (the MCP server, a program) names the same few actors on every call;
# an Actor is immutable, so one parse serves them all.
@lru_cache(maxsize=256)
def _parse(text: str | None) -> Actor:
    if text is None or not text.strip():
        raise UsageError("no actor given. Say who is acting with --actor agent:NAME or --actor human:NAME "
                         "(or set TIERGATE_ACTOR).", code="actor_missing")
    match = _ACTOR.match(text.strip())
    if match is None:
        raise UsageError(f"actor '{text}' is not valid. Write it as agent:NAME or human:NAME "
                         "(NAME: letters, digits, '.', '_', '@', '-').", code="actor_invalid",
                         details={"actor": text})
    kind = match.group("kind")
    if kind == "system":
        raise UsageError("the actor kind 'system' is reserved for the engine itself and cannot be claimed. "
                         "Use agent:NAME or human:NAME.", code="actor_invalid", details={"actor": text})
    if kind not in ("agent", "human"):
        raise UsageError(f"actor kind '{kind}' is unknown. Use agent:NAME or human:NAME.",
                         code="actor_invalid", details={"actor": text})
    return Actor(kind, match.group("id"))  # type: ignore[arg-type]


SYSTEM = Actor("system", "tiergate")
