"""How the CLI answers: one JSON envelope for machines, short aligned text for people.

    {"ok": true,  "data": ...}
    {"ok": false, "error": {"code": "...", "message": "...", "details": {...}}}

The same envelope is what the MCP tools return (``tiergate.envelope``).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tiergate.engine import Engine
from tiergate.envelope import failure, success
from tiergate.errors import TiergateError, UsageError
from tiergate.jsonutil import to_jsonable

EXIT_FAILURE = 1
EXIT_USAGE = 2


def console(stderr: bool = False) -> Console:
    out = Console(highlight=False, soft_wrap=True, stderr=stderr)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 160  # piped output: do not fold tables at 80 columns
    return out


def table(*columns: str) -> Table:
    result = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


def parse_json_option(value: str | None, option: str) -> Any:
    """Parse ``--data``/``--evidence``: inline JSON, or ``@FILE`` (``@-`` for standard input)."""
    if value is None:
        return None
    source = option
    text = value
    if value.startswith("@"):
        name = value[1:]
        source = f"{option} file {name}"
        text = read_text_option(name, option)
    try:
        value = json.loads(text, parse_constant=_not_finite)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}. "
                         f"Pass a JSON object, e.g. {option} '{{\"key\": \"value\"}}' or {option} @file.json.",
                         code="invalid_json", details={"line": exc.lineno, "column": exc.colno}) from None
    except _NotFinite as exc:
        raise UsageError(f"{source}: {exc.args[0]} is not a JSON number (JSON has no NaN or Infinity). Send a "
                         "finite number, or null.", code="invalid_json", details={"value": exc.args[0]}) from None
    except RecursionError:
        raise UsageError(f"{source}: the JSON is nested too deeply to read. Send flatter JSON.",
                         code="invalid_json") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{source}: the JSON holds a lone surrogate (a \\uD800-\\uDFFF escape without its pair), "
                         "which is not valid Unicode. Send valid text.", code="invalid_json") from None
    except (RecursionError, ValueError):
        raise UsageError(f"{source}: the JSON is nested too deeply to read. Send flatter JSON.",
                         code="invalid_json") from None
    return value


class _NotFinite(ValueError):
    pass


def _not_finite(word: str) -> Any:
    raise _NotFinite(word)


def plain_text(value: str, option: str) -> str:
    """A text option as given, refused if it is not valid Unicode (bytes that were not UTF-8 on the command line)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{option} is not valid UTF-8 text (character {exc.start + 1}). Send it as UTF-8.",
                         code="invalid_encoding", details={"position": exc.start}) from None
    return value


def read_text_option(name: str, option: str) -> str:
    """The text of ``@FILE`` (``@-``: standard input) for an option, as UTF-8, or a UsageError."""
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            data = Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {name}: {exc.strerror}. Give a readable file after '@'.",
                         code="usage") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{option}: {name} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}). "
                         "Save it as UTF-8.", code="invalid_encoding", details={"byte": exc.start}) from None


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--json and --home on every command."""
    func = click.option("--json", "as_json", is_flag=True, help="Answer with the JSON envelope.")(func)
    func = click.option("--home", type=click.Path(file_okay=False), default=None,
                        help="Home folder (default: TIERGATE_HOME or the current directory).")(func)
    return func


def actor_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--actor", default=None, metavar="KIND:ID",
                        help="Who is acting: agent:NAME or human:NAME (default: TIERGATE_ACTOR).")(func)


def run_command(human: Callable[[Console, Any], None] | None = None, *,
                failed: Callable[[Any], bool] | None = None) -> Callable[..., Any]:
    """Wrap a command body ``(engine, **options) -> data`` with engine set-up and output.

    ``human`` prints ``data`` for people; ``failed(data)`` marks answers that must exit 1
    (``tiergate check`` with problems) while still printing them.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, as_json: bool, home: str | None, **kwargs: Any) -> None:
            ctx = click.get_current_context()
            home = home or (ctx.obj or {}).get("home")
            engine: Engine | None = None
            try:
                engine = Engine(home=home)
                data = func(engine, *args, **kwargs)
            except TiergateError as err:
                _fail(err, as_json)
            except Exception as exc:  # noqa: BLE001 - the last door: an answer, never a traceback
                _fail(unexpected(exc), as_json)
            finally:
                if engine is not None:
                    engine.close()
            bad = failed(data) if failed else False
            if as_json:
                if bad:
                    details = {k: v for k, v in data.items() if k not in ("code", "message")}
                    answer = failure(data.get("code", "failed"), data.get("message", ""), to_jsonable(details))
                else:
                    answer = success(to_jsonable(data))
                click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
            elif human is not None:
                human(console(), data)
            if bad:
                sys.exit(EXIT_FAILURE)

        return wrapper

    return decorate


def unexpected(exc: BaseException) -> TiergateError:
    """An error no check turned into a TiergateError, as one: bad input where it is one, else ``internal_error``."""
    import errno

    from tiergate.store.db import database_failure

    if isinstance(exc, (RecursionError, UnicodeError)) or (isinstance(exc, ValueError) and "JSON" in str(exc)):
        return UsageError(f"the input cannot be processed: {type(exc).__name__}: {str(exc)[:200]}. Send plain "
                          "JSON: finite numbers, valid Unicode, modest nesting.", code="invalid_data")
    if isinstance(exc, OSError):
        found = database_failure(exc, "the disk")
        if found is not None:
            return found
        return TiergateError(f"a file could not be read or written: {exc.strerror or exc} "
                             f"({errno.errorcode.get(exc.errno or 0, '')}).", code="io_error")
    if isinstance(exc, MemoryError):
        return TiergateError("the command ran out of memory. Send smaller input.", code="limit_exceeded")
    return TiergateError(f"tiergate failed unexpectedly: {type(exc).__name__}: {str(exc)[:300]}. Nothing more is "
                         "known; please report it with the command you ran.", code="internal_error",
                         details={"error": type(exc).__name__})


def _fail(err: TiergateError, as_json: bool) -> None:
    code = EXIT_USAGE if isinstance(err, UsageError) else EXIT_FAILURE
    if as_json:
        click.echo(json.dumps(failure(err.code, err.message, to_jsonable(err.details)), indent=2,
                              ensure_ascii=False))
    else:
        console(stderr=True).print(f"[bold red]error[/] ({err.code}): {escape(err.message)}")
    sys.exit(code)
