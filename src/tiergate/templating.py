"""Jinja rendering for everything that comes from definitions.

Templates (step instructions, guidance wrappers, Tier 3 conventions) are written by process
owners and rendered in Jinja's ``SandboxedEnvironment`` with ``StrictUndefined``: no access to
dunder attributes or unsafe callables, and a misspelt name is an error instead of an empty
string. Run data and evidence only ever enter as *values* in the context; they are never
compiled as template source, so ``{{ 7*7 }}`` inside evidence stays literal text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, MutableMapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from jinja2 import (
    ChainableUndefined,
    StrictUndefined,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.filters import do_center, do_indent, do_replace
from jinja2.sandbox import SandboxedEnvironment

from tiergate.errors import DefinitionError, LimitExceededError
from tiergate.jsonutil import canonical_json
from tiergate.limits import exceeded, limit

#: The budget of the rendering under way (tiergate.limits): its deadline and the loop items left.
_BUDGET: ContextVar[list[float] | None] = ContextVar("tiergate_template_budget", default=None)
#: The numbers in a format spec: "%999999999d", "{:>999999999}".
_SPEC_NUMBER = re.compile(r"(?:%[-#0 +]*|\{[^{}]*:[^{}0-9]*)(\d+)")
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _tojson(value: Any) -> str:
    return canonical_json(value)


def _over(name: str, what: str) -> LimitExceededError:
    return exceeded(name, "template", what)


def _weigh(value: Any, times: int) -> None:
    """Refuse a repetition whose result would hold more than ``template_length`` values, nested ones included."""
    if times <= 0:
        return
    budget = limit("template_length") // times
    count, stack = -1, [value]  # the repeated value itself is not one of the items
    while stack:
        item = stack.pop()
        count += 1 + (len(item) if isinstance(item, (str, *_CONTAINERS)) else 0)
        if isinstance(item, dict):
            stack.extend(v for v in item.values() if isinstance(v, _CONTAINERS))
        elif isinstance(item, _CONTAINERS):
            stack.extend(v for v in item if isinstance(v, _CONTAINERS))
        if count > budget:
            raise _over("template_length", f"repeating a value {times} times makes more than "
                                           f"{limit('template_length')} items")


def _check_spec(spec: str) -> None:
    widest = max((int(d) if len(d) < 9 else 10**9 for d in _SPEC_NUMBER.findall(spec)), default=0)
    if widest > limit("template_length"):
        raise _over("template_length", f"a format width or precision of {widest}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    """What every ``{% for %}`` iterates through: counted against the rendering's budget."""
    budget = _BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget[1] -= 1
            if budget[1] < 0:
                raise _over("template_loop_items", "the loops ran too many times")
            if not int(budget[1]) & 255 and time.monotonic() > budget[0]:
                raise _over("template_seconds", "rendering took too long")
        yield item


def _center(value: str, width: int = 80) -> str:
    if _is_int(width) and width > limit("template_length"):
        raise _over("template_length", f"center() to a width of {width}")
    return do_center(value, width)


def _indent(value: str, width: Any = 4, first: bool = False, blank: bool = False) -> str:
    if _is_int(width) and width > limit("template_length"):
        raise _over("template_length", f"indent() by {width}")
    return do_indent(value, width, first, blank)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_spec(str(value))
    if args and kwargs:
        raise _over("template_length", "format() with both positional and keyword arguments")
    return str(value) % (kwargs or args)


def _replace(eval_ctx: Any, value: str, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    grows = text.count(str(old)) * max(len(str(new)) - len(str(old)), 0)
    if len(text) + grows > limit("template_length"):
        raise _over("template_length", f"replace() would make {len(text) + grows} characters")
    return do_replace(eval_ctx, value, old, new, count)


_replace.jinja_pass_arg = do_replace.jinja_pass_arg  # type: ignore[attr-defined]


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, with each template's globals (``range``, ``namespace``, ...) as one plain dict.

    Jinja keeps them as a ChainMap over the environment's, so that changing the environment's
    globals later shows in templates already loaded; every render then merges that ChainMap
    into the new context twice, which cost more than rendering a step's instructions. The
    globals here are set once, before any template is compiled, and never changed.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    # --- budgets (tiergate.limits): operators, format strings and loops ---

    # Intercepted operators are also never folded at compile time, so `tiergate check` cannot hang.
    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        length, bits = limit("template_length"), limit("template_int_bits")
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1 \
                and right * max(left.bit_length(), 1) > bits:
            raise _over("template_int_bits", f"{left} ** {right} is wider than {bits} bits")
        if operator == "*":
            if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > bits:
                raise _over("template_int_bits", f"a product wider than {bits} bits")
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and _is_int(count):
                    _weigh(seq, count)
        if operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)) \
                and len(left) + len(right) > length:
            raise _over("template_length", f"joining makes more than {length} items")
        if operator == "%" and isinstance(left, str):
            _check_spec(left)
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_spec(obj)
        return super().getattr(obj, attribute)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every loop iterates through ``_loop``, which counts it against the rendering's budget."""
        template = super()._parse(source, name, filename)
        for loop in template.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name("tiergate_loop", "load"), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        return template


class Unset(ChainableUndefined):
    """A name a Tier 1 step's instructions read bare that the run's data does not have (yet), as
    SpiffWorkflow's templates read the task's data: it shows as empty text, and so does any
    attribute or item of it (``{{ person.name }}``); ``is defined`` and ``default`` see it as unset.
    Arithmetic or a comparison with it is still an error, which the instructions then show."""

    __slots__ = ()


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=True,
                   lstrip_blocks=True)
    env.filters["tojson"] = _tojson
    env.filters.update(center=_center, indent=_indent, format=_format, replace=_replace)
    env.globals["tiergate_loop"] = _loop
    return env


@lru_cache(maxsize=512)
def _compile(source: str):  # type: ignore[no-untyped-def]
    return environment().from_string(source)


@lru_cache(maxsize=512)
def names_read(source: str) -> frozenset[str] | None:
    """The names a template reads from its context (Jinja's ``find_undeclared_variables``: a
    sandboxed template has no other way to reach its context); None if it does not compile."""
    try:
        return frozenset(meta.find_undeclared_variables(environment().parse(source)))
    except TemplateSyntaxError:
        return None


def check_syntax(source: str) -> tuple[int, str] | None:
    """None if the template compiles, else (line within the template, message)."""
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        return exc.lineno or 1, exc.message or "syntax error"
    return None


def unknown_names(source: str, known: set[str]) -> list[str]:
    """The top-level names ``source`` reads that are neither in ``known`` nor the sandbox's own (sorted);
    [] when it does not compile (its syntax is reported on its own)."""
    from jinja2 import meta

    try:
        parsed = environment().parse(source)
    except TemplateSyntaxError:
        return []
    return sorted(meta.find_undeclared_variables(parsed) - known - set(environment().globals))


def render(source: str, context: dict[str, Any], *, where: str = "template") -> str:
    """Render a definition's template. Raises DefinitionError naming ``where`` on failure."""
    budget = [time.monotonic() + limit("template_seconds"), float(limit("template_loop_items"))]
    token = _BUDGET.set(budget)
    try:
        return _bounded(_compile(source).generate(**context), where)
    except LimitExceededError as err:
        err.message = f"{where}: {err.message.removeprefix('template: ')}"
        err.args = (err.message,)
        err.details["where"] = where
        raise
    except RecursionError:
        raise exceeded("template_seconds", where, "the template calls itself too deeply") from None
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
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:  # `{{ 1/0 }}`, `{{ n + 1 }}`
        raise DefinitionError(f"{where}: {exc} ({type(exc).__name__}). Fix the template, or guard what it does with "
                              "the data it reads.", code="template_error", details={"where": where}) from None
    finally:
        _BUDGET.reset(token)


def _bounded(chunks: Iterable[str], where: str) -> str:
    """The rendered text, stopped at ``template_output_chars`` or ``template_seconds``."""
    out: list[str] = []
    size, most = 0, limit("template_output_chars")
    budget = _BUDGET.get()
    for chunk in chunks:
        size += len(chunk)
        if size > most:
            raise _over("template_output_chars", f"the text is longer than {most} characters")
        if budget is not None and time.monotonic() > budget[0]:
            raise _over("template_seconds", "rendering took too long")
        out.append(chunk)
    return "".join(out)
