"""The stores, registers and cashiers a batch names: made sure of before its rows are stored."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy.orm import Session

from auditor.db.bulk import insert_ignore, records, upsert
from auditor.db.models import Cashier, Register, Store
from auditor.settings import Settings


def save_places(
    *,
    session: Session,
    settings: Settings,
    store_ids: Sequence[str],
    registers: pd.DataFrame,
    cashiers: pd.DataFrame | None = None,
) -> None:
    """Make sure the stores, registers (and cashiers) a batch names exist.

    A store in the settings gets its name and zone from there (updated if they changed); one
    that is not gets the chain's default zone once. A cashier's name is the latest non-empty one.
    """
    known = [s for s in store_ids if settings.store(s) is not None]
    unknown = [s for s in store_ids if settings.store(s) is None]
    upsert(
        session,
        Store.__table__,
        [_store_row(settings, s) for s in known],
        keys=["id"],
        update=["name", "timezone"],
        only_if_changed=["name", "timezone"],
    )
    insert_ignore(session, Store.__table__, [_store_row(settings, s) for s in unknown], ["id"])
    insert_ignore(session, Register.__table__, records(registers), ["store_id", "register_id"])
    if cashiers is None:
        return
    rows = records(cashiers.rename(columns={"cashier_name": "name"}))
    keys = ["store_id", "cashier_id"]
    upsert(
        session,
        Cashier.__table__,
        [r for r in rows if r["name"]],
        keys=keys,
        update=["name"],
        only_if_changed=["name"],
    )
    insert_ignore(session, Cashier.__table__, [r for r in rows if not r["name"]], keys)


def _store_row(settings: Settings, store_id: str) -> dict[str, str]:
    store = settings.store(store_id)
    return {
        "id": store_id,
        "name": store.name if store else "",
        "timezone": str(settings.store_zone(store_id)),
    }
