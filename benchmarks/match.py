"""Time the sale-to-frame match on generated data (pure pandas/numpy, no database).

    python benchmarks/match.py                      # 1,000,000 sales x 1,000,000 frames
    python benchmarks/match.py --sales 100000 --frames 3000000

Sales and frames are spread at random over one day, 50 stores and 8 registers each; the window
is 5 s before to 10 s after, up to 3 frames per sale.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from auditor.audit.match import match_frames


def generate(n: int, id_name: str, time_name: str, rng: np.random.Generator) -> pd.DataFrame:
    day = pd.Timestamp("2024-03-01", tz="UTC")
    stores = np.array([f"S{i:02d}" for i in range(50)])
    return pd.DataFrame(
        {
            id_name: np.arange(n),
            "store_id": stores[rng.integers(0, len(stores), n)],
            "register_id": rng.integers(1, 9, n).astype(str),
            time_name: day + pd.to_timedelta(rng.integers(0, 86_400_000, n), unit="ms"),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sales = generate(args.sales, "sale_id", "sold_at", rng)
    frames = generate(args.frames, "snapshot_id", "captured_at", rng)
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        found = match_frames(sales, frames, before=5, after=10, limit=args.limit)
        times.append(time.perf_counter() - started)
    matched = found["sale_id"].nunique()
    print(
        f"{args.sales:,} sales x {args.frames:,} frames: best {min(times):.2f} s "
        f"(of {args.repeat}), {len(found):,} matches, {matched:,} sales with a frame"
    )


if __name__ == "__main__":
    main()
