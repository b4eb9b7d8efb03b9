"""Ingest: the POS sales export (:mod:`~auditor.ingest.pos`) and the checkout snapshots
(:mod:`~auditor.ingest.snapshots`), from files into the database.

A table is read whole before anything is stored. A file that cannot be read at all raises
:class:`~auditor.ingest.tables.UnreadableFileError`; a row that is wrong becomes a
:class:`~auditor.ingest.rejects.Reject` and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable

from auditor.errors import AuditorError

Progress = Callable[[int, int], None]
"""Told ``(advance, total)`` as work gets done: the CLI draws a bar with it."""


class IngestError(AuditorError):
    """An ingest cannot go ahead."""
