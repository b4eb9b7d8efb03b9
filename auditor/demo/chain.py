"""The demo chain as a plan: stores, registers, cashiers, a week of receipts, and what the
checkout camera did at each sale. Pure: a spec and a face catalogue in, a plan out.

The plan is everything the demo knows and the audit has to find out: each alcohol sale's
shopper and true age, the face image shown, the frames the camera took (none, a face, an empty
checkout, two people, a damaged file) and the flags an ideal audit would raise
(:func:`expected_flags`). :mod:`auditor.demo.build` writes it out as POS exports, snapshot files
and ``truth.csv``.

Shape of the chain:

- stores in different zones (:data:`STORES`): Berlin and London change their clocks on
  :data:`DST_DAY`, Sydney lies east of UTC (its business day starts at 13:00 UTC the day
  before), New York west of it; the default dates are centred on :data:`DST_DAY`;
- each store audited by its country's legal age (:attr:`StoreSpec.legal_age`: 21 in New York,
  20 in Tokyo, 18 elsewhere) and the chain's threshold;
- 2 to 4 registers per store, two cashiers per register and day (a morning and an evening
  shift, rotating); one cashier in each of the first two stores serves young shoppers far more
  often than the others (:data:`LAX_CASHIER`);
- the till records each alcohol sale's age check (:func:`age_checks`), by the cashier's habit
  (:data:`HABITS`): most check the ID of a shopper who looks under the threshold, taking the
  true birth date; the first store's lax cashier rarely checks; the second store's, and C05 of
  each later store that has five cashiers or more, take a borrowed ID with an adult's birth
  date from a shopper under the legal age;
- each store-day: ``sales_per_day`` alcohol sales, a share of grocery-only receipts, a few night
  sales (outside the legal hours), and on a clock-change day one night sale on each side of the
  change; two sales of one register are at least :data:`SLOT_SECONDS` / 2 apart, so the frames
  of one sale never fall in another's window;
- each store's alcohol sales show every camera outcome at least once, a damaged file exactly
  once (:data:`CAMERA_OUTCOMES`); frames are taken a few seconds around the sale;
- the POS files of each store-day carry a malformed line now and then (:data:`SPOIL_KINDS`),
  always an extra line of a grocery receipt, so the alcohol sales load in full.

The age checks come from a stream of their own, drawn after the rest of the plan: the sales,
shoppers, faces and frames are those a plan without age checks would have.

No sale or frame falls on a wall-clock time that occurs twice (when the clocks go back), as a
snapshot's file name could not tell which one it was. Each store draws from its own random
streams (seed, store, day), so adding a store leaves the others as they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from statistics import NormalDist
from zoneinfo import ZoneInfo

import numpy as np

from auditor.audit.business_day import day_bounds
from auditor.audit.rules import Rules, TillCheck, age_on, within_legal_hours
from auditor.ingest.pos import SALES_COLUMNS
from auditor.settings import AuditSettings
from auditor.vocabulary import AgeCheck, FlagKind

# The night Europe's clocks go forward (Berlin 02:00 CET -> 03:00 CEST, London 01:00 -> 02:00).
DST_DAY = date(2024, 3, 31)
LEGAL_START = AuditSettings().legal_hours_start
LEGAL_END = AuditSettings().legal_hours_end

# Camera outcomes of a sale.
FACE = "face"  # frames of the shopper's face
TWO_FACES = "two_faces"  # frames of the shopper and another person further back
EMPTY = "no_face"  # a frame of the checkout with nobody in view
MISSED = "no_frame"  # no frame at all
DAMAGED = "corrupt"  # the frame file is damaged (cut short, or not an image)
CAMERA_OUTCOMES = (FACE, TWO_FACES, EMPTY, MISSED, DAMAGED)
ALCOHOL_CAMERA = {FACE: 0.82, TWO_FACES: 0.08, EMPTY: 0.05, MISSED: 0.05}
GROCERY_CAMERA = {FACE: 0.90, EMPTY: 0.05, MISSED: 0.05}

SPOIL_KINDS = ("bad_number", "bad_time", "missing_field")
SLOT_SECONDS = 120  # one sale per register in each slot, in its first minute
FRAME_OFFSETS = (-4.0, 8.0)  # frames are taken this many seconds around the sale
NIGHT_SHARE = 0.03
GROCERY_SHARE = 0.3  # grocery-only receipts per alcohol sale
LAX_CASHIER = (2, 1)  # index of the lax cashier in the first and second store
LAX_MINOR_SHARE = 0.30  # of a lax cashier's alcohol sales, to shoppers aged 13-17
MINOR_SHARE = 0.01  # of everyone else's
# Adult shoppers' ages by band: (low, high exclusive), share; a lax cashier's lean young. The
# youngest band starts at the store's legal age (21 in New York).
AGE_BANDS = ((18, 25), (25, 35), (35, 55), (55, 81))
ADULT_SHARES = (0.16, 0.26, 0.34, 0.24)
LAX_ADULT_SHARES = (0.35, 0.25, 0.25, 0.15)
# The till's age checks. A cashier judges a shopper's age with an error of LOOKS_SD years and
# is asked to check the ID of anyone who looks under the chain's threshold (CHALLENGE_AGE).
CHALLENGE_AGE = AuditSettings().age_threshold
LOOKS_SD = 4.0
CHECKS = "checks"  # checks the ID of a shopper who looks young, nearly always
RARELY_CHECKS = "rarely_checks"
BORROWED_IDS = "borrowed_ids"  # checks, but takes a borrowed adult ID from an under-age shopper
HABITS = {(0, LAX_CASHIER[0]): RARELY_CHECKS, (1, LAX_CASHIER[1]): BORROWED_IDS}
LATER_BORROWED_IDS = 4  # the cashier (C05) taking borrowed IDs in the third store and later
# Chance of an ID check for a shopper who looks (under, over) the threshold, by habit; a sale
# without one is recorded as judged by sight ("visual") with VISUAL_SHARE, else as "none".
CHECK_RATES = {CHECKS: (0.95, 0.03), RARELY_CHECKS: (0.1, 0.0), BORROWED_IDS: (0.95, 0.03)}
VISUAL_SHARE = {CHECKS: 0.5, RARELY_CHECKS: 0.1, BORROWED_IDS: 0.5}
SCAN_SHARE = 0.5  # of ID checks, scanned (else the ID is seen and the birth date typed)
BORROWED_AGES = (3, 10)  # a borrowed ID's owner is this many years over the legal age
# Alcohol sales by local hour, 08:00 to 22:00 (busiest after work).
HOUR_WEIGHTS = (3, 4, 5, 6, 7, 6, 5, 5, 6, 8, 10, 10, 8, 6, 4)


@dataclass(frozen=True)
class StoreSpec:
    id: str
    name: str
    timezone: str
    registers: int
    cashiers: tuple[str, ...]
    camera_ms: bool  # its cameras name files HHMMSS_mmm.jpg rather than HHMMSS.jpg
    legal_age: int = 18


STORES = (
    StoreSpec(
        "BER1",
        "Berlin Mitte",
        "Europe/Berlin",
        4,
        (
            "Anna Schmidt", "Jonas Weber", "Lena Fischer", "Mehmet Yilmaz",
            "Sophie Wagner", "Lukas Becker", "Mia Hoffmann", "Paul Schulz",
        ),
        True,
    ),
    StoreSpec(
        "SYD1",
        "Sydney Town Hall",
        "Australia/Sydney",
        3,
        (
            "Olivia Nguyen", "Jack Wilson", "Chloe Taylor",
            "Liam Brown", "Ruby Smith", "Noah Jones",
        ),
        False,
    ),
    StoreSpec(
        "NYC1",
        "New York Union Square",
        "America/New_York",
        4,
        (
            "Maria Garcia", "James Johnson", "Aisha Williams", "David Kim",
            "Emily Davis", "Carlos Rodriguez", "Grace Lee", "Michael Brown",
        ),
        True,
        21,
    ),
    StoreSpec(
        "LON1",
        "London Camden",
        "Europe/London",
        3,
        (
            "Amelia Clarke", "Harry Patel", "Isla Evans",
            "George Khan", "Poppy Wright", "Oliver Hughes",
        ),
        False,
    ),
    StoreSpec(
        "TYO1",
        "Tokyo Shibuya",
        "Asia/Tokyo",
        2,
        ("Yui Sato", "Haruto Suzuki", "Aoi Takahashi", "Sota Tanaka"),
        True,
        20,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: float
    by_weight: bool = False


ALCOHOL = (
    Product("4001", "Pils 0.5 l", "beer", 0.99),
    Product("4002", "Lager 6 x 0.33 l", "beer", 5.49),
    Product("4003", "Wheat beer 0.5 l", "beer", 1.29),
    Product("4101", "Riesling 0.75 l", "wine", 7.99),
    Product("4102", "Rioja 0.75 l", "wine", 9.49),
    Product("4201", "Prosecco 0.75 l", "sparkling wine", 8.99),
    Product("4301", "Vodka 0.7 l", "spirits", 14.99),
    Product("4302", "Gin 0.7 l", "spirits", 21.99),
    Product("4401", "Apple cider 0.5 l", "cider", 1.79),
)
GROCERIES = (
    Product("1001", "Sourdough bread", "bakery", 2.49),
    Product("1101", "Whole milk 1 l", "dairy", 1.15),
    Product("1102", "Butter 250 g", "dairy", 2.29),
    Product("1201", "Apples", "produce", 2.99, by_weight=True),
    Product("1202", "Tomatoes", "produce", 3.49, by_weight=True),
    Product("1301", "Potato crisps 175 g", "snacks", 1.89),
    Product("1302", "Dark chocolate 100 g", "sweets", 1.49),
    Product("1401", "Spaghetti 500 g", "dry goods", 1.09),
    Product("1402", "Ground coffee 500 g", "dry goods", 6.99),
    Product("1501", "Cola 1.5 l", "soft drinks", 1.59),
    Product("1502", "Alcohol-free beer 0.5 l", "soft drinks", 0.89),
    Product("1601", "Washing-up liquid", "household", 1.99),
)

# Face images by true age: file names of one labelled set.
FaceCatalogue = Mapping[int, Sequence[str]]


@dataclass(frozen=True)
class DemoSpec:
    """How big the demo chain is. ``sales_per_day`` counts alcohol sales per store and day."""

    seed: int = 1
    stores: int = 4
    days: int = 7
    sales_per_day: int = 40
    start: date | None = None  # default: the days centred on DST_DAY

    def __post_init__(self) -> None:
        if not 1 <= self.stores <= len(STORES):
            raise ValueError(f"stores must be 1 to {len(STORES)}, got {self.stores}")
        if self.days < 1 or self.sales_per_day < 1:
            raise ValueError("days and sales_per_day must be at least 1")

    @property
    def dates(self) -> list[date]:
        first = self.start or DST_DAY - timedelta(days=self.days // 2)
        return [first + timedelta(days=n) for n in range(self.days)]


@dataclass(frozen=True)
class Cashier:
    id: str
    name: str
    lax: bool  # serves young shoppers far more often than the others
    habit: str = CHECKS  # how the cashier checks age (HABITS)


@dataclass(frozen=True)
class StorePlan:
    id: str
    name: str
    timezone: str
    registers: tuple[str, ...]
    cashiers: tuple[Cashier, ...]
    camera_ms: bool
    legal_age: int = 18

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Line:
    """A POS line as written (quantity and amount as text); ``spoilt`` names its defect."""

    sku: str
    product_name: str
    category: str
    quantity: str
    amount: str
    spoilt: str = ""


@dataclass(frozen=True)
class Frame:
    """One snapshot file: where and when, whose faces it shows, whether it is damaged."""

    path: str  # relative to the snapshot root, in the documented layout
    taken_at: datetime  # UTC
    faces: tuple[str, ...]  # face image file names, the shopper's first
    seed: int  # of the scene around the faces
    damage: str = ""  # "", "truncated" or "not_image"


@dataclass(frozen=True)
class Sale:
    """One receipt and what the camera made of it."""

    store_id: str
    business_date: date
    receipt_id: str
    register_id: str
    cashier: Cashier
    sold_at: datetime  # UTC, whole seconds
    local_time: datetime  # the same instant on the store's clock
    lines: tuple[Line, ...]
    alcohol: bool
    shopper_age: int
    face_file: str
    camera: str
    frames: tuple[Frame, ...]
    age_check: AgeCheck | None = None  # what the till recorded (alcohol sales only)
    birth_date: date | None = None  # typed or scanned at the till with an ID check
    borrowed_id: bool = False  # the ID checked was someone else's, with an adult birth date

    @property
    def night(self) -> bool:
        return not within_legal_hours(self.local_time.time(), LEGAL_START, LEGAL_END)

    @property
    def till(self) -> TillCheck | None:
        """What the till recorded of the age check, as the audit reads it."""
        if self.age_check is None:
            return None
        return TillCheck(self.age_check, self.birth_date, self.local_time.date())


@dataclass(frozen=True)
class ChainPlan:
    spec: DemoSpec
    stores: tuple[StorePlan, ...]
    dates: tuple[date, ...]
    sales: tuple[Sale, ...]

    @property
    def alcohol_sales(self) -> list[Sale]:
        return [s for s in self.sales if s.alcohol]

    @property
    def frames(self) -> list[Frame]:
        return [f for s in self.sales for f in s.frames]

    def clock_changes(self) -> dict[str, list[date]]:
        """The stores whose clocks change on a demo date, and those dates."""
        changes: dict[str, list[date]] = {}
        for store in self.stores:
            days = [d for d in self.dates if clock_change(d, store.zone) is not None]
            if days:
                changes[store.id] = days
        return changes


# -- pure helpers --------------------------------------------------------------------------------


def clock_change(day: date, zone: ZoneInfo) -> datetime | None:
    """The instant (UTC) the clocks of ``zone`` change during business day ``day``, if they do."""
    start, end = day_bounds(day, zone)
    if (
        start.astimezone(zone).utcoffset()
        == (end - timedelta(seconds=1)).astimezone(zone).utcoffset()
    ):
        return None
    low, high = start, end - timedelta(seconds=1)
    offset = start.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def ambiguous(instant: datetime, zone: ZoneInfo) -> bool:
    """Whether the instant's wall-clock time in ``zone`` occurs twice (the clocks went back)."""
    wall = instant.astimezone(zone).replace(tzinfo=None)
    return (
        wall.replace(tzinfo=zone, fold=0).utcoffset()
        != wall.replace(tzinfo=zone, fold=1).utcoffset()
    )


def frame_path(store_id: str, register_id: str, local: datetime, with_ms: bool) -> str:
    """``<store>/<register>/<YYYY-MM-DD>/<HHMMSS>[_<ms>].jpg`` for a store-local time."""
    name = local.strftime("%H%M%S")
    if with_ms:
        name += f"_{local.microsecond // 1000:03d}"
    return f"{store_id}/{register_id}/{local:%Y-%m-%d}/{name}.jpg"


def nearest_face(rng: np.random.Generator, faces: FaceCatalogue, age: int) -> str:
    """A face image of the given age, else of the nearest age there is (the younger on a tie)."""
    nearest = min(faces, key=lambda a: (abs(a - age), a))
    choices = faces[nearest]
    return choices[int(rng.integers(len(choices)))]


def expected_flags(sale: Sale, rules: Rules) -> tuple[FlagKind, ...]:
    """The flags an audit that knows the shopper's true age would raise, in FlagKind order.

    Such an audit is sure whether the shopper is under the legal age, so an adult birth date
    on a shopper under it contradicts the face whenever the face is in view.
    """
    kinds: set[FlagKind] = set()
    till = sale.till
    birth_years = None
    if till is not None and till.birth_date is not None:
        birth_years = age_on(till.birth_date, till.sale_date)
        if birth_years < rules.legal_age:
            kinds.add(FlagKind.BIRTH_DATE_UNDER_AGE)
    if sale.camera == MISSED:
        kinds.add(FlagKind.NO_FRAME)
    elif sale.camera == DAMAGED:
        kinds.add(FlagKind.UNREADABLE_FRAME)
    elif sale.camera == EMPTY:
        kinds.add(FlagKind.NO_FACE)
    else:
        if birth_years is not None and birth_years >= rules.legal_age > sale.shopper_age:
            kinds.add(FlagKind.ID_CONTRADICTS_FACE)
        if sale.shopper_age < rules.age_threshold:
            if till is None:
                kinds.add(FlagKind.UNDER_AGE_THRESHOLD)
            elif not till.saw_id:
                kinds.add(FlagKind.NO_ID_CHECK)
    local = sale.local_time.time()
    if not within_legal_hours(local, rules.legal_hours_start, rules.legal_hours_end):
        kinds.add(FlagKind.OUTSIDE_LEGAL_HOURS)
    return tuple(k for k in FlagKind if k in kinds)


def birth_date_at(age: int, day: date, days_since_birthday: int) -> date:
    """The birth date of someone ``age`` years old on ``day``, whose birthday was
    ``days_since_birthday`` (0 to 364) days before it; always :func:`age_on` ``== age``."""
    leap_day = (day.month, day.day) == (2, 29)
    birthday = day.replace(year=day.year - age, day=28 if leap_day else day.day)
    return birthday - timedelta(days=days_since_birthday)


def age_checks(rng: np.random.Generator, sale: Sale, legal_age: int) -> Sale:
    """The alcohol sale with the age check its cashier recorded (see :data:`HABITS`).

    The cashier judges the shopper's age with a normal error of ``LOOKS_SD`` years and checks
    by habit (:data:`CHECK_RATES`). An
    ID check records the birth date of the ID: the shopper's own, except at a cashier who
    takes borrowed IDs from a shopper under the legal age, where it is an adult's. Every sale
    draws the same numbers, so one sale's check never moves another's.
    """
    looks, check, visual, scan, owner, day = rng.random(6)
    habit = sale.cashier.habit
    looks_age = sale.shopper_age + LOOKS_SD * _normal(looks)
    under, over = CHECK_RATES[habit]
    if check >= (under if looks_age < CHALLENGE_AGE else over):
        kind = AgeCheck.VISUAL if visual < VISUAL_SHARE[habit] else AgeCheck.NONE
        return replace(sale, age_check=kind, birth_date=None, borrowed_id=False)
    kind = AgeCheck.ID_SCANNED if scan < SCAN_SHARE else AgeCheck.ID_CHECKED
    borrowed = habit == BORROWED_IDS and sale.shopper_age < legal_age
    low, high = BORROWED_AGES
    years = legal_age + low + int(owner * (high - low)) if borrowed else sale.shopper_age
    birth = birth_date_at(years, sale.local_time.date(), int(day * 365))
    return replace(sale, age_check=kind, birth_date=birth, borrowed_id=borrowed)


def _normal(u: float) -> float:
    """The standard normal quantile of ``u`` in [0, 1) (kept away from 0)."""
    return NormalDist().inv_cdf(max(u, 1e-12))


def sold_at_text(sale: Sale) -> str:
    """The POS time: store-local, without an offset, as a POS writes it."""
    return sale.local_time.replace(tzinfo=None).isoformat(timespec="seconds")


# The POS export's columns: the required ones and the till's age check.
POS_COLUMNS = (*SALES_COLUMNS, "age_check", "birth_date")


def pos_rows(sales: Sequence[Sale]) -> list[dict[str, str]]:
    """The POS lines of ``sales`` (one store-day) in file order (:data:`POS_COLUMNS`), spoilt
    lines spoilt; a grocery-only receipt leaves the age check blank."""
    rows = []
    for sale in sorted(sales, key=lambda s: (s.sold_at, s.receipt_id)):
        for line in sale.lines:
            row = {
                "store_id": sale.store_id,
                "register_id": sale.register_id,
                "cashier_id": sale.cashier.id,
                "cashier_name": sale.cashier.name,
                "receipt_id": sale.receipt_id,
                "sold_at": sold_at_text(sale),
                "sku": line.sku,
                "product_name": line.product_name,
                "category": line.category,
                "quantity": line.quantity,
                "amount": line.amount,
                "age_check": sale.age_check.value if sale.age_check is not None else "",
                "birth_date": sale.birth_date.isoformat() if sale.birth_date is not None else "",
            }
            if line.spoilt == "bad_number":
                row["amount"] = row["amount"].replace(".", ",")  # a decimal comma
            elif line.spoilt == "bad_time":
                row["sold_at"] = row["sold_at"][:11] + "25:61:00"
            elif line.spoilt == "missing_field":
                row["sku"] = ""
            rows.append(row)
    return rows


# -- the plan ------------------------------------------------------------------------------------


def store_plans(count: int) -> tuple[StorePlan, ...]:
    plans = []
    for index, spec in enumerate(STORES[:count]):
        lax = LAX_CASHIER[index] if index < len(LAX_CASHIER) else None
        cashiers = tuple(
            Cashier(f"C{n + 1:02d}", name, n == lax, _habit(index, n))
            for n, name in enumerate(spec.cashiers)
        )
        registers = tuple(f"R{n + 1}" for n in range(spec.registers))
        plans.append(
            StorePlan(
                spec.id,
                spec.name,
                spec.timezone,
                registers,
                cashiers,
                spec.camera_ms,
                spec.legal_age,
            )
        )
    return tuple(plans)


def _habit(store_index: int, cashier_index: int) -> str:
    if store_index >= len(LAX_CASHIER) and cashier_index == LATER_BORROWED_IDS:
        return BORROWED_IDS
    return HABITS.get((store_index, cashier_index), CHECKS)


def plan_chain(spec: DemoSpec, faces: FaceCatalogue) -> ChainPlan:
    """The whole demo chain for ``spec``, with faces drawn from ``faces`` by true age."""
    if not faces:
        raise ValueError("the face catalogue is empty")
    stores = store_plans(spec.stores)
    dates = spec.dates
    sales: list[Sale] = []
    for s, store in enumerate(stores):
        store_sales: list[Sale] = []
        for d, day in enumerate(dates):
            rng = np.random.default_rng([spec.seed, s, d])
            store_sales += _store_day(rng, store, s, day, d, spec.sales_per_day, faces)
        store_rng = np.random.default_rng([spec.seed, s, 1_000_000])
        store_sales = _every_outcome(store_rng, store_sales, faces)
        checks_rng = np.random.default_rng([spec.seed, s, 2_000_000])
        sales += [
            age_checks(checks_rng, sale, store.legal_age) if sale.alcohol else sale
            for sale in store_sales
        ]
    return ChainPlan(spec, stores, tuple(dates), tuple(sales))


@dataclass
class _Draft:
    """A sale before it has its receipt id and frames."""

    at: datetime
    register: str
    alcohol: bool


def _store_day(
    rng: np.random.Generator,
    store: StorePlan,
    store_index: int,
    day: date,
    day_index: int,
    alcohol_count: int,
    faces: FaceCatalogue,
) -> list[Sale]:
    zone = store.zone
    night = _night_times(rng, store, day, day_index, alcohol_count)
    grocery_count = max(1, round(GROCERY_SHARE * alcohol_count))
    daytime = _daytime_drafts(rng, store, day, max(0, alcohol_count - len(night)), grocery_count)
    drafts = sorted(
        [_Draft(at, store.registers[0], True) for at in night] + daytime,
        key=lambda draft: (draft.at, draft.register),
    )
    spoil = rng.random() < 0.35 or day_index == 0
    spoil_kind = SPOIL_KINDS[store_index % 3 if day_index == 0 else int(rng.integers(3))]
    sequence: dict[str, int] = {}
    sales = []
    for draft in drafts:
        sequence[draft.register] = sequence.get(draft.register, 0) + 1
        local = draft.at.astimezone(zone)
        cashier = _cashier_on_duty(store, draft.register, local, day_index)
        spoilt = ""
        if spoil and not draft.alcohol:
            spoilt, spoil = spoil_kind, False
        lax = cashier.lax and draft.alcohol
        age = _shopper_age(rng, lax, draft.alcohol, store.legal_age)
        face = nearest_face(rng, faces, age)
        camera = _pick(rng, ALCOHOL_CAMERA if draft.alcohol else GROCERY_CAMERA)
        receipt_id = f"{day:%Y%m%d}-{draft.register}-{sequence[draft.register]:04d}"
        sales.append(
            Sale(
                store_id=store.id,
                business_date=day,
                receipt_id=receipt_id,
                register_id=draft.register,
                cashier=cashier,
                sold_at=draft.at,
                local_time=local,
                lines=_lines(rng, draft.alcohol, spoilt),
                alcohol=draft.alcohol,
                shopper_age=age,
                face_file=face,
                camera=camera,
                frames=_frames(rng, store, draft, camera, face, faces),
            )
        )
    return sales


def _local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _daytime_drafts(
    rng: np.random.Generator, store: StorePlan, day: date, alcohol: int, grocery: int
) -> list[_Draft]:
    """Sales within the legal hours: one per chosen (register, slot), busier after work."""
    zone = store.zone
    opens = _local_instant(day, LEGAL_START, zone)
    closes = _local_instant(day, LEGAL_END, zone)
    slots = int((closes - opens).total_seconds() // SLOT_SECONDS) - 1
    starts = [opens + timedelta(seconds=SLOT_SECONDS * k) for k in range(slots)]
    hours = np.array([t.astimezone(zone).hour for t in starts])
    weight = np.array(HOUR_WEIGHTS, float)[np.clip(hours - LEGAL_START.hour, 0, 14)]
    weights = np.tile(weight, len(store.registers))
    count = min(alcohol + grocery, len(weights))
    chosen = rng.choice(len(weights), size=count, replace=False, p=weights / weights.sum())
    alcohol_flags = np.zeros(count, bool)
    alcohol_flags[rng.permutation(count)[:alcohol]] = True
    drafts = []
    for pick, is_alcohol in zip(chosen, alcohol_flags, strict=True):
        register, slot = divmod(int(pick), slots)
        at = starts[slot] + timedelta(seconds=int(rng.integers(0, SLOT_SECONDS // 2)))
        drafts.append(_Draft(at, store.registers[register], bool(is_alcohol)))
    return drafts


def _night_times(
    rng: np.random.Generator, store: StorePlan, day: date, day_index: int, alcohol_count: int
) -> list[datetime]:
    """Alcohol sales outside the legal hours, at the first register, none at an ambiguous time.

    On a day the clocks change, one sale in the two hours before the change and one in the two
    hours after it (where those fall in the business day).
    """
    zone = store.zone
    day_start, day_end = day_bounds(day, zone)
    # late evening, early morning, deep night: the last minutes before and after the legal
    # hours are left out so that a night sale's frames never reach a daytime sale's window
    ranges = (
        (_local_instant(day, time(23, 2), zone), day_end),
        (_local_instant(day, time(6, 30), zone), _local_instant(day, time(7, 58), zone)),
        (day_start, _local_instant(day, time(6, 30), zone)),
    )
    times: list[datetime] = []

    def fits(at: datetime) -> bool:
        local = at.astimezone(zone).time()
        return (
            day_start <= at - timedelta(seconds=10)
            and at + timedelta(seconds=15) < day_end
            and not within_legal_hours(local, LEGAL_START, LEGAL_END)
            and not any(ambiguous(at + timedelta(seconds=s), zone) for s in (-10, 0, 15))
            and all(abs((at - t).total_seconds()) >= SLOT_SECONDS for t in times)
        )

    change = clock_change(day, zone)
    if change is not None:
        for sign in (-1, 1):
            for _ in range(40):
                at = change + sign * timedelta(minutes=float(rng.uniform(15, 110)))
                at = at.replace(microsecond=0)
                if fits(at):
                    times.append(at)
                    break
    wanted = int(rng.binomial(alcohol_count, NIGHT_SHARE)) + (day_index == 0)
    wanted = min(wanted, max(0, alcohol_count - len(times)))
    for _ in range(wanted * 20):
        if wanted <= 0:
            break
        low, high = ranges[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
        at = low + timedelta(seconds=float(rng.uniform(0, (high - low).total_seconds())))
        at = at.replace(microsecond=0)
        if fits(at):
            times.append(at)
            wanted -= 1
    return times


def _cashier_on_duty(store: StorePlan, register: str, local: datetime, day_index: int) -> Cashier:
    """Two shifts per register and day (before and after 15:00), cashiers rotating daily."""
    shift = 0 if local.hour < 15 else 1
    slot = store.registers.index(register) * 2 + shift
    return store.cashiers[(slot + day_index) % len(store.cashiers)]


def _shopper_age(rng: np.random.Generator, lax: bool, alcohol: bool, legal_age: int) -> int:
    minors = (LAX_MINOR_SHARE if lax else MINOR_SHARE) if alcohol else 0.05
    if rng.random() < minors:
        return int(rng.integers(13, 18))
    band = int(rng.choice(len(AGE_BANDS), p=LAX_ADULT_SHARES if lax else ADULT_SHARES))
    low, high = AGE_BANDS[band]
    low = max(low, legal_age)
    return int(rng.integers(low, high))


def _pick(rng: np.random.Generator, shares: Mapping[str, float]) -> str:
    names = list(shares)
    return names[int(rng.choice(len(names), p=list(shares.values())))]


def _line(rng: np.random.Generator, product: Product) -> Line:
    if product.by_weight:
        quantity = round(float(rng.uniform(0.2, 2.0)), 3)
        text = f"{quantity:.3f}"
    else:
        quantity = int(rng.choice([1, 1, 1, 2, 2, 3, 6]))
        text = str(quantity)
    amount = round(quantity * product.price + 1e-9, 2)
    return Line(product.sku, product.name, product.category, text, f"{amount:.2f}")


def _lines(rng: np.random.Generator, alcohol: bool, spoilt: str) -> tuple[Line, ...]:
    lines = []
    if alcohol:
        count = 1 + int(rng.random() < 0.3)
        lines += [_line(rng, ALCOHOL[int(i)]) for i in rng.choice(len(ALCOHOL), count, False)]
    groceries = int(rng.integers(0 if alcohol else 1, 5))
    lines += [_line(rng, GROCERIES[int(i)]) for i in rng.choice(len(GROCERIES), groceries, False)]
    rng.shuffle(lines)
    if spoilt:
        extra = _line(rng, GROCERIES[int(rng.integers(len(GROCERIES)))])
        lines.append(replace(extra, spoilt=spoilt))
    return tuple(lines)


def _frames(
    rng: np.random.Generator,
    store: StorePlan,
    draft: _Draft,
    camera: str,
    face: str,
    faces: FaceCatalogue,
) -> tuple[Frame, ...]:
    if camera == MISSED:
        return ()
    count = 1 + int(camera in (FACE, TWO_FACES) and rng.random() < 0.2)
    low, high = FRAME_OFFSETS
    first = float(rng.uniform(low + 1, high - 3))
    offsets = [first, first + float(rng.uniform(1.0, 3.0))][:count]
    shown: tuple[str, ...] = ()
    if camera in (FACE, TWO_FACES):
        shown = (face,)
    if camera == TWO_FACES:
        other = face
        while other == face:
            other = nearest_face(rng, faces, int(rng.integers(18, 70)))
        shown = (face, other)
    frames = []
    for offset in offsets:
        at = draft.at + timedelta(seconds=offset)
        at = at.replace(microsecond=at.microsecond // 1000 * 1000 if store.camera_ms else 0)
        path = frame_path(store.id, draft.register, at.astimezone(store.zone), store.camera_ms)
        frames.append(Frame(path, at, shown, int(rng.integers(2**63))))
    return tuple(frames)


def _every_outcome(rng: np.random.Generator, sales: list[Sale], faces: FaceCatalogue) -> list[Sale]:
    """Make sure a store's alcohol sales show every camera outcome, a damaged file exactly once.

    Sales of the shopper's face are turned into the missing outcomes, so that even a small
    demo has a sale without a frame, an empty checkout, two people and a damaged file.
    """
    sales = list(sales)
    candidates = [i for i, s in enumerate(sales) if s.alcohol and s.camera == FACE]
    order = [candidates[int(i)] for i in rng.permutation(len(candidates))]
    for camera in (DAMAGED, MISSED, EMPTY, TWO_FACES):
        if camera != DAMAGED and any(s.alcohol and s.camera == camera for s in sales):
            continue
        if not order:
            break
        i = order.pop()
        sale = sales[i]
        first = sale.frames[0]
        if camera == DAMAGED:
            damage = ("truncated", "not_image")[int(rng.integers(2))]
            frames: tuple[Frame, ...] = (replace(first, damage=damage),)
        elif camera == MISSED:
            frames = ()
        elif camera == EMPTY:
            frames = (replace(first, faces=()),)
        else:
            other = sale.face_file
            while other == sale.face_file:
                other = nearest_face(rng, faces, int(rng.integers(18, 70)))
            frames = tuple(replace(f, faces=(sale.face_file, other)) for f in sale.frames)
        sales[i] = replace(sale, camera=camera, frames=frames)
    return sales
