"""The flag list's filters: every combination against the same question asked of the rows
directly (a property test, on SQLite and PostgreSQL), the URL, paging and the CSV download."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.db.models import NO_AGE, AuditRun, Cashier, Flag, Review, Sale, SaleVerdict
from auditor.flag_filters import FlagFilter, Order
from auditor.reviews import refresh_review_state
from auditor.settings import Settings
from auditor.vocabulary import Decision, FlagKind, ReviewFilter, Role, RunStatus
from auditor.web import listing
from auditor.web.access import CurrentUser
from auditor.web.filters import neighbour, ordered_sales
from tests.review_data import ChainBuilder, Made
from tests.web.test_app import Client

DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(3)]
KINDS = list(FlagKind)


def _mixed_chain(engine: Engine, settings_: Settings) -> None:
    """Two stores, three nights, two registers and three cashiers, every flag kind, reviews
    (some revised) and a replaced run whose flags must never show."""
    with Session(engine) as session:
        build = ChainBuilder(session, settings_)
        build.store("S1", "Berlin")
        build.store("S2", "New York", "America/New_York")
        reviewer = build.user("rev", Role.LOSS_PREVENTION)
        for i in range(48):
            store = ("S1", "S2")[i % 2]
            day = DAYS[i % 3]
            kinds = tuple(k for j, k in enumerate(KINDS) if (i * 7 + j * 3) % 5 < 2) or (
                KINDS[i % len(KINDS)],
            )
            sold = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                hours=12 + (i % 7), minutes=0 if i % 9 == 0 else i
            )
            build.sale(
                f"r{i}",
                sold,
                store=store,
                day=day,
                kinds=kinds,
                age=15.0 + i % 20,
                register=("R1", "R2")[i // 2 % 2],
                cashier=("C1", "C2", "C3")[i % 3],
                frame=False,
                # some sales without a probability (no face), some sharing one (a tie)
                p_under_legal=None if i % 5 == 0 else round((i * 37 % 11) / 10, 1),
            )
            for n, kind in enumerate(kinds):
                if (i + n) % 3 == 0:
                    for at in range(1 + i % 2):  # some decisions revised
                        session.add(
                            Review(
                                sale_id=build.made.sales[f"r{i}"],
                                flag_id=None,
                                flag_kind=kind,
                                reviewer_id=reviewer,
                                decision=list(Decision)[(i + at) % len(Decision)],
                                comment="",
                                reviewed_at=sold + timedelta(hours=1 + at),
                            )
                        )
        old = AuditRun(
            store_id="S1",
            business_date=DAYS[0],
            status=RunStatus.REPLACED,
            started_at=datetime.now(UTC),
            finished_at=datetime.now(UTC),
            settings={},
            model_version="old",
            sales_audited=0,
            flags_count=0,
        )
        session.add(old)
        session.flush()
        session.add(
            Flag(run_id=old.id, sale_id=build.made.sales["r0"], kind=FlagKind.NO_FACE, threshold=25)
        )
        session.flush()
        refresh_review_state(session, sale_ids=build.made.sales.values())
        session.commit()


def _rows(engine: Engine) -> dict[str, Any]:
    with Session(engine, expire_on_commit=False) as session:
        return {
            "runs": {r.id: r for r in session.execute(sa.select(AuditRun)).scalars()},
            "sales": {s.id: s for s in session.execute(sa.select(Sale)).scalars()},
            "decided": {
                (r.sale_id, r.flag_kind)
                for r in session.execute(sa.select(Review.sale_id, Review.flag_kind))
            },
            "flags": list(
                session.execute(sa.select(Flag.sale_id, Flag.kind, Flag.run_id, Flag.p_under_legal))
            ),
            "cashiers": {
                (c.store_id, c.cashier_id): c.name
                for c in session.execute(sa.select(Cashier)).scalars()
            },
            "ages": {  # the estimate of the sale's current (succeeded) run
                v.sale_id: v.estimated_age
                for v in session.execute(
                    sa.select(SaleVerdict.sale_id, SaleVerdict.estimated_age)
                    .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
                    .where(AuditRun.status == RunStatus.SUCCEEDED)
                )
                if v.estimated_age is not None
            },
        }


def _expected(rows: dict[str, Any], user: CurrentUser, f: FlagFilter) -> list[int]:
    """The listed sales worked out in Python from the rows themselves."""
    runs, sales, decided, flags = rows["runs"], rows["sales"], rows["decided"], rows["flags"]
    open_of: dict[int, bool] = {}
    violation: dict[int, bool] = {}
    risk: dict[int, float] = {}
    for sale_id, kind, run_id, p_under_legal in flags:
        run, sale = runs[run_id], sales[sale_id]
        if run.status != RunStatus.SUCCEEDED:
            continue
        if user.store_id is not None and sale.store_id != user.store_id:
            continue
        if f.first is not None and run.business_date < f.first:
            continue
        if f.last is not None and run.business_date > f.last:
            continue
        if any(
            value and value != actual
            for value, actual in (
                (f.store, sale.store_id),
                (f.cashier, sale.cashier_id),
                (f.register, sale.register_id),
                (f.kind, kind),
            )
        ):
            continue
        undecided = (sale_id, kind) not in decided
        open_of[sale_id] = open_of.get(sale_id, False) or undecided
        violation[sale_id] = violation.get(sale_id, False) or FlagKind(kind).is_violation
        p = -1.0 if p_under_legal is None else p_under_legal
        risk[sale_id] = max(risk.get(sale_id, -1.0), p)
    listed = [
        s
        for s, is_open in open_of.items()
        if f.status == ReviewFilter.ALL or is_open == (f.status == ReviewFilter.OPEN)
    ]
    if f.order == Order.RISK:  # violations, then P(under the legal age), then newest first
        listed.sort(key=lambda s: (violation[s], risk[s], sales[s].sold_at, s), reverse=True)
    else:
        listed.sort(key=lambda s: (sales[s].sold_at, s), reverse=f.order != Order.OLDEST)
        # then the sort column, ascending (the sort is stable: ties stay newest first)
        column = {
            Order.STORE: lambda s: sales[s].store_id,
            Order.CASHIER: lambda s: (
                rows["cashiers"].get((sales[s].store_id, sales[s].cashier_id))
                or sales[s].cashier_id,
                sales[s].cashier_id,
                sales[s].store_id,
            ),
            Order.AGE: lambda s: rows["ages"].get(s, NO_AGE),
        }.get(f.order)
        if column is not None:
            listed.sort(key=column)
    return listed


USERS = [
    CurrentUser(id=1, username="lp", role=Role.LOSS_PREVENTION, store_id=None),
    CurrentUser(id=2, username="mgr", role=Role.STORE_MANAGER, store_id="S1"),
]
maybe_day = st.one_of(st.none(), st.sampled_from([date(2024, 2, 29), *DAYS, date(2024, 3, 4)]))
filters = st.builds(
    FlagFilter,
    first=maybe_day,
    last=maybe_day,
    store=st.sampled_from(["", "S1", "S2", "S9"]),
    cashier=st.sampled_from(["", "C1", "C2", "C3"]),
    register=st.sampled_from(["", "R1", "R2"]),
    kind=st.sampled_from(["", *KINDS]),
    status=st.sampled_from(list(ReviewFilter)),
    order=st.sampled_from(list(Order)),
)


def test_every_filter_combination_lists_what_the_rows_say(
    engine: Engine, web_settings: Settings
) -> None:
    _mixed_chain(engine, web_settings)
    rows = _rows(engine)

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(f=filters, user=st.sampled_from(USERS))
    def check(f: FlagFilter, user: CurrentUser) -> None:
        if not user.all_stores:
            f = FlagFilter.from_args(f.args(), all_stores=False)  # a manager's store is dropped
        assert FlagFilter.from_args(f.args(), all_stores=user.all_stores) == f
        with Session(engine) as session:
            got = list(session.execute(ordered_sales(user, f)).scalars())
            assert got == _expected(rows, user, f)
            # a flag's page links the sales beside it in the same order
            for i in sorted({0, len(got) // 2, len(got) - 1} if got else set()):
                sale = rows["sales"][got[i]]
                after = session.execute(neighbour(user, f, sale, after=True)).scalar()
                before = session.execute(neighbour(user, f, sale, after=False)).scalar()
                assert after == (got[i + 1] if i + 1 < len(got) else None)
                assert before == (got[i - 1] if i > 0 else None)

    check()


def test_bad_values_are_dropped() -> None:
    f = FlagFilter.from_args(
        {"from": "2024-13-01", "to": "x", "kind": "nope", "status": "zzz", "sort": "up"}
    )
    assert f == FlagFilter()
    assert FlagFilter.from_args({"date": "2024-03-02"}).args() == {
        "from": "2024-03-02",
        "to": "2024-03-02",
    }
    assert FlagFilter.from_args({"store": "S2"}, all_stores=False).store == ""


# -- through the app -----------------------------------------------------------------------------


def _night(engine: Engine, web_settings: Settings, chain: Made) -> Made:
    """Beside the chain's: 5 no_frame sales of S1's night of 2 March at C2/R2 and one sale with
    two kinds; the S1 manager is mgr1, loss prevention lp."""
    with Session(engine) as session:
        build = ChainBuilder(session, web_settings, made=chain)
        build.made.runs.clear()
        night = datetime(2024, 3, 2, 17, 0, tzinfo=UTC)
        for i in range(5):
            build.sale(
                f"nf{i}",
                night + timedelta(minutes=10 * i),
                kinds=(FlagKind.NO_FRAME,),
                age=None,
                frame=False,
                register="R2",
                cashier="C2",
            )
        build.sale(
            "two",
            night + timedelta(hours=3),
            kinds=(FlagKind.UNDER_AGE_THRESHOLD, FlagKind.OUTSIDE_LEGAL_HOURS),
            age=16.0,
        )
        session.commit()
        return build.made


def _receipts(page: str) -> list[str]:
    import re

    return re.findall(r'data-receipt="([^"]+)"', page)


def test_filters_narrow_the_list_and_stay_in_its_links(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    _night(engine, web_settings, chain)
    client = client_for("lp")
    page = client.get("/flags?kind=no_frame&date=2024-03-02").get_data(as_text=True)
    assert _receipts(page) == [f"nf{i}" for i in range(4, -1, -1)]
    assert '<strong data-figure="matched">5</strong> flagged sales match' in page
    assert "/flags/" in page and "kind=no_frame" in page
    for href in ("status=all", "status=reviewed"):
        assert f"/flags?from=2024-03-02&amp;to=2024-03-02&amp;kind=no_frame&amp;{href}" in page
    page = client.get("/flags?cashier=C2&register=R2&sort=oldest").get_data(as_text=True)
    assert _receipts(page) == [f"nf{i}" for i in range(5)]
    assert _receipts(client.get("/flags?register=R9").get_data(as_text=True)) == []


def test_paging_keeps_the_filters(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _night(engine, web_settings, chain)
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    client = client_for("lp")
    page = client.get("/flags?kind=no_frame").get_data(as_text=True)
    assert _receipts(page) == ["nf4", "nf3"]
    assert 'href="/flags?page=2&amp;kind=no_frame" rel="next"' in page
    page = client.get("/flags?page=3&kind=no_frame").get_data(as_text=True)
    assert _receipts(page) == ["nf0"]
    assert 'href="/flags?page=2&amp;kind=no_frame" rel="prev"' in page


def test_the_download_is_what_the_list_shows(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    made = _night(engine, web_settings, chain)
    with Session(engine) as session:
        ChainBuilder(session, web_settings, made=made).review(
            "nf1", Decision.INVALID_FRAME, by=made.users["lp"], at=datetime(2024, 3, 3, tzinfo=UTC)
        )
        session.commit()
    client = client_for("lp")
    for query in ("", "?status=all", "?kind=no_frame&status=reviewed", "?store=S2&status=all"):
        listed = _receipts(client.get(f"/flags{query}").get_data(as_text=True))
        response = client.get(f"/flags.csv{query}")
        assert response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert list(dict.fromkeys(r["receipt_id"] for r in rows)) == listed, query
    rows = list(
        csv.DictReader(io.StringIO(client.get("/flags.csv?status=all").get_data(as_text=True)))
    )
    nf1 = next(r for r in rows if r["receipt_id"] == "nf1")
    assert nf1["decision"] == Decision.INVALID_FRAME and nf1["reviewer"] == "lp"
    assert nf1["cashier_name"] == "Name C2" and nf1["time_zone"] == "Europe/Berlin"
    assert nf1["sold_at"] == "2024-03-02T18:10:00+01:00" and nf1["kind"] == FlagKind.NO_FRAME
    s2 = next(r for r in rows if r["receipt_id"] == "s2-flag")
    assert s2["sold_at"].endswith("-05:00") and s2["estimated_age"] == "16.2"
    two = [r for r in rows if r["receipt_id"] == "two"]
    assert [r["kind"] for r in two] == [FlagKind.UNDER_AGE_THRESHOLD, FlagKind.OUTSIDE_LEGAL_HOURS]
    assert two[0]["sale_kinds"] == "under_age_threshold;outside_legal_hours"


def test_a_manager_filters_within_their_store_only(
    client_for: Client, chain: Made, engine: Engine, web_settings: Settings
) -> None:
    _night(engine, web_settings, chain)
    client = client_for("mgr2")
    assert _receipts(client.get("/flags?store=S1").get_data(as_text=True)) == ["s2-flag"]
    body = client.get("/flags.csv?store=S1&status=all").get_data(as_text=True)
    assert "S1" not in body and "s2-flag" in body
    assert _receipts(client.get("/flags?kind=no_frame").get_data(as_text=True)) == []
