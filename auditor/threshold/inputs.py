"""What the threshold figures are computed from: the recent nights' current runs, their
estimates and reviews (from the database), and the model card."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.db.models import AuditRun, Sale, SaleVerdict
from auditor.db.queries import current_runs
from auditor.reviews import latest_reviews
from auditor.settings import RecordedAudit
from auditor.threshold.figures import DEFAULT_NIGHTS, ReviewedSale, ThresholdInputs
from auditor.vocabulary import AgeCheck, Decision, FlagKind

# The flags a threshold raises: a sale has at most one of them.
THRESHOLD_KINDS = (FlagKind.UNDER_AGE_THRESHOLD, FlagKind.NO_ID_CHECK)
SAW_ID = tuple(c.value for c in AgeCheck if c.saw_id)

logger = logging.getLogger(__name__)


def load_inputs(
    session: Session,
    *,
    nights: int = DEFAULT_NIGHTS,
    until: date | None = None,
    store_ids: Sequence[str] = (),
) -> ThresholdInputs:
    """The estimates, reviews and runs of the last ``nights`` business dates up to ``until``
    (default: the latest date with a succeeded run), of ``store_ids`` (default: every store).
    An estimate is *cleared* when its sale's till recorded an ID check (seen, scanned, or a
    birth date): what :class:`~auditor.audit.rules.TillCheck` calls ``saw_id``."""
    if nights < 1:
        raise ValueError("nights must be at least 1")
    stores = list(store_ids) or None
    if until is None:
        last_date = current_runs(store_ids=stores).with_only_columns(
            sa.func.max(AuditRun.business_date)
        )
        until = session.execute(last_date).scalar()
    if until is None:
        return ThresholdInputs(None, None, 0, 0, [], [], [], {})
    first = until - timedelta(days=nights - 1)
    window = current_runs(store_ids=stores, first=first, last=until)
    runs = session.execute(
        window.with_only_columns(
            AuditRun.id, AuditRun.store_id, AuditRun.business_date, AuditRun.settings
        )
    ).all()
    run_ids = window.with_only_columns(AuditRun.id)
    estimated = SaleVerdict.estimated_age.is_not(None)
    saw_id = sa.or_(Sale.birth_date.is_not(None), Sale.age_check.in_(SAW_ID))
    records_checks = sa.or_(Sale.birth_date.is_not(None), Sale.age_check.is_not(None))
    estimates = session.execute(
        sa.select(SaleVerdict.estimated_age, saw_id, records_checks)
        .join(Sale, Sale.id == SaleVerdict.sale_id)
        .where(SaleVerdict.run_id.in_(run_ids), estimated)
    ).all()
    latest = latest_reviews()
    reviewed = session.execute(
        sa.select(SaleVerdict.estimated_age, latest.c.decision)
        .join(latest, latest.c.sale_id == SaleVerdict.sale_id)
        .where(
            SaleVerdict.run_id.in_(run_ids),
            estimated,
            latest.c.flag_kind.in_(THRESHOLD_KINDS),
        )
    ).all()
    used: Counter[int] = Counter()
    for run in runs:
        threshold = RecordedAudit.of(run.settings).age_threshold
        if threshold is not None:
            used[int(threshold)] += 1
    return ThresholdInputs(
        first_night=first,
        last_night=until,
        nights=len({run.business_date for run in runs}),
        store_nights=len(runs),
        stores=sorted({run.store_id for run in runs}),
        estimates=[float(a) for a, _, _ in estimates if a is not None],
        reviewed=[
            ReviewedSale(float(age), decision == Decision.CONFIRMED_VIOLATION)
            for age, decision in reviewed
        ],
        run_thresholds=dict(sorted(used.items())),
        cleared=[float(a) for a, checked, _ in estimates if a is not None and checked],
        with_checks=sum(bool(known) for a, _, known in estimates if a is not None),
    )


def read_model_card(model_dir: Any) -> dict[str, Any] | None:
    """The model card of ``model_dir``, or None (logged) when it cannot be read."""
    from model import ModelError, read_card

    try:
        return read_card(model_dir)
    except ModelError as e:
        logger.warning("model card not readable: %s", e)
        return None
