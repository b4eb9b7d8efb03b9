"""One Settings object: a TOML file, overridden by ``AUDITOR_*`` environment variables.

Where the file comes from: ``--config PATH`` (or ``AUDITOR_CONFIG``), else ``./auditor.toml``
when it exists, else the built-in defaults alone. Environment variables name a key as
``AUDITOR_<SECTION>__<KEY>``, e.g. ``AUDITOR_DATABASE__URL`` or ``AUDITOR_AUDIT__AGE_THRESHOLD``;
lists and the ``stores`` table take JSON (``AUDITOR_STORES='[{"id": "S1", ...}]'``).

Relative paths (and a relative SQLite file in the database URL) are taken relative to the folder
of the config file, or to the working directory when there is no file. ``auditor.example.toml``
documents every key.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic_settings
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from auditor.cron import cron_trigger
from auditor.detectors import DEFAULT_DETECTOR, DetectorName
from auditor.errors import AuditorError

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_FILE = Path("auditor.toml")
ENV_PREFIX = "AUDITOR_"
LEGACY_LEGAL_AGE = 18  # the legal age of every audit run recorded before stores had rules


class SettingsError(AuditorError):
    """The config file cannot be read, or a setting has a value that is not allowed."""


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')"
        ) from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_zone)]


def _check_address(address: str) -> str:
    address = address.strip()
    if not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", address):
        raise ValueError(f"{address!r} is not an e-mail address")
    return address


EmailAddress = Annotated[str, AfterValidator(_check_address)]


def _time_text(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise ValueError(f'{value!r} is not a time of day (write it as "HH:MM")')
    return value


def _check_local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError(
            f"{value.isoformat()} has a zone offset; a store's local time has none "
            "(the store's timezone applies)"
        )
    return value


#: A time of day on the store's clock ("HH:MM"): no zone offset, not a number of seconds.
LocalTime = Annotated[time, BeforeValidator(_time_text), AfterValidator(_check_local)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatabaseSettings(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file auditor.db in paths.data_dir.",
    )

    @field_validator("url")
    @classmethod
    def _normalise_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ValueError("not a database URL (e.g. sqlite:///var/auditor.db)") from None
        if parsed.drivername in ("postgres", "postgresql"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"database {parsed.get_backend_name()!r} is not supported")
        return parsed.render_as_string(hide_password=False)


class PathsSettings(_Section):
    data_dir: Path = Path("var")
    snapshot_root: Path | None = Field(default=None, description="default: data_dir/snapshots")
    report_dir: Path | None = Field(default=None, description="default: data_dir/reports")


class StoreSettings(_Section):
    id: str = Field(min_length=1)
    name: str = ""
    timezone: TimeZoneName | None = Field(
        default=None, description="default: chain.default_timezone"
    )
    legal_age: int | None = Field(
        default=None, ge=16, le=25, description="years; default: chain.legal_age"
    )
    age_threshold: int | None = Field(
        default=None, ge=16, le=99, description="years; default: audit.age_threshold"
    )
    legal_hours_start: LocalTime | None = Field(
        default=None, description="default: audit.legal_hours_start"
    )
    legal_hours_end: LocalTime | None = Field(
        default=None, description="default: audit.legal_hours_end"
    )
    managers: list[EmailAddress] = Field(
        default=[], description="addresses that get the store's nightly summary"
    )


class ChainSettings(_Section):
    name: str = "Demo chain"
    default_timezone: TimeZoneName = "Europe/Berlin"
    legal_age: int = Field(
        default=18, ge=16, le=25, description="years; a store's own legal_age wins"
    )
    alcohol_categories: list[str] = ["beer", "wine", "sparkling wine", "spirits", "cider"]

    @field_validator("alcohol_categories")
    @classmethod
    def _normalise_categories(cls, categories: list[str]) -> list[str]:
        normalised = sorted({c.strip().casefold() for c in categories if c.strip()})
        if not normalised:
            raise ValueError("name at least one alcohol category")
        return normalised


class AuditSettings(_Section):
    age_threshold: int = Field(
        default=25, ge=16, le=99, description="years; a store's own age_threshold wins"
    )
    id_contradiction_probability: float = Field(
        default=0.9,
        gt=0.5,
        le=1.0,
        description="flag id_contradicts_face when the birth date says adult and the model "
        "puts at least this probability on a shopper under the legal age, or more than half "
        "on it and at most 1 minus this on the birth date's age or older",
    )
    window_before_s: float = Field(default=5.0, ge=0, le=600)
    window_after_s: float = Field(default=10.0, ge=0, le=600)
    frames_per_sale: int = Field(default=3, ge=1, le=50)
    legal_hours_start: LocalTime = time(8, 0)
    legal_hours_end: LocalTime = time(23, 0)
    workers: int = Field(
        default=0, ge=0, le=256, description="threads that find faces; 0: one per usable core"
    )
    detector: DetectorName = Field(
        default=DEFAULT_DETECTOR,
        description="the face detector (auditor.detectors.DETECTORS; see docs/faces.md)",
    )
    executor: Literal["local", "dask"] = Field(
        default="local", description="where store-nights are audited: here, or on a Dask cluster"
    )
    scheduler: str | None = Field(
        default=None, description="the Dask scheduler's address, e.g. tcp://10.0.0.5:8786"
    )

    @field_validator("scheduler")
    @classmethod
    def _check_scheduler(cls, address: str | None) -> str | None:
        return dask_address(address) if address is not None else None

    @model_validator(mode="after")
    def _check_hours(self) -> AuditSettings:
        if self.legal_hours_start == self.legal_hours_end:
            raise ValueError("legal_hours_start and legal_hours_end must differ")
        return self

    @model_validator(mode="after")
    def _check_executor(self) -> AuditSettings:
        if self.executor == "dask" and self.scheduler is None:
            raise ValueError(
                "executor 'dask' needs the address of a Dask scheduler: set audit.scheduler "
                "(AUDITOR_AUDIT__SCHEDULER, or --scheduler), e.g. tcp://10.0.0.5:8786"
            )
        return self


@dataclass(frozen=True)
class RecordedAudit:
    """The settings an audit run recorded (``AuditRun.settings``, written by
    :meth:`Settings.as_json_dict`): its ``[audit]`` section, and the store's rules
    (``settings["rules"]``, :meth:`StoreRules.as_json_dict`), which win over the section for
    the threshold and the legal hours. A setting the record lacks, or holds as a value of
    another type, is None: records are read back as they were written, never re-validated, so
    an old record still reads when the settings have changed since. The one exception is
    ``legal_age``: a run recorded before stores had rules was judged with the legal age 18."""

    age_threshold: int | float | None = None
    window_before_s: int | float | None = None
    window_after_s: int | float | None = None
    frames_per_sale: int | float | None = None
    legal_hours_start: str | None = None
    legal_hours_end: str | None = None
    legal_age: int | float = LEGACY_LEGAL_AGE

    @classmethod
    def of(cls, settings: Mapping[str, Any] | None) -> RecordedAudit:
        """The audit section and rules of a run's recorded settings (None or {}: every setting
        None, the legal age 18)."""
        recorded = settings or {}
        audit = recorded.get("audit")
        audit = audit if isinstance(audit, Mapping) else {}
        rules = recorded.get("rules")
        rules = rules if isinstance(rules, Mapping) else {}

        def number(key: str) -> int | float | None:
            for section in (rules, audit):
                value = section.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return value
            return None

        def text(key: str) -> str | None:
            for section in (rules, audit):
                value = section.get(key)
                if isinstance(value, str):
                    return value
            return None

        legal_age = rules.get("legal_age")
        return cls(
            age_threshold=number("age_threshold"),
            window_before_s=number("window_before_s"),
            window_after_s=number("window_after_s"),
            frames_per_sale=number("frames_per_sale"),
            legal_hours_start=text("legal_hours_start"),
            legal_hours_end=text("legal_hours_end"),
            legal_age=legal_age
            if isinstance(legal_age, int | float) and not isinstance(legal_age, bool)
            else LEGACY_LEGAL_AGE,
        )


@dataclass(frozen=True)
class StoreRules:
    """The rules one store is audited by: its own settings where it has them, else the chain's
    (``[chain] legal_age``, ``[audit]`` threshold and hours)."""

    legal_age: int
    age_threshold: int
    legal_hours_start: time
    legal_hours_end: time

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "legal_age": self.legal_age,
            "age_threshold": self.age_threshold,
            "legal_hours_start": self.legal_hours_start.isoformat(),
            "legal_hours_end": self.legal_hours_end.isoformat(),
        }


DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def dask_address(address: str) -> str:
    """A Dask scheduler address checked and written in full: ``host:port`` is ``tcp://host:port``."""
    text = address.strip()
    scheme, _, location = text.rpartition("://")
    host, _, port = location.rpartition(":")
    if (
        (scheme or "tcp") not in DASK_SCHEMES
        or not host
        or not port.isdigit()
        or not 0 < int(port) < 65536
    ):
        raise ValueError(
            f"{address!r} is not a Dask scheduler address (SCHEME://HOST:PORT with a scheme of "
            f"{', '.join(DASK_SCHEMES)}; e.g. tcp://10.0.0.5:8786)"
        )
    return f"{scheme or 'tcp'}://{location}"


class RetentionSettings(_Section):
    frame_days: int = Field(default=30, ge=1)
    evidence_days: int = Field(default=365, ge=1)


class ScheduleSettings(_Section):
    cron: str = "30 2 * * *"
    timezone: TimeZoneName | None = Field(
        default=None, description="default: chain.default_timezone"
    )

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, cron: str) -> str:
        try:
            cron_trigger(cron, ZoneInfo("UTC"))
        except ValueError as e:
            raise ValueError(f"not a crontab expression: {e}") from None
        return cron


class ReportsSettings(_Section):
    purchase_mix: bool = Field(
        default=True, description="write the page of what each estimated age group buys"
    )
    trend_nights: int = Field(default=30, ge=1, le=366, description="nights compared against")
    min_sales_to_rank: int = Field(
        default=20, ge=1, description="fewer alcohol sales than this: a cashier is not ranked"
    )
    cashier_sales: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="flagged sales of the window a cashier page lists, highest risk first; "
        "it says how many more there are, which the review app lists",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="processes writing the store pages; 1: in the command's own; "
        "default: one per CPU core",
    )


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def http_url(url: str | None) -> str | None:
    """An http:// or https:// address, as given; None stays None."""
    if url is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ValueError(f"{url!r} is not an http:// or https:// address")
    return url


class WebSettings(_Section):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: SecretStr | None = Field(
        default=None, description="default: generated once, kept in data_dir/web_secret_key"
    )
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)
    secure_cookie: bool = Field(default=False, description="true when served over HTTPS")
    login_attempts: int = Field(default=5, ge=1, le=1000)
    lockout_minutes: float = Field(default=15.0, gt=0, le=24 * 60)
    proxies: int = Field(
        default=0,
        ge=0,
        le=10,
        description="reverse proxies in front of the app whose X-Forwarded-For/-Proto to trust",
    )
    base_url: str | None = Field(
        default=None,
        description="the review app's public address: the reports link each flagged sale to "
        "its page there (default: notify.review_url)",
    )

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, url: str | None) -> str | None:
        return http_url(url)

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("use at least 32 characters (or leave it unset to have one made)")
        return key


class NotifySettings(_Section):
    """Who hears of a night's reports: e-mail over SMTP, and a webhook for chat tools."""

    loss_prevention: list[EmailAddress] = Field(
        default=[], description="addresses that get the chain's nightly summary"
    )
    sender: EmailAddress = "auditor@localhost"
    smtp_host: str | None = Field(default=None, description="needed to send e-mail")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls: upgrade a plain connection; tls: TLS at once"
    )
    smtp_user: str | None = None
    smtp_password: SecretStr | None = Field(
        default=None, description="set it in the environment: AUDITOR_NOTIFY__SMTP_PASSWORD"
    )
    webhook_url: str | None = Field(
        default=None, description="POSTed the chain's nightly summary as JSON"
    )
    reports_url: str | None = Field(
        default=None, description="where the report folder is served, for links in the summary"
    )
    review_url: str | None = Field(
        default=None, description="the review app's address, for links in the summary"
    )
    max_attempts: int = Field(
        default=7, ge=1, le=100, description="nights a failed send is tried before it is dropped"
    )
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    @field_validator("webhook_url", "reports_url", "review_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        return http_url(url)


class ModelSettings(_Section):
    path: Path | None = Field(default=None, description="default: the bundled model/bundled/")
    engine: Literal["auto", "keras", "openvino"] = Field(
        default="auto",
        description="auto: the model card's engine when its files check out, else Keras",
    )
    hint: Literal["throughput", "latency"] = Field(
        default="throughput",
        description="OpenVINO's performance hint for the model: measure both on the machine",
    )


class Settings(BaseSettings):
    """Every setting of the auditor. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    database: DatabaseSettings = DatabaseSettings()
    paths: PathsSettings = PathsSettings()
    chain: ChainSettings = ChainSettings()
    stores: list[StoreSettings] = []
    audit: AuditSettings = AuditSettings()
    retention: RetentionSettings = RetentionSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    reports: ReportsSettings = ReportsSettings()
    model: ModelSettings = ModelSettings()
    web: WebSettings = WebSettings()
    notify: NotifySettings = NotifySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's content comes in as init arguments; the environment wins over it.
        return (env_settings, init_settings)

    @field_validator("stores")
    @classmethod
    def _unique_stores(cls, stores: list[StoreSettings]) -> list[StoreSettings]:
        seen: set[str] = set()
        for store in stores:
            if store.id in seen:
                raise ValueError(f"store id {store.id!r} is listed twice")
            seen.add(store.id)
        return stores

    @model_validator(mode="after")
    def _check_mail(self) -> Settings:
        wants_mail = self.notify.loss_prevention or any(s.managers for s in self.stores)
        if wants_mail and self.notify.smtp_host is None:
            raise ValueError(
                "notify.smtp_host: set the SMTP server to send the nightly summary to the "
                "addresses in notify.loss_prevention and stores[].managers"
            )
        return self

    @model_validator(mode="after")
    def _check_store_rules(self) -> Settings:
        for i, store in enumerate(self.stores):
            rules = self.rules(store.id)
            if rules.age_threshold < rules.legal_age:
                raise ValueError(
                    f"stores[{i}] ({store.id}): age_threshold {rules.age_threshold} is under "
                    f"the store's legal age {rules.legal_age}"
                )
            if rules.legal_hours_start == rules.legal_hours_end:
                raise ValueError(
                    f"stores[{i}] ({store.id}): legal_hours_start and legal_hours_end must differ"
                )
        default = self.rules(None)
        if default.age_threshold < default.legal_age:
            raise ValueError(
                f"audit.age_threshold {default.age_threshold} is under chain.legal_age "
                f"{default.legal_age}"
            )
        return self

    # -- derived values ------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        assert self.database.url is not None, "use load_settings() to build Settings"
        return self.database.url

    @property
    def snapshot_root(self) -> Path:
        assert self.paths.snapshot_root is not None, "use load_settings() to build Settings"
        return self.paths.snapshot_root

    @property
    def report_dir(self) -> Path:
        assert self.paths.report_dir is not None, "use load_settings() to build Settings"
        return self.paths.report_dir

    @property
    def model_path(self) -> Path:
        assert self.model.path is not None, "use load_settings() to build Settings"
        return self.model.path

    @property
    def report_workers(self) -> int:
        """Processes that write a night's store pages: ``[reports] workers``, else one per
        CPU core this process may use."""
        return self.reports.workers or usable_cores()

    @property
    def review_url(self) -> str | None:
        """The review app's public address: ``[web] base_url``, else ``[notify] review_url``
        (the older name of the same address); None when neither is set."""
        return self.web.base_url or self.notify.review_url

    @property
    def reports_url(self) -> str | None:
        """Where the report folder is served (``[notify] reports_url``), for the review app's
        links to a night's reports; None when not set."""
        return self.notify.reports_url

    @property
    def alcohol_categories(self) -> frozenset[str]:
        """Configured alcohol categories, case-folded; compare with ``category.casefold()``."""
        return frozenset(self.chain.alcohol_categories)

    def store(self, store_id: str) -> StoreSettings | None:
        return next((s for s in self.stores if s.id == store_id), None)

    def rules(self, store_id: str | None) -> StoreRules:
        """The rules a store is audited by; the chain's for a store not in the settings."""
        store = self.store(store_id) if store_id is not None else None

        def own(value: Any, default: Any) -> Any:
            return default if value is None else value

        audit = self.audit
        return StoreRules(
            legal_age=own(store and store.legal_age, self.chain.legal_age),
            age_threshold=own(store and store.age_threshold, audit.age_threshold),
            legal_hours_start=own(store and store.legal_hours_start, audit.legal_hours_start),
            legal_hours_end=own(store and store.legal_hours_end, audit.legal_hours_end),
        )

    def store_zone(self, store_id: str) -> ZoneInfo:
        """The store's time zone; the chain's default zone for a store not in the settings."""
        store = self.store(store_id)
        if store is not None and store.timezone is not None:
            return ZoneInfo(store.timezone)
        return ZoneInfo(self.chain.default_timezone)

    def as_json_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON values (database and SMTP passwords and the secret key
        hidden), for audit records."""
        data = self.model_dump(mode="json")
        data["database"]["url"] = make_url(self.database_url).render_as_string(hide_password=True)
        return data

    def _resolved(self, base_dir: Path) -> Settings:
        """Fill derived defaults and make relative paths absolute against ``base_dir``."""

        def absolute(path: Path) -> Path:
            path = path.expanduser()
            return path if path.is_absolute() else (base_dir / path).resolve()

        data_dir = absolute(self.paths.data_dir)
        paths = PathsSettings(
            data_dir=data_dir,
            snapshot_root=absolute(self.paths.snapshot_root or data_dir / "snapshots"),
            report_dir=absolute(self.paths.report_dir or data_dir / "reports"),
        )
        url = make_url(self.database.url or f"sqlite:///{data_dir / 'auditor.db'}")
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            url = url.set(database=str(absolute(Path(url.database))))
        stores = [
            s.model_copy(update={"timezone": s.timezone or self.chain.default_timezone})
            for s in self.stores
        ]
        return self.model_copy(
            update={
                "paths": paths,
                "database": DatabaseSettings(url=url.render_as_string(hide_password=False)),
                "stores": stores,
                "schedule": self.schedule.model_copy(
                    update={"timezone": self.schedule.timezone or self.chain.default_timezone}
                ),
                "model": self.model.model_copy(
                    update={"path": absolute(self.model.path or _bundled_model_dir())}
                ),
            }
        )


def _bundled_model_dir() -> Path:
    spec = importlib.util.find_spec("model")
    if spec is None or spec.origin is None:
        return Path("model/bundled")
    return Path(spec.origin).parent / "bundled"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{path}: config file not found") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: config file is not UTF-8 text") from None
    except OSError as e:
        raise SettingsError(f"{path}: cannot read config file: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: not valid TOML: {e}") from None


def _describe(error: ErrorDetails) -> str:
    key = ""
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    env_name = ENV_PREFIX + "__".join(str(p) for p in error["loc"] if not isinstance(p, int))
    source = f" (from {env_name.upper()})" if env_name.upper() in os.environ else ""
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("literal_error", "enum"):  # a choice: name the bad value too
        message = f"unknown value {error['input']!r}; use one of {error['ctx']['expected']}"
    return f"{key}{source}: {message}" if key else message


def _environment_problem(error: pydantic_settings.SettingsError) -> str:
    """Which variable holds a value that is not JSON, from pydantic-settings' message
    ('error parsing value for field "stores" from source "EnvSettingsSource"')."""
    found = re.search(r'field "([^"]+)"', str(error))
    if found is None:
        return str(error)
    prefix = f"{ENV_PREFIX}{found[1]}".upper()
    named = sorted(
        n for n in os.environ if n.upper() == prefix or n.upper().startswith(prefix + "_")
    )
    return (
        f"{' or '.join(named) or prefix}: not valid JSON (a list or a table is given in JSON, "
        'such as ["lp@chain.example"])'
    )


def load_settings(config_path: Path | str | None = None) -> Settings:
    """Load and validate the settings; raise :class:`SettingsError` naming the bad key."""
    if config_path is None and DEFAULT_CONFIG_FILE.is_file():
        config_path = DEFAULT_CONFIG_FILE
    path = Path(config_path) if config_path is not None else None
    data = _read_toml(path) if path is not None else {}
    where = str(path) if path is not None else "settings"
    try:
        settings = Settings(**data)
    except ValidationError as e:
        problems = "; ".join(_describe(err) for err in e.errors())
        raise SettingsError(f"{where}: {problems}") from None
    except pydantic_settings.SettingsError as e:  # an environment variable that is not JSON
        raise SettingsError(f"{where}: {_environment_problem(e)}") from None
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    logger.debug("settings loaded from %s", where)
    return settings._resolved(base_dir)
