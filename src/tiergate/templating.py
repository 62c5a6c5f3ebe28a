"""Jinja rendering for everything that comes from definitions.

Templates (step instructions, guidance wrappers, Tier 3 conventions) are written by process
owners and rendered in Jinja's ``SandboxedEnvironment`` with ``StrictUndefined``: no access to
dunder attributes or unsafe callables, and a misspelt name is an error instead of an empty
string. Run data and evidence only ever enter as *values* in the context; they are never
compiled as template source, so ``{{ 7*7 }}`` inside evidence stays literal text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, MutableMapping

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from tiergate.errors import DefinitionError
from tiergate.jsonutil import canonical_json


def _tojson(value: Any) -> str:
    return canonical_json(value)


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, with each template's globals (``range``, ``namespace``, ...) as one plain dict.

    Jinja keeps them as a ChainMap over the environment's, so that changing the environment's
    globals later shows in templates already loaded; every render then merges that ChainMap
    into the new context twice, which cost more than rendering a step's instructions. The
    globals here are set once, before any template is compiled, and never changed.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                   lstrip_blocks=True)
    env.filters["tojson"] = _tojson
    return env


@lru_cache(maxsize=512)
def _compile(source: str):  # type: ignore[no-untyped-def]
    return environment().from_string(source)


def check_syntax(source: str) -> tuple[int, str] | None:
    """None if the template compiles, else (line within the template, message)."""
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        return exc.lineno or 1, exc.message or "syntax error"
    return None


def render(source: str, context: dict[str, Any], *, where: str = "template") -> str:
    """Render a definition's template. Raises DefinitionError naming ``where`` on failure."""
    try:
        return _compile(source).render(**context)
    except TemplateSyntaxError as exc:
        raise DefinitionError(f"{where}: template syntax error on its line {exc.lineno}: {exc.message}. "
                              "Fix the template.", code="template_error",
                              details={"where": where, "line": exc.lineno, "see": "check"}) from None
    except UndefinedError as exc:
        raise DefinitionError(f"{where}: {exc.message}. The template uses a name the run does not have; "
                              "guard it with `{% if ... is defined %}` or fix the name.", code="template_error",
                              details={"where": where}) from None
    except SecurityError as exc:
        raise DefinitionError(f"{where}: refused by the template sandbox: {exc}", code="template_error",
                              details={"where": where}) from None
