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
from typing import TYPE_CHECKING, Any, Callable

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tiergate.envelope import failure, success, with_next_step
from tiergate.errors import InvalidDataError, TiergateError, UsageError
from tiergate.inputs import JSONText, parse_json
from tiergate.jsonutil import to_jsonable

if TYPE_CHECKING:
    from tiergate.engine import Engine


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


def parse_json_option(value: str | None, option: str, *, raw: bool = False) -> Any:
    """Parse ``--data``/``--evidence``: inline JSON, or ``@FILE`` (``@-`` for standard input).

    Parsed strictly (``tiergate.inputs.parse_json``: UTF-8, no duplicate keys, no NaN). ``raw``
    returns the text unparsed (``inputs.JSONText``), for the engine to check and log by its digest.
    """
    if value is None:
        return None
    source = option
    text: str | bytes = value
    if value.startswith("@"):
        name = value[1:]
        source = f"{option} file {name}"
        try:
            text = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            raise UsageError(f"{option}: cannot read {name}: {exc.strerror}. Give a readable file after '@'.",
                             code="usage") from None
    given = JSONText(text, source)
    if raw:
        return given
    return parse_json(given, option.lstrip("-"))


def plain_text(value: str, option: str) -> str:
    """A text option as given, refused if it is not valid Unicode (bytes that were not UTF-8 on the command line)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{option} is not valid UTF-8 text (character {exc.start + 1}). Send it as UTF-8.",
                         code="invalid_encoding", details={"position": exc.start}) from None
    return value


def _plain_arguments(ctx: click.Context, given: dict[str, Any]) -> None:
    """Each argument (RUN, STEP, PROCESS, ...) as valid Unicode: bytes that were not UTF-8 on the command line
    name no run, step or process on any database, and are refused naming the argument (``invalid_encoding``)."""
    for param in ctx.command.params:
        if isinstance(param, click.Argument) and param.name in given:
            values = given[param.name]
            for value in values if isinstance(values, tuple) else (values,):
                if isinstance(value, str) and not value.isascii():
                    plain_text(value, param.human_readable_name)


def _possible_ids(ctx: click.Context, given: dict[str, Any], engine: Any) -> None:
    """RUN and STEP no run or step can have (longer than the database keeps: ``inputs.check_id``), refused
    alike on every database before anything is looked up; recorded in ``door_refusals`` on the database."""
    from tiergate.inputs import InputRefused, check_id

    for name in ("run", "step"):
        try:
            check_id(given.get(name), name)
        except InputRefused as err:
            if hasattr(engine, "via"):  # on the database (not a client of a server): recorded at the CLI's door
                from tiergate import doorlog

                doorlog.record(engine, door="cli", attempt=(ctx.command.name or "cli")[:32], code=err.code,
                               problem=err.details["problem"], facts=err.facts)
            raise


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
                failed: Callable[[Any], bool] | None = None, direct: bool = False,
                reads: bool = False) -> Callable[..., Any]:
    """Wrap a command body ``(engine, **options) -> data`` with engine set-up and output.

    ``human`` prints ``data`` for people; ``failed(data)`` marks answers that must exit 1
    (``tiergate check`` with problems) while still printing them. With TIERGATE_URL set the
    body gets a ``tiergate.client.RemoteEngine`` instead, unless ``direct`` (operator commands).
    ``reads``: on the database, the body gets a ``tiergate.reading.DirectReader`` (no SQLAlchemy
    unless the reader hands over to an Engine).
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, as_json: bool, home: str | None, **kwargs: Any) -> None:
            ctx = click.get_current_context()
            home = home or (ctx.obj or {}).get("home")
            engine: Engine | None = None
            try:
                _plain_arguments(ctx, kwargs)
                engine = _engine(home, direct, reads)
                _possible_ids(ctx, kwargs, engine)
                data = func(engine, *args, **kwargs)
            except TiergateError as err:
                _fail(err, as_json)
            except Exception as exc:  # noqa: BLE001 - the last door: an answer, never a traceback
                _fail(unexpected(exc), as_json)
            finally:
                if engine is not None:
                    engine.close()
            bad = failed(data) if failed else False
            try:  # the answer's rendering too (a server's answer of an unexpected shape): never a traceback
                if as_json:
                    if bad:
                        details = {k: v for k, v in data.items() if k not in ("code", "message")}
                        answer = failure(data.get("code", "failed"), data.get("message", ""), to_jsonable(details))
                    else:
                        answer = success(to_jsonable(data))
                    click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
                elif human is not None:
                    human(console(), data)
            except Exception as exc:  # noqa: BLE001
                _fail(unexpected(exc), as_json)
            if bad:
                sys.exit(EXIT_FAILURE)

        return wrapper

    return decorate


def _engine(home: str | None, direct: bool, reads: bool = False) -> Any:
    """The database, or the server when TIERGATE_URL is set (the CLI as a client)."""
    if not direct and os.environ.get("TIERGATE_URL", "").strip():  # client.URL_VARIABLE, read before importing
        from tiergate.client import RemoteEngine  # urllib's HTTP stack: only for a client

        remote = RemoteEngine.from_environment()
        if remote is not None:
            return remote
    if reads:
        from tiergate.reading import DirectReader

        return DirectReader(home=home)
    from tiergate.engine import Engine  # loaded when a command runs on the database, not for --help or a client

    engine = Engine(home=home)
    engine.via = "cli"  # the door of the refusals it records (tiergate log refusals)
    return engine


def unexpected(exc: BaseException) -> TiergateError:
    """An error no check turned into a TiergateError, as one: bad input where it is one, else ``internal_error``."""
    import errno

    from tiergate.store.db import database_failure

    if isinstance(exc, (RecursionError, UnicodeError)) or (isinstance(exc, ValueError) and "JSON" in str(exc)):
        return InvalidDataError(f"the input cannot be processed: {type(exc).__name__}: {str(exc)[:200]}. Send "
                                "plain JSON: finite numbers, valid Unicode, modest nesting.")
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
    message = with_next_step(err.message, err.details, "cli")
    if as_json:
        click.echo(json.dumps(failure(err.code, message, to_jsonable(err.details)), indent=2, ensure_ascii=False))
    else:
        console(stderr=True).print(f"[bold red]error[/] ({err.code}): {escape(message)}")
    sys.exit(code)
