"""Database access: engine and sessions (``engine``), models, migrations."""

from auditor.db.engine import DatabaseError, make_engine, make_session_factory

__all__ = ["DatabaseError", "make_engine", "make_session_factory"]
