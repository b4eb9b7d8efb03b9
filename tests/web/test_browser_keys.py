"""A loss-prevention desk's night in a real headless Chromium: twenty flags of a filtered list
reviewed with the keyboard alone, then the audit log shows the twenty decisions. The server and
the browser are those of :mod:`tests.web.test_browser`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.settings import Settings
from auditor.vocabulary import Decision, FlagKind
from tests.review_data import ChainBuilder, Made
from tests.web.test_browser import _log_in, browser, server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

FLAGS = 20
MAX_PRESSES = 45


@pytest.fixture
def desk(engine: Engine, web_settings: Settings, chain: Made) -> Made:
    """S1's night of 2 March: twenty sales without a frame, among other flags that night and
    camera faults of another night and store."""
    with Session(engine) as session:
        build = ChainBuilder(session, web_settings, made=chain)
        night = datetime(2024, 3, 2, 16, 0, tzinfo=UTC)
        for i in range(FLAGS):
            build.sale(
                f"nf{i:02}",
                night + timedelta(minutes=7 * i),
                kinds=(FlagKind.NO_FRAME,),
                age=None,
                frame=False,
            )
        for i in range(3):
            build.sale(f"late{i}", night + timedelta(hours=5, minutes=i), age=17.0)
            build.sale(
                f"other{i}",
                night + timedelta(days=1, minutes=i),
                kinds=(FlagKind.NO_FRAME,),
                age=None,
                frame=False,
            )
        session.commit()
        return build.made


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_twenty_flags_with_the_keyboard_alone(
    server: str,  # noqa: F811
    browser,  # noqa: F811
    desk: Made,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = browser.new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    _log_in(page, server, "lp")

    # the decision form sits beside the evidence, in view without scrolling
    page.goto(f"{server}/flags/{desk.flags['s1-late']}")
    page.screenshot(path=str(shots / "1-flag-1280x800.png"))
    for selector in ("#decision", "#save-next", "#frame img"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 800, selector
    assert page.locator("#keys").is_visible()

    listed = f"{server}/flags?kind={FlagKind.NO_FRAME}&date=2024-03-02"
    page.goto(listed)
    assert page.locator("#flagged-sales tbody tr").count() == FLAGS
    assert page.locator("[data-figure=matched]").inner_text() == str(FLAGS)
    key = str(list(Decision).index(Decision.INVALID_FRAME) + 1)
    presses = 0

    def press(name: str) -> None:
        nonlocal presses
        presses += 1
        page.keyboard.press(name)

    with page.expect_navigation():
        press("j")  # the first flag of the list
    seen = []
    for _ in range(FLAGS):
        seen.append(page.url.split("?")[0].rsplit("/", 1)[1])
        assert "kind=no_frame" in page.url
        press(key)
        assert page.locator(f"input[name=decision][value={Decision.INVALID_FRAME}]").is_checked()
        with page.expect_navigation():
            press("Enter")
    assert presses <= MAX_PRESSES
    assert seen == [str(desk.flags[f"nf{i:02}"]) for i in range(FLAGS - 1, -1, -1)]
    assert "last flagged sale of the list" in page.locator(".messages").inner_text()
    assert page.locator("#flagged-sales tbody tr").count() == 0
    page.screenshot(path=str(shots / "2-list-done.png"), full_page=True)

    page.click("button.link")  # log out
    page.wait_for_load_state()
    _log_in(page, server, "admin")
    page.goto(f"{server}/audit-log?action=review")
    rows = page.locator("#audit-log tbody tr")
    assert rows.count() == FLAGS
    text = page.locator("#audit-log").inner_text()
    assert text.count(f"decision: {Decision.INVALID_FRAME.label}") == FLAGS
    for flag_id in seen:
        assert f"flag {flag_id}" in text
    page.screenshot(path=str(shots / "3-audit-log.png"), full_page=True)
