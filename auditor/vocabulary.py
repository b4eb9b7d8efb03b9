"""The auditor's closed sets of names, spelled once, each with the label the pages show.

Every set is a :class:`~enum.StrEnum`: a member is equal to (and hashes as) its value, the
string stored in the database, written in exports and URLs and matched by the tables' CHECK
constraints. Iterating a set gives its members in the order below, which is the order verdicts
list their flag kinds in. (Python 3.11 refuses ``"x" in FlagKind``: test ``FlagKind("x")``, or
membership of ``tuple(FlagKind)``.)

``label`` is the one wording of a name in the reports, the review app and messages, in lower
case to sit in a sentence or a tag (the ``sentence`` filter capitalises it to start one).
"""

from __future__ import annotations

from enum import StrEnum


class FlagKind(StrEnum):
    """Why a sale was flagged (:mod:`auditor.audit.rules` says when each is raised)."""

    BIRTH_DATE_UNDER_AGE = "birth_date_under_age"
    ID_CONTRADICTS_FACE = "id_contradicts_face"
    NO_ID_CHECK = "no_id_check"
    UNDER_AGE_THRESHOLD = "under_age_threshold"
    NO_FRAME = "no_frame"
    NO_FACE = "no_face"
    UNREADABLE_FRAME = "unreadable_frame"
    OUTSIDE_LEGAL_HOURS = "outside_legal_hours"
    POS_ERROR = "pos_error"

    @property
    def label(self) -> str:
        return _FLAG_LABELS[self]

    @property
    def short(self) -> str:
        """The label in a table's narrow column head."""
        return _FLAG_SHORT[self]

    @property
    def is_age(self) -> bool:
        """Whether the flag says the shopper may be under age (see :data:`AGE_KINDS`)."""
        return self in AGE_KINDS

    @property
    def is_violation(self) -> bool:
        """Whether the flag is a hard violation, ranked before every other in review: the
        till's own record says the shopper was under age, or contradicts the face."""
        return self in (FlagKind.BIRTH_DATE_UNDER_AGE, FlagKind.ID_CONTRADICTS_FACE)


_FLAG_LABELS = {
    FlagKind.BIRTH_DATE_UNDER_AGE: "birth date under legal age",
    FlagKind.ID_CONTRADICTS_FACE: "ID contradicts face",
    FlagKind.NO_ID_CHECK: "no ID check",
    FlagKind.UNDER_AGE_THRESHOLD: "under age threshold",
    FlagKind.NO_FRAME: "no frame",
    FlagKind.NO_FACE: "no face",
    FlagKind.UNREADABLE_FRAME: "unreadable frame",
    FlagKind.OUTSIDE_LEGAL_HOURS: "outside legal hours",
    FlagKind.POS_ERROR: "POS error",
}
_FLAG_SHORT = {
    FlagKind.BIRTH_DATE_UNDER_AGE: "birth date",
    FlagKind.ID_CONTRADICTS_FACE: "ID vs face",
    FlagKind.NO_ID_CHECK: "no ID check",
    FlagKind.UNDER_AGE_THRESHOLD: "under age",
    FlagKind.NO_FRAME: "no frame",
    FlagKind.NO_FACE: "no face",
    FlagKind.UNREADABLE_FRAME: "unreadable",
    FlagKind.OUTSIDE_LEGAL_HOURS: "after hours",
    FlagKind.POS_ERROR: "POS error",
}


# The flags that say the shopper may be under age: their sales keep the face as evidence,
# and the reports count them as the under-age flags.
AGE_KINDS = frozenset(
    {
        FlagKind.BIRTH_DATE_UNDER_AGE,
        FlagKind.ID_CONTRADICTS_FACE,
        FlagKind.NO_ID_CHECK,
        FlagKind.UNDER_AGE_THRESHOLD,
    }
)


# The flags of a camera or frame problem: no frame in the sale's window, none readable, or no
# face on them. They say nothing of the cashier; the reports count them per register.
CAMERA_KINDS = frozenset({FlagKind.NO_FRAME, FlagKind.UNREADABLE_FRAME, FlagKind.NO_FACE})


class AgeCheck(StrEnum):
    """What the till recorded of the shopper's age check (``sales.age_check``)."""

    NONE = "none"
    VISUAL = "visual"
    ID_CHECKED = "id_checked"
    ID_SCANNED = "id_scanned"

    @property
    def label(self) -> str:
        return _CHECK_LABELS[self]

    @property
    def saw_id(self) -> bool:
        """Whether the cashier recorded seeing the shopper's ID."""
        return self in (AgeCheck.ID_CHECKED, AgeCheck.ID_SCANNED)


_CHECK_LABELS = {
    AgeCheck.NONE: "no check",
    AgeCheck.VISUAL: "judged by sight",
    AgeCheck.ID_CHECKED: "ID checked",
    AgeCheck.ID_SCANNED: "ID scanned",
}


class EstimateOutcome(StrEnum):
    """What came of one frame of a sale (``age_estimates.outcome``)."""

    ESTIMATED = "estimated"
    NO_FACE = "no_face"
    UNREADABLE_FRAME = "unreadable_frame"

    @property
    def label(self) -> str:
        return _OUTCOME_LABELS[self]


_OUTCOME_LABELS = {
    EstimateOutcome.ESTIMATED: "age estimated",
    EstimateOutcome.NO_FACE: "no face",
    EstimateOutcome.UNREADABLE_FRAME: "unreadable frame",
}


class Decision(StrEnum):
    """A reviewer's decision on one flag of a sale (``reviews.decision``)."""

    CONFIRMED_VIOLATION = "confirmed_violation"
    ID_CHECKED = "id_checked"
    ADULT = "adult"
    INVALID_FRAME = "invalid_frame"

    @property
    def label(self) -> str:
        return _DECISION_LABELS[self]


_DECISION_LABELS = {
    Decision.CONFIRMED_VIOLATION: "confirmed violation",
    Decision.ID_CHECKED: "ID was checked",
    Decision.ADULT: "shopper is an adult",
    Decision.INVALID_FRAME: "not a valid frame",
}
NOT_REVIEWED = "not reviewed"  # the label of a flag without a decision


class ReviewFilter(StrEnum):
    """Which flagged sales the review app lists: those with a flag still open, or not."""

    OPEN = "open"
    REVIEWED = "reviewed"
    ALL = "all"

    @property
    def label(self) -> str:
        return self.value


class RunStatus(StrEnum):
    """Where one audit run (``audit_runs.status``) stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REPLACED = "replaced"

    @property
    def label(self) -> str:
        return _RUN_LABELS[self]


_RUN_LABELS = {
    RunStatus.RUNNING: "running",
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.FAILED: "failed",
    RunStatus.REPLACED: "replaced by a later run",
}


class NightState(StrEnum):
    """Where the audit of a store-night stands, from all its runs (reports only)."""

    AUDITED = "audited"
    FAILED = "failed"
    RUNNING = "running"
    NOT_AUDITED = "not_audited"

    @property
    def label(self) -> str:
        return _NIGHT_LABELS[self]


_NIGHT_LABELS = {
    NightState.AUDITED: "audited",
    NightState.FAILED: "audit failed",
    NightState.RUNNING: "audit not finished",
    NightState.NOT_AUDITED: "not audited",
}


class Evidence(StrEnum):
    """What a flagged sale has to show of the face its under-age flag was raised on."""

    CROP = "crop"
    REMOVED = "removed"
    MISSING = "missing"
    NONE = "none"

    @property
    def label(self) -> str:
        return _EVIDENCE_LABELS[self]


_EVIDENCE_LABELS = {
    Evidence.CROP: "face crop",
    Evidence.REMOVED: "evidence removed under retention",
    Evidence.MISSING: "no face crop stored",
    Evidence.NONE: "faces are kept for under-age flags only",
}


class Role(StrEnum):
    """What a user of the review app may do (``users.role``; :mod:`auditor.web.access`)."""

    STORE_MANAGER = "store_manager"
    LOSS_PREVENTION = "loss_prevention"
    ANALYST = "analyst"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return _ROLE_LABELS[self]


_ROLE_LABELS = {
    Role.STORE_MANAGER: "store manager",
    Role.LOSS_PREVENTION: "loss prevention",
    Role.ANALYST: "analyst",
    Role.ADMIN: "administrator",
}


class SendStatus(StrEnum):
    """Where one message of the nightly summary stands (``notifications.status``)."""

    PENDING = "pending"
    SENT = "sent"
    DROPPED = "dropped"

    @property
    def label(self) -> str:
        return _SEND_LABELS[self]


_SEND_LABELS = {
    SendStatus.PENDING: "not sent yet",
    SendStatus.SENT: "sent",
    SendStatus.DROPPED: "dropped after failed attempts",
}


class AuditAction(StrEnum):
    """What an audit-log row records (``audit_log.action``)."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_REFUSED = "login_refused"
    LOGOUT = "logout"
    VIEW_LIST = "view_list"
    VIEW_FLAG = "view_flag"
    VIEW_EVIDENCE = "view_evidence"
    REVIEW = "review"
    BULK_REVIEW = "bulk_review"
    DOWNLOAD_FLAGS = "download_flags"
    USER_ADD = "user_add"
    USER_ENABLE = "user_enable"
    USER_DISABLE = "user_disable"
    USER_PASSWORD = "user_password"
    PURGE = "purge"

    @property
    def label(self) -> str:
        return _ACTION_LABELS[self]


_ACTION_LABELS = {
    AuditAction.LOGIN: "logged in",
    AuditAction.LOGIN_FAILED: "failed login",
    AuditAction.LOGIN_REFUSED: "login refused (locked out)",
    AuditAction.LOGOUT: "logged out",
    AuditAction.VIEW_LIST: "viewed a page of the flag list",
    AuditAction.VIEW_FLAG: "viewed a flag page",
    AuditAction.VIEW_EVIDENCE: "viewed an evidence image",
    AuditAction.REVIEW: "recorded a decision",
    AuditAction.BULK_REVIEW: "recorded a decision on many sales",
    AuditAction.DOWNLOAD_FLAGS: "downloaded the flag list (CSV)",
    AuditAction.USER_ADD: "added an account",
    AuditAction.USER_ENABLE: "enabled an account",
    AuditAction.USER_DISABLE: "disabled an account",
    AuditAction.USER_PASSWORD: "changed a password",
    AuditAction.PURGE: "purged evidence past retention",
}


def action_label(action: str) -> str:
    """The label of an audit-log action; an unknown one with its underscores as spaces."""
    try:
        return AuditAction(action).label
    except ValueError:
        return action.replace("_", " ")


def kind_label(kind: str) -> str:
    """The label of a flag kind; an unknown name with its underscores as spaces."""
    try:
        return FlagKind(kind).label
    except ValueError:
        return kind.replace("_", " ")


def decision_label(decision: str | None) -> str:
    """The label of a decision, :data:`NOT_REVIEWED` for none; an unknown one as it is."""
    if decision is None:
        return NOT_REVIEWED
    try:
        return Decision(decision).label
    except ValueError:
        return decision


def kind_short(kind: str) -> str:
    """The short label of a flag kind; an unknown name with its underscores as spaces."""
    try:
        return FlagKind(kind).short
    except ValueError:
        return kind.replace("_", " ")
