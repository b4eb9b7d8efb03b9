"""The reports in a real browser: Debian's chromium, headless, driven by Playwright.

Opens the chain index, a store page, the list of nights and the purchase mix at a laptop width
(1280 px) and a tablet width (820 px) and fails on a console error, a script that runs, a
request for anything but the page itself and ``data:`` URIs, or a broken layout (the
flagged-sales table missing or empty while the night has flags, the page wider than the screen,
a chart or the evidence thumbnail not drawn, a figure of the list of nights or a share of the
purchase mix missing or cut off, a link that does not lead to the chain index).
The store page must also fit A4 paper when printed. Screenshots are saved under a temporary
folder whose path is printed.

Without chromium (or Playwright) the test is skipped, except under CI (``CI=true``), where it
fails: ``.ci/run`` installs chromium.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from auditor.reports import write_night_reports
from tests.reports.conftest import CHAIN_STORES, DAY, DemoChain, ScorecardChain

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"laptop": (1280, 900), "tablet": (820, 1180)}


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: .ci/run installs it)")
    pytest.skip(reason)


def chromium_path() -> str:
    path = os.environ.get("AUDITOR_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not path and Path("/usr/bin/chromium").is_file():
        path = "/usr/bin/chromium"
    if not path:
        _missing("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            offline=True,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report-screenshots")
    print(f"\nreport screenshots: {folder}")
    return folder


class PageLog:
    """What a page did: console errors, uncaught errors, dialogs, requests."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

        def route(route: Any) -> None:
            url = route.request.url
            if url.startswith(("file://", "data:")):
                route.continue_()
            else:
                self.blocked.append(url)
                route.abort()

        page.route("**/*", route)


def open_page(context: Any, path: Path, viewport: tuple[int, int]) -> tuple[Any, PageLog]:
    page = context.new_page()
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    log = PageLog()
    log.attach(page)
    page.goto(path.as_uri(), wait_until="load")
    return page, log


def assert_clean(log: PageLog, path: Path) -> None:
    assert log.errors == [], f"console errors on {path.name}: {log.errors}"
    assert log.dialogs == [], f"a script ran on {path.name}: {log.dialogs}"
    assert log.blocked == [], f"requests outside the file: {log.blocked}"
    outside = [u for u in log.requests if not u.startswith(("file://", "data:"))]
    assert outside == []


def assert_fits(page: Any, width: int) -> None:
    """The page does not scroll sideways: wide tables scroll inside their own box."""
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width + 1, f"page is {scroll_width} px wide on a {width} px screen"


def number(text: str) -> int:
    """A count as the pages print it (``1,234``)."""
    return int(text.strip().replace(",", ""))


def percent(text: str) -> float:
    """A share as the pages print it (``12.3 %``)."""
    assert text.strip().endswith(" %"), text
    return float(text.strip().removesuffix(" %"))


def assert_unclipped(cell: Any, table: Any) -> None:
    """``cell`` is on screen and within the scrolling box of ``table``, not cut off by it."""
    assert cell.is_visible()
    box, wrap = cell.bounding_box(), table.locator("xpath=..").bounding_box()
    assert box is not None and wrap is not None
    assert wrap["x"] - 1 <= box["x"] and box["x"] + box["width"] <= wrap["x"] + wrap["width"] + 1


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_reports_in_chromium(
    engine: Engine,
    demo_chain: DemoChain,
    browser_context: Any,
    screenshots: Path,
    screen: str,
) -> None:
    width, height = VIEWPORTS[screen]
    report = write_night_reports(engine=engine, settings=demo_chain.settings, day=DAY)

    # the chain index: every store, ranked, each linking to its page
    page, log = open_page(browser_context, report.index, (width, height))
    rows = page.locator("#stores tbody tr")
    assert rows.count() == 5
    assert page.locator("#stores").is_visible()
    assert_fits(page, width)
    page.screenshot(path=str(screenshots / f"index-{screen}.png"), full_page=True)
    page.locator('#stores tr[data-store="S1"] [data-field="store"] a').click()
    page.wait_for_load_state("load")
    assert page.url == report.store_pages["S1"].as_uri()
    assert_clean(log, report.index)
    page.close()

    # a store page with flags: the flagged-sales table is there, filled, and the evidence shows
    path = report.store_pages["S1"]
    page, log = open_page(browser_context, path, (width, height))
    flagged = page.locator("#flagged-sales")
    assert flagged.is_visible(), "flagged-sales table missing"
    flagged_rows = page.locator("#flagged-sales tbody tr")
    assert flagged_rows.count() == 5, "flagged-sales table empty while the night has flags"
    box = flagged.bounding_box()
    assert box is not None and box["height"] > 5 * 20 and box["width"] > width / 2
    thumbnail = page.locator('#flagged-sales tr[data-receipt="r-young"] img')
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth") == 112
    assert thumbnail.bounding_box()["width"] == pytest.approx(56, abs=1)
    # the cashier named <script> is text, and its script never ran
    cashier = page.locator('#flagged-sales tr[data-receipt="r-young"] [data-field="cashier"]')
    assert "<script>alert('cashier')</script>" in cashier.inner_text()
    assert page.locator("script").count() == 0
    svg = page.locator('figure[data-chart="trend"] svg')
    chart_box = svg.bounding_box()
    assert chart_box is not None and chart_box["width"] > 200
    assert chart_box["x"] + chart_box["width"] <= width + 1
    for chart in ("ages", "hours"):  # six sales tonight: too few, and the page says so
        assert page.locator(f'[data-empty-chart="{chart}"]').is_visible(), chart
    assert page.locator("#scorecard tbody tr").count() == 3
    assert_fits(page, width)
    page.screenshot(path=str(screenshots / f"store-{screen}.png"), full_page=True)
    # one click opens the evidence at a larger size
    thumbnail.click()
    assert thumbnail.bounding_box()["width"] == pytest.approx(168, abs=1)
    # printed on A4 (794 CSS px), the page still fits the paper's width
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 794, "height": 1123})
    assert flagged.is_visible()
    assert_fits(page, 794)
    if screen == "laptop":
        page.screenshot(path=str(screenshots / "store-print.png"), full_page=True)
    assert_clean(log, path)
    page.close()

    # a failed night says so
    page, log = open_page(browser_context, report.store_pages["S3"], (width, height))
    assert page.locator('[data-notice="failed"]').is_visible()
    assert_fits(page, width)
    assert_clean(log, report.store_pages["S3"])
    page.close()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_scorecard_and_cashier_pages_in_chromium(
    engine: Engine, scorecard_chain: ScorecardChain, browser_context: Any, screenshots: Path
) -> None:
    width, height = VIEWPORTS["laptop"]
    report = write_night_reports(engine=engine, settings=scorecard_chain.settings, day=DAY)

    # the store page: the scorecard, the cameras and the trends, no sideways scrolling
    path = report.store_pages["S1"]
    page, log = open_page(browser_context, path, (width, height))
    for table in ("#scorecard", "#cameras", "#flagged-sales"):
        assert page.locator(table).is_visible(), table
    assert page.locator("#scorecard tbody tr").count() == 4
    assert page.locator("#cameras tbody tr").count() == 4
    for chart in ("trend", "challenges", "ages", "hours"):
        svg = page.locator(f'figure[data-chart="{chart}"] svg')
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300, chart
        assert box["x"] + box["width"] <= width + 1, chart
    trend = page.locator('figure[data-chart="trend"] svg').bounding_box()
    assert trend is not None and trend["width"] > width * 0.7  # a whole row: dates readable
    assert_fits(page, width)
    page.screenshot(path=str(screenshots / "scorecard-store.png"), full_page=True)
    page.locator('#scorecard tr[data-cashier="C1"] a').click()
    page.wait_for_load_state("load")
    assert page.url == report.cashier_pages["S1"]["C1"].as_uri()
    assert_clean(log, path)
    page.close()

    # the cashier page: the weeks and the flagged sales with their faces
    path = report.cashier_pages["S1"]["C1"]
    page, log = open_page(browser_context, path, (width, height))
    assert page.locator("#cashier-weeks").is_visible()
    assert page.locator("#cashier-weeks tbody tr").count() == 5  # 31 nights
    assert page.locator("#flagged-sales").is_visible()
    assert page.locator("#flagged-sales tbody tr").count() > 10
    assert page.locator("#flagged-sales img").first.evaluate("i => i.complete && i.naturalWidth")
    assert_fits(page, width)
    page.screenshot(path=str(screenshots / "scorecard-cashier.png"), full_page=True)
    page.locator('nav a[data-nav="store"]').click()
    page.wait_for_load_state("load")
    assert page.url == report.store_pages["S1"].as_uri()
    assert_clean(log, path)
    page.close()

    # the chain index names the cashiers most at risk, linked to their pages
    page, log = open_page(browser_context, report.index, (width, height))
    at_risk = page.locator('#stores tr[data-store="S1"] [data-field="at_risk"] a')
    assert at_risk.count() == 3
    assert_fits(page, width)
    page.screenshot(path=str(screenshots / "scorecard-index.png"), full_page=True)
    assert_clean(log, report.index)
    page.close()


NIGHT_FIELDS = ("stores", "alcohol_sales", "flagged_sales", "flag_rate")
NIGHT_FIELDS += ("under_age", "open_reviews", "confirmed")


def row_cell(page: Any, day: date, field: str) -> Any:
    return page.locator(f'#nights tr[data-night="{day.isoformat()}"] [data-field="{field}"]')


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_list_of_nights_in_chromium(
    engine: Engine,
    demo_chain: DemoChain,
    browser_context: Any,
    screenshots: Path,
    screen: str,
) -> None:
    width, height = VIEWPORTS[screen]
    earlier = DAY - timedelta(days=1)
    first = write_night_reports(engine=engine, settings=demo_chain.settings, day=earlier)
    report = write_night_reports(engine=engine, settings=demo_chain.settings, day=DAY)
    assert report.nights_index == demo_chain.settings.report_dir / "index.html"
    path = report.nights_index
    chain_index = {DAY: report.index, earlier: first.index}

    # every night, newest first, each row and each of its figures on screen
    page, log = open_page(browser_context, path, (width, height))
    assert page.locator("#nights").is_visible()
    rows = page.locator("#nights tbody tr")
    assert [rows.nth(i).get_attribute("data-night") for i in range(rows.count())] == [
        DAY.isoformat(),
        earlier.isoformat(),
    ]
    shown: dict[str, dict[str, str]] = {}
    for day in chain_index:
        row = page.locator(f'#nights tr[data-night="{day.isoformat()}"]')
        assert row.is_visible(), day
        assert row.locator("a").is_visible(), day
        shown[day.isoformat()] = {}
        for field in NIGHT_FIELDS:
            cell = row.locator(f'[data-field="{field}"]')
            assert cell.is_visible(), (day, field)
            shown[day.isoformat()][field] = cell.inner_text().strip()
    # tonight of the demo chain: S1 flagged 5 of its 6 sales (r-young and r-purged under age),
    # S2's cameras were off (5 of 5); r-young is a confirmed violation, r-late decided, 8 open
    assert shown[DAY.isoformat()] == {
        "stores": "3",
        "alcohol_sales": "11",
        "flagged_sales": "10",
        "flag_rate": "90.9 %",
        "under_age": "2",
        "open_reviews": "8",
        "confirmed": "1",
    }
    assert "warn" in (row_cell(page, DAY, "under_age").get_attribute("class") or "")
    # the table needs no sideways scrolling of its own: no figure is cut off by its box
    for day in chain_index:
        for field in NIGHT_FIELDS:
            assert_unclipped(row_cell(page, day, field), page.locator("#nights"))
    assert_fits(page, width)
    page.screenshot(path=str(screenshots / f"nights-{screen}.png"), full_page=True)
    assert_clean(log, path)
    page.close()

    # each row leads to its night's chain index, which shows the same figures
    for day, index in chain_index.items():
        page, log = open_page(browser_context, path, (width, height))
        page.locator(f'#nights tr[data-night="{day.isoformat()}"] a').click()
        page.wait_for_load_state("load")
        assert page.url == index.as_uri()
        assert page.locator("#stores").is_visible()
        figures = shown[day.isoformat()]
        for field in ("alcohol_sales", "flagged_sales", "under_age", "open_reviews", "confirmed"):
            assert page.locator(f'#headline [data-figure="{field}"]').inner_text() == figures[field]
        footer = page.locator('#stores tfoot [data-field="flag_rate"]').inner_text()
        assert footer == figures["flag_rate"]
        assert_clean(log, path)
        page.close()


def check_mix_table(page: Any, scope: str, min_sales: int) -> tuple[dict[str, int], list[str]]:
    """The receipts of each age group of the mix table of ``scope`` and the groups with too few
    of them; checks that those show the notice and the others a share per category, adding up
    to 100 % (each share rounded to a whole per cent)."""
    table = page.locator(f'table.purchase-mix[data-scope="{scope}"]')
    categories = table.locator("thead th[data-category]").count()
    assert categories > 0
    receipts: dict[str, int] = {}
    few: list[str] = []
    rows = table.locator("tbody tr")
    for i in range(rows.count()):
        row = rows.nth(i)
        band = row.get_attribute("data-band") or ""
        assert row.is_visible(), (scope, band)
        n = receipts[band] = number(row.locator('[data-field="receipts"]').inner_text())
        notice = row.locator('[data-notice="few_receipts"]')
        shares = row.locator("td[data-category]")
        if n < min_sales:
            few.append(band)
            assert notice.is_visible(), (scope, band)
            assert "too few receipts" in notice.inner_text()
            assert shares.count() == 0, (scope, band)
            continue
        assert notice.count() == 0, (scope, band)
        assert shares.count() == categories, (scope, band)
        for j in range(categories):
            assert_unclipped(shares.nth(j), table)
        total = sum(percent(shares.nth(j).inner_text()) for j in range(categories))
        assert abs(total - 100) <= categories / 2, (scope, band, total)
    assert receipts, scope
    return receipts, few


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("screen", list(VIEWPORTS))
def test_purchase_mix_in_chromium(
    engine: Engine,
    demo_chain: DemoChain,
    browser_context: Any,
    screenshots: Path,
    screen: str,
) -> None:
    width, height = VIEWPORTS[screen]
    report = write_night_reports(engine=engine, settings=demo_chain.settings, day=DAY)
    assert report.mix_page is not None
    path = report.mix_page
    min_sales = demo_chain.settings.reports.min_sales_to_rank

    # the chain index links the mix page
    page, log = open_page(browser_context, report.index, (width, height))
    page.locator("#purchase-mix-link a").click()
    page.wait_for_load_state("load")
    assert page.url == path.as_uri()

    # the chain's table, then a heading per store with its table, or a notice without faces
    assert page.locator('table.purchase-mix[data-scope="chain"]').is_visible()
    headings = page.locator("h2[data-store]")
    stores = [headings.nth(i).get_attribute("data-store") or "" for i in range(headings.count())]
    assert sorted(stores) == sorted(s["id"] for s in CHAIN_STORES)
    with_table = []
    for store in stores:
        assert page.locator(f'h2[data-store="{store}"]').is_visible(), store
        table = page.locator(
            f'h2[data-store="{store}"] + .table-wrap > table[data-scope="{store}"]'
        )
        notice = page.locator(f'h2[data-store="{store}"] + p[data-notice="no_faces"]')
        assert table.count() + notice.count() == 1, store
        if table.count():
            with_table.append(store)
            assert table.is_visible(), store
        else:
            assert notice.is_visible(), store
    assert with_table == ["S1"]  # the demo chain's only faces are S1's

    # a group shows its shares with enough receipts, else the notice; the chain sums its stores
    chain, _ = check_mix_table(page, "chain", min_sales)
    by_store = {store: check_mix_table(page, store, min_sales) for store in with_table}
    summed: dict[str, int] = {}
    for receipts, _ in by_store.values():
        for band, n in receipts.items():
            summed[band] = summed.get(band, 0) + n
    assert chain == summed
    s1_receipts, s1_few = by_store["S1"]
    assert s1_few and len(s1_few) < len(s1_receipts)  # the demo chain has both kinds of group
    assert_fits(page, width)
    page.screenshot(path=str(screenshots / f"mix-{screen}.png"), full_page=True)

    # back up to the chain index
    page.locator('nav a[rel="up"]').click()
    page.wait_for_load_state("load")
    assert page.url == report.index.as_uri()
    assert page.locator("#stores").is_visible()
    assert_clean(log, path)
    page.close()
