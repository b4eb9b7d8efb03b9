"""The exploratory analysis of a labelled set as one HTML page (the original study's first step)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from model.charts import figure, to_svg
from model.data import read_sets
from model.errors import DatasetError
from model.html import render
from model.metrics import AGE_BANDS, GENDERS, RACES, age_band

log = logging.getLogger(__name__)


def image_sizes(paths: Sequence[str]) -> pd.DataFrame:
    """Width, height and readability of each image, from the file header where possible."""
    from PIL import Image, UnidentifiedImageError

    rows = []
    for path in paths:
        try:
            with Image.open(path) as image:
                rows.append(
                    {"path": path, "width": image.width, "height": image.height, "readable": True}
                )
        except (OSError, UnidentifiedImageError):
            rows.append({"path": path, "width": None, "height": None, "readable": False})
    return pd.DataFrame(rows)


def thumbnail_uri(path: str, size: int = 64) -> str | None:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return None
    ok, jpeg = cv2.imencode(
        ".jpg",
        cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA),
        [cv2.IMWRITE_JPEG_QUALITY, 80],
    )
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode() if ok else None


def explore(
    data: Sequence[str | Path], out: str | Path, *, samples: int = 8, seed: int = 0
) -> Path:
    """Write ``explore.html`` for the labelled set(s) in ``data``."""
    df = read_sets(data)
    if df["real_age"].isna().all():
        raise DatasetError(
            f"{', '.join(map(str, data))}: labelled by age group; explore needs real_age "
            "(measure such a set with `auditor model evaluate --split all`)"
        )
    sizes = image_sizes(list(df["path"]))
    df = df.assign(
        width=sizes["width"].to_numpy(),
        height=sizes["height"].to_numpy(),
        readable=sizes["readable"].to_numpy(),
    )
    df["band"] = [age_band(a) for a in df["real_age"]]
    ages = df["real_age"]
    summary = {
        "faces": len(df),
        "unreadable": int((~df["readable"]).sum()),
        "age_min": float(ages.min()),
        "age_max": float(ages.max()),
        "age_mean": float(ages.mean()),
        "age_median": float(ages.median()),
        "by_source": df["source"].value_counts().to_dict(),
        "by_split": df["split"].value_counts().to_dict(),
    }
    bands = [
        {
            "band": name,
            "faces": int((df["band"] == name).sum()),
            "share": float((df["band"] == name).mean()),
        }
        for name, _, _ in AGE_BANDS
    ]
    size_table = (
        df[df["readable"]]
        .groupby(["width", "height"])
        .size()
        .rename("faces")
        .reset_index()
        .sort_values("faces", ascending=False)
        .head(10)
        .to_dict("records")
    )
    groups = {}
    for column, names in (("gender", GENDERS), ("race", RACES)):
        if column in df:
            counts = (
                df[column]
                .map(lambda v, n=names: n.get(v, "unknown") if pd.notna(v) else "unknown")
                .value_counts()
            )
            groups[column] = counts.to_dict()
    rng = np.random.default_rng(seed)
    sample_faces = {}
    for name, _, _ in AGE_BANDS:
        band = df[(df["band"] == name) & df["readable"]]
        chosen = band.iloc[rng.permutation(len(band))[:samples]] if len(band) else band
        sample_faces[name] = [
            {"uri": thumbnail_uri(path), "age": age}
            for path, age in chosen[["path", "real_age"]].itertuples(index=False)
        ]

    fig, ax = figure(7, 3.5)
    ax.hist(ages, bins=np.arange(0, ages.max() + 2, 1), color="#1f5fbf")
    ax.set(xlabel="age (years)", ylabel="faces", title="Age distribution")
    histogram = to_svg(fig)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    page = render(
        "explore.html",
        out / "explore.html",
        summary=summary,
        bands=bands,
        sizes=size_table,
        groups=groups,
        samples=sample_faces,
        histogram=histogram,
        data=[str(d) for d in data],
    )
    log.info("explored %d faces -> %s", len(df), page)
    return page
