"""The package as a wheel: its package list, and a wheel installed into a fresh virtualenv that
migrates a database, audits a night and writes its report, away from the checkout."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from auditor.resources import CHECKOUT, checkout_root, shipped_folder
from auditor.settings import load_settings
from tests.audit.night import NightBuilder, find_frames
from tests.factories import write_config, write_sales_csv

PYPROJECT = tomllib.loads((CHECKOUT / "pyproject.toml").read_text(encoding="utf-8"))
SOURCES = ("pyproject.toml", "README.md", "auditor", "model", "templates", "migrations")
DAY = "2024-03-01"
# Run in the fresh virtualenv: the review app's login page, then where the code and files are.
INSTALLED = """
import auditor, auditor.db.migrations as m, auditor.reports.render as r, model.html as h
from auditor.settings import load_settings
from auditor.web.app import create_app
page = create_app(load_settings("auditor.toml")).test_client().get("/login")
assert page.status_code == 200 and b"Log in" in page.data, page.data
print(auditor.__file__, m.MIGRATIONS_DIR, r.TEMPLATES)
print(h.environment().get_template("evaluate.html").filename)
"""


def _folders(root: Path) -> list[Path]:
    """``root`` and the folders under it that hold a file, other than caches."""
    found = []
    for folder in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
        parts = folder.relative_to(root).parts
        if any(part.startswith((".", "__pycache__")) for part in parts):
            continue
        if any(f.is_file() and "__pycache__" not in f.parts for f in folder.rglob("*")):
            found.append(folder)
    return found


def test_the_package_list_names_every_folder_of_the_packages() -> None:
    setuptools = PYPROJECT["tool"]["setuptools"]
    mapped = setuptools["package-dir"]
    assert mapped == {"auditor._templates": "templates", "auditor._migrations": "migrations"}
    expected = set()
    for name, folder in [("auditor", "auditor"), ("model", "model"), *mapped.items()]:
        root = CHECKOUT / folder
        for sub in _folders(root):
            expected.add(".".join([name, *sub.relative_to(root).parts]))
    assert set(setuptools["packages"]) == expected


def test_a_checkout_uses_its_own_folders() -> None:
    assert checkout_root() == CHECKOUT
    assert shipped_folder("templates") == CHECKOUT / "templates"
    assert shipped_folder("migrations") == CHECKOUT / "migrations"


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _fresh_venv(folder: Path, dependencies: list[str], env: dict[str, str]) -> Path:
    """A virtualenv without pip; a ``.pth`` line lends it this environment's dependencies."""
    _run(sys.executable, "-m", "venv", "--without-pip", folder, cwd=folder.parent, env=env)
    python = folder / "bin" / "python"
    purelib = _run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        cwd=folder.parent, env=env,
    ).strip()  # fmt: skip
    Path(purelib, "_dependencies.pth").write_text("\n".join(dependencies) + "\n")
    return python


@pytest.mark.slow
def test_a_wheel_installed_away_from_the_checkout_audits_and_reports(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "PYTHON"))}
    env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2")
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = CHECKOUT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-cache-dir"]
    build = ["wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", tmp_path / "dist"]
    _run(*pip, *build, source, cwd=tmp_path, env=env)
    (wheel,) = (tmp_path / "dist").glob("alcohol_sale_auditor-*.whl")

    paths = sysconfig.get_paths()
    dependencies = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    venv = tmp_path / "venv"
    python = _fresh_venv(venv, dependencies, env)
    install = ["--python", python, "install", "--no-deps", "--no-index", wheel]
    _run(*pip, *install, cwd=tmp_path, env=env)

    work = tmp_path / "work"
    config = write_config(work / "auditor.toml", database_url=f"sqlite:///{work / 'auditor.db'}")
    auditor = [venv / "bin" / "auditor", "--config", config]
    assert "is at schema revision" in _run(*auditor, "db", "upgrade", cwd=work, env=env)
    assert "up to date" in _run(*auditor, "db", "current", cwd=work, env=env)
    for path in _run(python, "-c", INSTALLED, cwd=work, env=env).split():
        assert venv in Path(path).parents and CHECKOUT not in Path(path).parents, path

    settings = load_settings(config)
    night = NightBuilder(settings, find_frames(1, with_face=True), find_frames(1, with_face=False))
    night.sale("1001", f"{DAY} 12:00:00")
    night.frame(f"{DAY} 12:00:02", "face")
    night.sale("1002", f"{DAY} 13:00:00")
    night.frame(f"{DAY} 13:00:01", "no_face")
    night.sale("1003", f"{DAY} 14:00:00")
    sales = write_sales_csv(work / "sales.csv", night.rows)
    _run(*auditor, "ingest", "sales", sales, cwd=work, env=env)
    _run(*auditor, "ingest", "snapshots", settings.snapshot_root, cwd=work, env=env)
    audited = _run(*auditor, "audit", "--date", DAY, "--store", "S1", cwd=work, env=env)
    assert audited.startswith(f"S1 {DAY}: 3 alcohol sales, "), audited
    flags = _run(*auditor, "flags", "--date", DAY, "--store", "S1", cwd=work, env=env)
    by_receipt = {row["receipt_id"]: row for row in csv.DictReader(io.StringIO(flags))}
    assert float(by_receipt["1001"]["estimated_age"]) > 0  # the bundled model's estimate
    assert by_receipt["1002"]["flags"] == "no_face" and by_receipt["1003"]["flags"] == "no_frame"
    _run(*auditor, "report", "--date", DAY, cwd=work, env=env)

    page = (work / "reports" / DAY / "S1.html").read_text(encoding="utf-8")
    assert "Berlin Mitte" in page and all(r in page for r in ("1001", "1002", "1003"))
    assert "no face" in page and "no frame" in page
    assert (work / "reports" / DAY / "index.html").is_file()
