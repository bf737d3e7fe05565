"""Exceptions: one class per sessync status, all under SessyncError.

The status and the message come from the ``sessync_error`` the failed call filled (never
from the per-thread last-error message, which another call may have replaced).
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "SessyncError",
    "NotFound",
    "Conflict",
    "LockTimeout",
    "StaleToken",
    "Locked",
    "Destroyed",
    "Rotated",
    "Full",
    "InvalidArgument",
    "InvalidJson",
    "TooLarge",
    "NotANumber",
    "IoError",
    "BackendError",
    "AuthError",
    "ProtocolError",
    "InternalError",
    "Cancelled",
    "SessionClosed",
    "StoreClosed",
]


class SessyncError(Exception):
    """A sessync call failed. ``status`` is the C status number (None for errors the
    binding raises itself), ``status_name`` its name, ``message`` the engine's message."""

    status_name = "ERROR"

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(SessyncError, LookupError):
    """The session does not exist or has expired (or a key is absent)."""

    status_name = "NOT_FOUND"


class Conflict(SessyncError):
    """A compare-and-swap saw another version than the expected one."""

    status_name = "CONFLICT"


class LockTimeout(SessyncError, TimeoutError):
    """The session's lock could not be taken within the wait."""

    status_name = "LOCK_TIMEOUT"


class StaleToken(SessyncError):
    """The lock's lease ran out and another request took it: nothing was written."""

    status_name = "STALE_TOKEN"


class Locked(SessyncError):
    """The session is locked by another holder."""

    status_name = "LOCKED"


class Destroyed(SessyncError):
    """The session was destroyed; writes for it are refused."""

    status_name = "DESTROYED"


class Rotated(SessyncError):
    """The id was rotated away; it takes no more writes."""

    status_name = "ROTATED"


class Full(SessyncError):
    """The store holds its maximum number of sessions."""

    status_name = "FULL"


class InvalidArgument(SessyncError, ValueError):
    """An argument is malformed (an id, a URL, an option, a key), NULL, or not UTF-8."""

    status_name = "INVALID_ARGUMENT"


class InvalidJson(SessyncError, ValueError):
    """A JSON argument is not valid JSON, or not of the required shape."""

    status_name = "INVALID_JSON"


class TooLarge(SessyncError, ValueError):
    """An input or a session exceeds a limit (``max_session_bytes``)."""

    status_name = "TOO_LARGE"


class NotANumber(SessyncError, ValueError):
    """An increment met a value that is not an integer, or overflowed."""

    status_name = "NOT_A_NUMBER"


class IoError(SessyncError, OSError):
    """An I/O error."""

    status_name = "IO"


class BackendError(SessyncError):
    """The backend (sessyncd, Redis) failed or could not be reached."""

    status_name = "BACKEND"


class AuthError(SessyncError):
    """Authentication with the backend failed."""

    status_name = "AUTH"


class ProtocolError(SessyncError):
    """A protocol error with a remote store."""

    status_name = "PROTOCOL"


class InternalError(SessyncError):
    """An internal error of the engine (SESSYNC_STATUS_PANIC): the handle is unusable."""

    status_name = "PANIC"


class Cancelled(SessyncError):
    """The call was cancelled before it completed."""

    status_name = "CANCELLED"


class SessionClosed(SessyncError, RuntimeError):
    """The session was already committed or aborted (raised by the binding)."""

    status_name = "SESSION_CLOSED"


class StoreClosed(SessyncError, RuntimeError):
    """The store was closed (raised by the binding)."""

    status_name = "STORE_CLOSED"


# Status names (the C enum's, without SESSYNC_STATUS_) to classes; the numbers are read
# from the loaded header, not written here.
BY_NAME: Dict[str, Type[SessyncError]] = {
    "NOT_FOUND": NotFound,
    "CONFLICT": Conflict,
    "LOCK_TIMEOUT": LockTimeout,
    "STALE_TOKEN": StaleToken,
    "LOCKED": Locked,
    "DESTROYED": Destroyed,
    "ROTATED": Rotated,
    "FULL": Full,
    "NULL_ARGUMENT": InvalidArgument,
    "INVALID_ARGUMENT": InvalidArgument,
    "INVALID_UTF8": InvalidArgument,
    "INVALID_JSON": InvalidJson,
    "TOO_LARGE": TooLarge,
    "NOT_A_NUMBER": NotANumber,
    "IO": IoError,
    "BACKEND": BackendError,
    "AUTH": AuthError,
    "PROTOCOL": ProtocolError,
    "PANIC": InternalError,
    "CANCELLED": Cancelled,
}
