"""Match alcohol sales with the checkout frames taken around them. Pure: DataFrames in and out.

A frame matches a sale when it was taken at the same store and register, no more than
``before`` seconds before the sale and no more than ``after`` seconds after it (both ends
included). A sale keeps at most ``limit`` frames, nearest in time first; a tie in distance goes
to the frame taken earlier, then to the lower snapshot id.

How it scales: frames are sorted by register and time once, so the frames in a sale's window are
one contiguous run of that order. Two ``merge_asof`` joins by register find where each sale's
window starts and ends, a third where the sale itself falls; the ``limit`` nearest frames lie
within ``limit`` places of that point (more only when frames share a time), so each sale is
expanded into about ``2 x limit`` candidates, ranked by distance. No step works per sale in
Python.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

SALE_COLUMNS = ["sale_id", "store_id", "register_id", "sold_at"]
FRAME_COLUMNS = ["snapshot_id", "store_id", "register_id", "captured_at"]
MATCH_COLUMNS = ["sale_id", "snapshot_id", "rank", "offset_s"]


def _nanoseconds(times: pd.Series) -> np.ndarray:
    """Aware (or UTC-naive) times as int64 nanoseconds since the epoch."""
    values = pd.to_datetime(times, utc=True).dt.as_unit("ns")
    return values.to_numpy(dtype="datetime64[ns]").view("int64")


def _register_codes(sales: pd.DataFrame, frames: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One integer per (store, register), the same in both frames."""
    keys = pd.concat(
        [sales[["store_id", "register_id"]], frames[["store_id", "register_id"]]],
        ignore_index=True,
    )
    codes = keys.groupby(["store_id", "register_id"], sort=False).ngroup().to_numpy(np.int64)
    return codes[: len(sales)], codes[len(sales) :]


def _asof(
    sale_keys: pd.DataFrame,
    frame_keys: pd.DataFrame,
    *,
    on: str,
    direction: Literal["backward", "forward"],
) -> np.ndarray:
    """Position (in register-time order) of the frame ``merge_asof`` finds per sale; -1: none.

    ``sale_keys`` must be sorted by ``on``; its ``row`` column says where each result goes.
    """
    merged = pd.merge_asof(
        sale_keys,
        frame_keys,
        left_on=on,
        right_on="t",
        by="register",
        direction=direction,
        allow_exact_matches=True,
    )
    found = np.full(len(sale_keys), -1, dtype=np.int64)
    pos = merged["pos"].to_numpy(dtype=np.float64, na_value=np.nan)
    hit = ~np.isnan(pos)
    found[merged["row"].to_numpy()[hit]] = pos[hit].astype(np.int64)
    return found


def match_frames(
    sales: pd.DataFrame,
    frames: pd.DataFrame,
    *,
    before: float,
    after: float,
    limit: int,
) -> pd.DataFrame:
    """The frames of each sale: ``MATCH_COLUMNS``, sorted by sale id and rank.

    ``sales`` has ``SALE_COLUMNS``, ``frames`` has ``FRAME_COLUMNS`` (times aware, any unit).
    ``rank`` is 0 for the nearest frame; ``offset_s`` is the frame's time minus the sale's, in
    seconds. A sale without a frame in its window has no row.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    if before < 0 or after < 0:
        raise ValueError("before and after must not be negative")
    empty = pd.DataFrame(
        {
            "sale_id": pd.Series(dtype="int64"),
            "snapshot_id": pd.Series(dtype="int64"),
            "rank": pd.Series(dtype="int64"),
            "offset_s": pd.Series(dtype="float64"),
        }
    )
    if sales.empty or frames.empty:
        return empty

    sales = sales.sort_values("sale_id", kind="stable")
    sale_register, frame_register = _register_codes(sales, frames)
    sale_t = _nanoseconds(sales["sold_at"])
    frame_t = _nanoseconds(frames["captured_at"])
    frame_ids = frames["snapshot_id"].to_numpy(np.int64)

    # Frames in register-time order; a frame's place in that order is its position.
    order = np.lexsort((frame_ids, frame_t, frame_register))
    frame_register, frame_t, frame_ids = frame_register[order], frame_t[order], frame_ids[order]
    # merge_asof wants the right side sorted by time alone; a stable sort keeps frames of one
    # register and time in position order, so "backward" finds the last and "forward" the first.
    frame_keys = pd.DataFrame(
        {"t": frame_t, "register": frame_register, "pos": np.arange(len(order), dtype=np.int64)}
    ).sort_values("t", kind="stable")

    # Window ends move with the sale time, so one time order of the sales serves all three joins.
    before_ns, after_ns = round(before * 1e9), round(after * 1e9)
    by_time = np.argsort(sale_t, kind="stable")
    sale_keys = pd.DataFrame(
        {
            "row": by_time,
            "register": sale_register[by_time],
            "start": sale_t[by_time] - before_ns,
            "sold": sale_t[by_time],
            "end": sale_t[by_time] + after_ns,
        }
    )
    first = _asof(sale_keys, frame_keys, on="start", direction="forward")
    last = _asof(sale_keys, frame_keys, on="end", direction="backward")
    at_sale = _asof(sale_keys, frame_keys, on="sold", direction="backward")

    rows = np.flatnonzero((first >= 0) & (last >= first))
    if rows.size == 0:
        return empty
    first, last, at_sale = first[rows], last[rows], at_sale[rows]
    # at_sale: the last frame at or before the sale, or just before the window when there is none.
    at_sale = np.where(at_sale >= first, at_sale, first - 1)

    # The `limit` nearest frames after the sale are the next `limit` places. Before it, the
    # nearest are the `limit` places up to the sale, widened back over frames of the same time,
    # as there the lower snapshot id, which comes first in position order, wins the tie.
    positions = np.arange(len(frame_t))
    new_time = np.ones(len(frame_t), dtype=bool)
    new_time[1:] = (frame_t[1:] != frame_t[:-1]) | (frame_register[1:] != frame_register[:-1])
    same_time_start = np.maximum.accumulate(np.where(new_time, positions, 0))
    lo = same_time_start[np.maximum(first, at_sale - limit + 1)]
    hi = np.minimum(last, at_sale + limit)
    counts = hi - lo + 1
    group_start = np.cumsum(counts) - counts
    sale_row = np.repeat(rows, counts)
    pos = np.repeat(lo - group_start, counts) + np.arange(counts.sum())

    offset = frame_t[pos] - sale_t[sale_row]
    ranked = np.lexsort((frame_ids[pos], offset, np.abs(offset), sale_row))
    sale_row, pos, offset = sale_row[ranked], pos[ranked], offset[ranked]
    rank = np.arange(len(sale_row)) - np.repeat(group_start, counts)
    keep = rank < limit
    chosen = {
        "sale_id": sales["sale_id"].to_numpy(np.int64)[sale_row[keep]],
        "snapshot_id": frame_ids[pos[keep]],
        "rank": rank[keep],
        "offset_s": offset[keep] / 1e9,
    }
    return pd.DataFrame(chosen)
