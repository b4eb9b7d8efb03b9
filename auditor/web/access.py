"""Who may do what: the one place that knows the roles' rights and a user's store scope.

| role | flags and evidence | decisions | threshold analytics | audit log |
|---|---|---|---|---|
| store_manager | own store only | own store only | no | no |
| loss_prevention | every store | every store | yes | no |
| analyst | no (403) | no | yes | no |
| admin | every store | every store | yes | yes |

Every query of flags or evidence goes through :meth:`CurrentUser.scoped`, which adds the store
condition to the query itself: a flag of another store is simply not found (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

import sqlalchemy as sa

from auditor.db.models import Sale
from auditor.vocabulary import Role


class Right(Enum):
    REVIEW = "review"  # see flags and their evidence, record decisions
    ANALYSE = "analyse"  # threshold analytics and other figures without faces
    READ_LOG = "read_log"  # the audit log


RIGHTS: dict[str, frozenset[Right]] = {
    Role.STORE_MANAGER: frozenset({Right.REVIEW}),
    Role.LOSS_PREVENTION: frozenset({Right.REVIEW, Right.ANALYSE}),
    Role.ANALYST: frozenset({Right.ANALYSE}),
    Role.ADMIN: frozenset(Right),
}

Query = TypeVar("Query", bound=sa.Select)  # type: ignore[type-arg]


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    store_id: str | None

    def can(self, right: Right) -> bool:
        return right in RIGHTS.get(self.role, frozenset())

    @property
    def all_stores(self) -> bool:
        """True for a role that sees every store; a store manager sees their own only."""
        return self.role != Role.STORE_MANAGER

    def scoped(self, query: Query) -> Query:
        """``query`` (which must involve :class:`~auditor.db.models.Sale`) limited to the stores
        this user may see."""
        if self.all_stores:
            return query
        if self.store_id is None:  # the schema forbids it; be safe all the same
            return query.where(sa.false())
        return query.where(Sale.store_id == self.store_id)

    @property
    def role_label(self) -> str:
        try:
            return Role(self.role).label
        except ValueError:
            return self.role
