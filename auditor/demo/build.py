"""Write the demo chain out: its settings, POS exports, checkout frames and ``truth.csv``.

A demo folder holds::

    auditor.toml                       the chain's settings (paths relative to the file)
    exports/<store>/<YYYY-MM-DD>.csv   POS lines of each store's business day
    snapshots/<store>/<register>/<YYYY-MM-DD>/<HHMMSS>[_<ms>].jpg   checkout frames
    truth.csv                          per alcohol sale: true age, age check, camera,
                                       expected flags

and, once the commands have run, ``auditor.db``, ``flags/``, ``reports/`` and ``demo.log``.
The same spec gives byte-identical files: frames are encoded at a fixed JPEG quality from
seeded scenes, and nothing written depends on the clock or on the folder's location.

Faces come from ``faces200`` (see :mod:`auditor.demo.datasets`), restricted to those in the
test split of the model that will audit them, as its card describes the split: the model
never saw them in training.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from auditor.audit.rules import Rules
from auditor.demo.chain import (
    POS_COLUMNS,
    ChainPlan,
    DemoSpec,
    FaceCatalogue,
    Frame,
    Sale,
    StorePlan,
    expected_flags,
    plan_chain,
    pos_rows,
    store_plans,
)
from auditor.demo.datasets import DatasetsMissing, datasets_dir
from auditor.demo.scene import compose_frame, load_face
from auditor.errors import AuditorError
from auditor.settings import Settings, load_settings
from auditor.vocabulary import FlagKind

logger = logging.getLogger(__name__)

FACE_SET = "faces200"
JPEG_QUALITY = 85
SETTINGS_FILE = "auditor.toml"
TRUTH_FILE = "truth.csv"
EXPORTS = "exports"
SNAPSHOTS = "snapshots"
# Everything a demo run leaves in its folder; a rebuild removes these and nothing else.
OUTPUTS = (
    SETTINGS_FILE,
    TRUTH_FILE,
    EXPORTS,
    SNAPSHOTS,
    "auditor.db",
    "auditor.db-journal",
    "auditor.db-wal",
    "auditor.db-shm",
    "auditor.db.locks",
    "flags",
    "reports",
    "demo.log",
)
TRUTH_COLUMNS = [
    "store_id",
    "business_date",
    "receipt_id",
    "register_id",
    "cashier_id",
    "cashier_name",
    "sold_at",
    "shopper_age",
    "legal_age",
    "age_check",
    "birth_date",
    "borrowed_id",
    "face_file",
    "camera",
    "frames",
    "night",
    "expected_flags",
]
SETTINGS_HEADER = (
    "# Settings of the demo chain, written by `auditor demo`. Relative paths are taken",
    "# relative to this file's folder. See auditor.example.toml for every key.",
)
NOT_AN_IMAGE = b"\xff\xd8\xff\xe0" + b"camera storage fault " * 30

# Called with the number of frames just written; what it returns is not used.
FrameProgress = Callable[[int], object]


class DemoError(AuditorError):
    """The demo cannot be built: a folder in the way, a face set or model card missing."""


@dataclass
class BuiltDemo:
    folder: Path
    settings_path: Path
    plan: ChainPlan
    sales_files: list[Path]
    snapshot_root: Path
    truth_path: Path
    frames_written: int


def prepare_folder(folder: Path) -> None:
    """Make ``folder`` ready for a new demo: create it, or clear the outputs of an earlier one.

    A folder that holds other things and no earlier demo is refused, so that nothing of the
    user's is deleted.
    """
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"{folder}: not a folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not _holds_demo(folder):
            raise DemoError(
                f"{folder}: folder is not empty and holds no demo (no {TRUTH_FILE}, no "
                f"{SETTINGS_FILE} written by the demo); choose another --out"
            )
        for name in OUTPUTS:
            path = folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _holds_demo(folder: Path) -> bool:
    """Whether ``folder`` holds a demo, finished or cut short after its settings were written."""
    if (folder / TRUTH_FILE).is_file():
        return True
    try:
        with (folder / SETTINGS_FILE).open(encoding="utf-8") as f:
            return f.readline() == SETTINGS_HEADER[0] + "\n"
    except (OSError, UnicodeDecodeError):
        return False


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def write_settings(folder: Path, stores: Iterable[StorePlan]) -> Path:
    """The demo chain's ``auditor.toml``: a SQLite file, frames and reports in the folder."""
    lines = [
        *SETTINGS_HEADER,
        "",
        "[database]",
        'url = "sqlite:///auditor.db"',
        "",
        "[paths]",
        'data_dir = "."',
        f"snapshot_root = {_toml_string(SNAPSHOTS)}",
        'report_dir = "reports"',
        "",
        "[chain]",
        'name = "Demo chain"',
        'default_timezone = "Europe/Berlin"',
    ]
    for store in stores:
        lines += [
            "",
            "[[stores]]",
            f"id = {_toml_string(store.id)}",
            f"name = {_toml_string(store.name)}",
            f"timezone = {_toml_string(store.timezone)}",
            f"legal_age = {store.legal_age}",
        ]
    path = folder / SETTINGS_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def face_catalogue(model_dir: Path, root: Path | None = None) -> FaceCatalogue:
    """Faces of ``faces200`` that the model in ``model_dir`` never trained on, by true age."""
    from model import ModelError, SplitSpec, read_card, split_of

    try:
        card = read_card(model_dir)
    except ModelError as e:
        raise DemoError(f"age model: {e}") from e
    split = card.get("training", {}).get("split_spec")
    if not isinstance(split, dict):
        raise DemoError(
            f"{model_dir}: the model card has no training.split_spec, so the faces the model "
            "never trained on are unknown"
        )
    folder = (root or datasets_dir()) / FACE_SET
    labels = folder / "labels.csv"
    if not labels.is_file() or not (folder / "final_files").is_dir():
        raise DemoError(str(DatasetsMissing(folder)))
    spec = SplitSpec(**split)
    by_age: dict[int, list[str]] = defaultdict(list)
    with labels.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if split_of(row["file_name"], spec) == "test":
                by_age[int(float(row["real_age"]))].append(row["file_name"])
    if not by_age:
        raise DemoError(f"{labels}: no face of the model's test split")
    return {age: tuple(sorted(names)) for age, names in sorted(by_age.items())}


def write_pos_exports(folder: Path, plan: ChainPlan) -> list[Path]:
    """One CSV per store and business day, in the documented POS format."""
    by_file: dict[tuple[str, str], list[Sale]] = defaultdict(list)
    for sale in plan.sales:
        by_file[(sale.store_id, sale.business_date.isoformat())].append(sale)
    paths = []
    for (store_id, day), sales in sorted(by_file.items()):
        path = folder / EXPORTS / store_id / f"{day}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(POS_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(pos_rows(sales))
        paths.append(path)
    return paths


def frame_bytes(frame: Frame, faces_dir: Path) -> bytes:
    """The JPEG file of a planned frame (damaged if the plan says so)."""
    if frame.damage == "not_image":
        return NOT_AN_IMAGE
    faces = [load_face(faces_dir / name) for name in frame.faces]
    image, _ = compose_frame(np.random.default_rng(frame.seed), faces)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DemoError(f"cannot encode frame {frame.path}")
    encoded = data.tobytes()
    return encoded[: len(encoded) // 2] if frame.damage == "truncated" else encoded


def write_frames(
    root: Path, plan: ChainPlan, faces_dir: Path, progress: FrameProgress | None = None
) -> int:
    """Every planned frame under the snapshot root ``root``; returns how many."""
    count = 0
    for frame in plan.frames:
        path = root / frame.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(frame_bytes(frame, faces_dir))
        count += 1
        if progress is not None:
            progress(1)
    return count


def truth_rows(plan: ChainPlan, rules: Mapping[str, Rules]) -> list[dict[str, str]]:
    """One row per alcohol sale: who bought, what the till recorded of the age check, what
    the camera did, the flags to expect by the rules of the sale's store."""
    rows = []
    for sale in sorted(plan.alcohol_sales, key=lambda s: (s.store_id, s.sold_at, s.receipt_id)):
        store_rules = rules[sale.store_id]
        flags = expected_flags(sale, store_rules)
        rows.append(
            {
                "store_id": sale.store_id,
                "business_date": sale.business_date.isoformat(),
                "receipt_id": sale.receipt_id,
                "register_id": sale.register_id,
                "cashier_id": sale.cashier.id,
                "cashier_name": sale.cashier.name,
                "sold_at": sale.local_time.isoformat(),
                "shopper_age": str(sale.shopper_age),
                "legal_age": str(store_rules.legal_age),
                "age_check": sale.age_check.value if sale.age_check is not None else "",
                "birth_date": sale.birth_date.isoformat() if sale.birth_date is not None else "",
                "borrowed_id": "true" if sale.borrowed_id else "false",
                "face_file": sale.face_file,
                "camera": sale.camera,
                "frames": str(len(sale.frames)),
                "night": "true" if FlagKind.OUTSIDE_LEGAL_HOURS in flags else "false",
                "expected_flags": ";".join(flags),
            }
        )
    return rows


def store_rules(plan: ChainPlan, settings: Settings) -> dict[str, Rules]:
    """The rules each of the plan's stores is audited by, as the demo's settings give them."""
    return {store.id: Rules.for_store(settings, store.id) for store in plan.stores}


def write_truth(folder: Path, plan: ChainPlan, rules: Mapping[str, Rules]) -> Path:
    path = folder / TRUTH_FILE
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(truth_rows(plan, rules))
    return path


def read_truth(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def plan_demo(spec: DemoSpec, settings: Settings, *, datasets: Path | None = None) -> ChainPlan:
    """The demo chain for ``spec``, with faces the model at ``settings.model_path`` never saw."""
    return plan_chain(spec, face_catalogue(settings.model_path, datasets))


def write_demo(
    folder: Path,
    plan: ChainPlan,
    settings: Settings,
    *,
    datasets: Path | None = None,
    progress: FrameProgress | None = None,
) -> BuiltDemo:
    """Write the chain's POS exports, frames and truth into ``folder`` (settings already there).

    ``settings`` are the demo's: its snapshot root and each store's rules.
    """
    faces_dir = (datasets or datasets_dir()) / FACE_SET / "final_files"
    sales_files = write_pos_exports(folder, plan)
    root = settings.snapshot_root
    root.mkdir(parents=True, exist_ok=True)
    written = write_frames(root, plan, faces_dir, progress)
    truth = write_truth(folder, plan, store_rules(plan, settings))
    logger.info("demo written to %s: %d receipts, %d frames", folder, len(plan.sales), written)
    return BuiltDemo(folder, folder / SETTINGS_FILE, plan, sales_files, root, truth, written)


def build_demo(
    folder: Path,
    spec: DemoSpec,
    *,
    datasets: Path | None = None,
    progress: FrameProgress | None = None,
) -> BuiltDemo:
    """A demo chain from scratch in ``folder``: settings, POS exports, frames and truth."""
    prepare_folder(folder)
    settings = load_settings(write_settings(folder, store_plans(spec.stores)))
    plan = plan_demo(spec, settings, datasets=datasets)
    return write_demo(folder, plan, settings, datasets=datasets, progress=progress)
