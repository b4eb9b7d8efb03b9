"""The flag list in a real headless Chromium: column heads that sort it (keeping the filters),
and the list and a flag's page usable at 390 px wide without sideways scrolling. The server
and the browser are those of :mod:`tests.web.test_browser`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from auditor.settings import Settings
from tests.review_data import Made
from tests.web.test_browser import _log_in, browser, server  # noqa: F401 (fixtures)
from tests.web.test_risk import risky_night

pytestmark = pytest.mark.browser


def _listed(page) -> list[str | None]:  # type: ignore[no-untyped-def]
    rows = page.locator("#flagged-sales tbody tr")
    return [rows.nth(i).get_attribute("data-receipt") for i in range(rows.count())]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_column_heads_sort_the_list_and_keep_the_filters(
    server: str,  # noqa: F811
    browser,  # noqa: F811
    chain: Made,
    engine: Engine,
    web_settings: Settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    risky_night(engine, web_settings, chain)
    page = browser.new_page()
    _log_in(page, server, "lp")
    page.goto(f"{server}/flags?status=all&store=S1")
    by_risk = _listed(page)
    assert page.locator("th[aria-sort] a.sort").get_attribute("data-sort") == "flags"

    page.click("a.sort[data-sort=age]")
    page.wait_for_load_state()
    assert "sort=age" in page.url and "store=S1" in page.url and "status=all" in page.url
    ages = page.locator("#flagged-sales tbody [data-field=age]").all_inner_texts()
    numbers = [float(a.split()[0]) for a in ages if a.strip() != "–"]
    assert numbers == sorted(numbers) and len(numbers) > 3  # youngest first
    assert [a.strip() for a in ages][len(numbers) :] == ["–"] * (len(ages) - len(numbers))
    assert page.locator("th[aria-sort=ascending] a.sort").get_attribute("data-sort") == "age"
    assert sorted(_listed(page)) == sorted(by_risk)  # the same sales, in another order

    page.click("a.sort[data-sort=time]")
    page.wait_for_load_state()
    assert "sort=newest" in page.url and "store=S1" in page.url
    newest = _listed(page)
    page.click("a.sort[data-sort=time]")  # again: the other way round
    page.wait_for_load_state()
    assert "sort=oldest" in page.url
    assert _listed(page) == list(reversed(newest))
    page.screenshot(path=str(tmp_path / "sorted-oldest.png"), full_page=True)

    page.goto(f"{server}/flags?status=all")
    page.click("a.sort[data-sort=store]")
    page.wait_for_load_state()
    stores = page.locator("#flagged-sales tbody [data-field=store]").all_inner_texts()
    assert stores == sorted(stores) and set(stores) == {"S1", "S2"}
    page.click("a.sort[data-sort=cashier]")
    page.wait_for_load_state()
    assert "sort=cashier" in page.url and "status=all" in page.url
    page.click("a.sort[data-sort=flags]")
    page.wait_for_load_state()
    assert "sort=" not in page.url  # by risk, the default
    page.goto(f"{server}/flags?status=all&store=S1")
    assert _listed(page) == by_risk


def _fits(page) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_the_list_and_a_flag_fit_a_phone(
    server: str,  # noqa: F811
    browser,  # noqa: F811
    chain: Made,
    engine: Engine,
    web_settings: Settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    risky_night(engine, web_settings, chain)
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    _log_in(page, server, "lp")
    page.goto(f"{server}/flags?status=all")
    page.screenshot(path=str(tmp_path / "list-390.png"), full_page=True)
    assert _fits(page), page.evaluate("document.documentElement.scrollWidth")
    row = page.locator("#flagged-sales tbody tr").first
    box = row.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    # nothing in a row's cells spills out of its cell, nor one cell over another
    spills = page.evaluate(
        """() => [...document.querySelectorAll('#flagged-sales tbody td')]
            .filter(td => td.scrollWidth > td.clientWidth + 1).map(td => td.dataset.field)"""
    )
    assert spills == []
    overlaps = page.evaluate(
        """() => [...document.querySelectorAll('#flagged-sales tbody tr')].flatMap(tr => {
            const boxes = [...tr.children]
                .map(td => [td.dataset.field, td.getBoundingClientRect()]);
            return boxes.flatMap(([a, p], i) => boxes.slice(i + 1).filter(([b, q]) =>
                p.left < q.right - 1 && q.left < p.right - 1 &&
                p.top < q.bottom - 1 && q.top < p.bottom - 1).map(([b]) => a + '/' + b));
        })"""
    )
    assert overlaps == []
    review = row.get_by_role("link", name="review")
    assert review.is_visible()
    review.click()
    page.wait_for_load_state()
    page.screenshot(path=str(tmp_path / "flag-390.png"), full_page=True)
    assert _fits(page), page.evaluate("document.documentElement.scrollWidth")
    assert page.locator("#decision button#save-next").is_visible()
    cards = page.evaluate(
        """() => [...document.querySelectorAll('#facts .card .value')].map(v =>
            v.getBoundingClientRect().height / parseFloat(getComputedStyle(v).lineHeight))"""
    )
    assert cards and all(lines < 1.5 for lines in cards)  # one line each, never wrapped
