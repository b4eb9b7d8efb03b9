"""Reports written for the demo chain on SQLite and PostgreSQL, read back and checked against
the database."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from auditor import nightly
from auditor.audit.store import UnknownStore
from auditor.audit.summary import RunSummary
from auditor.cli import main
from auditor.db.models import AuditRun, Cashier, Sale, SaleLine, SaleVerdict
from auditor.reports import render_after_audit, write_night_reports
from auditor.reports.build import night_dir
from auditor.reports.figures import age_band
from auditor.reports.render import store_filename
from auditor.settings import Settings
from auditor.vocabulary import AGE_KINDS, FlagKind
from tests.reports.conftest import (
    DAY,
    ODD_ID,
    SCRIPT_NAME,
    UNDER,
    DemoChain,
    build_demo_chain,
    reports_settings,
)
from tests.reports.html import Element, read

NOW = datetime(2024, 3, 2, 6, 0, tzinfo=UTC)


# -- the database's own figures, computed here without the report code ---------------------------


def db_verdicts(engine: Engine, store_id: str, day: date) -> list[dict[str, Any]]:
    query = (
        sa.select(
            Sale.receipt_id,
            Sale.cashier_id,
            Sale.sold_at,
            SaleVerdict.frames_matched,
            SaleVerdict.faces_found,
            SaleVerdict.flag_kinds,
            SaleVerdict.estimated_age,
            SaleVerdict.age_spread,
        )
        .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .where(
            AuditRun.store_id == store_id,
            AuditRun.business_date == day,
            AuditRun.status == "succeeded",
        )
    )
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(query)]


def kinds_of(verdict: dict[str, Any]) -> list[str]:
    return [k for k in verdict["flag_kinds"].split(";") if k]


def is_under_age(verdict: dict[str, Any]) -> bool:
    return any(k in AGE_KINDS for k in kinds_of(verdict))


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "–"


def rows_by(table: Element, attribute: str) -> dict[str, Element]:
    return {tr.attrs[attribute]: tr for tr in table.find("tbody").find_all("tr")}


# -- the chain index -----------------------------------------------------------------------------


def test_chain_index_ranks_every_store_with_the_databases_figures(
    engine: Engine, demo_chain: DemoChain
) -> None:
    report = write_night_reports(engine=engine, settings=demo_chain.settings, day=DAY, now=NOW)
    assert report.index == demo_chain.settings.report_dir / "2024-03-01" / "index.html"
    page = read(report.index)
    rows = rows_by(page.find("table", id="stores"), "data-store")
    # no results first (by id), then by the Wilson bound: S2 5 of 5 flagged, S1 5 of 6, S4 none
    assert list(rows) == [ODD_ID, "S3", "S2", "S1", "S4"]
    assert [rows[s].field("rank") for s in rows] == ["1", "2", "3", "4", "5"]
    assert rows["S3"].find(data_status="failed")
    assert rows[ODD_ID].find(data_status="not_audited")
    assert rows["S2"].find(data_status="no_frames")
    assert rows["S4"].find(data_status="no_sales")
    assert rows["S1"].find(data_status="audited")

    total_sales = total_flagged = 0
    for store_id in ("S1", "S2", "S4"):
        verdicts = db_verdicts(engine, store_id, DAY)
        row = rows[store_id]
        flagged = sum(bool(kinds_of(v)) for v in verdicts)
        assert row.field("alcohol_sales") == str(len(verdicts))
        framed = sum(v["frames_matched"] > 0 for v in verdicts)
        assert row.field("frame_coverage") == percent(framed, len(verdicts))
        assert row.field("faces_found") == str(sum(v["faces_found"] > 0 for v in verdicts))
        for kind in FlagKind:
            assert row.field(kind) == str(sum(kind in kinds_of(v) for v in verdicts)), kind
        assert row.field("flagged_sales") == str(flagged)
        assert row.field("flag_rate") == percent(flagged, len(verdicts))
        total_sales += len(verdicts)
        total_flagged += flagged
    totals = page.find("tfoot")
    assert totals.field("alcohol_sales") == str(total_sales)
    assert totals.field("flagged_sales") == str(total_flagged)
    assert page.find(data_figure="unchecked").text == "2"

    # S1's 30-night rate pools the two generated nights before it
    before = [v for n in (1, 2) for v in db_verdicts(engine, "S1", DAY - timedelta(days=n))]
    base_flagged = sum(bool(kinds_of(v)) for v in before)
    assert rows["S1"].field("baseline_rate") == percent(base_flagged, len(before))
    change = 100 * (5 / 6 - base_flagged / len(before))
    assert f"{abs(change):.1f} pts" in rows["S1"].field("change")
    # 6 sales tonight: a quiet night, the change has no colour of news
    assert rows["S1"].find(data_field="change").has(data_quiet=True)

    # reviews as they stand: S1's purged, no-frame and no-face sales are open, one confirmed
    assert rows["S1"].field("open_reviews") == "3"
    assert rows["S1"].field("confirmed") == "1"
    assert rows["S2"].field("open_reviews") == "5"
    assert rows["S2"].field("confirmed") == "0"
    assert totals.field("open_reviews") == "8"
    assert page.find(data_figure="confirmed").text == "1"
    # S1's cashiers have 20 or more checked sales over the window: the three are named, most
    # at risk first, each linked to its page; S2's one cashier has five sales, not ranked
    at_risk = rows["S1"].find(data_field="at_risk").find_all("span", data_cashier=True)
    assert [c.attrs["data-cashier"] for c in at_risk] == ["C3", "C2", "C1"]
    assert at_risk[2].text.endswith("1 confirmed")
    for cashier in at_risk:
        assert (report.index.parent / cashier.find("a").attrs["href"]).is_file()
    assert rows["S2"].field("at_risk") == "none ranked"

    # every store links to its page, whatever its id
    links = {s: rows[s].find(data_field="store").find("a").attrs["href"] for s in rows}
    assert links["S1"] == "S1.html"
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.html", links[ODD_ID])
    for store_id, href in links.items():
        assert (report.index.parent / href).is_file()
        assert report.store_pages[store_id] == report.index.parent / href


def test_store_ids_become_safe_distinct_file_names() -> None:
    names = [store_filename(s) for s in ("S1", "s-1_2", "../x y", "..", "a/b", "a_b", "index", "")]
    assert names[:2] == ["S1", "s-1_2"]
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", name), name
    assert len(set(names)) == len(names)
    assert store_filename("a/b") != store_filename("a_b") == "a_b"
    assert store_filename("mix") != "mix"  # the night's purchase-mix page


# -- a store page --------------------------------------------------------------------------------


def test_store_page_shows_the_night_the_evidence_and_the_cashiers(
    engine: Engine, demo_chain: DemoChain
) -> None:
    report = write_night_reports(
        engine=engine, settings=demo_chain.settings, day=DAY, store_ids=["S1"], now=NOW
    )
    assert set(report.store_pages) == {"S1"}
    page = read(report.store_pages["S1"])
    verdicts = db_verdicts(engine, "S1", DAY)
    flagged = [v for v in verdicts if kinds_of(v)]

    headline = page.find(id="headline")
    assert headline.find(data_figure="alcohol_sales").text == str(len(verdicts)) == "6"
    assert headline.find(data_figure="flagged_sales").text == str(len(flagged)) == "5"
    under = sum(UNDER in kinds_of(v) for v in verdicts)
    assert headline.find(data_figure="under_age").text == str(under) == "2"
    assert headline.find(data_figure="confirmed").text == "1"
    faces = sum(v["faces_found"] > 0 for v in verdicts)
    assert headline.find(data_figure="faces_found").text == str(faces)

    # the flagged sales (none with a probability: equal risk), newest first, with their evidence
    table = page.find("table", id="flagged-sales")
    rows = rows_by(table, "data-receipt")
    berlin = demo_chain.settings.store_zone("S1")
    expected = sorted(flagged, key=lambda v: v["sold_at"], reverse=True)
    assert list(rows) == [v["receipt_id"] for v in expected]
    for v in expected:
        row = rows[v["receipt_id"]]
        assert row.field("time") == v["sold_at"].astimezone(berlin).strftime("%H:%M:%S")
        assert [t.attrs["data-kind"] for t in row.find_all(data_kind=True)] == kinds_of(v)
    young = rows["r-young"]
    assert young.field("time") == "21:15:07"
    assert young.field("cashier").startswith(SCRIPT_NAME)
    assert young.field("items") == "6 × Pils 0.5 l 1 × Vodka 0.7 l"
    assert young.field("age") == "19.4 ± 2.1"
    assert "attention" in young.classes
    image = young.find("img")
    prefix = "data:image/jpeg;base64,"
    assert image.attrs["src"].startswith(prefix)
    assert base64.b64decode(image.attrs["src"][len(prefix) :]) == demo_chain.young_crop
    assert young.find(data_decision="confirmed_violation")
    assert rows["r-purged"].field("evidence") == "evidence removed under retention"
    assert rows["r-late"].find(data_decision="id_checked")
    assert rows["r-noframe"].find(data_decision="").text == "not reviewed"
    # faces only for flagged sales: exactly one image on the page, the under-age crop
    assert len(page.find_all("img")) == 1

    # cashiers: the window's counts (tonight and the two nights before), too few to judge
    assert page.has(data_notice="few_sales_scorecard") is False
    with engine.connect() as c:
        names = dict(c.execute(sa.select(Cashier.cashier_id, Cashier.name)).all())
    window = verdicts + [
        v for n in (1, 2) for v in db_verdicts(engine, "S1", DAY - timedelta(days=n))
    ]
    cashiers = rows_by(page.find("table", id="scorecard"), "data-cashier")
    assert set(cashiers) == {v["cashier_id"] for v in window}
    for cashier_id, row in cashiers.items():
        mine = [v for v in window if v["cashier_id"] == cashier_id]
        tonight = [v for v in verdicts if v["cashier_id"] == cashier_id]
        assert row.field("sales") == str(len(mine))
        assert row.field("under_age") == str(sum(is_under_age(v) for v in mine))
        assert row.field("tonight_sales") == str(len(tonight))
        assert not row.has(data_caution="few_sales")  # 20 or more checked sales each
        if names.get(cashier_id):
            assert row.field("cashier").startswith(names[cashier_id])
        link = row.find(data_field="cashier").find("a").attrs["href"]
        assert link == f"S1/{cashier_id}.html"
        assert (report.store_pages["S1"].parent / link).is_file()
    assert cashiers["C1"].field("confirmed") == "1"
    assert [row.field("rank") for row in cashiers.values()] == ["1", "2", "3"]
    # tonight's two or three sales each: a quiet night, no colour on the change
    for row in cashiers.values():
        shown = row.find(data_field="change")
        assert all(e.classes.isdisjoint({"up", "down"}) for e in shown.iter()), shown.text
    assert cashiers["C1"].find(data_field="change").has(data_quiet=True)

    # 86 sales in the window: trends are drawn; tonight's 6 sales are too few for a chart
    assert page.find("figure", data_chart="trend").has("svg")
    for name in ("ages", "hours"):
        assert not page.find("figure", data_chart=name).has("svg"), name
        assert "too few for a chart" in page.find(data_empty_chart=name).text
    assert not page.has("table", data_scope=True)  # on the chain's mix page instead
    assert page.find(id="purchase-mix-link").find("a").attrs["href"] == "mix.html"
    assert page.has("table", id="cameras")
    used = page.find(id="settings-used")
    assert used.field("age_threshold") == "25 years"
    assert used.field("model_version") == "age-test-1"
    assert used.field("zone") == "Europe/Berlin"
    assert "2024-03-02 02:30 CET" in used.field("run")


def test_cashiers_with_enough_sales_are_ranked(engine: Engine, chain_settings: Settings) -> None:
    from tests.reports.chain import ResultsBuilder, generated_night

    builder = ResultsBuilder(engine)
    builder.store("S1", "Berlin Mitte")
    generated_night(builder, "S1", DAY, 120, seed=3, cashiers=3)
    report = write_night_reports(engine=engine, settings=chain_settings, day=DAY, now=NOW)
    page = read(report.store_pages["S1"])
    cashiers = list(rows_by(page.find("table", id="scorecard"), "data-cashier").values())
    assert [c.field("rank") for c in cashiers] == ["1", "2", "3"]
    assert not page.has(data_caution="few_sales")
    # tonight has 20 or more checked sales each: the change is news, in colour
    assert not any(c.find(data_field="change").has(data_quiet=True) for c in cashiers)
    for row in cashiers:
        low, high = (float(v) for v in row.field("interval").removesuffix(" %").split("–"))
        assert low <= float(row.field("rate").removesuffix(" %")) <= high
    # every chart is drawn: enough sales tonight and in the window
    for name in ("ages", "hours", "trend"):
        assert page.find("figure", data_chart=name).has("svg"), name


# -- every page: escaped, self-contained ---------------------------------------------------------


def test_text_from_the_pos_is_escaped_and_pages_are_self_contained(
    engine: Engine, demo_chain: DemoChain
) -> None:
    report = write_night_reports(engine=engine, settings=demo_chain.settings, day=DAY, now=NOW)
    assert len(report.paths) == 8  # 5 stores, the chain index, the mix, the list of nights
    assert len(report.cashier_paths) == 4  # S1's three and S2's one
    for path in [*report.paths, *report.cashier_paths]:
        html = path.read_text(encoding="utf-8")
        assert "<script" not in html.lower(), path
        page = read(path)
        for element in page.iter():
            assert element.tag not in {"script", "link", "iframe", "object", "embed", "base"}
            for name in ("src", "href", "xlink:href", "action"):
                value = element.attrs.get(name)
                if value is None:
                    continue
                assert not re.match(
                    r"^\s*(//|[a-z][a-z0-9+.-]*:)", value, re.I
                ) or value.startswith("data:image/jpeg;base64,"), (path.name, name, value)
        assert "@import" not in html
        assert not re.search(r"url\((?!#)", html), path.name
    store = report.store_pages["S1"].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#39;cashier&#39;)&lt;/script&gt;" in store


# -- nights that cannot show figures -------------------------------------------------------------


def test_failed_unaudited_camera_off_and_quiet_stores_say_so(
    engine: Engine, demo_chain: DemoChain
) -> None:
    report = write_night_reports(engine=engine, settings=demo_chain.settings, day=DAY, now=NOW)
    pages = {s: read(p) for s, p in report.store_pages.items()}

    failed = pages["S3"].find(data_notice="failed")
    assert "The audit of this night failed" in failed.text
    assert demo_chain.failed_error in failed.text
    assert not pages["S3"].has(id="flagged-sales") and not pages["S3"].has(id="headline")

    assert "has not been audited" in pages[ODD_ID].find(data_notice="not_audited").text
    assert report.store_pages[ODD_ID].parent == night_dir(demo_chain.settings.report_dir, DAY)

    camera_off = pages["S2"]
    assert "No camera frames for this night" in camera_off.find(data_notice="no_frames").text
    assert len(camera_off.find("table", id="flagged-sales").find("tbody").find_all("tr")) == 5
    assert camera_off.find(data_empty_chart="ages")  # no face: the chart says so in words
    assert not camera_off.has("img")

    quiet = pages["S4"]
    assert "No alcohol sales this night" in quiet.find(data_notice="no_sales").text
    later = quiet.find(data_notice="later_attempt").text
    assert "failed: interrupted" in later
    assert quiet.find(data_notice="no_flags")


def test_a_night_without_any_audit_and_a_database_without_stores(
    engine: Engine, demo_chain: DemoChain, tmp_path: Path, db_url: str
) -> None:
    later = DAY + timedelta(days=10)
    report = write_night_reports(engine=engine, settings=demo_chain.settings, day=later, now=NOW)
    index = read(report.index)
    assert index.find(data_figure="unchecked").text == "5"
    assert "5 stores without audit results" in index.find(data_notice="unchecked").text
    for path in report.store_pages.values():
        assert read(path).has(data_notice="not_audited")

    with engine.begin() as c:  # empty the database
        for table in ("reviews", "users", "flags", "sale_verdicts", "audit_runs", "sale_lines"):
            c.execute(sa.text(f"DELETE FROM {table}"))
        for table in ("sales", "cashiers", "registers", "stores"):
            c.execute(sa.text(f"DELETE FROM {table}"))
    empty = reports_settings(tmp_path / "empty", db_url)
    report = write_night_reports(engine=engine, settings=empty, day=DAY, now=NOW)
    assert report.store_pages == {}
    assert "No stores yet" in read(report.index).find(data_notice="no_stores").text


def test_a_night_every_store_audited_without_alcohol_sales(
    engine: Engine, chain_settings: Settings
) -> None:
    from tests.reports.chain import ResultsBuilder

    builder = ResultsBuilder(engine)
    for store_id in ("S1", "S2"):
        builder.store(store_id)
        builder.verdicts(builder.run(store_id, DAY), [])
    report = write_night_reports(engine=engine, settings=chain_settings, day=DAY, now=NOW)
    assert "No alcohol sales this night" in read(report.index).find(data_notice="no_sales").text
    page = read(report.store_pages["S1"])
    assert page.find(data_empty_chart="hours") and page.find(data_notice="no_sales")


# -- links between nights ------------------------------------------------------------------------


def test_nights_link_to_each_other_and_to_the_list_of_nights(
    engine: Engine, demo_chain: DemoChain
) -> None:
    settings = demo_chain.settings
    before = DAY - timedelta(days=1)
    first = write_night_reports(engine=engine, settings=settings, day=before, now=NOW)
    assert not read(first.index).has("a", rel="next")
    written_first = {p: p.read_text() for p in (first.index, first.store_pages["S1"])}
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    index = read(report.index)
    assert index.find("a", rel="prev").attrs["href"] == "../2024-02-29/index.html"
    s1 = read(report.store_pages["S1"])
    assert s1.find("a", rel="prev").attrs["href"] == "../2024-02-29/S1.html"
    assert s1.find("a", rel="up").attrs["href"] == "index.html"
    # the earlier night's pages now lead to the new night; nothing else in them changed
    assert read(first.index).find("a", rel="next").attrs["href"] == "../2024-03-01/index.html"
    first_s1 = read(first.store_pages["S1"])
    assert first_s1.find("a", rel="next").attrs["href"] == "../2024-03-01/S1.html"
    assert first_s1.find("a", rel="up").attrs["href"] == "index.html"
    for path, old_html in written_first.items():
        new_html = path.read_text()
        assert new_html != old_html
        assert new_html[new_html.index("</nav>") :] == old_html[old_html.index("</nav>") :]
    again = write_night_reports(engine=engine, settings=settings, day=before, now=NOW)
    assert read(again.index).find("a", rel="next").attrs["href"] == "../2024-03-01/index.html"

    nights = read(settings.report_dir / "index.html")
    rows = rows_by(nights.find("table", id="nights"), "data-night")
    assert list(rows) == ["2024-03-01", "2024-02-29"]
    assert rows["2024-03-01"].find("a").attrs["href"] == "2024-03-01/index.html"
    with engine.connect() as c:
        audited = c.execute(
            sa.select(sa.func.sum(AuditRun.sales_audited)).where(
                AuditRun.business_date == DAY, AuditRun.status == "succeeded"
            )
        ).scalar_one()
    assert str(audited) in rows["2024-03-01"].text
    # no temporary files left behind
    assert not [p for p in settings.report_dir.rglob("*") if p.name.endswith(".tmp")]


def db_mix(engine: Engine, store_id: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Receipts and alcohol spend by category per age band, from the database (bands of ten
    years are enough here: the demo chain's buyers are checked against 18-24 and 25-34)."""
    query = (
        sa.select(
            SaleVerdict.sale_id,
            SaleVerdict.estimated_age,
            SaleLine.category,
            SaleLine.amount_cents,
            SaleLine.is_alcohol,
        )
        .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
        .join(SaleLine, SaleLine.sale_id == SaleVerdict.sale_id)
        .where(
            AuditRun.store_id == store_id,
            AuditRun.status == "succeeded",
            SaleVerdict.estimated_age.is_not(None),
        )
    )
    receipts: dict[str, set[int]] = {}
    spend: dict[str, dict[str, int]] = {}
    with engine.connect() as c:
        for sale_id, age, category, cents, alcohol in c.execute(query):
            band = age_band(float(age))
            receipts.setdefault(band, set()).add(sale_id)
            if alcohol:
                by_category = spend.setdefault(band, {})
                key = category.strip().casefold()
                by_category[key] = by_category.get(key, 0) + max(cents, 0)
    return {b: len(ids) for b, ids in receipts.items()}, spend


def test_mix_page_shows_groups_with_enough_receipts(engine: Engine, demo_chain: DemoChain) -> None:
    settings = demo_chain.settings
    report = write_night_reports(engine=engine, settings=settings, day=DAY, now=NOW)
    assert report.mix_page == night_dir(settings.report_dir, DAY) / "mix.html"
    index = read(report.index)
    assert index.find(id="purchase-mix-link").find("a").attrs["href"] == "mix.html"
    page = read(report.mix_page)
    assert page.find("nav").find(rel="up").attrs["href"] == "index.html"
    min_sales = settings.reports.min_sales_to_rank
    receipts, spend = db_mix(engine, "S1")
    s1 = page.find("table", data_scope="S1")
    categories = [th.attrs["data-category"] for th in s1.find_all("th", data_category=True)]
    shown = few = 0
    for band, n in receipts.items():
        row = s1.find("tr", data_band=band)
        assert row.field("receipts") == str(n)
        if n < min_sales:
            assert "too few receipts" in row.find(data_notice="few_receipts").text
            few += 1
            continue
        shown += 1
        total = sum(spend[band].values())
        for category in categories:
            cell = row.find("td", data_category=category)
            share = spend[band].get(category, 0) / total
            assert cell.text.strip() == f"{100 * share:.0f} %", (band, category)
    assert shown and few  # the demo chain has both
    # S1 holds every face of the chain: the chain's bands are S1's
    chain = page.find("table", data_scope="chain")
    for band, n in receipts.items():
        assert chain.find("tr", data_band=band).field("receipts") == str(n)
    # a store without faces says so; no face crop on the page
    s2 = page.find("h2", data_store="S2")
    assert s2 is not None
    assert "No alcohol sale with a face" in page.text
    assert not page.has("img")
    # the store page links it instead of showing a mix of tonight's few sales
    store = read(report.store_pages["S1"])
    assert not store.has("table", data_scope=True)
    assert store.find(id="purchase-mix-link").find("a").attrs["href"] == "mix.html"


def test_purchase_mix_can_be_turned_off(engine: Engine, tmp_path: Path, db_url: str) -> None:
    settings = reports_settings(tmp_path, db_url, reports={"purchase_mix": False})
    build_demo_chain(engine, settings)
    report = write_night_reports(
        engine=engine, settings=settings, day=DAY, store_ids=["S1"], now=NOW
    )
    assert report.mix_page is None
    assert not (night_dir(settings.report_dir, DAY) / "mix.html").exists()
    assert not read(report.index).has(id="purchase-mix-link")
    assert not read(report.store_pages["S1"]).has(id="purchase-mix-link")


# -- the command and the nightly job -------------------------------------------------------------


def test_report_command(engine: Engine, demo_chain: DemoChain, tmp_path: Path) -> None:
    config = tmp_path / "auditor.toml"  # written by the demo chain's settings

    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["--config", str(config), "report", *args])

    result = run("--date", "2024-03-01", "--store", "S1")
    assert result.exit_code == 0, result.output
    night = demo_chain.settings.report_dir / "2024-03-01"
    assert result.output.split() == [
        str(night / "S1.html"),
        str(night / "index.html"),
        str(night / "mix.html"),
        str(demo_chain.settings.report_dir / "index.html"),
    ]
    assert sorted(p.name for p in night.iterdir()) == ["S1", "S1.html", "index.html", "mix.html"]

    written = sorted(demo_chain.settings.report_dir.rglob("*"))
    result = run("--date", "2024-03-01", "--store", "S9")
    assert result.exit_code == 1
    assert "unknown store 'S9'; known: ../x y, S1, S2, S3, S4" in result.output
    assert sorted(demo_chain.settings.report_dir.rglob("*")) == written

    result = run("--date", "1 March")
    assert result.exit_code == 2

    result = run("--date", "2024-03-01")
    assert result.exit_code == 0, result.output
    assert len(list(night.glob("*.html"))) == 7  # 5 stores, the chain index, the mix


def test_a_night_never_audited_is_an_error_and_writes_nothing(
    engine: Engine, demo_chain: DemoChain, tmp_path: Path
) -> None:
    def run(*args: str) -> Any:
        return CliRunner().invoke(
            main, ["--config", str(tmp_path / "auditor.toml"), "report", *args]
        )

    report_dir = demo_chain.settings.report_dir
    assert run("--date", "2024-03-01").exit_code == 0
    written = {p: p.read_bytes() for p in report_dir.rglob("*") if p.is_file()}

    for args in (["--date", "2020-01-01"], ["--date", "2020-01-01", "--store", "S1"]):
        result = run(*args)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            "Error: no audit of 2020-01-01: run `auditor audit --date 2020-01-01` first\n"
        )
        assert {p: p.read_bytes() for p in report_dir.rglob("*") if p.is_file()} == written
        assert not night_dir(report_dir, date(2020, 1, 1)).exists()
    # a mistyped store is named before the night is looked at
    result = run("--date", "2020-01-01", "--store", "S9")
    assert result.exit_code == 1
    assert result.stderr == "Error: unknown store 'S9'; known: ../x y, S1, S2, S3, S4\n"
    nights = rows_by(read(report_dir / "index.html").find("table", id="nights"), "data-night")
    assert list(nights) == ["2024-03-01"]

    # a night whose only audit failed is a night the pages must show
    failed = date(2024, 3, 10)
    demo_chain.builder.run("S3", failed, status="failed", error="disk full")
    result = run("--date", "2024-03-10")
    assert result.exit_code == 0, result.output
    assert read(night_dir(report_dir, failed) / "S3.html").has(data_notice="failed")
    nights = rows_by(read(report_dir / "index.html").find("table", id="nights"), "data-night")
    assert list(nights) == ["2024-03-10", "2024-03-01"]


def test_the_nightly_job_renders_the_nights_it_audited(
    engine: Engine, demo_chain: DemoChain
) -> None:
    assert render_after_audit in nightly.REPORT_STEPS
    settings = demo_chain.settings
    summaries = [
        RunSummary("S1", DAY, "succeeded"),
        RunSummary("S3", DAY, "failed", error=demo_chain.failed_error),
        RunSummary("S2", DAY - timedelta(days=1), "succeeded"),
    ]
    render_after_audit(settings, engine, summaries)
    night = settings.report_dir / "2024-03-01"
    assert sorted(p.name for p in night.glob("*.html")) == [
        "S1.html",
        "S3.html",
        "index.html",
        "mix.html",
    ]
    assert sorted(p.name for p in (settings.report_dir / "2024-02-29").glob("*.html")) == [
        "S2.html",
        "index.html",
        "mix.html",
    ]
    assert read(night / "S3.html").has(data_notice="failed")
    with pytest.raises(UnknownStore):
        write_night_reports(engine=engine, settings=settings, day=DAY, store_ids=["nope"])


def test_a_store_page_that_fails_leaves_the_others_and_the_index(
    engine: Engine, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.reports import build

    # in this process, where the broken page is patched in
    settings = reports_settings(tmp_path, db_url, reports={"workers": 1})
    demo_chain = build_demo_chain(engine, settings)
    real = build.store_page

    def broken(**kwargs: Any) -> str:
        if kwargs["row"].store_id == "S2":
            raise OSError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(build, "store_page", broken)
    report = write_night_reports(
        engine=engine, settings=demo_chain.settings, day=DAY, store_ids=["S1", "S2"], now=NOW
    )
    assert set(report.store_pages) == {"S1"}
    assert report.failed == {"S2": "OSError: disk full"}
    rows = rows_by(read(report.index).find("table", id="stores"), "data-store")
    assert rows["S1"].find("a") and not rows["S2"].has("a")

    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "auditor.toml"), "report", "--date", "2024-03-01"]
    )
    assert result.exit_code == 1
    assert "no page for store S2: OSError: disk full" in result.output
