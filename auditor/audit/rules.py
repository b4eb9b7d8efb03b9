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
- ``under_age_threshold``: a face was found and the combined age is under the threshold;
- ``outside_legal_hours``: the sale's local time is outside [legal_hours_start,
  legal_hours_end) (a range that passes midnight when the start is the later time);
- ``pos_error``: the POS export had lines of the receipt that the ingest rejected (a bad
  number, a register that disagrees with the other lines...); the flag names them as
  ``file:line: field: reason``. Its frames are judged as any sale's.

The first four describe the evidence and exactly one of ``no_frame``, ``unreadable_frame``,
``no_face`` or an estimate applies: a sale with some unreadable frames and some good ones is
judged on the good ones alone, and the counts of frames matched, read and with a face keep the
rest. ``outside_legal_hours`` and ``pos_error`` may come with any of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time

from auditor.settings import AuditSettings
from auditor.vocabulary import EstimateOutcome, FlagKind

MIN_SPREAD = 1.0  # years


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
    """The settings the judgement depends on."""

    age_threshold: float
    legal_hours_start: time
    legal_hours_end: time

    @classmethod
    def from_settings(cls, audit: AuditSettings) -> Rules:
        return cls(audit.age_threshold, audit.legal_hours_start, audit.legal_hours_end)


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
) -> Verdict:
    """The verdict on one sale from its frames (nearest first), its local time of day and the
    problems the POS ingest found on its lines."""
    read = [i for i, f in enumerate(frames) if f.outcome != EstimateOutcome.UNREADABLE_FRAME]
    faces = [(i, f.age, f.spread) for i, f in enumerate(frames) if f.age is not None]
    raised: dict[FlagKind, int | None] = {}
    age = spread = None
    best_face = None
    if faces:
        age, spread = combine_estimates(
            [a for _, a, _ in faces], [s for _, _, s in faces if s is not None]
        )
        best_face = min(faces, key=lambda f: (max(f[2] or 0.0, MIN_SPREAD), f[0]))[0]
        if age < rules.age_threshold:
            raised[FlagKind.UNDER_AGE_THRESHOLD] = best_face
    elif not frames:
        raised[FlagKind.NO_FRAME] = None
    elif not read:
        raised[FlagKind.UNREADABLE_FRAME] = 0
    else:
        raised[FlagKind.NO_FACE] = read[0]
    shown = best_face if best_face is not None else (0 if frames else None)
    if not within_legal_hours(local_time, rules.legal_hours_start, rules.legal_hours_end):
        raised[FlagKind.OUTSIDE_LEGAL_HOURS] = shown
    details = {}
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
    )
