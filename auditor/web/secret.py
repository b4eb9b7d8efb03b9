"""The key that signs session cookies: from the settings, else made once and kept on disk."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from auditor.errors import AuditorError
from auditor.settings import Settings

logger = logging.getLogger(__name__)

SECRET_FILE = "web_secret_key"


class SecretKeyError(AuditorError):
    """The kept secret key cannot be read or written."""


def secret_key(settings: Settings) -> str:
    """``web.secret_key``, else the key in ``<data_dir>/web_secret_key`` (made, mode 0600)."""
    if settings.web.secret_key is not None:
        return settings.web.secret_key.get_secret_value()
    path = Path(settings.paths.data_dir) / SECRET_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
            logger.info("made a new session key in %s", path)
        if path.stat().st_mode & 0o077:
            raise SecretKeyError(f"{path}: others may read it; chmod 600 {path}")
        key = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise SecretKeyError(f"{path}: not a key written by the auditor") from None
    except OSError as e:
        raise SecretKeyError(f"{path}: {e.strerror or e}") from None
    if len(key) < 32:
        raise SecretKeyError(f"{path}: the key is too short; delete the file to have one made")
    return key
