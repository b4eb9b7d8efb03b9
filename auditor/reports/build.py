"""Write a night's reports: read the results, work out the figures, draw, render, write.

Files under the report directory (``paths.report_dir``)::

    index.html                  every night with reports, newest first
    <YYYY-MM-DD>/index.html     the chain index of that business date: stores ranked by risk
    <YYYY-MM-DD>/mix.html       what each estimated age group buys, over the window, by store
    <YYYY-MM-DD>/<store>.html   one page per store (file name: :func:`render.store_filename`)
    <YYYY-MM-DD>/<store>/<cashier>.html
                                one page per cashier of the store's scorecard, in a folder of
                                the store's own (so that a store's pages share one prefix)

Each page is one self-contained HTML file (inline CSS, inline SVG charts, face crops as
``data:`` URIs, no script) and links the pages next to it: the chain index and the store
pages of the same night, the nearest earlier and later nights that have reports, and the list
of nights; writing a night also points the nights beside it at it. A page is written whole or
not at all (:func:`render.write_atomic`).

A night is worked on a store at a time (:func:`store_reports`: the store's window read, its
figures, its pages written), in ``[reports] workers`` processes when there are several
(:mod:`auditor.reports.workers`); then the chain index, the purchase mix and the list of nights
are written from what the stores sent back. The files are the same whatever the number of
workers.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections import defaultdict
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.audit.store import require_known_stores
from auditor.audit.summary import RunSummary
from auditor.db.engine import make_engine
from auditor.db.queries import audited_nights, known_store_ids
from auditor.flag_filters import FlagFilter
from auditor.reports import charts, figures, queries
from auditor.reports.render import render, store_filename, template, write_atomic
from auditor.reports.workers import freeze_heap, frozen_heap, in_workers
from auditor.reviews import evidence_purged_nights, reviewed_nights
from auditor.settings import Settings
from auditor.vocabulary import CAMERA_KINDS, FlagKind, ReviewFilter

logger = logging.getLogger(__name__)

_NIGHT_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CHAIN_CASHIERS = 25  # the chain index lists this many ranked cashiers, lowest challenge rate first
AT_RISK = 3  # the chain index names this many cashiers of each store, most at risk first
MIX_PAGE = "mix.html"  # the purchase mix of the night's window (no store file has this name)


@dataclass
class NightReport:
    """The files written for one business date."""

    day: date
    index: Path
    store_pages: dict[str, Path] = field(default_factory=dict)
    cashier_pages: dict[str, dict[str, Path]] = field(default_factory=dict)  # store: cashier: page
    nights_index: Path | None = None
    mix_page: Path | None = None
    failed: dict[str, str] = field(default_factory=dict)  # store id: why its page is missing

    @property
    def paths(self) -> list[Path]:
        extra = [p for p in (self.mix_page, self.nights_index) if p is not None]
        return [*self.store_pages.values(), self.index, *extra]

    @property
    def cashier_paths(self) -> list[Path]:
        return [p for pages in self.cashier_pages.values() for p in pages.values()]


def night_dir(report_dir: Path, day: date) -> Path:
    return report_dir / day.isoformat()


def rendered_nights(report_dir: Path) -> list[date]:
    """Business dates that have a chain index under ``report_dir``, oldest first."""
    if not report_dir.is_dir():
        return []
    found = []
    for entry in report_dir.iterdir():
        if _NIGHT_DIR.match(entry.name) and (entry / "index.html").is_file():
            try:
                found.append(date.fromisoformat(entry.name))
            except ValueError:
                continue
    return sorted(found)


def _neighbours(days: Sequence[date], day: date) -> tuple[date | None, date | None]:
    earlier = [d for d in days if d < day]
    later = [d for d in days if d > day]
    return (earlier[-1] if earlier else None, later[0] if later else None)


def _night_link(day: date | None, page: str = "index.html") -> dict[str, Any] | None:
    return None if day is None else {"day": day, "href": f"../{day.isoformat()}/{page}"}


def _chain_nav(days: Sequence[date], day: date) -> dict[str, Any]:
    """The links of ``day``'s chain index: the nearest nights with reports, the list."""
    previous, following = _neighbours(days, day)
    return {
        "previous": _night_link(previous),
        "next": _night_link(following),
        "nights": "../index.html",
    }


def _store_nav(report_dir: Path, days: Sequence[date], day: date, name: str) -> dict[str, Any]:
    """The links of the store page ``name`` of ``day``: its chain index, the nearest nights
    with a page of that store, the list."""
    store_days = [d for d in days if d == day or (report_dir / d.isoformat() / name).is_file()]
    previous, following = _neighbours(store_days, day)
    return {
        "index": "index.html",
        "previous": _night_link(previous, name),
        "next": _night_link(following, name),
        "nights": "../index.html",
    }


_NAV = re.compile(r'<nav aria-label="report pages">.*?</nav>', re.DOTALL)


def _literally(text: str) -> Callable[[re.Match[str]], str]:
    """A replacement for ``re.sub`` that puts in ``text`` as it is (no group references)."""
    return lambda _: text


def _relink_neighbours(report_dir: Path, days: Sequence[date], day: date) -> None:
    """Point the pages of the nearest earlier and later nights at ``day``'s.

    Their links to the nights beside them were written when ``day`` had no pages yet: only
    their navigation is rewritten (each page whole, as every write), not their content.
    """
    nav_macro = template("report/_nav.html").module.night_nav  # type: ignore[attr-defined]
    for neighbour in _neighbours(days, day):
        if neighbour is None:
            continue
        for page in sorted(night_dir(report_dir, neighbour).glob("*.html")):
            if page.name == "index.html":
                nav = _chain_nav(days, neighbour)
            else:
                nav = _store_nav(report_dir, days, neighbour, page.name)
            links = str(nav_macro(nav)).strip()
            try:
                html = page.read_text(encoding="utf-8")
                relinked = _NAV.sub(_literally(links), html, count=1)
                if relinked != html:
                    write_atomic(page, relinked)
            except OSError as e:  # that night's pages keep their old links
                logger.warning("links of %s not updated: %s", page, e)


# -- the night -----------------------------------------------------------------------------------


def write_night_reports(
    *,
    engine: Engine,
    settings: Settings,
    day: date,
    store_ids: Sequence[str] | None = None,
    now: datetime | None = None,
) -> NightReport:
    """Write the chain index of ``day``, the pages of ``store_ids`` (default: every store in
    the database) and the list of nights.

    Raises :class:`~auditor.audit.store.UnknownStore` for a store id the database does not
    know. A store page that cannot be written is logged and named in
    :attr:`NightReport.failed`; the others and the index are written all the same. Any other
    error of a store, in this process or in a worker, is raised as it is.
    """
    now = now or datetime.now(UTC)
    nights = settings.reports.trend_nights
    with Session(engine) as session:
        require_known_stores(session, store_ids or ())
        known = known_store_ids(session)
    out = night_dir(settings.report_dir, day)
    days = sorted({*rendered_nights(settings.report_dir), day})
    report = NightReport(day=day, index=out / "index.html")
    wanted = set(store_ids) if store_ids is not None else set(known)
    min_sales = settings.reports.min_sales_to_rank
    first = day - timedelta(days=nights)
    with Session(engine) as session:
        totals = queries.night_totals(session, first=first, last=day)
    no_reviews = pd.DataFrame(columns=["business_date", "open", "confirmed"])
    chain = figures.chain_trend(figures.night_totals(totals, no_reviews), day=day, nights=nights)
    night = Night(settings=settings, day=day, days=days, now=now, chain=chain)
    rows = []
    challenges: list[figures.ChallengeRow] = []
    mixes: list[figures.MixSpend] = []
    tasks = [(store_id, store_id in wanted) for store_id in known]
    with closing(store_results(engine, night, tasks)) as results:
        for store_id, result in zip(known, results, strict=True):
            rows.append(result.row)
            challenges += result.challenges
            if result.mix is not None:
                mixes.append(result.mix)
            if result.page is not None:
                report.store_pages[store_id] = result.page
            if result.page is not None and result.failed is None:
                report.cashier_pages[store_id] = result.cashier_pages
            if result.failed is not None:
                logger.error(
                    "the page of store %s for %s cannot be written\n%s",
                    store_id,
                    day,
                    result.failure,
                )
                report.failed[store_id] = result.failed
    rows = figures.rank_stores(rows)
    pages = {
        row.store_id: f"{store_filename(row.store_id)}.html"
        for row in rows
        if (out / f"{store_filename(row.store_id)}.html").is_file()
    }
    ranked = figures.rank_challenges(challenges, min_sales=min_sales)
    cashier_links = {
        (row.store_id, c.cashier_id): cashier_href(row.store_id, c.cashier_id)
        for row in rows
        for c in row.at_risk
        if (out / cashier_href(row.store_id, c.cashier_id)).is_file()
    }
    if settings.reports.purchase_mix:
        names = {row.store_id: row.name or row.store_id for row in sorted(rows, key=_by_id)}
        table = figures.mix_table(
            figures.MixSpend.combine(mixes), names=names, min_receipts=min_sales
        )
        report.mix_page = write_atomic(out / MIX_PAGE, mix_page(settings, table, day, days, now))
    html = chain_index(settings, rows, day, days, pages, now, ranked, cashier_links)
    write_atomic(report.index, html)
    _relink_neighbours(settings.report_dir, days, day)
    with Session(engine) as session:
        report.nights_index = write_nights_index(session=session, settings=settings, now=now)
    logger.info(
        "reports for %s: chain index and %d store page(s) in %s",
        day,
        len(report.store_pages),
        out,
    )
    return report


# -- one store's part of the night ---------------------------------------------------------------


@dataclass(frozen=True)
class Night:
    """What every store's part of a night's reports shares: the settings, the business date,
    the nights with reports (for the links), when the pages are written and the chain's trend."""

    settings: Settings
    day: date
    days: list[date]
    now: datetime
    chain: list[figures.TrendPoint]


@dataclass
class StoreResult:
    """One store's part of the night (:func:`store_reports`): its row of the chain index, its
    cashiers' challenges, its purchase mix and, when asked for, its pages."""

    row: figures.StoreRow
    challenges: list[figures.ChallengeRow]
    mix: figures.MixSpend | None
    page: Path | None = None
    cashier_pages: dict[str, Path] = field(default_factory=dict)
    failed: str | None = None  # why the pages could not be written: "OSError: disk full"
    failure: str = ""  # and the traceback, for the log


def store_reports(*, engine: Engine, night: Night, store_id: str, pages: bool) -> StoreResult:
    """Read one store's window, work out its figures for the chain index and, with ``pages``,
    write its store page and cashier pages. A page that cannot be written is said in
    :attr:`StoreResult.failed` (with the traceback); any other error is raised."""
    settings, day = night.settings, night.day
    nights, min_sales = settings.reports.trend_nights, settings.reports.min_sales_to_rank
    first = day - timedelta(days=nights)
    with Session(engine) as session:
        window = queries.chain_window(session, day=day, nights=nights, store_ids=[store_id])
        cashiers = queries.store_cashiers(session, store_id)
        reviews = queries.store_reviews(session, store_id=store_id, first=first, day=day)
        spend = (
            queries.alcohol_spend(
                session, store_id=store_id, first=first, day=day, bands=figures.AGE_BANDS
            )
            if settings.reports.purchase_mix
            else None
        )
    # times are shown in the zone the audit used: the settings' (else the chain's)
    window.stores["timezone"] = [str(settings.store_zone(store_id))]
    (row,) = figures.store_rows(
        stores=window.stores, runs=window.runs, verdicts=window.verdicts, day=day, nights=nights
    )
    tonight, before = figures.night_and_before(window.verdicts, day=day, nights=nights)
    row.min_sales = min_sales
    if row.run.has_results:
        row.reviews = figures.review_counts(tonight, reviews)
    scorecard = figures.scorecard(
        verdicts=window.verdicts,
        reviews=reviews,
        cashiers=cashiers,
        day=day,
        nights=nights,
        min_sales=min_sales,
        store_id=store_id,
    )
    row.at_risk = [r for r in scorecard if r.ranked][:AT_RISK]
    result = StoreResult(
        row=row,
        challenges=figures.challenge_rows(
            tonight=tonight,
            before=before,
            cashiers=cashiers,
            min_sales=min_sales,
            store_id=store_id,
        ),
        mix=figures.mix_spend(window.verdicts, spend) if spend is not None else None,
    )
    if not pages:
        return result
    try:
        with Session(engine) as session:
            page, html = store_page(
                session=session,
                settings=settings,
                window=window,
                row=row,
                days=night.days,
                now=night.now,
                chain=night.chain,
                scorecard=scorecard,
            )
            name = f"{store_filename(store_id)}.html"
            result.page = write_atomic(night_dir(settings.report_dir, day) / name, html)
            result.cashier_pages = cashier_pages(
                session=session,
                settings=settings,
                window=window,
                page=page,
                now=night.now,
                reviews=reviews,
                cashiers=cashiers,
            )
    except Exception as e:  # the other stores' pages and the index are still written
        result.failed = f"{type(e).__name__}: {e}"
        result.failure = traceback.format_exc()
    return result


def store_results(
    engine: Engine, night: Night, tasks: Sequence[tuple[str, bool]]
) -> Generator[StoreResult]:
    """:func:`store_reports` of each (store id, pages) in ``tasks``, in that order: in this
    process, or in ``[reports] workers`` processes (:mod:`auditor.reports.workers`), each with
    an engine of its own on the same database, when there are stores enough for more than one."""
    workers = min(night.settings.report_workers, len(tasks))
    if workers <= 1:
        with frozen_heap():
            for store_id, pages in tasks:
                yield store_reports(engine=engine, night=night, store_id=store_id, pages=pages)
        return
    url = engine.url.render_as_string(hide_password=False)
    yield from in_workers(
        _store_task,
        tasks,
        workers=workers,
        initializer=_start_worker,
        initargs=(url, night),
        what=lambda task: f"store {task[0]}",
    )


_worker: dict[str, Any] = {}  # a worker process's engine and night (set by _start_worker)


def _start_worker(url: str, night: Night) -> None:
    _worker["engine"] = make_engine(url)
    _worker["night"] = night
    freeze_heap()


def _store_task(task: tuple[str, bool]) -> StoreResult:
    store_id, pages = task
    return store_reports(
        engine=_worker["engine"], night=_worker["night"], store_id=store_id, pages=pages
    )


def _by_id(row: figures.StoreRow) -> str:
    return row.store_id


def mix_page(
    settings: Settings, table: figures.MixTable, day: date, days: Sequence[date], now: datetime
) -> str:
    """What each estimated age group buys over ``day``'s window: the chain, then each store."""
    return render(
        "report/mix.html",
        chain=settings.chain.name,
        day=day,
        table=table,
        nights=settings.reports.trend_nights,
        min_sales=settings.reports.min_sales_to_rank,
        nav=_store_nav(settings.report_dir, days, day, MIX_PAGE),
        generated_at=now.astimezone(ZoneInfo(settings.chain.default_timezone)),
    )


def chain_index(
    settings: Settings,
    rows: list[figures.StoreRow],
    day: date,
    days: Sequence[date],
    pages: dict[str, str],
    now: datetime,
    challenges: Sequence[figures.ChallengeRow] = (),
    cashier_links: dict[tuple[str, str], str] | None = None,
) -> str:
    """The chain index of ``day``: ``rows`` from :func:`figures.store_rows`, ``challenges``
    the chain's cashiers from :func:`figures.rank_challenges` (the first
    :data:`CHAIN_CASHIERS` ranked ones are listed)."""
    ranked = [c for c in challenges if c.ranked]
    names = {row.store_id: row.name or row.store_id for row in rows}
    return render(
        "report/index.html",
        chain=settings.chain.name,
        day=day,
        rows=rows,
        totals=figures.chain_totals(rows),
        pages=pages,
        nights=settings.reports.trend_nights,
        kinds=list(FlagKind),
        challenges=ranked[:CHAIN_CASHIERS],
        challenges_ranked=len(ranked),
        challenges_unranked=len(challenges) - len(ranked),
        store_names=names,
        min_sales=settings.reports.min_sales_to_rank,
        cashier_links=cashier_links or {},
        mix_href=MIX_PAGE if settings.reports.purchase_mix else None,
        at_risk=AT_RISK,
        nav=_chain_nav(days, day),
        generated_at=now.astimezone(ZoneInfo(settings.chain.default_timezone)),
    )


def store_page(
    *,
    session: Session,
    settings: Settings,
    window: queries.ChainWindow,
    row: figures.StoreRow,
    days: Sequence[date],
    now: datetime,
    chain: Sequence[figures.TrendPoint] = (),
    scorecard: list[figures.ScorecardRow] | None = None,
) -> tuple[figures.StoreNight, str]:
    """One store's page for the night of ``window``: its figures, and the page with charts and
    the evidence. ``chain`` is the chain's trend, drawn beside the store's; ``scorecard``, when
    given, the store's (:func:`figures.scorecard` of the window, not worked out again)."""
    day, nights = window.day, settings.reports.trend_nights
    min_sales = settings.reports.min_sales_to_rank
    zone = settings.store_zone(row.store_id)
    run = row.run.current
    evidence = queries.store_evidence(
        session,
        store_id=row.store_id,
        run_id=int(run["id"]) if run is not None else None,
        first=window.first,
        day=day,
    )
    page = figures.store_night(
        row=row,
        day=day,
        nights=nights,
        min_sales=min_sales,
        zone=zone,
        runs=window.runs[window.runs["store_id"] == row.store_id],
        verdicts=window.verdicts[window.verdicts["store_id"] == row.store_id],
        flags=evidence.flags,
        lines=evidence.lines,
        reviews=evidence.reviews,
        cashiers=evidence.cashiers,
        chain=chain,
        cards=scorecard,
    )
    # no chart from a handful of sales: the page says so instead
    enough = {
        "ages": len(page.ages) >= min_sales,
        "hours": row.night.alcohol_sales >= min_sales,
        "trend": page.window_sales >= min_sales,
        "challenges": sum(p.challenges.due for p in page.trend if p.challenges) >= min_sales,
    }
    drawn = {
        "ages": charts.age_histogram(page.ages, page.threshold) if enough["ages"] else None,
        "hours": charts.flags_by_hour(page.hourly) if enough["hours"] else None,
        "trend": charts.nightly_trend(page.trend, page.chain_trend) if enough["trend"] else None,
        "challenges": charts.challenge_trend(page.trend, page.chain_trend)
        if enough["challenges"]
        else None,
    }
    name = f"{store_filename(row.store_id)}.html"
    links = {c.cashier_id: cashier_href(row.store_id, c.cashier_id) for c in page.scorecard}
    html = render(
        "report/store.html",
        chain=settings.chain.name,
        page=page,
        charts=drawn,
        enough=enough,
        mix_href=MIX_PAGE if settings.reports.purchase_mix else None,
        cashier_links=links,
        camera_kinds=[k for k in FlagKind if k in CAMERA_KINDS],
        kinds=list(FlagKind),
        nav=_store_nav(settings.report_dir, days, day, name),
        generated_at=now.astimezone(zone),
        review_links=review_links(settings.review_url, page.flagged, evidence.flags),
    )
    return page, html


def cashier_href(store_id: str, cashier_id: str) -> str:
    """A cashier's page, from the night's folder: in the folder named after the store."""
    return f"{store_filename(store_id)}/{store_filename(cashier_id)}.html"


def cashier_pages(
    *,
    session: Session,
    settings: Settings,
    window: queries.ChainWindow,
    page: figures.StoreNight,
    now: datetime,
    reviews: pd.DataFrame | None = None,
    cashiers: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """A page for each cashier of ``page``'s scorecard: their weeks and their flagged sales of
    the window (those with a flag beyond a camera problem). ``reviews`` and ``cashiers`` are
    the store's (:func:`queries.store_reviews`, :func:`queries.store_cashiers`), read here
    when not given."""
    row, day = page.store, page.day
    zone = settings.store_zone(row.store_id)
    verdicts = window.verdicts[window.verdicts["store_id"] == row.store_id]
    flagged = figures.beyond_camera(verdicts)
    counts = flagged["cashier_id"].value_counts()
    shown = figures.riskiest(flagged, settings.reports.cashier_sales)
    evidence = queries.window_evidence(
        session,
        store_id=row.store_id,
        first=window.first,
        day=day,
        sale_ids=list(shown["sale_id"]),
    )
    if reviews is None:
        reviews = queries.store_reviews(session, store_id=row.store_id, first=window.first, day=day)
    if cashiers is None:
        cashiers = queries.store_cashiers(session, row.store_id)
    # the window's flagged sales in risk order, once: each cashier's are theirs, in that order
    by_cashier: dict[str, list[figures.FlaggedSale]] = defaultdict(list)
    for sale in figures.flagged_sales(
        verdicts=shown,
        flags=evidence.flags,
        lines=evidence.lines,
        reviews=reviews,
        cashiers=cashiers,
        zone=zone,
    ):
        by_cashier[sale.cashier_id].append(sale)
    folder = night_dir(settings.report_dir, day)
    store_name = f"{store_filename(row.store_id)}.html"
    written = {}
    for card in page.scorecard:
        sales = by_cashier.get(card.cashier_id, [])
        html = render(
            "report/cashier.html",
            chain=settings.chain.name,
            page=page,
            card=card,
            flagged=sales,
            flagged_total=int(counts.get(card.cashier_id, 0)),
            all_flagged_href=_review_list(
                settings.review_url,
                store_id=row.store_id,
                cashier_id=card.cashier_id,
                first=window.first,
                day=day,
            ),
            ranked=sum(c.ranked for c in page.scorecard),
            nav={
                "index": "../index.html",
                "store": {"href": f"../{store_name}", "label": row.name or row.store_id},
                "previous": None,
                "next": None,
                "nights": "../../index.html",
            },
            generated_at=now.astimezone(zone),
        )
        path = folder / cashier_href(row.store_id, card.cashier_id)
        written[card.cashier_id] = write_atomic(path, html)
    # a cashier no longer on the night's scorecard (the night audited again) keeps no page
    cashier_dir = folder / store_filename(row.store_id)
    for old in cashier_dir.glob("*.html") if cashier_dir.is_dir() else ():
        if old not in written.values():
            old.unlink(missing_ok=True)
    return written


def _review_list(
    base_url: str | None, *, store_id: str, cashier_id: str, first: date, day: date
) -> str | None:
    """The review app's list of a cashier's flagged sales of the window, reviewed or not."""
    if base_url is None:
        return None
    wanted = FlagFilter(
        first=first, last=day, store=store_id, cashier=cashier_id, status=ReviewFilter.ALL
    )
    query = urlencode(wanted.args())
    return f"{base_url.rstrip('/')}/flags?{query}"


def review_links(
    base_url: str | None, rows: Sequence[figures.FlaggedSale], flags: Any
) -> dict[int, str]:
    """Each flagged sale's page in the review app (``[web] base_url``; none without it): its
    first open flag, else its first. ``flags`` is the night's flags (sale_id, kind, flag_id)."""
    if base_url is None or flags.empty:
        return {}
    ids = {
        (int(sale), str(kind)): int(flag)
        for sale, kind, flag in flags[["sale_id", "kind", "flag_id"]].itertuples(index=False)
    }
    links = {}
    for row in rows:
        key = (row.sale_id, (row.open_kinds or row.kinds)[0])
        if key in ids:
            links[row.sale_id] = f"{base_url.rstrip('/')}/flags/{ids[key]}"
    return links


_REVIEWS_AS_OF = re.compile(r'data-reviews-as-of="([^"]+)"')


def reviews_as_of(page: Path) -> datetime | None:
    """When the review column of a store page was read: the ``data-reviews-as-of`` it
    carries, else (a page written before pages said so) the file's time; None when unreadable."""
    try:
        match = _REVIEWS_AS_OF.search(page.read_text(encoding="utf-8"))
        if match is not None:
            return datetime.fromisoformat(match.group(1))
        return datetime.fromtimestamp(page.stat().st_mtime, UTC)
    except (OSError, ValueError):
        return None


def stale_store_nights(session: Session, report_dir: Path) -> dict[date, list[str]]:
    """The store pages out of date since they were written: business date -> the store ids
    whose page of that night has a decision recorded, a flag's evidence (its face crop)
    purged, or a new audit run finished (the night audited again: other flags, the old ones'
    crops gone), after its "reviews as of"."""
    pages: dict[tuple[str, date], datetime] = {}
    for day in rendered_nights(report_dir):
        for page in night_dir(report_dir, day).glob("*.html"):
            if (
                page.name not in ("index.html", MIX_PAGE)
                and (as_of := reviews_as_of(page)) is not None
            ):
                pages[(page.stem, day)] = as_of
    if not pages:
        return {}
    since = min(pages.values())
    changed = reviewed_nights(session, since=since)
    for later in (
        evidence_purged_nights(session, since=since),
        audited_nights(session, since=since),
    ):
        for key, at in later.items():
            changed[key] = max(at, changed.get(key, at))
    stale: dict[date, list[str]] = defaultdict(list)
    for (store_id, day), latest in changed.items():
        as_of = pages.get((store_filename(store_id), day))
        if as_of is not None and latest > as_of:
            stale[day].append(store_id)
    return {day: sorted(stores) for day, stores in sorted(stale.items())}


def write_nights_index(*, session: Session, settings: Settings, now: datetime) -> Path:
    """``<report_dir>/index.html``: every night with a chain index, newest first, with its
    sales counted as the chain index counts them and its reviews as they stand now."""
    days = rendered_nights(settings.report_dir)
    by_day: dict[date, figures.NightTotals] = {}
    if days:
        first, last = days[0], days[-1]
        by_day = figures.night_totals(
            queries.night_totals(session, first=first, last=last, days=days),
            queries.night_reviews(session, first=first, last=last, days=days),
        )
    nights = [
        {"href": f"{d.isoformat()}/index.html", "totals": by_day.get(d, figures.NightTotals(d))}
        for d in reversed(days)
    ]
    html = render(
        "report/nights.html",
        chain=settings.chain.name,
        nights=nights,
        generated_at=now.astimezone(ZoneInfo(settings.chain.default_timezone)),
    )
    return write_atomic(settings.report_dir / "index.html", html)


# -- the nightly job's report step ---------------------------------------------------------------


def render_after_audit(settings: Settings, engine: Engine, summaries: list[RunSummary]) -> None:
    """Report step of the nightly job: the reports of every store-night just audited.

    Stores in different zones may have audited different business dates; each date gets its
    chain index and the pages of its stores, failed audits included (their pages say so).
    """
    stores_by_day: dict[date, list[str]] = defaultdict(list)
    for summary in summaries:
        stores_by_day[summary.business_date].append(summary.store_id)
    for day, store_ids in sorted(stores_by_day.items()):
        report = write_night_reports(engine=engine, settings=settings, day=day, store_ids=store_ids)
        logger.info("reports of %s written to %s", day, report.index.parent)
    rewrite_stale_nights(settings, engine)


def rewrite_stale_nights(settings: Settings, engine: Engine) -> list[NightReport]:
    """Write again the store pages (and their night's index) whose reviews changed, whose
    flags' face crops were purged, or whose night was audited again, since they were written:
    their flags, review column and confirmed violations are those of today, and no page keeps
    a face past its retention or a flag that is no longer."""
    with Session(engine) as session:
        stale = stale_store_nights(session, settings.report_dir)
    written = []
    for day, store_ids in stale.items():
        try:
            written.append(
                write_night_reports(engine=engine, settings=settings, day=day, store_ids=store_ids)
            )
        except Exception:  # the other nights are still rewritten
            logger.exception("the reports of %s cannot be rewritten", day)
        else:
            logger.info("reports of %s rewritten: %s changed since", day, ", ".join(store_ids))
    return written
