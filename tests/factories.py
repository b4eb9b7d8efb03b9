"""Builders for test inputs: settings files, POS exports, snapshot folders and manifests."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tomli_w

from auditor.ingest.pos import SALES_COLUMNS
from auditor.settings import Settings, load_settings

STORES = [
    {"id": "S1", "name": "Berlin Mitte", "timezone": "Europe/Berlin"},
    {"id": "S2", "name": "New York 5th Ave", "timezone": "America/New_York"},
]


def write_config(path: Path, *, database_url: str | None = None, **sections: Any) -> Path:
    """A TOML settings file for a test: data under ``path``'s folder, the test stores."""
    base = path.parent
    base.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "paths": {
            "data_dir": str(base / "var"),
            "snapshot_root": str(base / "snapshots"),
            "report_dir": str(base / "reports"),
        },
        "chain": {"default_timezone": "Europe/Berlin"},
        "stores": STORES,
    }
    if database_url is not None:
        data["database"] = {"url": database_url}
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values} if isinstance(values, dict) else values
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    (base / "snapshots").mkdir(exist_ok=True)
    return path


def make_settings(folder: Path, *, database_url: str | None = None, **sections: Any) -> Settings:
    config = write_config(folder / "auditor.toml", database_url=database_url, **sections)
    return load_settings(config)


def sale_row(**overrides: Any) -> dict[str, str]:
    """One valid POS line (a beer in store S1); keyword arguments replace fields."""
    row = {
        "store_id": "S1",
        "register_id": "R1",
        "cashier_id": "C1",
        "cashier_name": "Anna Example",
        "receipt_id": "1001",
        "sold_at": "2024-03-01T21:15:00",
        "sku": "4001",
        "product_name": "Pils 0.5 l",
        "category": "beer",
        "quantity": "6",
        "amount": "5.94",
    }
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def receipt(receipt_id: str, lines: int = 2, **overrides: Any) -> list[dict[str, str]]:
    """The lines of one receipt: a beer and then bread."""
    rows = [sale_row(receipt_id=receipt_id, **overrides)]
    for n in range(1, lines):
        rows.append(
            sale_row(
                receipt_id=receipt_id,
                sku=f"9{n:03d}",
                product_name="Bread",
                category="bakery",
                quantity="1",
                amount="2.49",
                **overrides,
            )
        )
    return rows


def write_sales_csv(
    path: Path, rows: Iterable[Mapping[str, str]], columns: Iterable[str] = SALES_COLUMNS
) -> Path:
    columns = list(columns)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def jpeg_bytes(seed: int = 0, size: int = 16) -> bytes:
    """A small real JPEG (random grey noise), different for each seed."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(".jpg", pixels)
    assert ok
    return buffer.tobytes()


def write_frame(
    root: Path, store_id: str, register_id: str, local: datetime, *, seed: int = 0
) -> Path:
    """A frame file in the snapshot layout, at store-local time ``local``."""
    name = local.strftime("%H%M%S")
    if local.microsecond:
        name += f"_{local.microsecond // 1000:03d}"
    path = root / store_id / register_id / local.strftime("%Y-%m-%d") / f"{name}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(seed))
    return path


def write_manifest(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    columns = ["store_id", "register_id", "captured_at", "path"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
