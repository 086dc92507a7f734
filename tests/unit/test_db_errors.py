"""Which database errors mean "not there right now" (answered 503, retried by clients)
and which are bugs or conflicts (platform.db.is_unavailable, is_retryable)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError

from mobipay.platform.db import is_retryable, is_unavailable


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)


def test_a_server_gone_or_starting_is_unavailable() -> None:
    assert is_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert is_unavailable(_wrapped(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")))
    assert is_unavailable(_wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle")))
    assert is_unavailable(_wrapped(asyncpg.exceptions.AdminShutdownError("terminating connection")))
    assert is_unavailable(_wrapped(asyncpg.exceptions.InterfaceError("connection is closed"), invalidated=True))
    cause = ValueError("wrapper")
    cause.__cause__ = ConnectionResetError(104, "reset by peer")
    assert is_unavailable(cause)
    assert is_unavailable(OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432)"))
    assert is_unavailable(TimeoutError())


def test_bugs_and_conflicts_are_not_unavailability() -> None:
    assert not is_unavailable(_wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")))
    assert not is_unavailable(IntegrityError("INSERT", None, Exception("unique constraint failed")))
    assert not is_unavailable(ValueError("a bug"))
    assert not is_unavailable(FileNotFoundError(2, "No such file or directory", "var/merchant_platform_key.pem"))
    assert not is_unavailable(PermissionError(13, "Permission denied", "var/reports"))
    assert not is_unavailable(_wrapped(asyncpg.exceptions.UndefinedColumnError("no such column")))
    assert is_retryable(_wrapped(asyncpg.exceptions.UniqueViolationError("duplicate key")))  # a conflict instead
