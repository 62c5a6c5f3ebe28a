"""Operator commands on the database directly: `tiergate principals ...` and `tiergate tokens ...`.

They take no --actor: they are recorded as the operating-system user (``os:<user>``) through
the ``direct`` door, and they always work on the database, also when TIERGATE_URL is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command, table
from tiergate.credentials import Credentials, operator

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_principal(out: Console, data: dict[str, Any]) -> None:
    state = "active" if data["active"] else f"disabled since {data['disabled_at']}"
    out.print(f"{data['id']}  {escape(data['name'])}  {escape(data['email'] or '')}  ({state})")


def _show_principals(out: Console, data: list[dict[str, Any]]) -> None:
    if not data:
        out.print("no principals. Add one with `tiergate principals add human:NAME --name ...`.")
        return
    grid = table("principal", "name", "email", "state", "added", "by")
    for p in data:
        grid.add_row(p["id"], escape(p["name"]), escape(p["email"] or ""), "active" if p["active"] else "disabled",
                     p["created_at"][:16].replace("T", " "), p["created_by"])
    out.print(grid)


@click.group()
def principals() -> None:
    """Register the people and agents who may use the server (operators only)."""


@principals.command("add")
@click.argument("principal", metavar="KIND:ID")
@click.option("--name", default=None, help="Display name (default: the id).")
@click.option("--email", default=None, help="E-mail address, for notifications.")
@common_options
@run_command(_show_principal, direct=True)
def principals_add(engine: Engine, principal: str, name: str | None, email: str | None) -> dict[str, Any]:
    """Register PRINCIPAL (human:NAME or agent:NAME)."""
    return Credentials(engine).add_principal(principal, name=name, email=email, by=operator())


@principals.command("list")
@common_options
@run_command(_show_principals, direct=True)
def principals_list(engine: Engine) -> list[dict[str, Any]]:
    """List the registered principals."""
    return Credentials(engine).principals()


@principals.command("disable")
@click.argument("principal", metavar="KIND:ID")
@common_options
@run_command(_show_principal, direct=True)
def principals_disable(engine: Engine, principal: str) -> dict[str, Any]:
    """Disable PRINCIPAL: its tokens are revoked and stop working at once."""
    return Credentials(engine).disable_principal(principal, by=operator())


@principals.command("set-password")
@click.argument("principal", metavar="human:ID")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (its first line) "
              "instead of prompting for it.")
@common_options
@run_command(lambda out, data: out.print(f"password set for {data['principal']}"
                                         + (f"; {data['sessions_ended']} session(s) ended" if data["sessions_ended"]
                                            else "")), direct=True)
def principals_set_password(engine: Engine, principal: str, password_stdin: bool) -> dict[str, Any]:
    """Set the web sign-in password of a person (argon2id; registering them if new)."""
    from tiergate.passwords import Passwords

    if password_stdin:
        password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return Passwords(engine).set(principal, password, by=operator())


def _show_issued(out: Console, data: dict[str, Any]) -> None:
    out.print(f"token {data['id']} for {data['principal']} (expires: {data['expires_at'] or 'never'}):\n")
    out.print(data["token"], markup=False, highlight=False)
    out.print("\n[dim]Shown once: only its hash is kept. Store it where its holder keeps secrets.[/]")


def _show_token(out: Console, data: dict[str, Any]) -> None:
    out.print(f"token {data['id']} of {data['principal']}: {data['state']}")


def _show_tokens(out: Console, data: list[dict[str, Any]]) -> None:
    if not data:
        out.print("no tokens. Issue one with `tiergate tokens issue KIND:ID`.")
        return
    grid = table("id", "principal", "state", "created", "expires", "last used")
    for t in data:
        grid.add_row(t["id"], t["principal"], t["state"], t["created_at"][:16].replace("T", " "),
                     (t["expires_at"] or "never")[:16].replace("T", " "),
                     (t["last_used_at"] or "")[:16].replace("T", " "))
    out.print(grid)


@click.group()
def tokens() -> None:
    """Issue, list and revoke the bearer tokens of principals (operators only)."""


@tokens.command("issue")
@click.argument("principal", metavar="KIND:ID")
@click.option("--expires", default=None, metavar="DURATION",
              help="Lifetime: 45m, 12h, 30d, 2w or 'never' (default: 90d).")
@common_options
@run_command(_show_issued, direct=True)
def tokens_issue(engine: Engine, principal: str, expires: str | None) -> dict[str, Any]:
    """Issue a token for PRINCIPAL and print it once (registering PRINCIPAL if it is new)."""
    return Credentials(engine).issue_token(principal, expires=expires, by=operator())


@tokens.command("list")
@click.option("--principal", default=None, metavar="KIND:ID", help="Only this principal's tokens.")
@common_options
@run_command(_show_tokens, direct=True)
def tokens_list(engine: Engine, principal: str | None) -> list[dict[str, Any]]:
    """List tokens: id, principal, state, created, expires, last used. Never the secret."""
    return Credentials(engine).tokens(principal)


@tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@common_options
@run_command(_show_token, direct=True)
def tokens_revoke(engine: Engine, token_id: str) -> dict[str, Any]:
    """Revoke token ID: it stops working at once."""
    return Credentials(engine).revoke_token(token_id, by=operator())
