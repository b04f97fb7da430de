"""What the storage module raises: a database that cannot be used, an unknown defect."""

from __future__ import annotations

import sqlite3

from ingest.errors import BumpError

BACKEND_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)   # what the database itself raises (locked, read-only)


class StoreError(BumpError, ValueError):
    """The database cannot be opened, migrated or queried as asked; the message says how to fix it."""

    code = "store"


class UnknownDefectError(StoreError, LookupError):
    """No defect with that id."""

    code = "unknown_defect"
