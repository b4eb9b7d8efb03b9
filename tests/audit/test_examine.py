"""The face-and-age stage: worker threads and chunks change nothing in the results."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.audit import examine
from auditor.audit.boxes import DEFAULT_MARGIN
from auditor.audit.detect import get_detector
from auditor.audit.examine import ExamineTimings, FrameToRead, examine_frames, load_age_model
from auditor.vocabulary import EstimateOutcome


@pytest.fixture(scope="module")
def frame_files(
    tmp_path_factory: pytest.TempPathFactory, face_frames: list[bytes], empty_frames: list[bytes]
) -> list[FrameToRead]:
    folder = tmp_path_factory.mktemp("frames")
    frames = []
    for i, data in enumerate([*face_frames, *empty_frames, b"not a jpeg"]):
        path = folder / f"{i:03}.jpg"
        path.write_bytes(data)
        frames.append(FrameToRead(100 - i, path))  # ids run against the file order
    frames.append(FrameToRead(5, folder / "gone.jpg", purged=True))
    frames.append(FrameToRead(6, folder / "missing.jpg"))
    return frames


def _examine(frames: list[FrameToRead], age_model_dir: Path, workers: int) -> tuple[dict, list]:
    seen: list[tuple[int, int]] = []
    timings = ExamineTimings()
    results = examine_frames(
        frames,
        detector=get_detector(),
        model=load_age_model(age_model_dir),
        margin=DEFAULT_MARGIN,
        progress=lambda done, total: seen.append((done, total)),
        timings=timings,
        workers=workers,
    )
    assert timings.read > 0 and timings.detect > 0 and timings.estimate > 0
    return results, seen


def test_threads_and_chunks_give_the_same_results(
    frame_files: list[FrameToRead],
    face_frames: list[bytes],
    age_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, progress = _examine(frame_files, age_model_dir, workers=1)
    assert progress == [(i, len(frame_files)) for i in range(1, len(frame_files) + 1)]
    outcomes = [r.outcome for r in one.values()]
    assert outcomes.count(EstimateOutcome.ESTIMATED) == len(face_frames)
    assert outcomes.count(EstimateOutcome.UNREADABLE_FRAME) == 3  # not a JPEG, purged, missing
    assert EstimateOutcome.NO_FACE in outcomes
    assert all(
        r.crop_jpeg and r.age is not None
        for r in one.values()
        if r.outcome == EstimateOutcome.ESTIMATED
    )

    monkeypatch.setattr(examine, "CHUNK_FRAMES", 3)  # several chunks, overlapped with the model
    many, _ = _examine(frame_files, age_model_dir, workers=3)
    assert set(many) == set(one)
    for snapshot_id, result in one.items():
        other = many[snapshot_id]
        assert (other.outcome, other.reason, other.box) == (
            result.outcome,
            result.reason,
            result.box,
        )
        assert other.crop_jpeg == result.crop_jpeg
        if result.age is None:
            assert other.age is None
        else:
            assert other.age == pytest.approx(result.age, abs=0.05)


def test_a_frame_that_became_a_symbolic_link_is_not_read(
    tmp_path: Path, face_frames: list[bytes]
) -> None:
    real = tmp_path / "real.jpg"
    real.write_bytes(face_frames[0])
    (tmp_path / "link.jpg").symlink_to(real)
    found = examine._find_face(FrameToRead(1, tmp_path / "link.jpg"), "unused", DEFAULT_MARGIN)
    assert (found.result.outcome, found.result.reason) == (
        EstimateOutcome.UNREADABLE_FRAME,
        "symbolic link",
    )


def test_a_frame_the_ingest_found_unreadable_is_not_read_again(tmp_path: Path) -> None:
    frame = FrameToRead(1, tmp_path / "120000.jpg", problem="empty file")
    found = examine._find_face(frame, "unused", DEFAULT_MARGIN)
    assert (found.result.outcome, found.result.reason) == (
        EstimateOutcome.UNREADABLE_FRAME,
        "at ingest: empty file",
    )
