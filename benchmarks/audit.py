"""Time the nightly audit end to end on the demo chain scaled up, and the age model alone.

    python benchmarks/audit.py                          # about 2,000 alcohol sales
    python benchmarks/audit.py --sales 500 --out var/bench-audit
    python benchmarks/audit.py --database-url postgresql://postgres@127.0.0.1:5432/bench
    python benchmarks/audit.py --model var/models/resnet50      # another model directory

Builds the demo chain (4 stores x 5 days by default, 640x480 frames of faces the bundled model
never trained on) in a temporary folder, migrates a new database, loads it with the functions
behind ``auditor ingest``, and audits every store-night with the function behind ``auditor
audit`` (the model and detector loaded once, beforehand). Then it prints:

- sales audited per second end to end (wall time, from reading the night to the results
  written), with the detector, its runtime, the worker threads and the model's engine, and the
  time in each stage the audit records in ``audit_runs.stats``, summed over the threads that
  ran it (the stages overlap, so the sum exceeds the wall time);
- the same frames once more through the public functions one at a time on one thread
  (``read_frame``, ``FaceDetector.detect`` with ``pick_shopper``, ``crop_face``);
- the model alone (``AgeModel.estimate`` on the same crops, the same batch size, engine and
  mirror test-time augmentation as the audit) in crops per second;
- the naive path on the first ``--naive`` frames: one frame at a time, BlazeFace on OpenCV's
  DNN module, one Keras ``predict`` call per sale;
- the ratios end to end / model alone (target >= 0.5) and end to end / naive (target >= 5),
  and what that makes in an 8-hour night.

The machine is printed with the figures. The build is not timed.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auditor.audit.boxes import pick_shopper
from auditor.audit.detect import FaceDetector
from auditor.audit.examine import BATCH_SIZE, compute_device, usable_cores
from auditor.audit.frames import crop_face, read_frame
from auditor.audit.run import AuditTools, audit_nights
from auditor.db import make_engine, make_session_factory
from auditor.db.migrations import upgrade
from auditor.db.models import AgeEstimate, AuditRun, Snapshot
from auditor.db.queries import current_runs
from auditor.demo.build import build_demo
from auditor.demo.chain import DemoSpec
from auditor.ingest.pos import ingest_sales_file
from auditor.ingest.snapshots import ingest_snapshots
from auditor.settings import load_settings
from auditor.vocabulary import RunStatus
from model.engine import machine as cpu_and_load


def machine() -> str:
    """The CPU (see ``model.engine.machine``), the memory and where the model runs."""
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu_and_load()}{memory} at start; model on {compute_device()}"


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
    parser.add_argument(
        "--model",
        type=Path,
        help="age model directory to audit with (default: the bundled model; the demo's faces "
        "are still chosen from the bundled model's test split)",
    )
    parser.add_argument("--workers", type=int, help="detection threads (default: one per core)")
    parser.add_argument("--naive", type=int, default=300, help="sales run the naive way")
    parser.add_argument(
        "--dask",
        type=int,
        nargs="*",
        default=[],
        metavar="N",
        help="audit the nights again on a local Dask cluster of N worker processes (one thread "
        "each), for each N given",
    )
    args = parser.parse_args()

    per_day = math.ceil(args.sales / (args.stores * args.days))
    spec = DemoSpec(seed=args.seed, stores=args.stores, days=args.days, sales_per_day=per_day)
    if args.database_url:
        os.environ["AUDITOR_DATABASE__URL"] = args.database_url
    if args.workers:
        os.environ["AUDITOR_AUDIT__WORKERS"] = str(args.workers)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as scratch:
        folder = (args.out or Path(scratch) / "demo").absolute()
        print(f"Machine: {machine()}")
        print(f"Building the demo chain in {folder} ...", flush=True)
        started = time.perf_counter()
        built = build_demo(folder, spec)
        timed("build (not part of the figures)", started)
        if args.model:  # after the build, which takes the bundled model's test faces
            os.environ["AUDITOR_MODEL__PATH"] = str(args.model.absolute())
        run(built.settings_path, spec, naive=args.naive)
        for workers in args.dask:
            on_dask(built.settings_path, spec, workers)


def run(settings_path: Path, spec: DemoSpec, *, naive: int) -> None:
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
    failed = [str(s) for s in summaries if s.status != RunStatus.SUCCEEDED]
    if failed:
        raise SystemExit("audit failed:\n" + "\n".join(failed))
    with Session(engine) as session:
        runs = session.execute(current_runs().with_only_columns(AuditRun.stats)).scalars()
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

    # The same frames through the public functions, one stage at a time, on one thread.
    detector = FaceDetector(tools.detector.name)
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
        box = pick_shopper(detector.detect(image), (image.shape[1], image.shape[0]))
        t2 = time.perf_counter()
        if box is not None:
            crops.append(crop_face(image, box, tools.margin))
        t3 = time.perf_counter()
        decode, detect, crop = decode + t1 - t0, detect + t2 - t1, crop + t3 - t2
    tools.model.estimate(crops[:BATCH_SIZE], batch_size=BATCH_SIZE, tta=True)  # warm
    t0 = time.perf_counter()
    tools.model.estimate(crops, batch_size=BATCH_SIZE, tta=True)
    model_only = time.perf_counter() - t0

    naive_sales, naive_seconds = naive_path(settings, paths[:naive], tools)

    total = recorded["total"]
    sales_per_s = sales / wall
    crops_per_s = len(crops) / model_only
    naive_per_s = naive_sales / naive_seconds
    print()
    print(
        f"Audit end to end: {sales:,} alcohol sales in {len(summaries)} store-nights, "
        f"{frames:,} frames, {faces:,} faces: {wall:.1f} s, {sales_per_s:.1f} sales/s "
        f"(detector {tools.detector.name} on {tools.detector.runtime}, "
        f"{settings.audit.workers or usable_cores()} worker threads; model on {engine_name(tools)})"
    )
    print("  Time in each stage, summed over the threads that ran it (stages overlap):")
    print(f"  {'stage':<9}{'seconds':>9}{'of wall':>9}{'ms/frame':>10}")
    busy = {
        "read": recorded["read"],
        "detect": recorded["detect"],
        "estimate": recorded["estimate"],
        "persist": recorded["write"],
        "all runs": total,
    }
    for stage, seconds in busy.items():
        print(
            f"  {stage:<9}{seconds:>9.1f}{seconds / wall:>9.0%}"
            f"{1000 * seconds / max(frames, 1):>10.1f}"
        )
    print("  (detect includes the crop and its evidence JPEG; estimate is the model)")
    print()
    print(f"One thread, stage by stage, on the same {len(paths):,} frames (public functions):")
    print(
        f"  decode {1000 * decode / len(paths):.1f} ms/frame, detect "
        f"{1000 * detect / len(paths):.1f} ms/frame, crop {1000 * crop / max(len(crops), 1):.2f}"
        f" ms/face"
    )
    print(
        f"Model alone ({tools.model.version}, {tools.model.input_size} px, "
        f"{engine_name(tools)}, batches of {BATCH_SIZE}, mirror TTA): {len(crops):,} crops in "
        f"{model_only:.1f} s, {crops_per_s:.1f} crops/s"
    )
    print(
        f"Naive path (one frame at a time, one Keras predict call per sale, no mirror): "
        f"{naive_sales} sales in {naive_seconds:.1f} s, {naive_per_s:.1f} sales/s"
    )
    print()
    print(f"Ratio end to end / model alone: {sales_per_s / crops_per_s:.2f} (target >= 0.5)")
    print(f"Ratio end to end / naive path:  {sales_per_s / naive_per_s:.1f} x (target >= 5)")
    night = 8 * 3600
    print(f"Capacity of this machine in an 8-hour night: {sales_per_s * night:,.0f} alcohol sales")


def on_dask(settings_path: Path, spec: DemoSpec, workers: int) -> None:
    """Audit every store-night again on a LocalCluster of ``workers`` single-thread processes."""
    from distributed import LocalCluster

    from auditor.audit.cluster import audit_nights_on_dask

    settings = load_settings(settings_path)
    nights = [(s.id, d) for s in settings.stores for d in spec.dates]
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        audit = settings.audit.model_copy(
            update={"executor": "dask", "scheduler": cluster.scheduler_address}
        )
        on_cluster = settings.model_copy(update={"audit": audit})
        with cluster.get_client() as client:
            started = time.perf_counter()
            client.run(_load_tools, settings)  # the model and detector, once per worker
            timed(f"Dask: {workers} worker processes started, model loaded", started)
        started = time.perf_counter()
        summaries = audit_nights_on_dask(settings=on_cluster, nights=nights)
        wall = time.perf_counter() - started
    if any(s.status != RunStatus.SUCCEEDED for s in summaries):
        raise SystemExit("audit on Dask failed:\n" + "\n".join(map(str, summaries)))
    sales = sum(s.sales_audited for s in summaries)
    print(
        f"Dask, {workers} worker process(es) x 1 thread on this machine: {sales:,} sales in "
        f"{wall:.1f} s, {sales / wall:.1f} sales/s"
    )


def _load_tools(settings) -> str:
    return AuditTools.load(settings).model.engine


def engine_name(tools: AuditTools) -> str:
    return str(getattr(tools.model, "engine", "keras"))


def naive_path(settings, paths: list[str], tools: AuditTools) -> tuple[int, float]:
    """The audit written the plain way: per sale, read, detect, crop and one ``predict``."""
    from model.inference import load_keras_model

    keras_model = load_keras_model(Path(settings.model_path) / "age_model.keras")
    detector = FaceDetector("blazeface-opencv")
    size = tools.model.input_size
    started = time.perf_counter()
    for path in paths:
        try:
            image = read_frame(settings.snapshot_root / path)
        except Exception:
            continue
        box = pick_shopper(detector.detect(image), (image.shape[1], image.shape[0]))
        if box is not None:
            face = crop_face(image, box, tools.margin, size=size)
            keras_model.predict(face[None].astype("float32"), verbose=0)
    return len(paths), time.perf_counter() - started


if __name__ == "__main__":
    main()
