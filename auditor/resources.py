"""The folders the auditor reads at run time, ``templates/`` and ``migrations/``, from a checkout
or from an installed wheel.

In a checkout they are the repository's top-level folders (``alembic.ini`` beside them runs
``alembic upgrade head`` there). A wheel carries copies inside the package, ``auditor/_templates``
and ``auditor/_migrations`` (mapped in ``pyproject.toml``); when a copy is there it is used.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def shipped_folder(name: str) -> Path:
    """``templates`` or ``migrations``: the copy in the installed package, else the checkout's."""
    packaged = files("auditor") / f"_{name}"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return CHECKOUT / name


def checkout_root() -> Path | None:
    """The repository checkout the package runs from, or None when it is installed from a wheel."""
    return CHECKOUT if (CHECKOUT / "alembic.ini").is_file() else None
