"""Where the labelled face sets are: ``$AUDITOR_DATASETS``, else ``../shared/datasets`` beside the
repository checkout (installed from a wheel: beside the working directory). The images are for
research use only and never enter the repository."""

from __future__ import annotations

import os
from pathlib import Path

from auditor.resources import checkout_root


class DatasetsMissing(FileNotFoundError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"no face data set at {path} (set AUDITOR_DATASETS to its folder)")
        self.path = path


def datasets_dir() -> Path:
    """The folder holding ``faces200/`` and ``faces64/``; not checked for existence."""
    override = os.environ.get("AUDITOR_DATASETS")
    if override:
        return Path(override).expanduser()
    beside = checkout_root() or Path.cwd()
    return (beside.parent / "shared" / "datasets").resolve()


def face_files(folder: str = "faces200", *, root: Path | None = None) -> list[Path]:
    """The face images of one set (``faces200`` or ``faces64``), sorted by file name."""
    images = (root or datasets_dir()) / folder / "final_files"
    if not images.is_dir():
        raise DatasetsMissing(images)
    return sorted(images.glob("*.jpg"))
