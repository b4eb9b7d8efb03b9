"""The audit on a real Dask cluster (a LocalCluster of two worker processes) against the local
executor, on both databases, with real frames and the real tiny age model."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from distributed import Client, LocalCluster
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from auditor.audit import cluster as cluster_module
from auditor.audit.cluster import audit_nights_on_dask
from auditor.audit.examine import _load_age_model
from auditor.audit.run import AuditTools, audit_nights
from auditor.audit.summary import RunSummary
from auditor.cli import main
from auditor.db.models import AuditRun, SaleVerdict
from auditor.nightly import nightly
from auditor.settings import Settings
from tests.audit.night import NightBuilder, result_state, run_statuses, with_threshold

DAY = date(2024, 3, 1)
NIGHTS = [("S1", DAY), ("S1", date(2024, 3, 2)), ("S3", DAY)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes of two threads each: a model per process, threads that contend."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # a free port: 8787 may be taken by another cluster
        silence_logs=logging.ERROR,
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    """A client for asking the workers about themselves; closed before the cluster."""
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        yield client


def on_dask(settings: Settings, cluster: LocalCluster) -> Settings:
    audit = settings.audit.model_copy(
        update={"executor": "dask", "scheduler": cluster.scheduler_address}
    )
    return settings.model_copy(update={"audit": audit})


def assert_same_results(found: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> None:
    """The same rows, ages and spreads equal to 1e-4 years: float32 sums may differ in their last
    bits between two processes (Dask starts its workers with OMP_NUM_THREADS=1, for one)."""
    assert found.keys() == expected.keys()
    for table, rows in expected.items():
        assert len(found[table]) == len(rows), table
        for got, want in zip(found[table], rows, strict=True):
            assert got == pytest.approx(want, abs=1e-4), table


def plain(summary: RunSummary) -> RunSummary:
    """The summary without what differs between two runs: run id and time."""
    return dataclasses.replace(summary, run_id=None, seconds=0.0)


@pytest.fixture
def nights(night: NightBuilder, session_factory: sessionmaker[Session]) -> NightBuilder:
    """S1 on 1 and 2 March, S3 (Tokyo) on 1 March: faces, an empty checkout, bad frames."""
    night.sale("face", "2024-03-01 12:00:00")
    night.frame("2024-03-01 12:00:02", "face")
    night.frame("2024-03-01 12:00:04", "face")
    night.sale("no-face", "2024-03-01 14:00:00")
    night.frame("2024-03-01 13:59:58", "no_face")
    night.sale("truncated", "2024-03-01 15:00:00", register="R2")
    night.frame("2024-03-01 15:00:01", "truncated", register="R2")
    night.sale("no-frame", "2024-03-01 16:00:00")
    night.sale("late", "2024-03-01 23:30:00")
    night.frame("2024-03-01 23:30:01", "face")
    night.sale("next-day", "2024-03-02 11:00:00")
    night.frame("2024-03-02 11:00:03", "face")
    night.sale("tokyo", "2024-03-01 10:00:00", store="S3")
    night.frame("2024-03-01 10:00:01", "face", store="S3")
    night.sale("tokyo-empty", "2024-03-01 11:00:00", store="S3")
    night.frame("2024-03-01 11:00:02", "no_face", store="S3")
    night.ingest(session_factory)
    return night


def test_dask_writes_exactly_what_the_local_executor_writes(
    nights: NightBuilder,
    engine: Engine,
    audit_settings: Settings,
    tools: AuditTools,
    cluster: LocalCluster,
    client: Client,
) -> None:
    settings = with_threshold(audit_settings, 200)  # every face flagged, with its crop
    local = audit_nights(engine=engine, settings=settings, tools=tools, nights=NIGHTS)
    assert [s.status for s in local] == ["succeeded"] * 3
    expected = result_state(engine)
    assert len(expected["sale_verdicts"]) == 8 and len(expected["audit_runs"]) == 3

    done: list[RunSummary] = []
    for _ in range(2):  # the second run replaces the first's results with the same
        summaries = audit_nights_on_dask(
            settings=on_dask(settings, cluster), nights=NIGHTS, on_done=done.append
        )
        assert [plain(s) for s in summaries] == [plain(s) for s in local]
        assert_same_results(result_state(engine), expected)
    assert sorted(map(plain, done), key=repr) == sorted(map(plain, local * 2), key=repr)
    assert run_statuses(engine) == [("replaced", None)] * 6 + [("succeeded", None)] * 3
    with Session(engine) as session:  # the replaced runs' rows are gone
        verdicts = session.execute(sa.select(sa.func.count()).select_from(SaleVerdict))
        assert verdicts.scalar_one() == 8

    # each worker process loaded the model once, on its first store-night, and kept it
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    loads = client.run(_load_age_model.cache_info)
    assert all(info.misses <= 1 and info.currsize <= 1 for info in loads.values()), loads
    assert max(info.hits for info in loads.values()) >= 1, loads


@pytest.fixture
def refused_verdicts(engine: Engine) -> Iterator[None]:
    """The database refuses the verdicts of store S3: its write transaction fails for real."""
    message = "verdicts of store S3 refused"
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_s3() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF EXISTS (SELECT 1 FROM sales WHERE id = NEW.sale_id AND store_id = 'S3') "
                f"THEN RAISE EXCEPTION '{message}'; END IF; RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_s3 BEFORE INSERT ON sale_verdicts "
                "FOR EACH ROW EXECUTE FUNCTION refuse_s3()"
            )
        else:
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_s3 BEFORE INSERT ON sale_verdicts "
                "WHEN NEW.sale_id IN (SELECT id FROM sales WHERE store_id = 'S3') "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("DROP TRIGGER refuse_s3 ON sale_verdicts")
                connection.exec_driver_sql("DROP FUNCTION refuse_s3()")
            else:
                connection.exec_driver_sql("DROP TRIGGER refuse_s3")


@pytest.fixture
def cli(audit_settings: Settings, tmp_path: Path) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(tmp_path / "auditor.toml"), *args])

    return run


def without_times(output: str) -> list[str]:
    return [re.sub(r" in \d+\.\d s$", "", line) for line in output.splitlines()]


def test_a_failing_store_night_fails_alone_as_it_does_locally(
    nights: NightBuilder,
    engine: Engine,
    refused_verdicts: None,
    cluster: LocalCluster,
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = cli("audit", "--date", "2024-03-01")
    assert local.exit_code == 1, local.output
    assert "Error: S3 2024-03-01: failed: database " in local.output
    assert "verdicts of store S3 refused" in local.output
    assert local.output.startswith("S1 2024-03-01: 5 alcohol sales")
    assert local.output.endswith("Error: 1 of 2 store-nights not audited\n")

    address = cluster.scheduler_address
    on_dask = cli("audit", "--date", "2024-03-01", "--executor", "dask", "--scheduler", address)
    assert on_dask.exit_code == 1, on_dask.output
    assert without_times(on_dask.output) == without_times(local.output)

    # the same from the settings, through the environment
    monkeypatch.setenv("AUDITOR_AUDIT__EXECUTOR", "dask")
    monkeypatch.setenv("AUDITOR_AUDIT__SCHEDULER", cluster.scheduler_address)
    again = cli("audit", "--date", "2024-03-01", "--store", "S1")
    assert again.exit_code == 0, again.output
    assert without_times(again.output) == without_times(local.output)[:1]

    with Session(engine) as session:
        runs = session.execute(
            sa.select(AuditRun.store_id, AuditRun.status, AuditRun.error).order_by(AuditRun.id)
        ).all()
    assert [(status, error) for store, status, error in runs if store == "S1"] == [
        ("replaced", None),
        ("replaced", None),
        ("succeeded", None),
    ]
    local_error, dask_error = [error for store, _, error in runs if store == "S3"]
    assert "verdicts of store S3 refused" in local_error
    assert [status for store, status, _ in runs if store == "S3"] == ["failed", "failed"]
    # recorded as the local run recorded it (the statement's parameters name the run)
    assert dask_error.splitlines()[0] == local_error.splitlines()[0]


def test_nightly_runs_on_the_cluster_when_the_settings_say_so(
    nights: NightBuilder,
    engine: Engine,
    audit_settings: Settings,
    cluster: LocalCluster,
    reported: list[list[RunSummary]],
) -> None:
    settings = on_dask(audit_settings, cluster)
    now = datetime(2024, 3, 2, 1, 30, tzinfo=UTC)  # 02:30 in Berlin, 10:30 in Tokyo
    summaries = nightly(settings=settings, engine=engine, now=now)
    assert [(s.store_id, s.business_date, s.status) for s in summaries] == [
        ("S1", DAY, "succeeded"),
        ("S3", DAY, "succeeded"),
    ]
    assert reported == [summaries]
    assert len(result_state(engine)["sale_verdicts"]) == 7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--executor", "dask"], 2, "executor 'dask' needs the address of a Dask scheduler"),
        (["--scheduler", "tcp://127.0.0.1:8786"], 2, "--scheduler is for --executor dask"),
        (
            ["--executor", "dask", "--scheduler", "8786"],
            2,
            "'8786' is not a Dask scheduler address",
        ),
        (
            ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:{port}"],
            1,
            "cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: Timed out",
        ),
    ],
)
def test_a_missing_or_bad_scheduler_is_one_clear_error(
    nights: NightBuilder,
    engine: Engine,
    cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", 1.0)
    port = free_port()
    result = cli("audit", "--date", "2024-03-01", *(a.format(port=port) for a in args))
    assert result.exit_code == code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message.format(port=port) in errors[0], result.output
    assert "Traceback" not in result.output
    assert run_statuses(engine) == []
