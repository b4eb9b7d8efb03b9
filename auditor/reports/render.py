"""The one Jinja2 environment of the auditor's HTML pages, and safe writing of the pages.

Templates live in the repository's ``templates/`` folder (installed from a wheel: its copy in
the package, see :mod:`auditor.resources`): ``base.html`` (layout and inline CSS), ``report/``
(the report pages and their ``_`` partials), ``review/`` (the review app's pages). Autoescape is
on for every template, so any text from the POS (a cashier called ``<script>``) shows as text;
the only values marked safe are the SVG charts this package draws. Filters are registered once,
here, by :func:`configure`.

The review app renders through Flask's environment, given the same templates (:data:`TEMPLATES`)
and set up by :func:`configure`; its pages may also embed :func:`flagged_sales_table`, which
renders the flagged-sales partial with the same styles.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from auditor.reports.figures import FlaggedSale
from auditor.resources import shipped_folder
from auditor.vocabulary import (
    NOT_REVIEWED,
    Decision,
    Evidence,
    FlagKind,
    NightState,
    ReviewFilter,
    RunStatus,
    decision_label,
    kind_label,
    kind_short,
)

TEMPLATES = shipped_folder("templates")

DASH = "–"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


# -- filters -------------------------------------------------------------------------------------


def fmt_num(value: float | int | None, digits: int = 0) -> str:
    """``1,234`` or ``12.5``; a dash for a missing value."""
    if value is None or value != value:  # None or NaN
        return DASH
    return f"{value:,.{digits}f}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage (``0.123`` -> ``12.3 %``); a dash when missing."""
    if value is None or value != value:
        return DASH
    return f"{100 * value:.{digits}f} %"


def fmt_points(value: float | None, digits: int = 1) -> str:
    """A change of a rate in signed percentage points (``+3.2 pts``); a dash when missing."""
    if value is None or value != value:
        return DASH
    points = round(100 * value, digits)
    if points == 0:
        return f"±{0:.{digits}f} pts"
    return f"{'+' if points > 0 else '−'}{abs(points):.{digits}f} pts"


def fmt_interval(interval: tuple[float, float] | None, digits: int = 1) -> str:
    """An interval of rates in percent, ``3.1–11.9 %``; a dash when there is none."""
    if interval is None:
        return DASH
    low, high = (f"{100 * v:.{digits}f}" for v in interval)
    return f"{low}–{high} %"


def fmt_age(age: float | None, spread: float | None = None) -> str:
    """``19.4 ± 2.1`` years (no spread: ``19.4``); a dash without an estimate."""
    if age is None or age != age:
        return DASH
    if spread is None or spread != spread:
        return f"{age:.1f}"
    return f"{age:.1f} ± {spread:.1f}"


def fmt_clock(value: datetime | None, with_zone: bool = False) -> str:
    """A store-local time of day, ``21:15:03`` (``21:15:03 CET`` when asked)."""
    if value is None:
        return DASH
    return value.strftime("%H:%M:%S %Z" if with_zone else "%H:%M:%S")


def fmt_when(value: datetime | None) -> str:
    """A store-local date and time with its zone, ``2024-03-02 02:41 CET``."""
    if value is None:
        return DASH
    return value.strftime("%Y-%m-%d %H:%M %Z")


def fmt_local_when(value: datetime | None, zone: str) -> str:
    """An aware instant shown in IANA zone ``zone``, like :func:`fmt_when`."""
    if value is None or value != value:  # None or NaT
        return DASH
    return fmt_when(value.astimezone(ZoneInfo(zone)))


def fmt_day(value: date) -> str:
    """``Friday 1 March 2024``."""
    return f"{value:%A} {value.day} {value:%B %Y}"


def fmt_p_under(p: float | None, age: float | int | None) -> str:
    """The probability of a shopper under ``age``: ``P(<18) 0.93``; a dash when missing."""
    if p is None or p != p:
        return DASH
    limit = DASH if age is None or age != age else f"{age:g}"
    return f"P(<{limit}) {p:.2f}"


def jpeg_uri(data: bytes | None) -> str:
    """A JPEG as a ``data:`` URI, to embed it in the page; empty when it is not a JPEG."""
    if not data or not data.startswith(b"\xff\xd8"):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def sentence(text: str) -> str:
    """``text`` with its first letter in upper case, the rest as it is (``ID`` stays)."""
    return text[:1].upper() + text[1:]


FILTERS: dict[str, Callable[..., Any]] = {
    "num": fmt_num,
    "pct": fmt_pct,
    "points": fmt_points,
    "interval": fmt_interval,
    "age": fmt_age,
    "p_under": fmt_p_under,
    "clock": fmt_clock,
    "when": fmt_when,
    "local_when": fmt_local_when,
    "day": fmt_day,
    "jpeg_uri": jpeg_uri,
    "kind_label": kind_label,
    "kind_short": kind_short,
    "decision_label": decision_label,
    "sentence": sentence,
}
# The names templates compare with and the labels they show come from the one vocabulary.
GLOBALS: dict[str, Any] = {
    "FlagKind": FlagKind,
    "Decision": Decision,
    "RunStatus": RunStatus,
    "NightState": NightState,
    "Evidence": Evidence,
    "ReviewFilter": ReviewFilter,
    "NOT_REVIEWED": NOT_REVIEWED,
}


def configure(env: jinja2.Environment) -> jinja2.Environment:
    """Give ``env`` the pages' whitespace rules, filters and globals; before it loads a template."""
    env.trim_blocks = env.lstrip_blocks = True
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS)
    return env


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment: the templates of :data:`TEMPLATES`, autoescape on, strict."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return configure(env)


def template(name: str) -> jinja2.Template:
    return environment().get_template(name)


def render(name: str, **context: Any) -> str:
    """Render template ``name`` (e.g. ``report/store.html``) with ``context``."""
    return template(name).render(**context)


def flagged_sales_table(
    rows: Sequence[FlaggedSale],
    *,
    with_zone: bool = False,
    review_links: Mapping[int, str] | None = None,
    select_form: str = "",
    with_date: bool = False,
    with_store: bool = False,
    sort_links: Mapping[str, Mapping[str, str]] | None = None,
    sorted_by: str = "",
    ascending: bool = False,
) -> Markup:
    """The flagged-sales table (``report/_flagged_sales.html``) as HTML to place in a page.

    ``rows`` come from :func:`auditor.reports.figures.flagged_sales`; ``with_zone`` adds the
    zone to each time (nights when the clocks change); ``review_links`` maps a sale id to a
    URL, shown as a "review" link in the row; ``select_form`` (a form's id) starts each row with
    a box that ticks the sale in that form; ``with_date`` shows each sale's local date with its
    time and ``with_store`` its store (a list of several nights or stores); ``sort_links``
    makes column heads (``time``, ``store``, ``cashier``, ``age``, ``flags``) links
    (``{"href": ..., "title": ...}``), ``sorted_by`` marks the column of the order (``ascending``
    or not). The page must extend ``base.html`` for the styles.
    """
    macro = template("report/_flagged_sales.html").module.flagged_sales  # type: ignore[attr-defined]
    return Markup(
        macro(
            rows,
            with_zone=with_zone,
            review_links=review_links or {},
            select_form=select_form,
            with_date=with_date,
            with_store=with_store,
            sort_links=sort_links or {},
            sorted_by=sorted_by,
            ascending=ascending,
        )
    )


# -- files ---------------------------------------------------------------------------------------


def store_filename(store_id: str) -> str:
    """A file name (without ``.html``) for a store id that is safe on any file system.

    Letters, digits, ``-`` and ``_`` are kept; an id with anything else (or one named like the
    index or the purchase-mix page) gets its other characters replaced and a short hash of the
    id appended, so two ids never share a file.
    """
    safe = _SAFE_NAME.sub("_", store_id)[:48]
    if safe == store_id and safe.casefold() not in ("index", "mix") and safe:
        return safe
    digest = hashlib.sha256(store_id.encode("utf-8")).hexdigest()[:10]
    return f"{safe or 'store'}-{digest}"


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid4().hex[:12]}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
