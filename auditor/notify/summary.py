"""The messages of a nightly summary, from the night's figures. Pure.

Loss prevention (``[notify] loss_prevention``) gets the chain's summary: every store audited
in the night, with the totals; each store's managers (``[[stores]] managers``) get their
store's. A webhook (``[notify] webhook_url``) gets the chain's summary as JSON, with a
``text`` field that chat tools show as it is. Each message holds the headline figures and the
links to the reports and the review app; no face, no shopper, no name of a cashier.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlencode

from auditor.reports.render import render, store_filename
from auditor.settings import Settings
from auditor.vocabulary import RunStatus


@dataclass(frozen=True)
class StoreNight:
    """The headline figures of one store-night: ``status`` is the audit's (``succeeded``,
    ``failed`` or ``refused``); the counts are of alcohol sales, not of flags."""

    store_id: str
    name: str
    business_date: date
    status: str
    alcohol_sales: int = 0
    flagged_sales: int = 0
    under_age_sales: int = 0
    open_sales: int = 0  # flagged sales with a flag no one has decided on yet
    error: str | None = None

    @property
    def audited(self) -> bool:
        return self.status == RunStatus.SUCCEEDED


@dataclass(frozen=True)
class Message:
    key: str  # the night and scope, e.g. 2026-11-30/store/S1
    channel: str  # email or webhook
    recipient: str
    subject: str
    body: str
    html: str | None = None


@dataclass(frozen=True)
class Links:
    """Where the reports and the review app are served (None: no links)."""

    reports_url: str | None = None
    review_url: str | None = None

    def chain_index(self, day: date) -> str | None:
        return _join(self.reports_url, f"{day.isoformat()}/index.html")

    def store_page(self, store_id: str, day: date) -> str | None:
        return _join(self.reports_url, f"{day.isoformat()}/{store_filename(store_id)}.html")

    def review(self, days: Sequence[date], store_id: str | None = None) -> str | None:
        if self.review_url is None:
            return None
        query = {"from": min(days).isoformat(), "to": max(days).isoformat()}
        if store_id is not None:
            query["store"] = store_id
        return _join(self.review_url, "flags?" + urlencode(query))


def _join(base: str | None, path: str) -> str | None:
    return None if base is None else base.rstrip("/") + "/" + path


@dataclass(frozen=True)
class Summary:
    """The figures of one scope: the chain's (every store of the night) or one store's."""

    scope: str  # "chain" or the store's id
    title: str
    nights: list[StoreNight]
    links: Links = field(default_factory=Links)

    @property
    def days(self) -> list[date]:
        return sorted({n.business_date for n in self.nights})

    @property
    def key(self) -> str:
        night = "+".join(d.isoformat() for d in self.days)
        return f"{night}/chain" if self.scope == "chain" else f"{night}/store/{self.scope}"

    def total(self, name: str) -> int:
        return sum(int(getattr(n, name)) for n in self.nights if n.audited)

    @property
    def failed(self) -> list[StoreNight]:
        return [n for n in self.nights if not n.audited]

    @property
    def subject(self) -> str:
        nights = ", ".join(d.isoformat() for d in self.days)
        text = (
            f"{self.title}, {nights}: {self.total('under_age_sales')} under-age flagged sales, "
            f"{self.total('open_sales')} open"
        )
        if self.failed:
            text += f"; {len(self.failed)} audit{'s' if len(self.failed) > 1 else ''} failed"
        return text

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                **asdict(n),
                "business_date": n.business_date.isoformat(),
                "report_url": self.links.store_page(n.store_id, n.business_date),
            }
            for n in sorted(self.nights, key=lambda n: (n.business_date, n.store_id))
        ]

    def review_link(self) -> str | None:
        return self.links.review(self.days, None if self.scope == "chain" else self.scope)

    def index_links(self) -> list[str]:
        if self.scope != "chain":
            return []
        return [u for u in (self.links.chain_index(d) for d in self.days) if u is not None]

    def text(self) -> str:
        lines = [self.subject, ""]
        for n in sorted(self.nights, key=lambda n: (n.business_date, n.store_id)):
            head = f"{n.name or n.store_id} ({n.store_id}), {n.business_date.isoformat()}"
            if not n.audited:
                lines.append(f"{head}: audit {n.status}: {n.error or 'see the logs'}")
                continue
            lines.append(
                f"{head}: {n.alcohol_sales} alcohol sales, {n.flagged_sales} flagged, "
                f"{n.under_age_sales} under age, {n.open_sales} open"
            )
            page = self.links.store_page(n.store_id, n.business_date)
            if page:
                lines.append(f"  report: {page}")
        if len(self.nights) > 1:
            lines += [
                "",
                f"All stores: {self.total('alcohol_sales')} alcohol sales, "
                f"{self.total('flagged_sales')} flagged, {self.total('under_age_sales')} under "
                f"age, {self.total('open_sales')} open",
            ]
        lines += [f"Chain index: {u}" for u in self.index_links()]
        if self.review_link():
            lines.append(f"Review the open flags: {self.review_link()}")
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        return render("notify/summary.html", summary=self)

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON: the figures, the links, and the text for chat tools."""
        return {
            "type": "nightly_summary",
            "scope": self.scope,
            "title": self.title,
            "nights": [d.isoformat() for d in self.days],
            "totals": {
                name: self.total(name)
                for name in ("alcohol_sales", "flagged_sales", "under_age_sales", "open_sales")
            },
            "failed_audits": len(self.failed),
            "stores": self.rows(),
            "links": {"chain_index": self.index_links(), "review": self.review_link()},
            "text": self.text(),
        }


def summaries(settings: Settings, nights: Sequence[StoreNight]) -> list[Summary]:
    """The chain's summary, then one per store of the night."""
    if not nights:
        return []
    links = Links(settings.reports_url, settings.review_url)
    chain = Summary("chain", settings.chain.name, list(nights), links)
    stores = sorted({n.store_id for n in nights})
    per_store = [
        Summary(
            s,
            next(n.name for n in nights if n.store_id == s) or s,
            [n for n in nights if n.store_id == s],
            links,
        )
        for s in stores
    ]
    return [chain, *per_store]


def messages(settings: Settings, nights: Sequence[StoreNight]) -> list[Message]:
    """Every message of the night: the chain's to loss prevention and the webhook, each
    store's to its managers."""
    out: list[Message] = []
    for summary in summaries(settings, nights):
        if summary.scope == "chain":
            recipients = settings.notify.loss_prevention
            if settings.notify.webhook_url is not None:
                body = json.dumps(summary.payload(), sort_keys=True)
                out.append(
                    Message(
                        summary.key, "webhook", settings.notify.webhook_url, summary.subject, body
                    )
                )
        else:
            store = settings.store(summary.scope)
            recipients = store.managers if store is not None else []
        if recipients:
            text, html = summary.text(), summary.html()
            out += [
                Message(summary.key, "email", r, summary.subject, text, html)
                for r in dict.fromkeys(recipients)
            ]
    return out
