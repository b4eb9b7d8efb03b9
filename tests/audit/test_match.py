import time

import numpy as np
import pandas as pd
import pytest

from auditor.audit.match import MATCH_COLUMNS, match_frames

T0 = pd.Timestamp("2024-03-01 12:00:00", tz="UTC")


def sales_of(*rows: tuple[int, str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"sale_id": i, "store_id": s, "register_id": r, "sold_at": T0 + pd.Timedelta(seconds=t)}
            for i, s, r, t in rows
        ],
        columns=["sale_id", "store_id", "register_id", "sold_at"],
    )


def frames_of(*rows: tuple[int, str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "snapshot_id": i,
                "store_id": s,
                "register_id": r,
                "captured_at": T0 + pd.Timedelta(seconds=t),
            }
            for i, s, r, t in rows
        ],
        columns=["snapshot_id", "store_id", "register_id", "captured_at"],
    )


def pairs(matches: pd.DataFrame) -> list[tuple[int, int, int]]:
    return list(matches[["sale_id", "snapshot_id", "rank"]].itertuples(index=False, name=None))


@pytest.mark.parametrize(
    "frames,limit,expected",
    [
        # nearest first, whatever the side
        ([(1, -4), (2, 1), (3, 3)], 3, [(2, 0), (3, 1), (1, 2)]),
        # at most `limit`
        ([(1, -4), (2, 1), (3, 3)], 2, [(2, 0), (3, 1)]),
        # window ends are included: 5 s before, 10 s after
        ([(1, -5), (2, 10)], 3, [(1, 0), (2, 1)]),
        # just outside the window on both sides
        ([(1, -5.001), (2, 10.001)], 3, []),
        # a tie in distance goes to the earlier frame
        ([(1, 2), (2, -2)], 1, [(2, 0)]),
        # a tie in time goes to the lower snapshot id
        ([(9, 1), (4, 1)], 2, [(4, 0), (9, 1)]),
        # frames only after the sale, only before it
        ([(1, 6), (2, 8)], 1, [(1, 0)]),
        ([(1, -3), (2, -1)], 1, [(2, 0)]),
        # many frames in the window: the nearest three
        ([(i, -5 + i * 0.5) for i in range(31)], 3, [(10, 0), (9, 1), (11, 2)]),
    ],
)
def test_frames_of_one_sale(frames, limit, expected):
    sales = sales_of((100, "S1", "R1", 0.0))
    found = match_frames(
        sales,
        frames_of(*[(i, "S1", "R1", t) for i, t in frames]),
        before=5,
        after=10,
        limit=limit,
    )
    assert pairs(found) == [(100, snapshot, rank) for snapshot, rank in expected]


def test_only_the_same_store_and_register():
    sales = sales_of((1, "S1", "R1", 0), (2, "S1", "R2", 0), (3, "S2", "R1", 0))
    frames = frames_of((10, "S1", "R1", 1), (20, "S1", "R2", 2), (30, "S2", "R1", 3))
    found = match_frames(sales, frames, before=5, after=10, limit=3)
    assert pairs(found) == [(1, 10, 0), (2, 20, 0), (3, 30, 0)]
    assert found["offset_s"].tolist() == [1.0, 2.0, 3.0]
    assert list(found.columns) == MATCH_COLUMNS


def test_frame_shared_by_two_sales_and_sales_without_frames():
    sales = sales_of((1, "S1", "R1", 0), (2, "S1", "R1", 4), (3, "S1", "R1", 100))
    frames = frames_of((10, "S1", "R1", 2))
    found = match_frames(sales, frames, before=5, after=10, limit=3)
    assert pairs(found) == [(1, 10, 0), (2, 10, 0)]


@pytest.mark.parametrize("sales_empty,frames_empty", [(True, False), (False, True), (True, True)])
def test_empty_inputs(sales_empty, frames_empty):
    sales = sales_of() if sales_empty else sales_of((1, "S1", "R1", 0))
    frames = frames_of() if frames_empty else frames_of((1, "S1", "R1", 0))
    found = match_frames(sales, frames, before=5, after=10, limit=3)
    assert found.empty and list(found.columns) == MATCH_COLUMNS


def brute_force(sales, frames, before, after, limit):
    """The same matching, one sale at a time."""
    rows = []
    by_register = {key: group for key, group in frames.groupby(["store_id", "register_id"])}
    for sale in sales.itertuples():
        same = by_register.get((sale.store_id, sale.register_id))
        if same is None:
            continue
        offsets = (same.captured_at - sale.sold_at).dt.total_seconds().to_numpy()
        ids = same.snapshot_id.to_numpy()
        inside = np.flatnonzero((offsets >= -before) & (offsets <= after))
        ranked = sorted(inside, key=lambda i: (abs(offsets[i]), offsets[i], ids[i]))[:limit]
        rows += [(sale.sale_id, ids[i], rank) for rank, i in enumerate(ranked)]
    return sorted(rows)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("limit", [1, 3, 7])
def test_agrees_with_a_plain_search(seed, limit):
    rng = np.random.default_rng(seed)

    def table(n, id_name, time_name):
        return pd.DataFrame(
            {
                id_name: rng.permutation(n) + 1,
                "store_id": rng.choice(["S1", "S2"], n),
                "register_id": rng.choice(["R1", "R2", "R3"], n),
                # whole seconds, so that ties in time and in distance happen
                time_name: T0 + pd.to_timedelta(rng.integers(0, 300, n), unit="s"),
            }
        )

    sales = table(150, "sale_id", "sold_at")
    frames = table(400, "snapshot_id", "captured_at")
    found = match_frames(sales, frames, before=5, after=10, limit=limit)
    assert sorted(pairs(found)) == brute_force(sales, frames, 5, 10, limit)
    assert pairs(found) == sorted(pairs(found), key=lambda p: (p[0], p[2]))


def test_times_in_other_zones_and_units():
    sales = sales_of((1, "S1", "R1", 0))
    sales["sold_at"] = sales["sold_at"].dt.tz_convert("Asia/Tokyo").dt.as_unit("us")
    frames = frames_of((5, "S1", "R1", 0.25))
    frames["captured_at"] = frames["captured_at"].dt.tz_convert("America/New_York")
    found = match_frames(sales, frames, before=0, after=1, limit=3)
    assert pairs(found) == [(1, 5, 0)]
    assert found["offset_s"].tolist() == [0.25]


def test_scales_without_a_loop_per_sale():
    """200,000 sales and frames; ``benchmarks/match.py`` times a million of each."""
    rng = np.random.default_rng(0)
    n = 200_000
    day = pd.Timestamp("2024-03-01", tz="UTC")

    def table(id_name, time_name):
        return pd.DataFrame(
            {
                id_name: np.arange(n),
                "store_id": "S1",
                "register_id": rng.integers(0, 8, n).astype(str),
                time_name: day + pd.to_timedelta(rng.integers(0, 86_400_000, n), unit="ms"),
            }
        )

    sales, frames = table("sale_id", "sold_at"), table("snapshot_id", "captured_at")
    started = time.perf_counter()
    found = match_frames(sales, frames, before=5, after=10, limit=3)
    elapsed = time.perf_counter() - started
    assert found["sale_id"].nunique() > n // 2
    assert elapsed < 5, f"{elapsed:.1f} s"
