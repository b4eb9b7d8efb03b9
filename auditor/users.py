"""Accounts of the review app: create, disable, change passwords, check a login.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, RFC 9106's low-memory
profile). A hash made with weaker parameters than today's is replaced at the next good login.
Roles (:class:`~auditor.vocabulary.Role`): a ``store_manager`` belongs to one store and sees
only its flags; ``loss_prevention`` reviews every store; an ``analyst`` sees figures and threshold
analytics, never a face; an ``admin`` may do everything, the audit log included.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from auditor.db.models import AuditLogEntry, Store, User, WebSession
from auditor.db.queries import known_store_ids
from auditor.errors import AuditorError
from auditor.vocabulary import Role

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


class UserError(AuditorError):
    """An account cannot be created or changed as asked."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so both take as long."""
    return _hasher().hash("no such user: the time to say so is the time to check a password")


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def get_user(session: Session, username: str) -> User | None:
    return session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()


def _require(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def _log(session: Session, *, actor: str, action: str, user: User, **details: object) -> None:
    session.add(
        AuditLogEntry(
            actor=actor,
            action=action,
            object_type="user",
            object_id=user.username,
            details=details or None,
        )
    )


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    store_id: str | None = None,
    actor: str = "cli",
) -> User:
    """Add an account; a store manager needs a store the database knows, other roles none."""
    username = username.strip()
    if not username or len(username) > 200 or any(c.isspace() for c in username):
        raise UserError(f"user name {username!r}: 1 to 200 characters, no spaces")
    if role not in tuple(Role):
        raise UserError(f"role {role!r}: use one of {', '.join(Role)}")
    if role == Role.STORE_MANAGER and not store_id:
        raise UserError("a store manager needs --store")
    if role != Role.STORE_MANAGER and store_id:
        raise UserError(f"a {role} sees every store: leave out --store")
    if store_id and session.get(Store, store_id) is None:
        known = ", ".join(sorted(known_store_ids(session))) or "none"
        raise UserError(
            f"store {store_id!r} is not in the database (known: {known}): ingest its sales first"
        )
    if get_user(session, username) is not None:
        raise UserError(f"user {username!r} exists already")
    check_password_rules(password)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        store_id=store_id,
        active=True,
    )
    session.add(user)
    session.flush()
    _log(session, actor=actor, action="user_add", user=user, role=role, store_id=store_id)
    logger.info("user %s added (%s%s)", username, role, f", store {store_id}" if store_id else "")
    return user


def set_active(*, session: Session, username: str, active: bool, actor: str = "cli") -> User:
    """Disable an account (it can no longer log in; a logged-in session ends) or enable it."""
    user = _require(session, username)
    user.active = active
    if not active:
        end_sessions(session=session, user_id=user.id)
    _log(session, actor=actor, action="user_enable" if active else "user_disable", user=user)
    return user


def set_password(*, session: Session, username: str, password: str, actor: str = "cli") -> User:
    """A new password; every review-app session of the user ends."""
    user = _require(session, username)
    check_password_rules(password)
    user.password_hash = hash_password(password)
    end_sessions(session=session, user_id=user.id)
    _log(session, actor=actor, action="user_password", user=user)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.execute(sa.select(User).order_by(User.username)).scalars())


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (in the same time either way).

    A good password whose hash has outdated parameters is hashed again (the caller commits).
    """
    user = get_user(session, username) if len(password) <= MAX_PASSWORD_LENGTH else None
    if user is None:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


# --- review-app sessions --------------------------------------------------------------------


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(*, session: Session, user: User, max_age: timedelta) -> str:
    """A new login of ``user``: its token for the session cookie. Sessions older than
    ``max_age`` (over whatever their cookie says) are deleted."""
    now = datetime.now(UTC)
    session.execute(sa.delete(WebSession).where(WebSession.started_at < now - max_age))
    token = secrets.token_urlsafe(32)
    session.add(WebSession(id=_token_id(token), user_id=user.id, started_at=now))
    return token


def session_is_open(*, session: Session, token: object, user_id: int) -> bool:
    """Whether ``token`` is a login of ``user_id`` that has not ended."""
    if not isinstance(token, str) or len(token) > 100:
        return False
    row = session.get(WebSession, _token_id(token))
    return row is not None and row.user_id == user_id and row.ended_at is None


def end_session(*, session: Session, token: object) -> None:
    if isinstance(token, str) and len(token) <= 100:
        session.execute(
            sa.update(WebSession)
            .where(WebSession.id == _token_id(token), WebSession.ended_at.is_(None))
            .values(ended_at=datetime.now(UTC))
        )


def end_sessions(*, session: Session, user_id: int) -> None:
    """End every open session of a user."""
    session.execute(
        sa.update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
    )
