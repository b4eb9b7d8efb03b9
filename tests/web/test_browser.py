"""The review app in a real headless Chromium (Playwright driving Debian's chromium), against
the real server started by `auditor serve` on a free local port.

Without chromium (or Playwright) the test is skipped, except under CI (``CI=true``), where it
fails. Screenshots go to the test's temporary folder (``screenshots/``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from auditor.settings import Settings
from tests.review_data import PASSWORD, Made
from tests.web.test_risk import BY_RISK, NEWEST, risky_night

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("AUDITOR_TEST_CHROMIUM", "/usr/bin/chromium")
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


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(chain: Made, tmp_path: Path) -> Iterator[str]:
    """`auditor serve` on the test database (the settings file of ``web_settings``)."""
    port = _free_port()
    auditor = Path(sys.executable).parent / "auditor"
    config = tmp_path / "auditor.toml"
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [str(auditor), "--config", str(config), "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/login", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    pytest.fail(f"auditor serve did not start: {log.read_text()}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def _log_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_manager_reviews_a_flag_and_another_store_cannot_reach_it(
    server: str,
    browser,
    chain: Made,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_page()

    _log_in(page, server, "mgr1")
    assert page.url == f"{server}/flags"
    rows = page.locator("#flagged-sales tbody tr")
    assert rows.nth(0).get_attribute("data-receipt") == "s1-late"  # newest first
    assert rows.count() == 2
    page.screenshot(path=str(shots / "1-open-flags.png"), full_page=True)

    rows.nth(0).get_by_role("link", name="review").click()
    page.wait_for_load_state()
    flag_url = page.url
    assert flag_url == f"{server}/flags/{chain.flags['s1-late']}"
    assert "17.0 ± 1.5" in page.locator("[data-figure=age]").inner_text()
    for image in ("#face", "#frame img"):
        loaded = page.locator(image).evaluate("img => img.complete && img.naturalWidth > 0")
        assert loaded, f"{image} did not load"
    assert page.locator("#receipt").inner_text().count("Pils 0.5 l") == 1
    page.screenshot(path=str(shots / "2-flag.png"), full_page=True)

    page.check("input[name=decision][value=id_checked]")
    page.fill("#comment", "Asked for ID, the customer showed a passport")
    page.click("#decision button[type=submit]")
    page.wait_for_load_state()
    assert page.url == f"{server}/flags"
    assert "ID was checked" in page.locator(".messages").inner_text()
    assert page.locator('#flagged-sales tr[data-receipt="s1-late"]').count() == 0  # not open
    page.click("a[data-status=reviewed]")
    page.wait_for_load_state()
    row = page.locator('#flagged-sales tr[data-receipt="s1-late"]')
    assert row.locator("[data-decision=id_checked]").count() == 1
    page.screenshot(path=str(shots / "3-reviewed.png"), full_page=True)

    page.click("button.link")  # log out
    page.wait_for_load_state()
    _log_in(page, server, "mgr2")
    response = page.goto(flag_url)
    assert response is not None and response.status == 404
    assert "s1-late" not in page.content()
    response = page.goto(f"{flag_url}/face.jpg")
    assert response is not None and response.status == 404
    page.screenshot(path=str(shots / "4-other-store-404.png"), full_page=True)

    page.click("button.link")
    page.wait_for_load_state()
    _log_in(page, server, "analyst")
    assert page.url == f"{server}/analytics/threshold"
    assert page.locator("[data-chart=threshold] svg").count() == 1
    assert page.locator("#thresholds tbody tr").count() == 15
    assert page.locator("img").count() == 0  # no face anywhere
    page.screenshot(path=str(shots / "5-threshold.png"), full_page=True)
    response = page.goto(f"{flag_url}/frame.jpg")
    assert response is not None and response.status == 403


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_cookie_kept_from_before_logout_gets_the_login_page(
    server: str,
    browser,
    chain: Made,  # type: ignore[no-untyped-def]
) -> None:
    page = browser.new_page()
    _log_in(page, server, "mgr1")
    assert page.url == f"{server}/flags"
    saved = [c for c in browser.cookies() if c["name"] == "auditor_session"]
    assert saved
    response = page.goto(f"{server}/flags?page=99999999999999999999")
    assert response is not None and response.status == 200  # clamped, not a server error
    page.click("button.link")  # log out
    page.wait_for_load_state()
    browser.add_cookies(saved)  # the cookie put back, as a thief who copied it would
    page.goto(f"{server}/flags")
    assert page.url.startswith(f"{server}/login")
    assert page.locator("#username").count() == 1


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_managers_list_shows_the_likely_minors_first(
    server: str,
    browser,
    chain: Made,
    engine: Engine,
    web_settings: Settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    risky_night(engine, web_settings, chain)  # the server reads the database on each request
    page = browser.new_page()
    _log_in(page, server, "mgr1")
    assert page.url == f"{server}/flags"

    def listed() -> list[str | None]:
        rows = page.locator("#flagged-sales tbody tr")
        return [rows.nth(i).get_attribute("data-receipt") for i in range(rows.count())]

    assert listed() == BY_RISK
    assert page.locator("select[name=sort]").input_value() == "risk"
    first_minor = page.locator('#flagged-sales tr[data-receipt="minor"]')
    assert first_minor.locator("[data-field=p_under_legal]").inner_text() == "P(<21) 0.93"
    assert first_minor.locator("[data-field=p_under_legal]").is_visible()
    assert first_minor.locator("[data-field=date]").inner_text() == "2024-03-02"
    # the borrowed ID and the birth date under age head the list, above the fold
    for receipt in BY_RISK[:3]:
        row = page.locator(f'#flagged-sales tr[data-receipt="{receipt}"]')
        assert row.evaluate("tr => tr.getBoundingClientRect().top < window.innerHeight"), receipt
    page.screenshot(path=str(tmp_path / "risk-list.png"), full_page=True)

    page.select_option("select[name=sort]", "newest")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    assert "sort=newest" in page.url
    assert listed() == NEWEST
    page.select_option("select[name=sort]", "risk")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    assert listed() == BY_RISK

    # the first sale's review opens the borrowed ID; "next" goes down the list by risk
    page.locator("#flagged-sales tbody tr").nth(0).get_by_role("link", name="review").click()
    page.wait_for_load_state()
    assert "ID contradicts face" in page.locator("h1").inner_text()
    page.click("a[rel=next]")
    page.wait_for_load_state()
    assert "receipt birth" in page.locator("h1").inner_text()
