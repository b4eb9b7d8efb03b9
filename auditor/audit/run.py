"""Audit one store's business day: from sales and frames to verdicts and flags, in one write.

The pipeline for a store-night, under its lock (:mod:`auditor.audit.lock`):

1. record a ``running`` audit run (and mark ``failed`` any run of the store-night left
   ``running`` by a process that died: holding the lock proves it is not running);
2. read the night's alcohol sales and the frames around them (short read transaction); a
   night already audited whose frames the retention purge has removed is not audited again
   (:class:`FramesPurged`): its sales would lose their estimates;
3. match sales to frames (:mod:`~auditor.audit.match`), examine the frames
   (:mod:`~auditor.audit.examine`) and judge each sale (:mod:`~auditor.audit.rules`), with no
   transaction open;
4. in ONE transaction: mark the store-night's previous succeeded run ``replaced``, delete that
   run's estimates, flags and verdicts, write the new ones and mark this run ``succeeded``.

A failure in steps 2-4 marks the run ``failed`` with its error and leaves the previous result
untouched; so does a process killed at any point (its run stays ``running`` until the next run
of the store-night marks it ``failed``). Running the store-night again completes it.

The reads and writes of steps 1, 2 and 4 are in :mod:`~auditor.audit.store`; what a run did
comes back as an :class:`~auditor.audit.summary.RunSummary`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditor.audit.boxes import DEFAULT_MARGIN
from auditor.audit.detect import FaceDetector, get_detector
from auditor.audit.examine import (
    ExamineTimings,
    FrameProgress,
    FrameResult,
    FrameToRead,
    crop_margin,
    examine_frames,
    load_age_model,
)
from auditor.audit.lock import AuditInProgress, store_night_lock
from auditor.audit.match import match_frames
from auditor.audit.rules import (
    FrameOutcome,
    Rules,
    TillCheck,
    Verdict,
    judge_sale,
)
from auditor.audit.store import (
    INTERRUPTED,
    Night,
    Outcome,
    read_night,
    record_failure,
    start_run,
    write_results,
)
from auditor.audit.summary import RunSummary
from auditor.db.engine import database_errors
from auditor.db.queries import current_run
from auditor.errors import AuditorError, describe_error
from auditor.settings import Settings
from auditor.vocabulary import AgeCheck, EstimateOutcome, FlagKind, RunStatus
from model.calibration import read_calibration

if TYPE_CHECKING:
    from model import AgeModel

logger = logging.getLogger(__name__)

# Around each run of several: yields the run's frame progress callback.
ProgressFor = Callable[[str, date], AbstractContextManager[FrameProgress | None]]

MAX_LISTED_FRAMES = 50  # unreadable frames named in a run's stats


class FramesPurged(AuditorError):
    """The store-night has a result and some of its frames are purged: a new run would judge
    those sales without their faces, so the night is not audited again."""


@dataclass
class AuditTools:
    """The age model and the face detector: loaded once per process, shared by every run."""

    model: AgeModel
    detector: FaceDetector
    margin: float

    @classmethod
    def load(cls, settings: Settings) -> AuditTools:
        model = load_age_model(settings.model_path, settings.model.engine, settings.model.hint)
        detector = get_detector(settings.audit.detector)
        return cls(model, detector, crop_margin(model, DEFAULT_MARGIN))


# -- the pipeline --------------------------------------------------------------------------------


def audit_store_night(
    *,
    engine: Engine,
    settings: Settings,
    tools: AuditTools,
    store_id: str,
    day: date,
    progress: FrameProgress | None = None,
) -> RunSummary:
    """Audit ``store_id``'s business day ``day``; see the module's docstring.

    Raises :class:`~auditor.audit.lock.AuditInProgress` when another run of the store-night is
    going on, :class:`UnknownStore` for a store the database does not know, and re-raises
    whatever made the run fail once it is recorded as ``failed``.
    """
    started = time.perf_counter()
    with (
        database_errors(engine.url),
        store_night_lock(engine, store_id, day) as connection,
        Session(bind=connection) as session,
    ):
        run_id = start_run(
            session,
            settings=settings,
            model_version=tools.model.version,
            store_id=store_id,
            day=day,
        )
        timings: dict[str, float] = {}
        try:
            night = read_night(
                session, settings=settings, store_id=store_id, day=day, timings=timings
            )
            _refuse_purged(session, night, settings, store_id, day)
            outcome = _judge_night(night, settings, tools, store_id, day, timings, progress)
            write_results(
                session,
                run_id=run_id,
                store_id=store_id,
                day=day,
                outcome=outcome,
                timings=timings,
                started=started,
            )
        except BaseException as e:
            session.rollback()
            error = _describe(e)
            logger.log(
                logging.WARNING if isinstance(e, AuditorError) else logging.ERROR,
                "audit of %s %s failed: %s",
                store_id,
                day,
                error,
                exc_info=not isinstance(e, AuditorError | KeyboardInterrupt | SystemExit),
            )
            record_failure(session, run_id=run_id, error=error, timings=timings)
            raise
    summary = RunSummary(
        store_id=store_id,
        business_date=day,
        status=RunStatus.SUCCEEDED,
        run_id=run_id,
        sales_audited=len(outcome.verdicts),
        flags=dict(sorted(outcome.flag_counts.items())),
        flagged_sales=outcome.flagged_sales,
        seconds=time.perf_counter() - started,
    )
    logger.info("%s", summary)
    return summary


def _refuse_purged(
    session: Session, night: Night, settings: Settings, store_id: str, day: date
) -> None:
    purged = int(night.frames["purged"].sum())
    if purged and current_run(session, store_id=store_id, day=day) is not None:
        raise FramesPurged(
            f"{store_id} {day}: {purged} of {len(night.frames)} frames were purged "
            f"(retention.frame_days = {settings.retention.frame_days}); audited again, their "
            "sales would lose their estimates, so the night's results are kept"
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return INTERRUPTED
    return describe_error(error)


def _judge_night(
    night: Night,
    settings: Settings,
    tools: AuditTools,
    store_id: str,
    day: date,
    timings: dict[str, float],
    progress: FrameProgress | None,
) -> Outcome:
    audit = settings.audit
    started = time.perf_counter()
    matches = match_frames(
        night.sales.assign(store_id=store_id),
        night.frames.assign(store_id=store_id),
        before=audit.window_before_s,
        after=audit.window_after_s,
        limit=audit.frames_per_sale,
    )
    timings["match"] = time.perf_counter() - started

    frames = night.frames.set_index("snapshot_id")
    root = settings.snapshot_root
    to_read = [
        FrameToRead(
            int(sid),
            root / str(frames.at[sid, "path"]),
            bool(frames.at[sid, "purged"]),
            _text_or_none(frames.at[sid, "problem"]),
        )
        for sid in matches["snapshot_id"].unique()
    ]
    examined = ExamineTimings()
    results = examine_frames(
        to_read,
        detector=tools.detector,
        model=tools.model,
        margin=tools.margin,
        progress=progress,
        timings=examined,
        workers=settings.audit.workers or None,
    )
    timings.update(examined.as_dict())

    started = time.perf_counter()
    frames_of: dict[int, list[int]] = defaultdict(list)
    for sale_id, snapshot_id in zip(matches["sale_id"], matches["snapshot_id"], strict=True):
        frames_of[int(sale_id)].append(int(snapshot_id))  # matches come nearest first
    outcome = _collect(night.sales, frames_of, results, settings, store_id, tools)
    timings["judge"] = time.perf_counter() - started

    unreadable = [r for r in results.values() if r.outcome == EstimateOutcome.UNREADABLE_FRAME]
    outcome.stats = {
        "store_id": store_id,
        "business_date": day.isoformat(),
        "detector": tools.detector.name,
        "engine": tools.model.engine,
        "face_crop_margin": tools.margin,
        "counts": {
            "sales": len(night.sales),
            "frames_in_range": len(night.frames),
            "frames_matched": len(results),
            "sale_frame_matches": len(matches),
            "frames_unreadable": len(unreadable),
            "frames_without_face": sum(
                r.outcome == EstimateOutcome.NO_FACE for r in results.values()
            ),
            "faces": sum(r.outcome == EstimateOutcome.ESTIMATED for r in results.values()),
            "sales_flagged": outcome.flagged_sales,
            "flags": dict(sorted(outcome.flag_counts.items())),
        },
        "unreadable_frames": [
            {"snapshot_id": r.snapshot_id, "reason": r.reason}
            for r in unreadable[:MAX_LISTED_FRAMES]
        ],
    }
    return outcome


def _date_or_none(value: object) -> date | None:
    if value is None or value is pd.NaT or not isinstance(value, date):
        return None
    return value.date() if isinstance(value, datetime) else value


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _collect(
    sales: pd.DataFrame,
    frames_of: dict[int, list[int]],
    results: dict[int, FrameResult],
    settings: Settings,
    store_id: str,
    tools: AuditTools,
) -> Outcome:
    """Judge every sale and lay out the rows to write."""
    rules = Rules.for_store(settings, store_id, read_calibration(tools.model.card))
    zone = settings.store_zone(store_id)
    threshold = int(rules.age_threshold)
    version = tools.model.version
    estimates: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    flags: list[tuple[dict[str, Any], int | None]] = []
    counts: Counter[str] = Counter()
    flagged = 0
    nothing = [None] * len(sales)
    pos_errors = sales.get("pos_errors", nothing)
    age_checks = sales.get("age_check", nothing)
    births = sales.get("birth_date", nothing)
    for sale_id, sold_at, problems, check, born in zip(
        sales["sale_id"], sales["sold_at"], pos_errors, age_checks, births, strict=True
    ):
        sale_id = int(sale_id)
        shown = [results[s] for s in frames_of.get(sale_id, [])]
        local = sold_at.tz_convert(zone)
        till = TillCheck(
            AgeCheck(check) if isinstance(check, str) else None,
            _date_or_none(born),
            local.date(),
        )
        verdict = judge_sale(
            [FrameOutcome(r.outcome, r.age, r.spread) for r in shown],
            local.time(),
            rules,
            problems if isinstance(problems, list) else (),
            till,
        )
        first_estimate = len(estimates)
        estimates += [_estimate_row(sale_id, r, version) for r in shown]
        verdicts.append(_verdict_row(sale_id, verdict))
        for kind in verdict.flags:
            index = verdict.evidence.get(kind)
            evidence = shown[index] if index is not None else None
            row = _flag_row(sale_id, kind, verdict, evidence, version, threshold)
            row["legal_age"] = rules.legal_age
            flags.append((row, first_estimate + index if index is not None else None))
            counts[kind] += 1
        flagged += bool(verdict.flags)
    return Outcome(estimates, verdicts, flags, {}, counts, flagged)


def _estimate_row(sale_id: int, result: FrameResult, version: str) -> dict[str, Any]:
    x, y, w, h = result.box if result.box is not None else (None, None, None, None)
    return {
        "sale_id": sale_id,
        "snapshot_id": result.snapshot_id,
        "outcome": result.outcome,
        "model_version": version,
        "face_x": x,
        "face_y": y,
        "face_w": w,
        "face_h": h,
        "age": result.age,
        "spread": result.spread,
    }


def _verdict_row(sale_id: int, verdict: Verdict) -> dict[str, Any]:
    return {
        "sale_id": sale_id,
        "estimated_age": verdict.estimated_age,
        "age_spread": verdict.age_spread,
        "frames_matched": verdict.frames_matched,
        "frames_read": verdict.frames_read,
        "faces_found": verdict.faces_found,
        "flag_kinds": verdict.flag_text,
        "p_under_legal": verdict.p_under_legal,
        "p_under_threshold": verdict.p_under_threshold,
        "challenged": verdict.challenged,
    }


def _flag_row(
    sale_id: int,
    kind: str,
    verdict: Verdict,
    evidence: FrameResult | None,
    version: str,
    threshold: int,
) -> dict[str, Any]:
    """A flag with its evidence: the frame, its face box, the sale's estimate and spread.

    Only an under-age flag (:data:`~auditor.vocabulary.AGE_KINDS`) keeps a face crop: it is
    what a reviewer must see, and faces are personal data, kept no further than the audit
    needs.
    """
    box = evidence.box if evidence is not None and evidence.box is not None else None
    x, y, w, h = box if box is not None else (None, None, None, None)
    return {
        "sale_id": sale_id,
        "kind": kind,
        "snapshot_id": evidence.snapshot_id if evidence is not None else None,
        "model_version": version,
        "threshold": threshold,
        "face_x": x,
        "face_y": y,
        "face_w": w,
        "face_h": h,
        "age": verdict.estimated_age,
        "spread": verdict.age_spread,
        "detail": verdict.details.get(FlagKind(kind)),
        "p_under_legal": verdict.p_under_legal,
        "p_under_threshold": verdict.p_under_threshold,
        "face_crop": evidence.crop_jpeg if FlagKind(kind).is_age and evidence is not None else None,
    }


# -- several store-nights ------------------------------------------------------------------------


def audit_nights(
    *,
    engine: Engine,
    settings: Settings,
    tools: AuditTools,
    nights: Iterable[tuple[str, date]],
    progress_for: ProgressFor | None = None,
) -> list[RunSummary]:
    """Audit each (store, date) in turn; a failed one is reported and the others still run.

    ``progress_for(store_id, day)``, when given, is a context manager around each run that
    yields its frame progress callback (a progress bar, say).
    """
    summaries = []
    for store_id, day in nights:
        try:
            if progress_for is None:
                summary = audit_store_night(
                    engine=engine, settings=settings, tools=tools, store_id=store_id, day=day
                )
            else:
                with progress_for(store_id, day) as progress:
                    summary = audit_store_night(
                        engine=engine,
                        settings=settings,
                        tools=tools,
                        store_id=store_id,
                        day=day,
                        progress=progress,
                    )
        except AuditInProgress as e:
            summary = RunSummary(store_id, day, "refused", error=e.reason)
        except AuditorError as e:
            summary = RunSummary(store_id, day, RunStatus.FAILED, error=str(e))
        except Exception as e:  # logged with its traceback where it happened
            summary = RunSummary(store_id, day, RunStatus.FAILED, error=_describe(e))
        summaries.append(summary)
    return summaries
