"""``auditor users ...``: accounts of the review app (``auditor serve``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click
from sqlalchemy.orm import Session

from auditor.db.engine import database_errors
from auditor.users import create_user, list_users, set_active, set_password
from auditor.vocabulary import Role

if TYPE_CHECKING:
    from auditor.cli import AppContext

_PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking for it.",
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("users")
def users_group() -> None:
    """Accounts of the review app.

    Roles: store_manager (the flags and evidence of one store, --store), loss_prevention (every
    store), analyst (figures and threshold analytics, never a face), admin (everything, and the
    audit log). Passwords have at least 10 characters and are stored as argon2id hashes.
    """


@users_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="What the user may do.",
)
@click.option("--store", "store_id", metavar="ID", help="The store of a store manager.")
@_PASSWORD_STDIN
@click.pass_obj
def add_command(
    app: AppContext, name: str, role: str, store_id: str | None, password_stdin: bool
) -> None:
    """Create the account NAME; asks for its password twice."""
    engine = app.migrated_engine()
    password = _password(password_stdin)
    with database_errors(engine.url), Session(engine) as session, session.begin():
        create_user(session=session, username=name, password=password, role=role, store_id=store_id)
    click.echo(f"user {name} added ({role}{f', store {store_id}' if store_id else ''})")


@users_group.command("list")
@click.pass_obj
def list_command(app: AppContext) -> None:
    """List the accounts: name, role, store, active."""
    engine = app.migrated_engine()
    with database_errors(engine.url), Session(engine) as session:
        users = list_users(session)
    for user in users:
        state = "active" if user.active else "disabled"
        click.echo(f"{user.username}\t{user.role}\t{user.store_id or '-'}\t{state}")


@users_group.command("disable")
@click.argument("name")
@click.pass_obj
def disable_command(app: AppContext, name: str) -> None:
    """Stop NAME from logging in; a session already open ends at its next request."""
    _set_active(app, name, active=False)


@users_group.command("enable")
@click.argument("name")
@click.pass_obj
def enable_command(app: AppContext, name: str) -> None:
    """Let a disabled NAME log in again."""
    _set_active(app, name, active=True)


def _set_active(app: AppContext, name: str, *, active: bool) -> None:
    engine = app.migrated_engine()
    with database_errors(engine.url), Session(engine) as session, session.begin():
        set_active(session=session, username=name, active=active)
    click.echo(f"user {name} {'enabled' if active else 'disabled'}")


@users_group.command("passwd")
@click.argument("name")
@_PASSWORD_STDIN
@click.pass_obj
def passwd_command(app: AppContext, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME."""
    engine = app.migrated_engine()
    password = _password(password_stdin)
    with database_errors(engine.url), Session(engine) as session, session.begin():
        set_password(session=session, username=name, password=password)
    click.echo(f"password of {name} changed")
