"""Time the nightly audit end to end on the demo chain scaled up, and the age model alone.

    python benchmarks/audit.py                          # about 2,000 alcohol sales
    python benchmarks/audit.py --sales 500 --out var/bench-audit
    python benchmarks/audit.py --database-url postgresql://postgres@127.0.0.1:5432/bench

Builds the demo chain (4 stores x 5 days by default, 640x480 frames of faces the bundled model
never trained on) in a temporary folder, migrates a new database, loads it with the functions
behind ``auditor ingest``, and audits every store-night with the function behind ``auditor
audit`` (the model and detector loaded once, beforehand). Then it prints:

- sales audited per second end to end (from reading the night to the results written), and
  the split across the stages the audit records in ``audit_runs.stats``: decode (read the
  file), detect (find the faces and cut the shopper's crop), estimate (the model, plus the
  evidence JPEG of each crop), persist (write the results), the rest (query, match, judge);
- the same frames once more through the public functions one at a time (``read_frame``,
  ``FaceDetector.detect`` with ``pick_shopper``, ``crop_face``), which splits crop from detect;
- the model alone (``AgeModel.estimate`` on the same crops, the same batch size and mirror
  test-time augmentation as the audit) in crops per second, and how many times the audit's
  sales per second that is.

The machine is printed with the figures. The build is not timed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.audit.examine import BATCH_SIZE, compute_device
from auditor.audit.faces import crop_face, pick_shopper, read_frame
from auditor.audit.run import AuditTools, audit_nights
from auditor.db import make_engine, make_session_factory
from auditor.db.migrations import upgrade
from auditor.db.models import AgeEstimate, AuditRun, Snapshot
from auditor.demo.build import build_demo
from auditor.demo.chain import DemoSpec
from auditor.ingest.pos import ingest_sales_file
from auditor.ingest.snapshots import ingest_snapshots
from auditor.settings import load_settings

STAGES = ("decode", "detect", "crop", "estimate", "persist", "other")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({usable} usable), {cpu}{memory}, load average {load:.1f} "
        f"at start; model on {compute_device()}"
    )


def timed(label: str, started: float) -> float:
    seconds = time.perf_counter() - started
    print(f"  {label}: {seconds:.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sales", type=int, default=2000, help="alcohol sales, about")
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="demo folder (default: a temporary one)")
    parser.add_argument("--database-url", help="default: a SQLite file in the demo folder")
    args = parser.parse_args()

    per_day = math.ceil(args.sales / (args.stores * args.days))
    spec = DemoSpec(seed=args.seed, stores=args.stores, days=args.days, sales_per_day=per_day)
    if args.database_url:
        os.environ["AUDITOR_DATABASE__URL"] = args.database_url
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as scratch:
        folder = (args.out or Path(scratch) / "demo").absolute()
        print(f"Machine: {machine()}")
        print(f"Building the demo chain in {folder} ...", flush=True)
        started = time.perf_counter()
        built = build_demo(folder, spec)
        timed("build (not part of the figures)", started)
        run(built.settings_path, spec)


def run(settings_path: Path, spec: DemoSpec) -> None:
    settings = load_settings(settings_path)
    url = settings.database_url
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    for path in sorted((settings_path.parent / "exports").rglob("*.csv")):
        if not path.name.endswith(".rejects.csv"):
            ingest_sales_file(path, settings=settings, session_factory=sessions)
    ingest_snapshots(settings.snapshot_root, settings=settings, session_factory=sessions)
    timed("ingest sales and snapshots", started)
    started = time.perf_counter()
    tools = AuditTools.load(settings)
    timed(f"load model {tools.model.version} and detector {tools.detector.name}", started)

    nights = [(s.id, d) for s in settings.stores for d in spec.dates]
    started = time.perf_counter()
    summaries = audit_nights(engine=engine, settings=settings, tools=tools, nights=nights)
    wall = time.perf_counter() - started
    failed = [str(s) for s in summaries if s.status != "succeeded"]
    if failed:
        raise SystemExit("audit failed:\n" + "\n".join(failed))
    with Session(engine) as session:
        runs = session.execute(
            sa.select(AuditRun.stats).where(AuditRun.status == "succeeded")
        ).scalars()
        recorded: dict[str, float] = {}
        frames = faces = 0
        for stats in runs:
            for stage, seconds in stats["seconds"].items():
                recorded[stage] = recorded.get(stage, 0.0) + seconds
            frames += stats["counts"]["frames_matched"]
            faces += stats["counts"]["faces"]
        paths = list(
            session.execute(
                sa.select(Snapshot.path)
                .join(AgeEstimate, AgeEstimate.snapshot_id == Snapshot.id)
                .distinct()
                .order_by(Snapshot.path)
            ).scalars()
        )
    engine.dispose()
    sales = sum(s.sales_audited for s in summaries)

    # The same frames through the public functions, one stage at a time.
    decode = detect = crop = 0.0
    crops = []
    for path in paths:
        t0 = time.perf_counter()
        try:
            image = read_frame(settings.snapshot_root / path)
        except Exception:  # the damaged frames: the audit counts them unreadable
            decode += time.perf_counter() - t0
            continue
        t1 = time.perf_counter()
        box = pick_shopper(tools.detector.detect(image), (image.shape[1], image.shape[0]))
        t2 = time.perf_counter()
        if box is not None:
            crops.append(crop_face(image, box, tools.margin))
        t3 = time.perf_counter()
        decode, detect, crop = decode + t1 - t0, detect + t2 - t1, crop + t3 - t2
    tools.model.estimate(crops[:BATCH_SIZE], batch_size=BATCH_SIZE, tta=True)  # warm
    t0 = time.perf_counter()
    tools.model.estimate(crops, batch_size=BATCH_SIZE, tta=True)
    model_only = time.perf_counter() - t0

    total = recorded["total"]
    # The audit times cropping within detection; the pass above tells them apart.
    crop_share = crop / (detect + crop) if detect + crop else 0.0
    split = {
        "decode": recorded["read"],
        "detect": recorded["detect"] * (1 - crop_share),
        "crop": recorded["detect"] * crop_share,
        "estimate": recorded["estimate"],
        "persist": recorded["write"],
    }
    split["other"] = total - sum(split.values())
    sales_per_s = sales / total
    crops_per_s = len(crops) / model_only
    print()
    print(
        f"Audit end to end: {sales:,} alcohol sales in {len(summaries)} store-nights, "
        f"{frames:,} frames, {faces:,} faces: {total:.1f} s (wall {wall:.1f} s), "
        f"{sales_per_s:.1f} sales/s"
    )
    print(f"  {'stage':<9}{'seconds':>9}{'share':>8}{'ms/frame':>10}")
    for stage in STAGES:
        seconds = split[stage]
        print(
            f"  {stage:<9}{seconds:>9.1f}{seconds / total:>8.0%}"
            f"{1000 * seconds / max(frames, 1):>10.1f}"
        )
    print("  (other: reading the night, matching, judging, the run record)")
    print()
    print(f"Stage by stage on the same {len(paths):,} frames (public functions):")
    print(
        f"  decode {1000 * decode / len(paths):.1f} ms/frame, detect "
        f"{1000 * detect / len(paths):.1f} ms/frame, crop {1000 * crop / max(len(crops), 1):.2f}"
        f" ms/face, estimate {1000 * model_only / max(len(crops), 1):.1f} ms/face"
    )
    print()
    print(
        f"Model alone ({tools.model.version}, {tools.model.input_size} px, batches of "
        f"{BATCH_SIZE}, mirror TTA): {len(crops):,} crops in {model_only:.1f} s, "
        f"{crops_per_s:.1f} crops/s"
    )
    print(
        f"Ratio: the model alone estimates {crops_per_s / sales_per_s:.1f} x as many faces per "
        f"second as the audit audits sales end to end"
    )


if __name__ == "__main__":
    main()
