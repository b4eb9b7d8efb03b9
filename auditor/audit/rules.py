"""The audit's judgement of one sale: its frames' outcomes and estimates in, a verdict out. Pure.

Each frame matched to a sale ends in one outcome: ``unreadable_frame`` (the file is missing,
empty, cut short, not an image or too large), ``no_face`` (read, but no face found) or
``estimated`` (the shopper's face found and its age estimated, with a spread in years).

How frames combine into one estimate, over the ``estimated`` frames only:

- each frame's spread is floored at :data:`MIN_SPREAD` (no single frame is surer than that);
- the sale's age is the inverse-variance weighted mean of the frames' ages, weights
  ``w_i = 1 / spread_i**2``, so a sharp view of the face counts more than a blurred one;
- the sale's spread is the standard deviation of the mixture of the frames' estimates with those
  weights: ``sqrt(sum w_i (spread_i**2 + (age_i - age)**2) / sum w_i)``. It is the per-frame
  spread when the frames agree and grows when they disagree. It does not shrink with more
  frames, as frames of one face seconds apart are far from independent views.

Which flags a sale gets (:class:`~auditor.vocabulary.FlagKind`, in its order):

- ``no_frame``: no frame in the window (a camera gap, or a sale hidden from the camera);
- ``unreadable_frame``: frames were matched and not one of them could be read;
- ``no_face``: at least one frame was read and no face was found in any frame read;
- ``under_age_threshold``: a face was found and the combined age is under the store's
  threshold, and the POS export records no age checks (no ``age_check`` column);
- ``no_id_check``: the same, where the POS records age checks and the till recorded no ID
  check for the sale (``none`` or ``visual``, and no birth date): the policy violation. Under
  the threshold *with* an ID check recorded (``id_checked``, ``id_scanned``, or a birth date
  typed or scanned) is no flag: the sale counts as *challenged*;
- ``birth_date_under_age``: the recorded birth date makes the shopper younger than the store's
  legal age on the sale's local date, yet the sale went through (no face needed);
- ``id_contradicts_face``: the recorded birth date says adult, but the face says otherwise (a
  borrowed or false ID): the probability that the shopper is under the legal age is at least
  ``Rules.contradiction``; or the shopper is more likely than not under the legal age
  (:data:`LIKELY`) and the face leaves at most ``1 - Rules.contradiction`` probability to
  the age the birth date gives (a face of 14 against an ID of 25, where one of 14 against an
  ID of 18 needs the first, stricter test, as a true 18-year-old is often estimated younger);
- ``outside_legal_hours``: the sale's local time is outside [legal_hours_start,
  legal_hours_end) (a range that passes midnight when the start is the later time);
- ``pos_error``: the POS export had lines of the receipt that the ingest rejected (a bad
  number, a register that disagrees with the other lines...); the flag names them as
  ``file:line: field: reason``. Its frames are judged as any sale's.

The probabilities of a shopper under the legal age and under the threshold come from each
frame's estimate as a normal distribution, mean ``age - bias`` and standard deviation
``scale * max(spread, floor)`` (the model card's calibration, fitted on its validation split:
:mod:`model.calibration`), mixed over the frames with the weights above.

Of ``no_frame``, ``unreadable_frame``, ``no_face`` and an estimate exactly one applies: a
sale with some unreadable frames and some good ones is judged on the good ones alone, and the
counts of frames matched, read and with a face keep the rest. The other kinds may come with
any of them (``birth_date_under_age`` needs no face; ``id_contradicts_face`` and the
threshold's flags need one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time

from auditor.settings import AuditSettings, Settings
from auditor.vocabulary import AgeCheck, EstimateOutcome, FlagKind
from model.calibration import Calibration

MIN_SPREAD = 1.0  # years
LIKELY = 0.5  # "more likely than not": with a face that rules out the ID's age, contradicts it


@dataclass(frozen=True)
class FrameOutcome:
    """What came of one frame of a sale; ``age`` and ``spread`` only when ``estimated``."""

    outcome: str  # an EstimateOutcome
    age: float | None = None
    spread: float | None = None

    def __post_init__(self) -> None:
        if self.outcome not in tuple(EstimateOutcome):
            raise ValueError(f"unknown frame outcome {self.outcome!r}")
        if (self.outcome == EstimateOutcome.ESTIMATED) != (
            self.age is not None and self.spread is not None
        ):
            raise ValueError("an estimated frame, and only one, has an age and a spread")


@dataclass(frozen=True)
class Rules:
    """The settings the judgement depends on: one store's rules and the model's calibration."""

    age_threshold: float
    legal_hours_start: time
    legal_hours_end: time
    legal_age: int = 18
    contradiction: float = 0.9  # P(under legal age) that contradicts an adult birth date
    calibration: Calibration = Calibration()

    @classmethod
    def from_settings(cls, audit: AuditSettings) -> Rules:
        """The chain's default rules from the ``[audit]`` settings alone."""
        return cls(
            audit.age_threshold,
            audit.legal_hours_start,
            audit.legal_hours_end,
            contradiction=audit.id_contradiction_probability,
        )

    @classmethod
    def for_store(
        cls, settings: Settings, store_id: str, calibration: Calibration | None = None
    ) -> Rules:
        """The rules of one store (its own settings, else the chain's)."""
        store = settings.rules(store_id)
        return cls(
            store.age_threshold,
            store.legal_hours_start,
            store.legal_hours_end,
            legal_age=store.legal_age,
            contradiction=settings.audit.id_contradiction_probability,
            calibration=calibration or Calibration(),
        )


@dataclass(frozen=True)
class TillCheck:
    """What the till recorded of the shopper's age check, and the sale's local date.

    ``kind`` is None when the POS export has no ``age_check`` column (nothing is known of
    checks); ``birth_date`` the date typed or scanned at the till, if any.
    """

    kind: AgeCheck | None
    birth_date: date | None
    sale_date: date

    @property
    def saw_id(self) -> bool:
        """Whether an ID check is recorded: seen, scanned, or a birth date taken from it."""
        return self.birth_date is not None or (self.kind is not None and self.kind.saw_id)

    @property
    def records_checks(self) -> bool:
        return self.kind is not None or self.birth_date is not None


def age_on(birth: date, day: date) -> int:
    """Completed years of age on ``day`` (a 29 February birthday comes on 1 March)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class Verdict:
    """The judgement of one sale.

    ``evidence`` maps each flag kind raised to the index (in the frames given) of the frame
    that shows it, or None: for an estimate the frame with the smallest spread (the nearest on
    a tie), for ``no_face`` and ``unreadable_frame`` the nearest such frame, for
    ``outside_legal_hours`` and ``pos_error`` the estimate's frame, else the nearest.
    ``details`` holds a flag's text evidence: for ``pos_error`` the POS problems, one a line.
    """

    estimated_age: float | None
    age_spread: float | None
    frames_matched: int
    frames_read: int
    faces_found: int
    flags: tuple[FlagKind, ...]
    evidence: dict[FlagKind, int | None] = field(default_factory=dict)
    details: dict[FlagKind, str] = field(default_factory=dict)
    p_under_legal: float | None = None
    p_under_threshold: float | None = None
    challenged: bool = False  # under the threshold, with an ID check recorded

    @property
    def flag_text(self) -> str:
        """The flag kinds joined by ``;`` ("" for a clean sale)."""
        return ";".join(self.flags)


def combine_estimates(ages: Sequence[float], spreads: Sequence[float]) -> tuple[float, float]:
    """One age and spread from several frames' estimates (see the module's docstring)."""
    if len(ages) != len(spreads) or not ages:
        raise ValueError("give one spread per age, and at least one age")
    floored = [max(float(s), MIN_SPREAD) for s in spreads]
    weights = [1.0 / (s * s) for s in floored]
    total = sum(weights)
    age = sum(w * a for w, a in zip(weights, ages, strict=True)) / total
    variance = (
        sum(w * (s * s + (a - age) ** 2) for w, s, a in zip(weights, floored, ages, strict=True))
        / total
    )
    return age, math.sqrt(variance)


def probability_under(
    ages: Sequence[float], spreads: Sequence[float], limit: float, calibration: Calibration
) -> float:
    """The probability that the shopper is under ``limit`` from several frames' estimates:
    each frame's calibrated distribution, mixed with the frames' weights (see the module)."""
    if len(ages) != len(spreads) or not ages:
        raise ValueError("give one spread per age, and at least one age")
    weights = [1.0 / max(float(s), MIN_SPREAD) ** 2 for s in spreads]
    total = sum(weights)
    p = calibration.p_under(list(ages), list(spreads), limit)
    return float(sum(w * float(q) for w, q in zip(weights, p, strict=True)) / total)


def within_legal_hours(local: time, start: time, end: time) -> bool:
    """Whether a local time of day lies in [start, end); start > end passes midnight."""
    if start < end:
        return start <= local < end
    return local >= start or local < end


def judge_sale(
    frames: Sequence[FrameOutcome],
    local_time: time,
    rules: Rules,
    pos_errors: Sequence[str] = (),
    till: TillCheck | None = None,
) -> Verdict:
    """The verdict on one sale from its frames (nearest first), its local time of day, the
    problems the POS ingest found on its lines and what the till recorded of its age check."""
    read = [i for i, f in enumerate(frames) if f.outcome != EstimateOutcome.UNREADABLE_FRAME]
    faces = [(i, f.age, f.spread) for i, f in enumerate(frames) if f.age is not None]
    raised: dict[FlagKind, int | None] = {}
    details: dict[FlagKind, str] = {}
    age = spread = p_legal = p_threshold = None
    best_face = None
    challenged = False
    checks = till is not None and till.records_checks
    if till is not None and till.birth_date is not None:
        years = age_on(till.birth_date, till.sale_date)
        if years < rules.legal_age:
            raised[FlagKind.BIRTH_DATE_UNDER_AGE] = None
            details[FlagKind.BIRTH_DATE_UNDER_AGE] = (
                f"birth date {till.birth_date.isoformat()}: {years} on the day of the sale, "
                f"under the legal age {rules.legal_age}"
            )
    if faces:
        ages = [a for _, a, _ in faces if a is not None]
        spreads = [s for _, _, s in faces if s is not None]
        age, spread = combine_estimates(ages, spreads)
        p_legal = probability_under(ages, spreads, rules.legal_age, rules.calibration)
        p_threshold = probability_under(ages, spreads, rules.age_threshold, rules.calibration)
        best_face = min(faces, key=lambda f: (max(f[2] or 0.0, MIN_SPREAD), f[0]))[0]
        if FlagKind.BIRTH_DATE_UNDER_AGE in raised:
            raised[FlagKind.BIRTH_DATE_UNDER_AGE] = best_face
        elif till is not None and till.birth_date is not None:
            years = age_on(till.birth_date, till.sale_date)
            p_id = 1.0 - probability_under(ages, spreads, years, rules.calibration)
            if p_legal >= rules.contradiction or (
                p_legal >= LIKELY and p_id <= 1.0 - rules.contradiction
            ):
                raised[FlagKind.ID_CONTRADICTS_FACE] = best_face
                details[FlagKind.ID_CONTRADICTS_FACE] = (
                    f"birth date {till.birth_date.isoformat()} says {years}; the face is "
                    f"under {rules.legal_age} with probability {p_legal:.2f}, {years} or "
                    f"older with probability {p_id:.2f}"
                )
        if age < rules.age_threshold:
            if not checks:
                raised[FlagKind.UNDER_AGE_THRESHOLD] = best_face
            elif till is not None and not till.saw_id:
                raised[FlagKind.NO_ID_CHECK] = best_face
            else:
                challenged = True
    elif not frames:
        raised[FlagKind.NO_FRAME] = None
    elif not read:
        raised[FlagKind.UNREADABLE_FRAME] = 0
    else:
        raised[FlagKind.NO_FACE] = read[0]
    shown = best_face if best_face is not None else (0 if frames else None)
    if not within_legal_hours(local_time, rules.legal_hours_start, rules.legal_hours_end):
        raised[FlagKind.OUTSIDE_LEGAL_HOURS] = shown
    if pos_errors:
        raised[FlagKind.POS_ERROR] = shown
        details[FlagKind.POS_ERROR] = "\n".join(pos_errors)
    return Verdict(
        estimated_age=age,
        age_spread=spread,
        frames_matched=len(frames),
        frames_read=len(read),
        faces_found=len(faces),
        flags=tuple(kind for kind in FlagKind if kind in raised),
        evidence=raised,
        details=details,
        p_under_legal=p_legal,
        p_under_threshold=p_threshold,
        challenged=challenged,
    )
