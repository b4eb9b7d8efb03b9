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


class Right(Enum):
    REVIEW = "review"  # see flags and their evidence, record decisions
    ANALYSE = "analyse"  # threshold analytics and other figures without faces
    READ_LOG = "read_log"  # the audit log


RIGHTS: dict[str, frozenset[Right]] = {
    "store_manager": frozenset({Right.REVIEW}),
    "loss_prevention": frozenset({Right.REVIEW, Right.ANALYSE}),
    "analyst": frozenset({Right.ANALYSE}),
    "admin": frozenset(Right),
}

ROLE_LABELS = {
    "store_manager": "Store manager",
    "loss_prevention": "Loss prevention",
    "analyst": "Analyst",
    "admin": "Administrator",
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
        return self.role != "store_manager"

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
        return ROLE_LABELS.get(self.role, self.role)
