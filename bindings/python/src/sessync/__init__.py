"""sessync for Python: one session store shared by every worker of a web application.

    import sessync

    store = sessync.Store("unix:///run/sessync.sock")    # or "mem://", "redis://…"
    with store.begin(cookie_header) as session:          # commit on success, abort on error
        session.incr("visits")
        session["cart"] = ["apple"]
    # session.commit() returned the Set-Cookie value; see the framework integrations:
    # sessync.flask, sessync.django, sessync.asgi, sessync.wsgi.

A thin wrapper over the C ABI (include/sessync.h), loaded with cffi in ABI mode; the GIL is
released during every call into the library.
"""

from . import errors
from ._core import Session, Store, check_id, generate_id, version
from .errors import (
    AuthError,
    BackendError,
    Cancelled,
    Conflict,
    Destroyed,
    Full,
    InternalError,
    InvalidArgument,
    InvalidJson,
    IoError,
    Locked,
    LockTimeout,
    NotANumber,
    NotFound,
    ProtocolError,
    Rotated,
    SessionClosed,
    SessyncError,
    StaleToken,
    StoreClosed,
    TooLarge,
)
from ._ffi import LibraryNotFound

__version__ = "0.2.0"

__all__ = [
    "Store",
    "Session",
    "generate_id",
    "check_id",
    "version",
    "LibraryNotFound",
    *errors.__all__,
]
