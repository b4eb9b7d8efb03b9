"""The base of every error the auditor raises on bad input or a bad environment.

Each module defines its own small subclasses next to the code that raises them. The CLI turns
any ``AuditorError`` into a one-line message and exit code 1; nothing else needs to catch them.
"""


class AuditorError(Exception):
    """Bad input, bad settings or an unusable environment, explained in one line."""


def describe_error(error: BaseException) -> str:
    """One line for an error: an ``AuditorError``'s own message, else its type and message."""
    if isinstance(error, AuditorError):
        return str(error)
    return f"{type(error).__name__}: {error}"
