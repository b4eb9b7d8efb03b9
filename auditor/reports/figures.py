"""The figures of the audit reports. Pure: tables of audit results in, plain values out.

Inputs are the DataFrames :mod:`auditor.reports.queries` reads (their columns are listed
there); outputs are dataclasses that the templates show as they are. Nothing here opens a
database, a file or a figure.

Definitions used throughout:

- an **alcohol sale** is an audited sale (one verdict of a store-night's current run);
- **frame coverage** is the share of alcohol sales with at least one frame in their window;
- **faces found** counts the alcohol sales on which at least one face was found;
- a **flagged sale** has at least one flag; the **flag rate** is flagged sales / alcohol sales;
- the **baseline** of a night is the ``nights`` nights before it (30 by default). Its flag rate
  is pooled: every flagged sale of those nights over every alcohol sale of those nights, so a
  quiet night weighs less than a busy one. Nights without an audit result do not count;
- the **change** of a flag rate is tonight's rate minus the baseline's, in percentage points;
- the **current review** of a flag is the latest review of its sale and flag kind; a sale is a
  **confirmed violation** when a current review of it says ``confirmed_violation``.

Risk ranking of the stores of a night (:func:`rank_stores`):

1. store-nights without an audit result come first (the audit failed, is still running or
   never ran): nothing there was checked;
2. then by the lower bound of the 95 % Wilson interval of the night's flag rate, highest first.
   It is the flag rate discounted for the size of the night: one flag in two sales (lower bound
   9 %) ranks below 30 flags in 100 sales (22 %). A store whose cameras were off has every sale
   flagged ``no_frame`` and so ranks high, as it should: its sales could not be checked;
3. ties: more under-age flags first, then more flagged sales, then the store id.

Cashier scorecards (:func:`scorecard`): each cashier over the night and the ``nights`` nights
before it, judged on the sales the age rules could check (a face found, or an under-age flag
without one): under-age flagged sales over checked sales, with its 95 % Wilson interval, week by
week, tonight beside. Cashiers with at least ``min_sales`` checked sales in the window are ranked
by the interval's lower bound, highest first (:func:`rank_scorecard`); the others follow,
unranked. A night of fewer than ``min_sales`` checked sales is **quiet**: its change says little,
and the pages show it without the colours of news. Camera and frame problems
(:data:`~auditor.vocabulary.CAMERA_KINDS`) are not the cashier's: :func:`camera_rows` counts
them per register.

Under-age flags are the flags of :data:`~auditor.vocabulary.AGE_KINDS` (under the threshold,
no ID check, a birth date under the legal age, an ID that contradicts the face): the
**under-age** counts are of sales with at least one of them, and only they keep a face.

The **challenge rate** (:class:`Challenges`) of a cashier, a store or a night is::

    challenged / (challenged + no_id_check)

over the alcohol sales whose combined estimate is under the run's threshold and whose till
records age checks: ``challenged`` are those where an ID check was recorded (seen, scanned, or a
birth date taken; ``sale_verdicts.challenged``), ``no_id_check`` those where none was (flagged
``no_id_check``). Together they are every sale estimated under the threshold in a POS export
with age-check columns. Sales of exports without those columns (flagged
``under_age_threshold`` when young-looking) say nothing of checks and do not count; a cashier
without any counted sale has no rate. Cashiers are ranked by it lowest first
(:func:`challenge_rows`): over the night and the ``nights`` nights before it pooled, and only
when that rests on at least ``min_sales`` counted sales; the others follow, unranked, with the
same caution as for flag rates.

Risk order of flagged sales (:func:`risk_order`): hard violations first
(:attr:`~auditor.vocabulary.FlagKind.is_violation`: a birth date under the legal age, an ID that
contradicts the face), then by the probability that the shopper is under the legal age, highest
first (sales without it, no face found, last), then newest first (time of sale, then sale
id), as the review app's list.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeAlias, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from auditor.audit.business_day import day_bounds
from auditor.settings import LEGACY_LEGAL_AGE, RecordedAudit
from auditor.vocabulary import (
    AGE_KINDS,
    CAMERA_KINDS,
    Decision,
    Evidence,
    FlagKind,
    NightState,
    RunStatus,
)

Z_95 = 1.959964

# Estimated-age bands of the purchase mix: (label, lowest age, first age of the next band).
AGE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("under 18", -math.inf, 18),
    ("18–24", 18, 25),
    ("25–34", 25, 35),
    ("35–49", 35, 50),
    ("50–64", 50, 65),
    ("65 and over", 65, math.inf),
)
MIX_CATEGORIES = 7  # the categories with most spend get a column each; the rest are "other"
OTHER = "other"


# -- small helpers -------------------------------------------------------------------------------


def rate(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is nothing to divide."""
    return part / whole if whole else None


def wilson_interval(part: int, whole: int, z: float = Z_95) -> tuple[float, float] | None:
    """The 95 % Wilson score interval of ``part / whole`` (None when ``whole`` is 0)."""
    if whole <= 0:
        return None
    p = part / whole
    centre = p + z * z / (2 * whole)
    margin = z * math.sqrt(p * (1 - p) / whole + z * z / (4 * whole * whole))
    scale = 1 + z * z / whole
    return max(0.0, (centre - margin) / scale), min(1.0, (centre + margin) / scale)


def wilson_lower(flagged: int, total: int, z: float = Z_95) -> float:
    """Lower bound of the Wilson score interval of ``flagged / total`` (0 when ``total`` is 0)."""
    interval = wilson_interval(flagged, total, z)
    return interval[0] if interval else 0.0


def change(tonight: float | None, before: float | None) -> float | None:
    """Tonight's rate minus the baseline's (a fraction; the templates show percentage points)."""
    if tonight is None or before is None:
        return None
    return tonight - before


def has_kind(flag_kinds: pd.Series, kind: str) -> pd.Series:
    """Which ``;``-joined flag lists hold ``kind``."""
    return has_any_kind(flag_kinds, (kind,))


def has_any_kind(flag_kinds: pd.Series, kinds: Iterable[str]) -> pd.Series:
    """Which ``;``-joined flag lists hold at least one of ``kinds``."""
    wanted = set(kinds)
    return lists_where(flag_kinds, lambda found: not wanted.isdisjoint(found))


def lists_where(flag_kinds: pd.Series, test: Callable[[list[str]], bool]) -> pd.Series:
    """Which ``;``-joined flag lists pass ``test`` (given the list's kinds; a missing list
    has none). A window has a handful of distinct lists: each is tested once, not per sale."""
    codes, lists = pd.factorize(flag_kinds)
    passed = [test(split_kinds(str(v))) for v in lists] + [test([])]  # code -1: missing
    return pd.Series(np.array(passed, dtype=bool)[codes], index=flag_kinds.index)


def has_age_kind(flag_kinds: pd.Series) -> pd.Series:
    """Which ``;``-joined flag lists hold an under-age flag (:data:`AGE_KINDS`)."""
    return has_any_kind(flag_kinds, AGE_KINDS)


def is_flagged(flag_kinds: pd.Series) -> pd.Series:
    return flag_kinds.fillna("").astype(str) != ""


def split_kinds(flag_kinds: str | None) -> list[str]:
    return [k for k in (flag_kinds or "").split(";") if k]


# -- challenges ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenges:
    """Sales estimated under the threshold whose till records age checks (``due``), and those
    of them with an ID check recorded (``challenged``): see the module's docstring."""

    challenged: int = 0
    due: int = 0

    @property
    def rate(self) -> float | None:
        return rate(self.challenged, self.due)

    def __add__(self, other: Challenges) -> Challenges:
        return Challenges(self.challenged + other.challenged, self.due + other.due)


def challenges(verdicts: pd.DataFrame) -> Challenges:
    """The challenges among ``verdicts`` (columns ``challenged``, ``flag_kinds``)."""
    if verdicts.empty:
        return Challenges()
    challenged, due = _challenge_marks(verdicts)
    return Challenges(int(challenged.sum()), int(due.sum()))


def _challenge_marks(verdicts: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Which verdicts are challenged, and which are due (challenged or ``no_id_check``)."""
    if "challenged" in verdicts:
        challenged = verdicts["challenged"].eq(True)  # None (not known) is not challenged
    else:
        challenged = pd.Series(False, index=verdicts.index)
    return challenged, challenged | has_kind(verdicts["flag_kinds"], FlagKind.NO_ID_CHECK)


def counts_by(verdicts: pd.DataFrame, key: str) -> dict[Any, dict[str, int]]:
    """Per value of column ``key`` (sorted): its verdicts' ``sales``, ``flagged`` sales, sales
    with an ``under_age`` flag, and the ``challenged`` and ``due`` sales of :func:`challenges`;
    each column worked out once for all the verdicts, then summed by group."""
    if verdicts.empty:
        return {}
    kinds = verdicts["flag_kinds"]
    challenged, due = _challenge_marks(verdicts)
    columns = {
        "sales": pd.Series(1, index=verdicts.index),
        "flagged": is_flagged(kinds),
        "under_age": has_age_kind(kinds),
        "challenged": challenged,
        "due": due,
    }
    sums = pd.DataFrame({key: verdicts[key], **columns}).groupby(key, sort=True).sum()
    return {
        value: dict(zip(columns, (int(n) for n in row), strict=True))
        for value, row in zip(sums.index, sums[list(columns)].to_numpy(), strict=True)
    }


def _challenges_of(counts: Mapping[str, int] | None) -> Challenges:
    return Challenges(counts["challenged"], counts["due"]) if counts else Challenges()


# -- one store, one night ------------------------------------------------------------------------


@dataclass(frozen=True)
class NightFigures:
    """The headline counts of one store-night (or of several, summed)."""

    alcohol_sales: int = 0
    sales_with_frames: int = 0
    sales_with_face: int = 0
    flagged_sales: int = 0
    flags_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FlagKind, 0))
    under_age: int = 0  # sales with an under-age flag (any of AGE_KINDS)
    challenges: Challenges = field(default_factory=Challenges)

    @property
    def frame_coverage(self) -> float | None:
        return rate(self.sales_with_frames, self.alcohol_sales)

    @property
    def face_rate(self) -> float | None:
        return rate(self.sales_with_face, self.alcohol_sales)

    @property
    def flag_rate(self) -> float | None:
        return rate(self.flagged_sales, self.alcohol_sales)

    @property
    def flags(self) -> int:
        return sum(self.flags_by_kind.values())

    def __add__(self, other: NightFigures) -> NightFigures:
        return NightFigures(
            self.alcohol_sales + other.alcohol_sales,
            self.sales_with_frames + other.sales_with_frames,
            self.sales_with_face + other.sales_with_face,
            self.flagged_sales + other.flagged_sales,
            {k: self.flags_by_kind.get(k, 0) + other.flags_by_kind.get(k, 0) for k in FlagKind},
            self.under_age + other.under_age,
            self.challenges + other.challenges,
        )


def night_figures(verdicts: pd.DataFrame) -> NightFigures:
    """Counts over ``verdicts`` (columns ``frames_matched``, ``faces_found``, ``flag_kinds``)."""
    kinds = verdicts["flag_kinds"]
    return NightFigures(
        alcohol_sales=len(verdicts),
        sales_with_frames=int((verdicts["frames_matched"] > 0).sum()),
        sales_with_face=int((verdicts["faces_found"] > 0).sum()),
        flagged_sales=int(is_flagged(kinds).sum()),
        flags_by_kind={k: int(has_kind(kinds, k).sum()) for k in FlagKind},
        under_age=int(has_age_kind(kinds).sum()),
        challenges=challenges(verdicts),
    )


@dataclass(frozen=True)
class Baseline:
    """The nights before tonight: how many had results, and their pooled counts."""

    nights: int = 0
    alcohol_sales: int = 0
    flagged_sales: int = 0
    under_age: int = 0
    challenges: Challenges = field(default_factory=Challenges)

    @property
    def flag_rate(self) -> float | None:
        return rate(self.flagged_sales, self.alcohol_sales)

    @property
    def sales_per_night(self) -> float | None:
        return rate(self.alcohol_sales, self.nights)


def baseline(verdicts: pd.DataFrame, nights_with_results: int) -> Baseline:
    """The pooled counts of the baseline nights' ``verdicts``."""
    kinds = verdicts["flag_kinds"]
    return Baseline(
        nights=nights_with_results,
        alcohol_sales=len(verdicts),
        flagged_sales=int(is_flagged(kinds).sum()),
        under_age=int(has_age_kind(kinds).sum()),
        challenges=challenges(verdicts),
    )


# -- audit runs ----------------------------------------------------------------------------------

# An ``audit_runs`` row by column name, as a frame's row gives it.
RunRow = dict[Hashable, Any]


@dataclass(frozen=True)
class RunState:
    """Where a store-night's audit stands.

    ``state``: ``audited`` (a succeeded run: its results are the night's), ``failed`` (every
    attempt failed), ``running`` (an attempt in progress, or one whose process died, and no
    result yet) or ``not_audited``. ``current`` is the succeeded run, ``latest`` the latest
    attempt; when the latest attempt is not the current one (a re-run that failed), ``latest``
    says so while ``current`` still holds the figures.
    """

    state: NightState
    current: RunRow | None = None
    latest: RunRow | None = None

    @property
    def has_results(self) -> bool:
        return self.current is not None

    @property
    def later_attempt(self) -> RunRow | None:
        """The latest attempt when it is not the run whose results are shown."""
        if self.latest is None or self.current is None or self.latest["id"] == self.current["id"]:
            return None
        return self.latest


def run_state(runs: pd.DataFrame) -> RunState:
    """The state of one store-night from all its attempts (``audit_runs`` rows)."""
    if runs.empty:
        return RunState(NightState.NOT_AUDITED)
    ordered = runs.sort_values(["started_at", "id"])
    latest = ordered.iloc[-1].to_dict()
    succeeded = ordered[ordered["status"] == RunStatus.SUCCEEDED]
    if not succeeded.empty:
        return RunState(NightState.AUDITED, succeeded.iloc[-1].to_dict(), latest)
    if latest["status"] == RunStatus.RUNNING:
        return RunState(NightState.RUNNING, None, latest)
    return RunState(NightState.FAILED, None, latest)


@dataclass(frozen=True)
class SettingsUsed:
    """What a run was judged with, as recorded in its ``audit_runs`` row."""

    age_threshold: int | float | None
    legal_age: int | float
    window_before_s: int | float | None
    window_after_s: int | float | None
    frames_per_sale: int | float | None
    legal_hours: str
    model_version: str
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None
    run_id: int


def settings_used(run: RunRow, zone: ZoneInfo) -> SettingsUsed:
    audit = RecordedAudit.of(run.get("settings"))
    start, end = audit.legal_hours_start or "?", audit.legal_hours_end or "?"
    seconds = ((run.get("stats") or {}).get("seconds") or {}).get("total")
    return SettingsUsed(
        age_threshold=audit.age_threshold,
        legal_age=audit.legal_age,
        window_before_s=audit.window_before_s,
        window_after_s=audit.window_after_s,
        frames_per_sale=audit.frames_per_sale,
        legal_hours=f"{start[:5]}–{end[:5]}",
        model_version=str(run.get("model_version") or ""),
        started_at=local(run.get("started_at"), zone),
        finished_at=local(run.get("finished_at"), zone),
        seconds=float(seconds) if seconds is not None else None,
        run_id=int(run["id"]),
    )


def local(instant: Any, zone: ZoneInfo) -> datetime | None:
    """An aware instant (datetime or Timestamp) in ``zone``; None for a missing value."""
    if instant is None or (not isinstance(instant, datetime) and pd.isna(instant)):
        return None
    value = pd.Timestamp(instant)
    if value.tzinfo is None:
        value = value.tz_localize("UTC")
    return value.tz_convert(zone).to_pydatetime()


def local_times(instants: pd.Series, zone: ZoneInfo) -> list[datetime]:
    """Aware instants (none missing) in ``zone``, as :func:`local` gives each, all at once."""
    if instants.empty:
        return []
    return list(pd.to_datetime(instants, utc=True).dt.tz_convert(zone).dt.to_pydatetime())


# -- the chain index -----------------------------------------------------------------------------


@dataclass
class StoreRow:
    """One store of the chain index."""

    store_id: str
    name: str
    timezone: str
    run: RunState
    night: NightFigures
    baseline: Baseline
    rank: int = 0
    reviews: ReviewCounts | None = None  # set by the report, which reads the reviews
    at_risk: list[ScorecardRow] = field(default_factory=list)  # the chain index's few
    min_sales: int = 0  # fewer alcohol sales tonight: a quiet night

    @property
    def quiet(self) -> bool:
        """Too few sales tonight for a change of rate to read as news, good or bad."""
        return self.night.alcohol_sales < self.min_sales

    @property
    def change(self) -> float | None:
        return change(self.night.flag_rate, self.baseline.flag_rate)

    @property
    def challenge_change(self) -> float | None:
        return change(self.night.challenges.rate, self.baseline.challenges.rate)

    @property
    def rules(self) -> RecordedAudit | None:
        """The rules the night's current run recorded (None without a result)."""
        current = self.run.current
        return RecordedAudit.of(current.get("settings")) if current is not None else None

    @property
    def risk(self) -> float:
        return wilson_lower(self.night.flagged_sales, self.night.alcohol_sales)

    @property
    def no_sales(self) -> bool:
        return self.run.has_results and self.night.alcohol_sales == 0

    @property
    def no_frames(self) -> bool:
        return self.night.alcohol_sales > 0 and self.night.sales_with_frames == 0


def night_and_before(
    verdicts: pd.DataFrame, *, day: date, nights: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verdicts of ``day``, and those of the ``nights`` nights before it."""
    first = day - timedelta(days=nights)
    dates = verdicts["business_date"]
    return verdicts[dates == day], verdicts[(dates >= first) & (dates < day)]


def store_rows(
    *,
    stores: pd.DataFrame,
    runs: pd.DataFrame,
    verdicts: pd.DataFrame,
    day: date,
    nights: int,
) -> list[StoreRow]:
    """Every store of ``stores`` on ``day`` with its baseline, ranked by :func:`rank_stores`.

    ``runs`` and ``verdicts`` cover ``day`` and the ``nights`` nights before it (verdicts of
    succeeded runs only); extra rows outside that window are ignored.
    """
    first = day - timedelta(days=nights)
    rows = []
    for store_id, name, timezone in stores[["id", "name", "timezone"]].itertuples(index=False):
        store_runs = runs[(runs["store_id"] == store_id) & (runs["business_date"] == day)]
        mine = verdicts[verdicts["store_id"] == store_id]
        tonight, before = night_and_before(mine, day=day, nights=nights)
        rows.append(
            StoreRow(
                store_id=store_id,
                name=name or "",
                timezone=timezone,
                run=run_state(store_runs),
                night=night_figures(tonight),
                baseline=baseline(before, _nights_with_results(runs, store_id, first, day)),
            )
        )
    return rank_stores(rows)


def _nights_with_results(runs: pd.DataFrame, store_id: str, first: date, day: date) -> int:
    done = runs[
        (runs["store_id"] == store_id)
        & (runs["status"] == RunStatus.SUCCEEDED)
        & (runs["business_date"] >= first)
        & (runs["business_date"] < day)
    ]
    return int(done["business_date"].nunique())


def rank_stores(rows: Iterable[StoreRow]) -> list[StoreRow]:
    """The rows in risk order (see the module's docstring), with ``rank`` set from 1."""

    def key(row: StoreRow) -> tuple[Any, ...]:
        return (
            row.run.has_results,
            -row.risk,
            -row.night.under_age,
            -row.night.flagged_sales,
            row.store_id,
        )

    ranked = sorted(rows, key=key)
    for n, row in enumerate(ranked, start=1):
        row.rank = n
    return ranked


def chain_totals(rows: Sequence[StoreRow]) -> NightFigures:
    total = NightFigures()
    for row in rows:
        total = total + row.night
    return total


# -- reviews -------------------------------------------------------------------------------------


def current_reviews(reviews: pd.DataFrame) -> pd.DataFrame:
    """The latest review of each (sale, flag kind): columns of ``reviews``, one row each."""
    if reviews.empty:
        return reviews
    ordered = reviews.sort_values(["reviewed_at", "review_id"])
    return ordered.drop_duplicates(["sale_id", "flag_kind"], keep="last")


def confirmed_sales(reviews: pd.DataFrame) -> set[int]:
    """Sales with a current review that confirms a violation."""
    current = current_reviews(reviews)
    return {
        int(s) for s in current.loc[current["decision"] == Decision.CONFIRMED_VIOLATION, "sale_id"]
    }


# -- cashiers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengeRow:
    """One cashier's challenge rate: tonight, the nights before, and both pooled (ranked)."""

    store_id: str
    cashier_id: str
    name: str
    tonight: Challenges
    before: Challenges
    ranked: bool = False
    rank: int | None = None

    @property
    def window(self) -> Challenges:
        """Tonight and the nights before, pooled: what the cashier is ranked by."""
        return self.tonight + self.before

    @property
    def change(self) -> float | None:
        return change(self.tonight.rate, self.before.rate)


def challenge_rows(
    *,
    tonight: pd.DataFrame,
    before: pd.DataFrame,
    cashiers: pd.DataFrame,
    min_sales: int,
    store_id: str = "",
) -> list[ChallengeRow]:
    """Tonight's cashiers (those with an alcohol sale) by challenge rate, lowest first.

    ``tonight`` and ``before`` are verdicts (with ``cashier_id``, ``flag_kinds``,
    ``challenged``); ``cashiers`` gives names. See :func:`rank_challenges` for the order.
    """
    names = dict(zip(cashiers["cashier_id"], cashiers["name"], strict=True))
    earlier = counts_by(before, "cashier_id")
    rows = [
        ChallengeRow(
            store_id=store_id,
            cashier_id=str(cashier_id),
            name=str(names.get(cashier_id, "") or ""),
            tonight=_challenges_of(counts),
            before=_challenges_of(earlier.get(cashier_id)),
            ranked=False,
        )
        for cashier_id, counts in counts_by(tonight, "cashier_id").items()
    ]
    return rank_challenges(rows, min_sales=min_sales)


def rank_challenges(rows: Iterable[ChallengeRow], *, min_sales: int) -> list[ChallengeRow]:
    """Cashiers whose pooled challenge rate rests on at least ``min_sales`` counted sales, by
    that rate, lowest first (ties: more counted sales, then store and cashier id), ranked from
    1; then the others, unranked (most counted sales first)."""
    rows = list(rows)
    ranked = sorted(
        (r for r in rows if r.window.due >= max(min_sales, 1)),
        key=lambda r: (r.window.challenged / r.window.due, -r.window.due, r.store_id, r.cashier_id),
    )
    unranked = sorted(
        (r for r in rows if r.window.due < max(min_sales, 1)),
        key=lambda r: (-r.window.due, r.store_id, r.cashier_id),
    )
    return [replace(r, ranked=True, rank=n) for n, r in enumerate(ranked, start=1)] + [
        replace(r, ranked=False, rank=None) for r in unranked
    ]


# -- cashier scorecards over the window ----------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A cashier's (or a week's) counts over some alcohol sales.

    ``checked`` are the sales the age rules could judge: a face was found, or an under-age flag
    was raised without one (a birth date under the legal age). Sales with a camera or frame
    problem and nothing else (:data:`~auditor.vocabulary.CAMERA_KINDS`) are not checked: they
    count against the register (:func:`camera_rows`), not in the cashier's rate.
    """

    sales: int = 0
    checked: int = 0
    under_age: int = 0  # sales with an under-age flag
    confirmed: int = 0  # sales with a current review that confirms a violation

    @property
    def rate(self) -> float | None:
        """Under-age flagged sales over checked sales."""
        return rate(self.under_age, self.checked)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % Wilson interval of :attr:`rate`."""
        return wilson_interval(self.under_age, self.checked)

    @property
    def risk(self) -> float:
        """The interval's lower bound: the rate discounted for a small sample."""
        return self.interval[0] if self.interval else 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.sales + other.sales,
            self.checked + other.checked,
            self.under_age + other.under_age,
            self.confirmed + other.confirmed,
        )


_TALLIED = ["sales", "checked", "under_age", "confirmed"]


def _tallied(verdicts: pd.DataFrame, confirmed: set[int]) -> pd.DataFrame:
    """What each verdict adds to a :class:`Tally`: 1 sale, and whether it is checked, under
    age and confirmed (columns ``_TALLIED``)."""
    under = has_age_kind(verdicts["flag_kinds"])
    return pd.DataFrame(
        {
            "sales": 1,
            "checked": (verdicts["faces_found"] > 0) | under,
            "under_age": under,
            "confirmed": verdicts["sale_id"].isin(confirmed),
        },
        index=verdicts.index,
    )


def tally(verdicts: pd.DataFrame, confirmed: set[int]) -> Tally:
    """The :class:`Tally` of ``verdicts`` (``sale_id``, ``faces_found``, ``flag_kinds``)."""
    if verdicts.empty:
        return Tally()
    return Tally(*(int(n) for n in _tallied(verdicts, confirmed)[_TALLIED].sum()))


def daily_tallies(verdicts: pd.DataFrame, confirmed: set[int]) -> dict[tuple[str, date], Tally]:
    """The :func:`tally` of each cashier's business date among ``verdicts`` (with
    ``cashier_id`` and ``business_date``): a window's few sums per cashier, from which the
    tally of any span of nights adds up (:func:`tally_over`)."""
    if verdicts.empty:
        return {}
    counts = _tallied(verdicts, confirmed)
    counts["cashier_id"] = verdicts["cashier_id"]
    counts["business_date"] = verdicts["business_date"]
    sums = counts.groupby(["cashier_id", "business_date"], sort=True)[_TALLIED].sum()
    return {
        (str(cashier_id), day): Tally(*(int(n) for n in row))
        for (cashier_id, day), row in zip(sums.index, sums.to_numpy(), strict=True)
    }


def tally_over(days: Mapping[date, Tally], first: date, last: date) -> Tally:
    """The tallies of ``days`` from ``first`` through ``last`` added up."""
    total = Tally()
    for day, counts in days.items():
        if first <= day <= last:
            total = total + counts
    return total


@dataclass(frozen=True)
class Week:
    """Seven business dates ending on ``last`` (the first week of a window may be shorter)."""

    first: date
    last: date
    tally: Tally


def week_spans(day: date, nights: int) -> list[tuple[date, date]]:
    """The weeks of ``day`` and the ``nights`` nights before it, oldest first: each ends on
    ``day`` or seven days before the next; the oldest is cut at the window's first night."""
    start = day - timedelta(days=nights)
    spans = []
    last = day
    while last >= start:
        first = max(last - timedelta(days=6), start)
        spans.append((first, last))
        last = first - timedelta(days=1)
    return spans[::-1]


@dataclass(frozen=True)
class ScorecardRow:
    """One cashier over the window (tonight and the nights before), with tonight beside.

    ``quiet``: tonight's checked sales are fewer than the ranking needs, so tonight's rate and
    its change say little and are shown without the colours of good or bad news.
    """

    store_id: str
    cashier_id: str
    name: str
    tonight: Tally
    before: Tally
    weeks: list[Week]
    ranked: bool = False
    rank: int | None = None
    quiet: bool = True

    @property
    def window(self) -> Tally:
        return self.tonight + self.before

    @property
    def change(self) -> float | None:
        """Tonight's rate minus that of the nights before."""
        return change(self.tonight.rate, self.before.rate)


def scorecard(
    *,
    verdicts: pd.DataFrame,
    reviews: pd.DataFrame,
    cashiers: pd.DataFrame,
    day: date,
    nights: int,
    min_sales: int,
    store_id: str = "",
) -> list[ScorecardRow]:
    """Every cashier with an alcohol sale in the window (``verdicts`` of ``day`` and the
    ``nights`` nights before it), ranked by :func:`rank_scorecard`."""
    names = dict(zip(cashiers["cashier_id"], cashiers["name"], strict=True))
    spans = week_spans(day, nights)
    first = day - timedelta(days=nights)
    by_cashier: dict[str, dict[date, Tally]] = defaultdict(dict)
    for (cashier_id, sold_on), counts in daily_tallies(verdicts, confirmed_sales(reviews)).items():
        by_cashier[cashier_id][sold_on] = counts
    rows = []
    for cashier_id, days in by_cashier.items():
        night = days.get(day, Tally())
        rows.append(
            ScorecardRow(
                store_id=store_id,
                cashier_id=cashier_id,
                name=str(names.get(cashier_id, "") or ""),
                tonight=night,
                before=tally_over(days, first, day - timedelta(days=1)),
                weeks=[Week(a, b, tally_over(days, a, b)) for a, b in spans],
                quiet=night.checked < min_sales,
            )
        )
    return rank_scorecard(rows, min_sales=min_sales)


def rank_scorecard(rows: Iterable[ScorecardRow], *, min_sales: int) -> list[ScorecardRow]:
    """Cashiers with at least ``min_sales`` checked sales in the window, most at risk first:
    by the lower bound of the Wilson interval of their under-age rate (so 2 in 10 ranks below
    12 in 100), ties to more confirmed violations, more under-age sales, then the ids; ranked
    from 1. Then the others, unranked, most under-age sales first."""
    rows = list(rows)
    enough = max(min_sales, 1)
    ranked = sorted(
        (r for r in rows if r.window.checked >= enough),
        key=lambda r: (
            -r.window.risk,
            -r.window.confirmed,
            -r.window.under_age,
            r.store_id,
            r.cashier_id,
        ),
    )
    unranked = sorted(
        (r for r in rows if r.window.checked < enough),
        key=lambda r: (-r.window.under_age, -r.window.sales, r.store_id, r.cashier_id),
    )
    return [replace(r, ranked=True, rank=n) for n, r in enumerate(ranked, start=1)] + [
        replace(r, ranked=False, rank=None) for r in unranked
    ]


def beyond_camera(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts with a flag other than a camera or frame problem (:data:`CAMERA_KINDS`)."""
    keep = lists_where(
        verdicts["flag_kinds"], lambda kinds: any(k not in CAMERA_KINDS for k in kinds)
    )
    return verdicts[keep]


# -- cameras, per register -----------------------------------------------------------------------


@dataclass(frozen=True)
class CameraTally:
    """Alcohol sales at a register and those with each camera or frame problem."""

    sales: int = 0
    problems: int = 0  # sales with at least one of CAMERA_KINDS
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CAMERA_KINDS, 0))

    @property
    def rate(self) -> float | None:
        return rate(self.problems, self.sales)

    def kind_rate(self, kind: str) -> float | None:
        return rate(self.by_kind.get(kind, 0), self.sales)


def camera_tally(verdicts: pd.DataFrame) -> CameraTally:
    if verdicts.empty:
        return CameraTally()
    kinds = verdicts["flag_kinds"]
    return CameraTally(
        sales=len(verdicts),
        problems=int(has_any_kind(kinds, CAMERA_KINDS).sum()),
        by_kind={k: int(has_kind(kinds, k).sum()) for k in CAMERA_KINDS},
    )


@dataclass(frozen=True)
class CameraRow:
    """One register's camera problems over the window and tonight; ``enough``: the window
    has at least the sales a rate needs to be read."""

    register_id: str
    window: CameraTally
    tonight: CameraTally
    enough: bool


def camera_rows(*, verdicts: pd.DataFrame, day: date, min_sales: int) -> list[CameraRow]:
    """Each register with an alcohol sale in the window (``verdicts``), worst first: by the
    share of sales with a camera or frame problem over the window, then the register id."""
    rows = [
        CameraRow(
            register_id=str(register_id),
            window=camera_tally(sales),
            tonight=camera_tally(sales[sales["business_date"] == day]),
            enough=len(sales) >= min_sales,
        )
        for register_id, sales in verdicts.groupby("register_id", sort=True)
    ]
    return sorted(rows, key=lambda r: (-(r.window.rate or 0.0), r.register_id))


# -- reviews of a night --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewCounts:
    """Of a night's flagged sales: those still open (a flag kind without a decision), and the
    confirmed violations (a current review that says so)."""

    open: int = 0
    confirmed: int = 0


def review_counts(verdicts: pd.DataFrame, reviews: pd.DataFrame) -> ReviewCounts:
    """:class:`ReviewCounts` of ``verdicts`` (``sale_id``, ``flag_kinds``) from ``reviews``."""
    current = current_reviews(reviews)
    decided = set(
        zip(current["sale_id"].astype(int), current["flag_kind"].astype(str), strict=True)
    )
    open_sales = sum(
        any((int(sale_id), kind) not in decided for kind in split_kinds(kinds))
        for sale_id, kinds in zip(verdicts["sale_id"], verdicts["flag_kinds"], strict=True)
    )
    confirmed = int(verdicts["sale_id"].isin(confirmed_sales(reviews)).sum())
    return ReviewCounts(open=int(open_sales), confirmed=confirmed)


# -- the chain's nights --------------------------------------------------------------------------


@dataclass(frozen=True)
class NightTotals:
    """The chain's counts of one business date, counted in sales as the chain index counts."""

    day: date
    stores: int = 0  # stores with an audit result
    alcohol_sales: int = 0
    flagged_sales: int = 0
    under_age: int = 0
    challenges: Challenges = field(default_factory=Challenges)
    reviews: ReviewCounts = field(default_factory=ReviewCounts)

    @property
    def flag_rate(self) -> float | None:
        return rate(self.flagged_sales, self.alcohol_sales)

    @property
    def under_age_rate(self) -> float | None:
        return rate(self.under_age, self.alcohol_sales)


def night_totals(totals: pd.DataFrame, reviewed: pd.DataFrame) -> dict[date, NightTotals]:
    """Per business date, from :func:`~auditor.reports.queries.night_totals` and
    :func:`~auditor.reports.queries.night_reviews`."""
    review_of = {
        d: ReviewCounts(int(o or 0), int(c or 0))
        for d, o, c in reviewed[["business_date", "open", "confirmed"]].itertuples(index=False)
    }
    found = {}
    columns = ["business_date", "stores", "alcohol_sales", "flagged_sales", "under_age"]
    for d, stores, sales, flagged, under, challenged, due in totals[
        [*columns, "challenged", "due"]
    ].itertuples(index=False):
        found[d] = NightTotals(
            day=d,
            stores=int(stores or 0),
            alcohol_sales=int(sales or 0),
            flagged_sales=int(flagged or 0),
            under_age=int(under or 0),
            challenges=Challenges(int(challenged or 0), int(due or 0)),
            reviews=review_of.get(d, ReviewCounts()),
        )
    return found


def chain_trend(totals: dict[date, NightTotals], *, day: date, nights: int) -> list[TrendPoint]:
    """The chain's point of each night from ``day - nights`` to ``day`` (sales pooled over
    its stores: the chain's average); nights without any result are gaps."""
    points = []
    for n in range(nights, -1, -1):
        d = day - timedelta(days=n)
        t = totals.get(d)
        if t is None or not t.stores:
            points.append(TrendPoint(d, None, None, None))
        else:
            points.append(
                TrendPoint(d, t.alcohol_sales, t.flag_rate, t.under_age_rate, t.challenges)
            )
    return points


# -- flagged sales -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewStatus:
    decision: str  # a Decision
    reviewed_at: datetime | None
    reviewer: str
    comment: str


@dataclass(frozen=True)
class FlaggedSale:
    """One flagged sale with its evidence, as the flagged-sales table shows it.

    ``evidence`` is ``crop`` (``face_crop`` holds the stored JPEG of the face the under-age
    flag, ``evidence_kind``, was raised on), ``removed`` (the crop was purged under the
    retention rules), ``missing`` (an under-age flag without a stored crop) or ``none`` (no
    face is kept for other flag kinds). ``p_under_legal`` is the probability that the shopper
    is under ``legal_age``, the legal age of the run (None without a face).
    """

    sale_id: int
    receipt_id: str
    register_id: str
    cashier_id: str
    cashier_name: str
    sold_at: datetime  # store-local
    alcohol_items: list[str]
    estimated_age: float | None
    age_spread: float | None
    kinds: list[str]
    reviews: dict[str, ReviewStatus | None]  # by flag kind; None: not reviewed
    evidence: Evidence
    face_crop: bytes | None = None
    evidence_kind: str | None = None
    p_under_legal: float | None = None
    legal_age: int | float = LEGACY_LEGAL_AGE
    store_id: str = ""

    @property
    def open_kinds(self) -> list[str]:
        return [k for k in self.kinds if self.reviews.get(k) is None]

    @property
    def under_age(self) -> bool:
        """Whether the sale has an under-age flag (:data:`~auditor.vocabulary.AGE_KINDS`)."""
        return any(k in AGE_KINDS for k in self.kinds)

    @property
    def violation(self) -> bool:
        """Whether the sale has a hard violation's flag (ranked first in review)."""
        return any(k in _VIOLATIONS for k in self.kinds)


_VIOLATIONS = frozenset(k for k in FlagKind if k.is_violation)


# a sale's violation, P(under the legal age), time of sale, sale id
RiskKeys: TypeAlias = tuple[bool, float | None, Any, int]
Ranked = TypeVar("Ranked")


def by_risk(items: Iterable[Ranked], keys: Callable[[Ranked], RiskKeys]) -> list[Ranked]:
    """``items`` by risk (see the module's docstring), as the review app's list orders them:
    violations first, then P(under the legal age) highest first, no probability last, then
    newest first (by time of sale, then sale id). ``keys`` gives an item's (violation, P, time
    of sale, sale id)."""

    def risk(row: tuple[Ranked, RiskKeys]) -> tuple[bool, bool, float]:
        violation, p, _, _ = row[1]
        return (not violation, p is None, -(p or 0.0))

    rows = [(item, keys(item)) for item in items]
    newest = sorted(rows, key=lambda row: row[1][2:], reverse=True)
    return [item for item, _ in sorted(newest, key=risk)]  # stable: ties stay newest first


def risk_order(sales: Iterable[FlaggedSale]) -> list[FlaggedSale]:
    """The sales :func:`by_risk`."""
    return by_risk(sales, lambda s: (s.violation, s.p_under_legal, s.sold_at, s.sale_id))


def riskiest(verdicts: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The ``limit`` flagged sales of each cashier highest :func:`by_risk`, from verdicts
    (``flag_kinds``, ``p_under_legal``, ``sold_at``, ``sale_id``, ``cashier_id``): what a
    page that cannot list them all lists, ranked on the verdicts rather than on built rows so
    that only the listed sales' evidence is read."""
    if verdicts.empty:
        return verdicts
    violation = lists_where(
        verdicts["flag_kinds"], lambda kinds: any(k in _VIOLATIONS for k in kinds)
    ).tolist()
    p = [None if v != v else float(v) for v in verdicts["p_under_legal"].astype(float)]
    sold_at = verdicts["sold_at"].tolist()
    sale_id = verdicts["sale_id"].astype(int).tolist()
    order = by_risk(range(len(verdicts)), lambda i: (violation[i], p[i], sold_at[i], sale_id[i]))
    ranked = verdicts.iloc[order]
    return ranked.groupby("cashier_id", sort=False).head(limit).sort_index()


def flagged_sales(
    *,
    verdicts: pd.DataFrame,
    flags: pd.DataFrame,
    lines: pd.DataFrame,
    reviews: pd.DataFrame,
    cashiers: pd.DataFrame,
    zone: ZoneInfo,
) -> list[FlaggedSale]:
    """The night's flagged sales by risk (:func:`risk_order`), with evidence and reviews.

    ``verdicts`` are the night's; ``flags`` its current run's flags (``sale_id``, ``kind``,
    ``face_crop``, ``evidence_purged_at``, ``legal_age``); ``lines`` the sale lines
    (``sale_id``, ``line_no``, ``product_name``, ``quantity``, ``is_alcohol``).
    """
    flagged = verdicts[is_flagged(verdicts["flag_kinds"])].sort_values(["sold_at", "receipt_id"])
    if flagged.empty:
        return []
    names = dict(zip(cashiers["cashier_id"], cashiers["name"], strict=True))
    evidence_of = _age_evidence(flags)
    legal_ages = flags.dropna(subset=["legal_age"]).drop_duplicates("sale_id")
    legal_age_of = {
        int(sale_id): int(age)
        for sale_id, age in zip(legal_ages["sale_id"], legal_ages["legal_age"], strict=True)
    }
    alcohol = lines[
        lines["is_alcohol"].astype(bool) & lines["sale_id"].isin(flagged["sale_id"])
    ].sort_values(["sale_id", "line_no"])
    items: dict[int, list[str]] = defaultdict(list)
    for sale_id, quantity, product in zip(
        alcohol["sale_id"], alcohol["quantity"], alcohol["product_name"], strict=True
    ):
        items[int(sale_id)].append(_item(quantity, product))
    current = current_reviews(reviews)
    review_columns = ["sale_id", "flag_kind", "decision", "reviewed_at", "reviewer", "comment"]
    review_of = {
        (int(sale_id), str(kind)): ReviewStatus(
            decision=str(decision),
            reviewed_at=local(reviewed_at, zone),
            reviewer=str(reviewer or ""),
            comment=str(comment or ""),
        )
        for sale_id, kind, decision, reviewed_at, reviewer, comment in current[
            review_columns
        ].itertuples(index=False)
    }
    sale_columns = [
        "sale_id",
        "flag_kinds",
        "sold_at",
        "receipt_id",
        "register_id",
        "cashier_id",
        "estimated_age",
        "age_spread",
        "p_under_legal",
        "store_id",
    ]
    rows = []
    times = local_times(flagged["sold_at"], zone)
    for row, sold_at in zip(flagged[sale_columns].itertuples(index=False), times, strict=True):
        number, flag_kinds, _, receipt_id, register_id, cashier_id, age, spread = row[:8]
        p_legal, store = row[8:]
        sale_id = int(number)
        kinds = split_kinds(flag_kinds)
        found = evidence_of.get(sale_id)
        evidence, crop = _evidence(found[1:] if found else None, any(k in AGE_KINDS for k in kinds))
        rows.append(
            FlaggedSale(
                sale_id=sale_id,
                receipt_id=str(receipt_id),
                register_id=str(register_id),
                cashier_id=str(cashier_id),
                cashier_name=str(names.get(cashier_id, "") or ""),
                sold_at=sold_at,
                alcohol_items=items.get(sale_id, []),
                estimated_age=_number(age),
                age_spread=_number(spread),
                kinds=kinds,
                reviews={k: review_of.get((sale_id, k)) for k in kinds},
                evidence=evidence,
                face_crop=crop,
                evidence_kind=found[0] if found and evidence == Evidence.CROP else None,
                p_under_legal=_number(p_legal),
                legal_age=legal_age_of.get(sale_id, LEGACY_LEGAL_AGE),
                store_id=str(store),
            )
        )
    return risk_order(rows)


def _age_evidence(flags: pd.DataFrame) -> dict[int, tuple[str, Any, Any]]:
    """Each sale's under-age flag that shows its face: (kind, face crop, purged at) of the
    first in :class:`FlagKind` order that has a crop, else of the first."""
    under_age = flags[flags["kind"].isin(list(AGE_KINDS))]
    order = {kind: n for n, kind in enumerate(FlagKind)}
    found: dict[int, tuple[str, Any, Any]] = {}
    for sale_id, kind, crop, purged in sorted(
        zip(
            under_age["sale_id"],
            under_age["kind"],
            under_age["face_crop"],
            under_age["evidence_purged_at"],
            strict=True,
        ),
        key=lambda f: (int(f[0]), not _is_jpeg_data(f[2]), order.get(f[1], len(order))),
    ):
        found.setdefault(int(sale_id), (str(kind), crop, purged))
    return found


def _is_jpeg_data(crop: Any) -> bool:
    return isinstance(crop, bytes | bytearray | memoryview) and len(crop) > 0


def _item(quantity: float, product: str) -> str:
    q = float(quantity)
    amount = f"{q:g}" if q != int(q) else str(int(q))
    return f"{amount} × {product}"


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _evidence(flag: tuple[Any, Any] | None, is_under_age: bool) -> tuple[Evidence, bytes | None]:
    """The evidence state of a sale from its under-age flag's (face crop, purged at)."""
    if not is_under_age:
        return Evidence.NONE, None
    if flag is None:
        return Evidence.MISSING, None
    crop, purged = flag
    if _is_jpeg_data(crop):
        return Evidence.CROP, bytes(crop)
    if purged is not None and not pd.isna(purged):
        return Evidence.REMOVED, None
    return Evidence.MISSING, None


# -- charts' data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hourly:
    """Alcohol sales and flagged sales by the store-local hour of the sale (0-23)."""

    sales: list[int]
    flagged: list[int]
    under_age: list[int]


def hourly(verdicts: pd.DataFrame, zone: ZoneInfo) -> Hourly:
    if verdicts.empty:
        return Hourly([0] * 24, [0] * 24, [0] * 24)
    hours = pd.to_datetime(verdicts["sold_at"], utc=True).dt.tz_convert(zone).dt.hour

    def count(mask: pd.Series) -> list[int]:
        counts = hours[mask].value_counts().reindex(range(24), fill_value=0)
        return [int(n) for n in counts]

    kinds = verdicts["flag_kinds"]
    everything = pd.Series(True, index=verdicts.index)
    return Hourly(
        count(everything),
        count(is_flagged(kinds)),
        count(has_age_kind(kinds)),
    )


@dataclass(frozen=True)
class TrendPoint:
    day: date
    alcohol_sales: int | None  # None: no audit result that night
    flag_rate: float | None
    under_age_rate: float | None
    challenges: Challenges | None = None  # None: no audit result that night


def nightly_trend(
    verdicts: pd.DataFrame, runs: pd.DataFrame, *, day: date, nights: int
) -> list[TrendPoint]:
    """One point per night from ``day - nights`` to ``day`` for one store."""
    audited = set(runs.loc[runs["status"] == RunStatus.SUCCEEDED, "business_date"])
    by_night = counts_by(verdicts, "business_date")
    points = []
    for n in range(nights, -1, -1):
        d = day - timedelta(days=n)
        if d not in audited:
            points.append(TrendPoint(d, None, None, None))
            continue
        counts = by_night.get(d)
        total = counts["sales"] if counts else 0
        points.append(
            TrendPoint(
                d,
                total,
                rate(counts["flagged"], total) if counts else None,
                rate(counts["under_age"], total) if counts else None,
                _challenges_of(counts),
            )
        )
    return points


def estimated_ages(verdicts: pd.DataFrame) -> list[float]:
    """The estimated ages of the night's alcohol buyers (sales with a face)."""
    return [float(a) for a in verdicts["estimated_age"].dropna()]


# -- purchase mix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixSpend:
    """Alcohol spend of sales with a face, per store, estimated-age band and category.

    ``spend`` has columns ``store_id, band, category, spend`` (cents; returns count as nothing),
    ``receipts`` the receipts per ``store_id, band``. Small enough to keep for every store.
    """

    spend: pd.DataFrame
    receipts: pd.DataFrame

    @classmethod
    def combine(cls, parts: Sequence[MixSpend]) -> MixSpend:
        spend = [p.spend for p in parts if not p.spend.empty]
        receipts = [p.receipts for p in parts if not p.receipts.empty]
        return cls(
            spend=pd.concat(spend, ignore_index=True) if spend else _no_spend(),
            receipts=pd.concat(receipts, ignore_index=True) if receipts else _no_receipts(),
        )


def _no_spend() -> pd.DataFrame:
    return pd.DataFrame(columns=["store_id", "band", "category", "spend"])


def _no_receipts() -> pd.DataFrame:
    return pd.DataFrame(columns=["store_id", "band", "receipts"])


def age_band(age: float) -> str:
    for label, low, high in AGE_BANDS:
        if low <= age < high:
            return label
    return AGE_BANDS[-1][0]


def age_bands(ages: pd.Series) -> list[str]:
    """:func:`age_band` of each age (none missing), the ages sorted into the bands at once."""
    starts = [low for _, low, _ in AGE_BANDS[1:]]  # band n holds the ages from starts[n - 1]
    labels = [label for label, _, _ in AGE_BANDS]
    found = np.searchsorted(starts, ages.to_numpy(dtype=float), side="right")
    return [labels[n] for n in found]


def mix_spend(verdicts: pd.DataFrame, spend: pd.DataFrame) -> MixSpend:
    """What each estimated-age band bought: the receipts of ``verdicts`` with an estimated age
    per band, and ``spend`` (:func:`queries.alcohol_spend`: alcohol spend per store, band and
    category as the till wrote it) per category trimmed and case-folded."""
    faced = verdicts.dropna(subset=["estimated_age"])
    if faced.empty:
        return MixSpend(_no_spend(), _no_receipts())
    sales = pd.DataFrame(
        {"store_id": faced["store_id"].astype(str), "band": age_bands(faced["estimated_age"])}
    )
    receipts = sales.groupby(["store_id", "band"]).size().rename("receipts").reset_index()
    if spend.empty:
        return MixSpend(_no_spend(), receipts)
    bought = pd.DataFrame(
        {
            "store_id": spend["store_id"].astype(str),
            "band": spend["band"].astype(str),
            "category": spend["category"].astype(str).str.strip().str.casefold(),
            "spend": spend["spend"].astype(float),
        }
    )
    summed = bought.groupby(["store_id", "band", "category"])["spend"].sum().reset_index()
    return MixSpend(spend=summed, receipts=receipts)


@dataclass(frozen=True)
class MixGroup:
    """One estimated-age band of a scope: its receipts, and its share of alcohol spend per
    category (None when it has too few receipts to show)."""

    band: str
    receipts: int
    shares: list[float] | None


@dataclass(frozen=True)
class MixScope:
    """The bands of the whole chain (``store_id`` None) or of one store."""

    store_id: str | None
    name: str
    groups: list[MixGroup]


@dataclass(frozen=True)
class MixTable:
    categories: list[str]
    chain: MixScope
    stores: list[MixScope]


def _mix_groups(
    spend: pd.DataFrame, receipts: pd.DataFrame, columns: list[str], min_receipts: int
) -> list[MixGroup]:
    per_band = receipts.groupby("band")["receipts"].sum()
    by_band = spend.groupby(["band", "column"])["spend"].sum()
    groups = []
    for band in (label for label, _, _ in AGE_BANDS if label in per_band.index):
        n = int(per_band[band])
        shares = None
        if n >= min_receipts:
            row = [float(by_band.get((band, c), 0.0)) for c in columns]
            total = sum(row)
            shares = [v / total if total else 0.0 for v in row]
        groups.append(MixGroup(band=band, receipts=n, shares=shares))
    return groups


def mix_table(
    mix: MixSpend, *, names: Mapping[str, str], min_receipts: int, top: int = MIX_CATEGORIES
) -> MixTable:
    """The purchase mix of the chain and of each store of ``names`` (store id: name, in the
    order shown): categories ranked by the chain's spend, the ``top`` ones a column each, the
    rest "other"; a band shows its shares only with ``min_receipts`` receipts or more."""
    spend = mix.spend.copy()
    order = spend.groupby("category")["spend"].sum().sort_values(ascending=False, kind="stable")
    shown = list(order.index[:top]) if len(order) > top + 1 else list(order.index)
    spend["column"] = np.where(spend["category"].isin(shown), spend["category"], OTHER)
    columns = shown + ([OTHER] if len(shown) < len(order) else [])
    stores = [
        MixScope(
            store_id=store_id,
            name=name,
            groups=_mix_groups(
                spend[spend["store_id"] == store_id],
                mix.receipts[mix.receipts["store_id"] == store_id],
                columns,
                min_receipts,
            ),
        )
        for store_id, name in names.items()
    ]
    chain = MixScope(None, "whole chain", _mix_groups(spend, mix.receipts, columns, min_receipts))
    return MixTable(categories=columns, chain=chain, stores=stores)


# -- a whole store page --------------------------------------------------------------------------


@dataclass
class StoreNight:
    """Everything a store page shows, for one store and one business date."""

    store: StoreRow
    day: date
    zone: str
    zone_changes: bool  # the night has two UTC offsets (clocks changed): times carry the zone
    settings: SettingsUsed | None
    flagged: list[FlaggedSale]
    scorecard: list[ScorecardRow]
    cameras: list[CameraRow]
    challenges: list[ChallengeRow]
    confirmed: int
    ages: list[float]
    threshold: float | None
    hourly: Hourly
    trend: list[TrendPoint]
    chain_trend: list[TrendPoint]
    min_sales: int
    nights: int

    @property
    def window_sales(self) -> int:
        """Alcohol sales of tonight and the nights before."""
        return self.store.night.alcohol_sales + self.store.baseline.alcohol_sales


def store_night(
    *,
    row: StoreRow,
    day: date,
    nights: int,
    min_sales: int,
    zone: ZoneInfo,
    runs: pd.DataFrame,
    verdicts: pd.DataFrame,
    flags: pd.DataFrame,
    lines: pd.DataFrame,
    reviews: pd.DataFrame,
    cashiers: pd.DataFrame,
    chain: Sequence[TrendPoint] = (),
    cards: list[ScorecardRow] | None = None,
) -> StoreNight:
    """Assemble a store page's figures; ``runs`` and ``verdicts`` are this store's window.
    ``cards``: the window's :func:`scorecard` when the caller has it already."""
    tonight, before = night_and_before(verdicts, day=day, nights=nights)
    current = row.run.current
    used = settings_used(current, zone) if current is not None else None
    window_reviews = reviews[reviews["sale_id"].isin(verdicts["sale_id"])]
    start, end = day_bounds(day, zone)
    if cards is None:
        cards = scorecard(
            verdicts=verdicts,
            reviews=window_reviews,
            cashiers=cashiers,
            day=day,
            nights=nights,
            min_sales=min_sales,
            store_id=row.store_id,
        )
    return StoreNight(
        store=row,
        day=day,
        zone=str(zone),
        zone_changes=start.astimezone(zone).utcoffset()
        != (end - timedelta(microseconds=1)).astimezone(zone).utcoffset(),
        settings=used,
        flagged=flagged_sales(
            verdicts=tonight,
            flags=flags,
            lines=lines,
            reviews=window_reviews,
            cashiers=cashiers,
            zone=zone,
        ),
        scorecard=cards,
        cameras=camera_rows(verdicts=verdicts, day=day, min_sales=min_sales),
        challenges=challenge_rows(
            tonight=tonight,
            before=before,
            cashiers=cashiers,
            min_sales=min_sales,
            store_id=row.store_id,
        ),
        confirmed=int(tonight["sale_id"].isin(confirmed_sales(window_reviews)).sum()),
        ages=estimated_ages(tonight),
        threshold=float(used.age_threshold) if used and used.age_threshold is not None else None,
        hourly=hourly(tonight, zone),
        trend=nightly_trend(verdicts, runs, day=day, nights=nights),
        chain_trend=list(chain),
        min_sales=min_sales,
        nights=nights,
    )
