"""Storage of trips, hits, defects, traversals and road cells: the ONLY package of `bump` that speaks SQL.

Modules: :mod:`~bump.store.database` (:class:`Store`: the connection, transactions, migrations, every read and
write), :mod:`~bump.store.schema` (``Dialect`` and the migrations' DDL), :mod:`~bump.store.catalogue` (the
columns each table hands out, :class:`DefectQuery`), :mod:`~bump.store.rows` (rows to NumPy columns and back, id
sets, the list cursor), :mod:`~bump.store.errors`. Import from ``bump.store``.

One SQLite file by default (WAL journal, ``synchronous=FULL``, foreign keys on, a busy timeout), with a versioned
schema upgraded by ``MIGRATIONS`` when a database is opened. Everything above this module sees plain Python
values and NumPy columns (:class:`detect.Columns`), never a cursor or a row object.

Portability: the SQL is ANSI with ``?`` placeholders, ``INSERT ... ON CONFLICT ... DO UPDATE/NOTHING`` and keyset
pagination, all of which PostgreSQL speaks too. What differs by dialect is collected in ``Dialect`` (column
types, how the connection is opened and tuned, placeholder style); a PostgreSQL/PostGIS backend is a second
``Dialect`` plus a connection factory, not a second Store. No SQLite extension (R*Tree, JSON1, FTS) is used:
spatial look-ups are indexed range and key queries on an integer grid key of ~50 m cells in the local projection.

Tables (migration 1 unless noted)::

    meta              key/value: projection origin, creation time
    schema_migrations version, name, applied_at_s
    devices           device_id, first/last seen, trips
    trips             trip_id, device, times, detector JSON, quality JSON, raw trace (gzip bump.trace/1), track blob
    defects           position (lat/lon and local x/y, grid key), direction, kind (+reason), status (+crew status),
                      severity, confidence, priority, counts, first/last seen, detector JSON (5: where the status
                      replay stands, first pass; 8: the GPS latency of its summary)
    hits              one detected impact of one trip, linked to the defect it joined; detector JSON
    traversals        (defect, trip, pass): the trip passed the defect; hit or not (7: stored in key order; 11:
                      one row per pass)
    defect_history    every status change: data time, wall time, from, to, reason, actor
    roughness         (2) per-window roughness of every trip with its road cell key (4: indexed by cell and device)
    coverage          (2) (cell, trip): the trip passed the cell (4: indexed by cell and device; 7: stored so)
    cells             (2) per-cell aggregates of roughness readings and coverage
    tokens            (3) API tokens: sha256 of the secret (never the secret), a short prefix to name it, role,
                      device (device tokens), label, created, revoked

Errors: :class:`StoreError` (a :class:`ingest.errors.BumpError` and ``ValueError``) for a database that cannot be
used, :class:`UnknownDefectError` for a defect id that does not exist.
"""

from bump.store.catalogue import CONFIDENCE_DECIMALS, INDEXED_DEFECT_COLUMNS, TRAVERSAL_COLUMNS, DefectQuery
from bump.store.database import MAX_LIST_LIMIT, Store
from bump.store.errors import BACKEND_ERRORS, StoreError, UnknownDefectError
from bump.store.rows import ids_in, setdiff_ids
from bump.store.schema import SCHEMA_VERSION

__all__ = ["BACKEND_ERRORS", "CONFIDENCE_DECIMALS", "INDEXED_DEFECT_COLUMNS", "MAX_LIST_LIMIT", "SCHEMA_VERSION",
           "TRAVERSAL_COLUMNS", "DefectQuery", "Store", "StoreError", "UnknownDefectError", "ids_in", "setdiff_ids"]
