"""The reports of the demo chain, as ``auditor demo`` renders them after its real audit (real
faces, the bundled age model), read back and set against the demo's database.

A small chain: Berlin (clocks go forward on 31 March 2024) and Sydney, two nights, 15 alcohol
sales per store and night.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from auditor.cli import main
from auditor.db import make_engine
from auditor.db.models import AuditRun, Flag, Sale, SaleVerdict
from auditor.demo.datasets import datasets_dir
from auditor.reports.render import store_filename
from auditor.settings import Settings, load_settings
from auditor.vocabulary import AGE_KINDS, FlagKind
from tests.reports.html import Element, read

pytestmark = pytest.mark.slow

DEMO_ARGS = ["--seed", "7", "--stores", "2", "--days", "2", "--sales-per-day", "15"]
MODEL_DIR = Path(__file__).resolve().parents[2] / "model" / "bundled"


@dataclass
class DemoReports:
    settings: Settings
    engine: Engine
    nights: list[tuple[str, date]]  # (store, business date) audited


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoReports]:
    if not (datasets_dir() / "faces200" / "labels.csv").is_file():
        pytest.skip(f"no faces200 under {datasets_dir()}")
    if not (MODEL_DIR / "model_card.json").is_file():
        pytest.skip(f"no bundled model in {MODEL_DIR}")
    folder = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["demo", "--out", str(folder), *DEMO_ARGS])
    assert result.exit_code == 0, result.output
    settings = load_settings(folder / "auditor.toml")
    engine = make_engine(settings.database_url)
    with engine.connect() as c:
        nights = [
            (r.store_id, r.business_date)
            for r in c.execute(
                sa.select(AuditRun.store_id, AuditRun.business_date)
                .where(AuditRun.status == "succeeded")
                .order_by(AuditRun.business_date, AuditRun.store_id)
            )
        ]
    assert nights
    yield DemoReports(settings, engine, nights)
    engine.dispose()


def db_verdicts(engine: Engine, store_id: str, day: date) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            sa.select(
                Sale.id,
                Sale.receipt_id,
                Sale.cashier_id,
                SaleVerdict.frames_matched,
                SaleVerdict.faces_found,
                SaleVerdict.flag_kinds,
            )
            .join(SaleVerdict, SaleVerdict.sale_id == Sale.id)
            .join(AuditRun, AuditRun.id == SaleVerdict.run_id)
            .where(
                AuditRun.store_id == store_id,
                AuditRun.business_date == day,
                AuditRun.status == "succeeded",
            )
        )
        return [dict(r._mapping) for r in rows]


def kinds(v: dict[str, Any]) -> list[str]:
    return [k for k in v["flag_kinds"].split(";") if k]


def body_rows(table: Element, attribute: str) -> dict[str, Element]:
    return {tr.attrs[attribute]: tr for tr in table.find("tbody").find_all("tr")}


def test_chain_index_of_each_night_matches_the_database(demo: DemoReports) -> None:
    for day in sorted({d for _, d in demo.nights}):
        index = read(demo.settings.report_dir / day.isoformat() / "index.html")
        rows = body_rows(index.find("table", id="stores"), "data-store")
        for store_id in [s for s, d in demo.nights if d == day]:
            verdicts = db_verdicts(demo.engine, store_id, day)
            row = rows[store_id]
            assert row.field("alcohol_sales") == str(len(verdicts))
            assert row.field("flagged_sales") == str(sum(bool(kinds(v)) for v in verdicts))
            assert row.field("faces_found") == str(sum(v["faces_found"] > 0 for v in verdicts))
            for kind in FlagKind:
                assert row.field(kind) == str(sum(kind in kinds(v) for v in verdicts)), kind
        ranks = [int(r.field("rank")) for r in rows.values()]
        assert ranks == list(range(1, len(rows) + 1))


def test_store_pages_list_every_flagged_sale_with_its_face(demo: DemoReports) -> None:
    crops_seen = 0
    for store_id, day in demo.nights:
        path = demo.settings.report_dir / day.isoformat() / f"{store_filename(store_id)}.html"
        page = read(path)
        verdicts = db_verdicts(demo.engine, store_id, day)
        flagged = {v["receipt_id"]: v for v in verdicts if kinds(v)}
        headline = page.find(id="headline")
        assert headline.find(data_figure="alcohol_sales").text == str(len(verdicts))
        assert headline.find(data_figure="flagged_sales").text == str(len(flagged))
        if not flagged:
            assert page.has(data_notice="no_flags")
            continue
        rows = body_rows(page.find("table", id="flagged-sales"), "data-receipt")
        assert set(rows) == set(flagged)
        with demo.engine.connect() as c:
            found = c.execute(
                sa.select(Sale.receipt_id, Flag.face_crop)
                .join(Sale, Sale.id == Flag.sale_id)
                .join(AuditRun, AuditRun.id == Flag.run_id)
                .where(
                    AuditRun.store_id == store_id,
                    AuditRun.business_date == day,
                    AuditRun.status == "succeeded",
                    Flag.kind.in_([str(k) for k in AGE_KINDS]),
                )
            ).all()
        crops: dict[str, set[bytes]] = {}
        for receipt_id, crop in found:  # every under-age flag of a sale keeps its face
            if crop:
                crops.setdefault(receipt_id, set()).add(bytes(crop))
        for receipt_id, row in rows.items():
            shown = [t.attrs["data-kind"] for t in row.find_all(data_kind=True)]
            assert shown == kinds(flagged[receipt_id])
            images = row.find_all("img")
            if receipt_id in crops:
                (image,) = images
                data = image.attrs["src"].removeprefix("data:image/jpeg;base64,")
                assert base64.b64decode(data) in crops[receipt_id]
                crops_seen += 1
            else:
                assert images == []
        # faces appear only in the flagged-sales table, one per under-age sale with a crop
        assert len(page.find_all("img")) == len(crops)
    assert crops_seen > 0
