"""Fixtures for the audit tests: a real tiny age model, real frames, settings, a night builder."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor import nightly as nightly_module
from auditor.audit.run import AuditTools
from auditor.audit.summary import RunSummary
from auditor.settings import Settings
from tests.audit.night import NightBuilder, find_frames
from tests.factories import STORES, make_settings
from tests.helpers.model import export_tiny_model, make_labelled_set, train_tiny_model

AUDIT_STORES = [*STORES, {"id": "S3", "name": "Tokyo Ginza", "timezone": "Asia/Tokyo"}]


@pytest.fixture(scope="session")
def age_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real age model: MobileNetV2 at 32 px, trained for 2 epochs on 240 real faces."""
    faces = make_labelled_set(tmp_path_factory.mktemp("audit_faces") / "set64", n=240)
    _, result = train_tiny_model(faces, tmp_path_factory.mktemp("audit_runs") / "tiny")
    return export_tiny_model(result.out, tmp_path_factory.mktemp("audit_models") / "tiny_model")


@pytest.fixture(scope="session")
def face_frames() -> list[bytes]:
    """Checkout frames of real faces that the detector finds."""
    return find_frames(6, with_face=True, seed=1)


@pytest.fixture(scope="session")
def empty_frames() -> list[bytes]:
    """Checkout frames with nobody in them."""
    return find_frames(1, with_face=False, seed=2)


@pytest.fixture
def audit_settings(tmp_path: Path, db_url: str, age_model_dir: Path) -> Settings:
    """Settings on the parametrised database with the tiny model and a store east of UTC."""
    return make_settings(
        tmp_path, database_url=db_url, stores=AUDIT_STORES, model={"path": str(age_model_dir)}
    )


@pytest.fixture
def tools(audit_settings: Settings) -> AuditTools:
    return AuditTools.load(audit_settings)


@pytest.fixture
def night(
    audit_settings: Settings, face_frames: list[bytes], empty_frames: list[bytes]
) -> NightBuilder:
    return NightBuilder(audit_settings, face_frames, empty_frames)


@pytest.fixture
def reported(monkeypatch: pytest.MonkeyPatch) -> list[list[RunSummary]]:
    """The nightly job's report steps replaced by one that records the summaries it gets."""
    calls: list[list[RunSummary]] = []
    monkeypatch.setattr(
        nightly_module, "REPORT_STEPS", [lambda settings, engine, s: calls.append(s)]
    )
    return calls
