"""The :class:`Store`: one open database, its transactions, migrations and every read and write of `bump`."""

from __future__ import annotations

import hashlib
import math
import operator
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bump.store import checkpoint
from bump.store.catalogue import (
    _CELL_COUNTS,
    _TRIP_INFO,
    CELL_COLUMNS,
    CONFIDENCE_DECIMALS,
    COVERAGE_COLUMNS,
    DEFECT_COLUMNS,
    DERIVED_TABLES,
    HISTORY_COLUMNS,
    HIT_COLUMNS,
    INDEXED_DEFECT_COLUMNS,
    OPTIONAL_DEFECT_COLUMNS,
    OPTIONAL_HIT_COLUMNS,
    ROUGHNESS_COLUMNS,
    TOKEN_COLUMNS,
    TRAVERSAL_COLUMNS,
    DefectQuery,
)
from bump.store.errors import StoreError, UnknownDefectError
from bump.store.rows import (
    _chunks,
    _columns,
    _concat,
    _id_chunks,
    _known,
    _padded,
    _py,
    _rows,
    _scalar,
    _time_window,
    _values,
    decode_cursor,
    encode_cursor,
    ids_in,
)
from bump.store.schema import MIGRATIONS, SCHEMA_VERSION, SQLITE, Dialect
from detect.columns import Columns

_RANGES_CHUNK = 32       # indexed ranges per compound SELECT (per-defect LIMITs)
_ROWS_PER_INSERT = 32    # rows per multi-row INSERT (~25 % faster than one statement step per row)
STATEMENT_CACHE = 512       # prepared statements kept per connection (Python's default 128: a trip's lists of
#                             keys, padded to a few lengths, are parsed once, not per trip)
CACHE_KIB = 32 * 1024       # page cache per connection [KiB] (SQLite's default is 2 MiB); a trip's ingest reads
#                             defects, hits and passes all over a large database


MAX_LIST_LIMIT = 100_000    # defects in one page of Store.list_defects


class Store:
    """A defect database. Open with :meth:`open`; group writes in ``with store.transaction():``."""

    def __init__(self, conn: sqlite3.Connection, path: str, dialect: Dialect = SQLITE) -> None:
        self._conn = conn
        self.path = path
        self.dialect = dialect
        self._depth = 0
        self._checkpointer: checkpoint.Checkpointer | None = None      # set by open() (see bump.store.checkpoint)
        self._release: Callable[[], Any] = lambda: None                 # gives it back, once

    # -- opening, closing, transactions, migrations

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, migrate: bool = True,
             target_version: int | None = None, busy_timeout_s: float = 10.0) -> Store:
        """Open (and by default create and upgrade) the SQLite database at ``path`` (":memory:" for a throwaway)."""
        path = str(path)
        if path != ":memory:" and not create and not Path(path).exists():
            raise StoreError("no database here; create one with `bump ingest TRACES --db FILE`", source=path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False,
                                   cached_statements=STATEMENT_CACHE)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint.BACKSTOP_PAGES}")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "schema_migrations" not in tables:
                conn.close()
                raise StoreError(f"is an SQLite database of another program (tables: "
                                 f"{', '.join(sorted(tables)[:6])}); give bump a file of its own", source=path)
            store = cls(conn, path)
            store._ensure_migrations_table()
            if migrate:
                store.migrate(target_version)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the database ({exc}); is it a bump SQLite file?", source=path) from None
        found = store.schema_version
        if found > SCHEMA_VERSION:
            conn.close()
            raise StoreError(f"schema version {found} is newer than this bump ({SCHEMA_VERSION}); upgrade bump",
                             source=path)
        if path != ":memory:":
            store._checkpointer = checkpoint.acquire(path)
            store._release = weakref.finalize(store, checkpoint.release, store._checkpointer)   # also if never closed
        return store

    def close(self) -> None:
        self._release()
        self._checkpointer = None
        self._conn.close()

    @property
    def checkpointer(self) -> checkpoint.Checkpointer | None:
        """This file's background checkpointer (None for ":memory:"): its counts are diagnostics."""
        return self._checkpointer

    def wait_for_checkpoint(self, timeout_s: float = 10.0) -> bool:
        """Block until the background checkpoint after this process's last commit is done (benches, tests);
        False on timeout. Commits never need this: they are durable in the WAL."""
        return self._checkpointer.wait_idle(timeout_s) if self._checkpointer is not None else True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, *, journal_in_memory: bool = False) -> Iterator[Store]:
        """One atomic unit of writes (nested uses join the outer one). Rolled back on any exception.

        ``journal_in_memory``: keep the statement journals in memory (the pages a statement changes, kept until it
        ends so that a failing statement alone can be undone), not in a temporary file once past 64 KiB: a trip's
        ingestion spares ~900 writes of a page that way. For transactions whose statements change few pages
        each (not a reprocess, whose DELETEs change whole tables). Durability is the same: the statement journal
        serves only the open transaction; the WAL holds what is committed."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        if journal_in_memory:
            self._conn.execute("PRAGMA temp_store = MEMORY")   # read when the write transaction begins
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._conn.execute("COMMIT")
            if self._checkpointer is not None:
                self._checkpointer.notify()
        finally:
            if journal_in_memory:
                self._conn.execute("PRAGMA temp_store = DEFAULT")

    def _ex(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(self.dialect.sql(sql), params)

    def _exmany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(self.dialect.sql(sql), rows)

    def _insert(self, table: str, names: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "") -> None:
        """``INSERT INTO table (names) VALUES (..), (..) tail`` of ``rows`` in their order: whole batches of
        ``_ROWS_PER_INSERT`` rows a statement, the rest a row a statement."""
        one, k = f"({', '.join('?' * len(names))})", _ROWS_PER_INSERT
        head = f"INSERT INTO {table} ({', '.join(names)}) VALUES"
        n = len(rows) // k * k
        if n:
            self._exmany(f"{head} {', '.join([one] * k)} {tail}", [[v for r in rows[i:i + k] for v in r]
                                                                   for i in range(0, n, k)])
        if n < len(rows):
            self._exmany(f"{head} {one} {tail}", rows[n:])

    def _next_ids(self, table: str, column: str, n: int) -> np.ndarray:
        """``n`` fresh ids for rows inserted in the current transaction (its write lock keeps them unique;
        a PostgreSQL backend draws them from the table's sequence instead)."""
        if n and not self._depth:
            raise StoreError(f"inserting into {table} needs an open transaction (with store.transaction(): ...)")
        key = f"next_id.{table}"
        stored = self.get_meta(key)
        top = int(self._ex(f"SELECT COALESCE(MAX({column}), 0) FROM {table}").fetchone()[0]) + 1
        first = max(top, int(stored)) if stored is not None else top    # ids of deleted rows are never reused
        self.set_meta(key, str(first + n))
        return np.arange(first, first + n, dtype=np.int64)

    def _ensure_migrations_table(self) -> None:
        self._ex(f"CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 f"applied_at_s {self.dialect.real} NOT NULL)")

    @property
    def schema_version(self) -> int:
        row = self._ex("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def migrate(self, target_version: int | None = None) -> list[int]:
        """Apply the migrations above the current version (up to ``target_version``); returns those applied."""
        target = SCHEMA_VERSION if target_version is None else int(target_version)
        if target not in MIGRATIONS:
            raise StoreError(f"unknown schema version {target}; known: {sorted(MIGRATIONS)}")
        applied = []
        for version in sorted(v for v in MIGRATIONS if self.schema_version < v <= target):
            name, ddl = MIGRATIONS[version]
            with self.transaction():
                if self.schema_version >= version:     # another process applied it while this one waited for
                    continue                           # the write lock (two first ingests into a new file)
                for stmt in self.dialect.ddl(ddl).split(";"):
                    if stmt.strip():
                        self._ex(stmt)
                self._ex("INSERT INTO schema_migrations (version, name, applied_at_s) VALUES (?, ?, ?)",
                         (version, name, time.time()))
            applied.append(version)
        return applied

    def pragma(self, name: str) -> Any:
        """A connection setting (SQLite PRAGMA), for diagnostics and tests."""
        if not name.isidentifier():
            raise StoreError(f"invalid pragma name {name!r}")
        return self._ex(f"PRAGMA {name}").fetchone()[0]

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        tables = ["devices", "trips", "hits", "defects", "traversals", "defect_history"]
        if self.schema_version >= 2:
            tables += ["roughness", "coverage", "cells"]
        if self.schema_version >= 3:
            tables += ["tokens"]
        return {t: int(self._ex(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}

    # -- meta

    def get_meta(self, key: str) -> str | None:
        row = self._ex("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_metas(self, keys: Sequence[str]) -> dict[str, str]:
        """The stored values of ``keys`` (missing keys left out), in one query per 500 keys."""
        out: dict[str, str] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), 500):                    # loop over batches of keys
            part = keys[i:i + 500]
            rows = self._ex(f"SELECT key, value FROM meta WHERE key IN ({', '.join('?' * len(part))})", part)
            out.update((str(k), str(v)) for k, v in rows.fetchall())
        return out

    def set_meta(self, key: str, value: str) -> None:
        self._ex("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (key, value))

    # -- devices and trips

    def has_trip(self, trip_id: str) -> bool:
        return self._ex("SELECT 1 FROM trips WHERE trip_id = ?", (trip_id,)).fetchone() is not None

    def add_trip(self, info: Mapping[str, Any], raw: bytes, track: bytes, *, raw_sha256: str | None = None) -> None:
        """Insert a trip (keys of ``_TRIP_INFO`` but raw_sha256; detector/quality as dicts) with its raw trace
        and track blobs, upserting its device. ``raw_sha256``: the raw blob's digest when already computed (before
        the transaction). Raises :class:`StoreError` when the trip id exists."""
        dev, t0, t1 = info["device_id"], float(info["t_start_s"]), float(info["t_end_s"])
        self._ex("INSERT INTO devices (device_id, first_seen_s, last_seen_s, n_trips) VALUES (?, ?, ?, 1) "
                 "ON CONFLICT (device_id) DO UPDATE SET n_trips = devices.n_trips + 1, "
                 "first_seen_s = CASE WHEN excluded.first_seen_s < devices.first_seen_s "
                 "THEN excluded.first_seen_s ELSE devices.first_seen_s END, "
                 "last_seen_s = CASE WHEN excluded.last_seen_s > devices.last_seen_s "
                 "THEN excluded.last_seen_s ELSE devices.last_seen_s END", (dev, t0, t1))
        values = {**info, "detector": orjson.dumps(info["detector"]).decode(),
                  "quality": orjson.dumps(info["quality"]).decode(),
                  "raw_sha256": raw_sha256 or hashlib.sha256(raw).hexdigest()}
        names = [*_TRIP_INFO, "raw", "track"]
        row = [_py(values[n]) for n in _TRIP_INFO] + [raw, track]
        try:
            self._ex(f"INSERT INTO trips ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", row)
        except sqlite3.IntegrityError:
            raise StoreError(f"trip {info['trip_id']!r} is already stored; trips are ingested once",
                             field="trip_id") from None

    def update_trip_detection(self, trip_id: str, detector: Mapping[str, Any], n_impacts: int) -> None:
        self._ex("UPDATE trips SET detector = ?, n_impacts = ? WHERE trip_id = ?",
                 (orjson.dumps(detector).decode(), int(n_impacts), trip_id))

    def trips(self) -> list[dict[str, Any]]:
        """Every trip's info (no blobs), oldest first."""
        rows = self._ex(f"SELECT {', '.join(_TRIP_INFO)} FROM trips ORDER BY t_start_s, trip_id").fetchall()
        out = []
        for r in rows:
            d = dict(zip(_TRIP_INFO, r, strict=True))
            d["detector"], d["quality"] = orjson.loads(d["detector"]), orjson.loads(d["quality"])
            out.append(d)
        return out

    def get_trip(self, trip_id: str) -> dict[str, Any] | None:
        """One trip's info (no blobs), or None."""
        row = self._ex(f"SELECT {', '.join(_TRIP_INFO)} FROM trips WHERE trip_id = ?", (trip_id,)).fetchone()
        if row is None:
            return None
        d = dict(zip(_TRIP_INFO, row, strict=True))
        d["detector"], d["quality"] = orjson.loads(d["detector"]), orjson.loads(d["quality"])
        return d

    def trip_raw(self, trip_id: str) -> bytes:
        row = self._ex("SELECT raw FROM trips WHERE trip_id = ?", (trip_id,)).fetchone()
        if row is None:
            raise StoreError(f"no trip {trip_id!r} in the database", field="trip_id")
        return bytes(row[0])

    def trip_tracks(self, trip_ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
        """trip id -> (device id, track blob)."""
        out = {}
        for chunk in _chunks(trip_ids):
            q = f"SELECT trip_id, device_id, track FROM trips WHERE trip_id IN ({', '.join('?' * len(chunk))})"
            out.update({r[0]: (r[1], bytes(r[2])) for r in self._ex(q, chunk)})
        return out

    def n_devices(self) -> int:
        return int(self._ex("SELECT COUNT(*) FROM devices").fetchone()[0])

    # -- hits

    def add_hits(self, cols: Mapping[str, Any], features: Sequence[Mapping[str, Any]],
                 detector: Mapping[str, Any]) -> np.ndarray:
        """Insert hits (columns of :data:`HIT_COLUMNS` except hit_id; defect_id optional, < 0 for none; those of
        :data:`OPTIONAL_HIT_COLUMNS` optional, NULL when left out; ``spot_kind`` optional, the kind when left
        out); returns their new ids. Inserting hits with their defects costs less than setting them later
        (:meth:`set_hit_defects` moves each hit's entry in the wide index of defect summaries)."""
        optional = ("defect_id", *OPTIONAL_HIT_COLUMNS)
        if "spot_kind" not in cols:
            cols = {**cols, "spot_kind": cols["kind"]}
        names = [n for n in HIT_COLUMNS if n != "hit_id" and (n not in optional or n in cols)]
        if "defect_id" in cols:
            cols = {**cols, "defect_id": np.array([d if d >= 0 else None for d in np.asarray(
                cols["defect_id"], dtype=np.int64).tolist()], dtype=object)}
        rows = _rows(cols, names)
        det = orjson.dumps(detector).decode()
        feats = [orjson.dumps(f, option=orjson.OPT_SERIALIZE_NUMPY).decode() for f in features]
        ids = self._next_ids("hits", "hit_id", len(rows))
        sql = (f"INSERT INTO hits (hit_id, {', '.join(names)}, features, detector) "
               f"VALUES ({', '.join('?' * (len(names) + 3))})")
        self._exmany(sql, [(int(i), *row, f, det) for i, row, f in zip(ids, rows, feats, strict=True)])
        return ids

    def set_hit_defects(self, hit_ids: np.ndarray, defect_ids: np.ndarray) -> None:
        rows = [(_py(d) if d >= 0 else None, _py(h)) for h, d in zip(hit_ids, defect_ids, strict=True)]
        self._exmany("UPDATE hits SET defect_id = ? WHERE hit_id = ?", rows)

    def _hits_where(self, where: str = "", params: Sequence[Any] = (), columns: Sequence[str] | None = None
                    ) -> Columns:
        names = _known(columns, HIT_COLUMNS, "hit")
        sql = f"SELECT {', '.join(names)} FROM hits {where} ORDER BY hit_id"
        return _columns(self._ex(sql, params).fetchall(), names, HIT_COLUMNS)

    def hits_of_defects(self, defect_ids: Sequence[int], columns: Sequence[str] | None = None, *,
                        recent: int | None = None, kinds: Sequence[str] | None = None,
                        not_trip: str | None = None) -> Columns:
        """Hits of the defects, by hit id; only ``columns`` when given; with ``recent``, only each defect's
        ``recent`` latest hits (by time, then id). ``kinds``, ``not_trip``: of those, only the hits of these kinds,
        only those of other trips than this one (filtered in SQL: the rows left out are never converted)."""
        names = _known(columns, HIT_COLUMNS, "hit")
        where, extra = [], []
        if kinds is not None:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})" if kinds else "1 = 0")
            extra += [str(k) for k in kinds]
        if not_trip is not None:
            where.append("trip_id <> ?")
            extra.append(str(not_trip))
        if recent is None:
            parts = [self._hits_where(f"WHERE defect_id IN ({', '.join('?' * len(chunk))})"
                                      + "".join(f" AND {w}" for w in where), [*chunk, *extra], names)
                     for chunk in _chunks([int(d) for d in defect_ids])]
            return _concat(parts, {n: HIT_COLUMNS[n] for n in names})
        ids = sorted({int(d) for d in defect_ids})
        few = set(self._at_most_hits(ids, int(recent)))   # each defect's latest: all its hits where it has no more
        with_id = list(dict.fromkeys([*names, "hit_id"]))
        rows: list[tuple] = []
        for chunk in _chunks([d for d in ids if d in few]):
            chunk = _padded(chunk)
            rows += self._ex(f"SELECT {', '.join(with_id)} FROM hits WHERE defect_id IN ({', '.join('?' * len(chunk))})"
                             + "".join(f" AND {w}" for w in where), [*chunk, *extra]).fetchall()
        read = list(dict.fromkeys([*with_id, *(["kind"] if kinds is not None else []),
                                   *(["trip_id"] if not_trip is not None else [])]))
        term = (f"SELECT {', '.join(with_id)} FROM (SELECT {', '.join(read)} FROM hits WHERE defect_id = ? "
                "ORDER BY t_s DESC, hit_id DESC LIMIT ?)" + (f" WHERE {' AND '.join(where)}" if where else ""))
        for chunk in _chunks([d for d in ids if d not in few], _RANGES_CHUNK):   # one indexed range per defect
            n = 1 << (len(chunk) - 1).bit_length()           # 1, 2, 4 ... 32 ranges a statement: few to cache
            params = [v for d in chunk + [-1] * (n - len(chunk)) for v in (d, int(recent), *extra)]   # -1: none
            rows += self._ex(" UNION ALL ".join([term] * n), params).fetchall()
        cols = _columns(rows, with_id, HIT_COLUMNS)
        cols = cols.select(np.argsort(cols["hit_id"], kind="stable"))
        return Columns({n: cols[n] for n in names})

    def _at_most_hits(self, defect_ids: Sequence[int], n: int) -> list[int]:
        """Those of the defects with at most ``n`` hits (no (n + 1)-th: a busy defect costs no more)."""
        found: list[int] = []
        for chunk in _chunks(list(defect_ids)):
            chunk = _padded(chunk)
            found += [r[0] for r in self._ex(
                f"WITH k(d) AS (VALUES {', '.join('(?)' for _ in chunk)}) SELECT d FROM k WHERE NOT EXISTS "
                "(SELECT 1 FROM hits WHERE defect_id = k.d LIMIT 1 OFFSET ?)", [*chunk, n]) if r[0] >= 0]
        return found

    def hit_totals(self, defect_ids: Sequence[int]) -> Columns:
        """Per defect with hits (by id): ``n_hits``, ``n_devices`` (distinct), ``first_seen_s``, ``last_seen_s``."""
        return self._per_defect("COUNT(*), COUNT(DISTINCT device_id), MIN(t_s), MAX(t_s)", "hits", defect_ids,
                                {"n_hits": "i8", "n_devices": "i8", "first_seen_s": "f8", "last_seen_s": "f8"})

    def trip_hit_totals(self, trip_id: str, defect_ids: Sequence[int]) -> Columns:
        """:meth:`hit_totals` of one trip's hits of the defects (those it hit): ``n_hits``, ``first_seen_s``,
        ``last_seen_s``, by defect id (through the trip's index: as cheap for a busy defect as for a quiet one)."""
        return self._per_defect("COUNT(*), MIN(t_s), MAX(t_s)", "hits", defect_ids,
                                {"n_hits": "i8", "first_seen_s": "f8", "last_seen_s": "f8"},
                                where=("trip_id = ?", [trip_id]))

    def defects_hit_by(self, device_id: str, defect_ids: Sequence[int], *, exclude_trip: str | None = None
                       ) -> np.ndarray:
        """The defects (sorted ids) among ``defect_ids`` that ``device_id`` hit, in other trips than
        ``exclude_trip``."""
        out = []
        other = " AND trip_id <> ?" if exclude_trip is not None else ""
        for chunk in _id_chunks(sorted({int(d) for d in defect_ids})):
            sql = (f"WITH k(d) AS (VALUES {', '.join(['(?)'] * len(chunk))}) SELECT d FROM k WHERE EXISTS "
                   f"(SELECT 1 FROM hits WHERE defect_id = k.d AND device_id = ?{other})")   # hits_defect_device
            params = [*chunk, device_id, *([exclude_trip] if exclude_trip is not None else [])]
            out += [r[0] for r in self._ex(sql, params).fetchall()]
        return np.array(sorted(out), dtype=np.int64)

    def traversal_totals(self, defect_ids: Sequence[int]) -> Columns:
        """Per defect with passes (by id): ``n_traversals``, ``n_traversal_hits``, ``first_traversal_s``,
        ``last_traversal_s``."""
        return self._per_defect("COUNT(*), SUM(hit), MIN(t_s), MAX(t_s)", "traversals", defect_ids,
                                {"n_traversals": "i8", "n_traversal_hits": "i8", "first_traversal_s": "f8",
                                 "last_traversal_s": "f8"})

    def _per_defect(self, aggregates: str, table: str, defect_ids: Sequence[int], dtypes: Mapping[str, str], *,
                    where: tuple[str, Sequence[Any]] = ("1 = 1", ())) -> Columns:
        """``aggregates`` (SQL, one per name of ``dtypes``) of ``table``'s rows per defect, by defect id; only the
        rows ``where`` (SQL, parameters) selects."""
        dtypes = {"defect_id": "i8", **dtypes}
        parts = [_columns(self._ex(
            f"SELECT defect_id, {aggregates} FROM {table} WHERE {where[0]} AND defect_id IN "
            f"({', '.join('?' * len(chunk))}) GROUP BY defect_id ORDER BY defect_id", [*where[1], *chunk]).fetchall(),
            list(dtypes), dtypes)
            for chunk in _id_chunks(sorted({int(d) for d in defect_ids}))]
        return _concat(parts, dtypes)

    def hit_trips(self, defect_ids: Sequence[int]) -> Columns:
        """Per (defect, trip) with hits: ``t_s`` of its first hit and the ``device_id``."""
        dtypes = {"defect_id": "i8", "trip_id": "U", "t_s": "f8", "device_id": "U"}
        parts = [_columns(self._ex(
            f"SELECT defect_id, trip_id, MIN(t_s), MIN(device_id) FROM hits "
            f"WHERE defect_id IN ({', '.join('?' * len(chunk))}) GROUP BY defect_id, trip_id",
            chunk).fetchall(), list(dtypes), dtypes) for chunk in _id_chunks([int(d) for d in defect_ids])]
        return _concat(parts, dtypes)

    def hits_of_trip(self, trip_id: str) -> Columns:
        return self._hits_where("WHERE trip_id = ?", (trip_id,))

    def all_hits(self) -> Columns:
        return self._hits_where()

    # -- defects

    def insert_defects(self, cols: Mapping[str, Any], *, ids: np.ndarray | None = None) -> np.ndarray:
        """Insert new defects (columns of :data:`DEFECT_COLUMNS` except defect_id; those of
        :data:`OPTIONAL_DEFECT_COLUMNS` may be left out: NULL); returns their ids. ``ids``: ids to give them (a
        reprocess keeps those of the defects it rebuilt, deleted before), -1 for a fresh one."""
        names = [n for n in DEFECT_COLUMNS if n != "defect_id" and (n in cols or n not in OPTIONAL_DEFECT_COLUMNS)]
        rows = _rows(cols, names)
        if ids is None:
            ids = self._next_ids("defects", "defect_id", len(rows))
        else:
            ids = np.asarray(ids, dtype=np.int64).copy()
            fresh = ids < 0
            ids[fresh] = self._next_ids("defects", "defect_id", int(np.count_nonzero(fresh)))
        sql = f"INSERT INTO defects (defect_id, {', '.join(names)}) VALUES ({', '.join('?' * (len(names) + 1))})"
        self._exmany(sql, [(int(i), *row) for i, row in zip(ids, rows, strict=True)])
        return ids

    def update_defects(self, cols: Mapping[str, Any], *, old: Mapping[str, Any] | None = None) -> None:
        """Update the given columns of existing defects (``defect_id`` names the rows). ``old``: the stored values
        of indexed columns (priority, grid_key, lat_deg), row by row, when the caller has them (else read here)."""
        names = [n for n in cols if n != "defect_id"]
        unknown = set(names) - set(DEFECT_COLUMNS)
        if unknown:
            raise StoreError(f"unknown defect columns {sorted(unknown)}")
        rows = _rows(cols, [*names, "defect_id"])
        for changed, group in self._by_changed_index_columns(names, rows, old).items():
            keep = [i for i, n in enumerate(names) if n not in INDEXED_DEFECT_COLUMNS or n in changed]
            if not keep:                    # only indexed columns, none of them changing: nothing to write
                continue
            sql = f"UPDATE defects SET {', '.join(f'{names[i]} = ?' for i in keep)} WHERE defect_id = ?"
            pick = operator.itemgetter(*keep, len(names))
            self._exmany(sql, group if len(keep) == len(names) else [pick(r) for r in group])

    def _by_changed_index_columns(self, names: list[str], rows: list[tuple], old: Mapping[str, Any] | None = None
                                  ) -> dict[frozenset[str], list[tuple]]:
        """``rows`` (values of ``names``, then the defect id) grouped by which of the indexed columns among
        ``names`` change value: SQLite rewrites an index entry whenever its column is SET, even to the value it
        holds (a random page of the index written for nothing), so an unchanged one is left out of the SET."""
        indexed = [n for n in names if n in INDEXED_DEFECT_COLUMNS]
        ids = [r[-1] for r in rows]
        if not indexed or len(set(ids)) < len(ids):        # a repeated id: updates keep their order, all columns
            return {frozenset(indexed): rows} if rows else {}
        stored: dict[int, tuple] = {}
        if old is not None and all(n in old for n in indexed):
            stored = dict(zip(ids, zip(*[_values(old[n]) for n in indexed], strict=True), strict=True))
        for chunk in _id_chunks(ids if not stored else []):
            marks = ", ".join("?" * len(chunk))
            stored.update((r[0], r[1:]) for r in self._ex(
                f"SELECT defect_id, {', '.join(indexed)} FROM defects WHERE defect_id IN ({marks})", chunk))
        at = list(enumerate(names.index(n) for n in indexed))
        groups: dict[tuple[bool, ...], list[tuple]] = {}
        for r in rows:
            before = stored.get(r[-1])
            changed = tuple(before is None or r[i] != before[k] for k, i in at)
            groups.setdefault(changed, []).append(r)
        return {frozenset(n for n, c in zip(indexed, changed, strict=True) if c): group
                for changed, group in groups.items()}

    def delete_defects(self, defect_ids: Sequence[int]) -> None:
        for chunk in _chunks([int(d) for d in defect_ids]):
            self._ex(f"DELETE FROM defects WHERE defect_id IN ({', '.join('?' * len(chunk))})", chunk)

    def _defects_where(self, where: str = "", params: Sequence[Any] = (), tail: str = "",
                       columns: Sequence[str] | None = None) -> Columns:
        names = _known(columns, DEFECT_COLUMNS, "defect")
        sql = f"SELECT {', '.join(names)} FROM defects {where} {tail}"
        return _columns(self._ex(sql, params).fetchall(), names, DEFECT_COLUMNS)

    def defects_by_id(self, defect_ids: Sequence[int], columns: Sequence[str] | None = None) -> Columns:
        """Defects by id, ordered by id; only ``columns`` (which must include defect_id) when given."""
        names = _known(columns, DEFECT_COLUMNS, "defect")
        parts = [self._defects_where(f"WHERE defect_id IN ({', '.join('?' * len(c))})", c, columns=names)
                 for c in _id_chunks([int(d) for d in defect_ids])]
        cols = _concat(parts, {n: DEFECT_COLUMNS[n] for n in names})
        ids = cols["defect_id"]
        if ids.size > 1 and not (ids[1:] > ids[:-1]).all():   # a list of sorted ids (most) comes back sorted
            cols = cols.select(np.argsort(ids, kind="stable"))
        return cols

    def defects_in_grid(self, grid_keys: Sequence[int], columns: Sequence[str] | None = None) -> Columns:
        """Defects whose grid key is one of ``grid_keys`` (an indexed look-up; see bump.cells.grid_keys); only
        ``columns`` when given (a narrow read is ~2x faster than all of them)."""
        names = _known(columns, DEFECT_COLUMNS, "defect")
        parts = [self._defects_where(f"WHERE grid_key IN ({', '.join('?' * len(c))})", c, columns=names)
                 for c in _id_chunks(sorted({int(k) for k in grid_keys}))]
        return _concat(parts, {n: DEFECT_COLUMNS[n] for n in names})

    def all_defects(self) -> Columns:
        return self._defects_where(tail="ORDER BY defect_id")

    def get_defect(self, defect_id: int) -> dict[str, Any]:
        cols = self._defects_where("WHERE defect_id = ?", (int(defect_id),))
        if len(cols) == 0:
            raise UnknownDefectError(f"no defect with id {defect_id}; list them with `bump defects --db FILE`",
                                     field="id")
        return {k: _scalar(v[0]) for k, v in cols.data.items()}

    def list_defects(self, query: DefectQuery) -> tuple[Columns, str | None]:
        """One page of defects ranked by priority, and the cursor of the next page (None at the end)."""
        if not 1 <= query.limit <= MAX_LIST_LIMIT:
            raise StoreError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {query.limit}", field="limit")
        where, params = [], []
        if query.statuses is not None:
            where.append(f"status IN ({', '.join('?' * len(query.statuses))})" if query.statuses else "1 = 0")
            params += list(query.statuses)
        if query.kinds is not None:
            where.append(f"kind IN ({', '.join('?' * len(query.kinds))})" if query.kinds else "1 = 0")
            params += list(query.kinds)
        if query.bbox is not None:
            w, s, e, n = (float(v) for v in query.bbox)
            where.append("lat_deg BETWEEN ? AND ?")
            params += [s, n]
            if w <= e:
                where.append("lon_deg BETWEEN ? AND ?")
                params += [w, e]
            else:
                where.append("(lon_deg >= ? OR lon_deg <= ?)")
                params += [w, e]
        if query.hidden_cover_classes:
            marks = ", ".join("?" * len(query.hidden_cover_classes))
            where.append(f"NOT (kind = ? AND COALESCE(depth_class, '') IN ({marks})"
                         " AND COALESCE(crew_status, '') <> ?)")
            params += ["cover", *query.hidden_cover_classes, "confirmed"]
        if query.min_confidence is not None:          # as reported: a defect shown at 0.994 passes ">= 0.994"
            where.append("confidence >= ?")
            params.append(float(query.min_confidence) - 0.5 * 10.0**-CONFIDENCE_DECIMALS)
        if query.since_s is not None:
            where.append("(last_seen_s >= ? OR status_since_s >= ?)")
            params += [float(query.since_s), float(query.since_s)]
        if query.cursor:
            prio, did = decode_cursor(query.cursor)
            where.append("(priority < ? OR (priority = ? AND defect_id > ?))")
            params += [prio, prio, did]
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        cols = self._defects_where(clause, params, f"ORDER BY priority DESC, defect_id ASC LIMIT {query.limit + 1}")
        more = len(cols) > query.limit
        cols = cols.select(slice(0, query.limit))
        nxt = encode_cursor(float(cols["priority"][-1]), int(cols["defect_id"][-1])) if more else None
        return cols, nxt

    def count_defects(self) -> dict[tuple[str, str], int]:
        """(status, kind) -> number of defects."""
        rows = self._ex("SELECT status, kind, COUNT(*) FROM defects GROUP BY status, kind").fetchall()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    # -- traversals

    def upsert_traversals(self, cols: Mapping[str, Any]) -> None:
        """Insert traversals (passes); an existing (defect, trip, pass) keeps its time and takes the new ``hit``
        flag."""
        names = list(TRAVERSAL_COLUMNS)
        self._insert("traversals", names, _rows(cols, names),
                     "ON CONFLICT (defect_id, trip_id, pass_no) DO UPDATE SET hit = excluded.hit")

    def traversals_of_defects(self, defect_ids: Sequence[int]) -> Columns:
        names = list(TRAVERSAL_COLUMNS)
        parts = []
        for chunk in _id_chunks([int(d) for d in defect_ids]):
            sql = (f"SELECT {', '.join(names)} FROM traversals WHERE defect_id IN ({', '.join('?' * len(chunk))}) "
                   "ORDER BY defect_id, t_s, trip_id")
            parts.append(_columns(self._ex(sql, chunk).fetchall(), names, TRAVERSAL_COLUMNS))
        return _concat(parts, TRAVERSAL_COLUMNS)

    def traversals_of_trip(self, trip_id: str) -> Columns:
        names = list(TRAVERSAL_COLUMNS)
        sql = f"SELECT {', '.join(names)} FROM traversals WHERE trip_id = ? ORDER BY t_s, defect_id"
        return _columns(self._ex(sql, (trip_id,)).fetchall(), names, TRAVERSAL_COLUMNS)

    def move_defects_rows(self, into: Mapping[int, int]) -> None:
        """:meth:`move_defect_rows` of many defects at once (``into``: from id -> to id, no id on both sides), each
        target taking its sources' rows in the order of their ids, as one by one in that order."""
        moves = sorted((int(a), int(b)) for a, b in into.items())
        for chunk in _chunks(moves, 200):
            case = "CASE defect_id " + " ".join("WHEN ? THEN ?" for _ in chunk) + " END"
            to = [v for m in chunk for v in m]
            ids = [m[0] for m in chunk]
            marks = ", ".join("?" * len(ids))
            self._ex(f"UPDATE hits SET defect_id = {case} WHERE defect_id IN ({marks})", [*to, *ids])
            self._ex("INSERT INTO traversals (defect_id, trip_id, pass_no, device_id, t_s, hit, distance_m) "
                     f"SELECT {case}, trip_id, pass_no, device_id, t_s, hit, distance_m FROM traversals "
                     f"WHERE defect_id IN ({marks}) ORDER BY defect_id, trip_id, pass_no "
                     "ON CONFLICT (defect_id, trip_id, pass_no) DO UPDATE SET hit = CASE WHEN excluded.hit > "
                     "traversals.hit THEN excluded.hit ELSE traversals.hit END", [*to, *ids])
            self._ex(f"DELETE FROM traversals WHERE defect_id IN ({marks})", ids)

    def move_defect_rows(self, from_id: int, to_id: int) -> None:
        """Re-point hits and traversals of defect ``from_id`` to ``to_id`` (a merge); the caller deletes from_id. A
        trip that passed both keeps ``to_id``'s passes, each a hit if either's pass of that number was (nearby
        defects are passed as often, in the same order)."""
        self.move_defects_rows({from_id: to_id})

    # -- history

    def add_history(self, rows: Sequence[Mapping[str, Any]]) -> None:
        names = HISTORY_COLUMNS[1:]
        self._exmany(f"INSERT INTO defect_history ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                     [tuple(_py(r.get(n)) for n in names) for r in rows])

    def history(self, defect_id: int) -> list[dict[str, Any]]:
        """A defect's history in time order (data time, then as recorded)."""
        rows = self._ex(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM defect_history WHERE defect_id = ? "
                        "ORDER BY t_s, history_id", (int(defect_id),)).fetchall()
        return [dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in rows]

    def replace_automatic_history(self, defect_id: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace a defect's automatic status changes (actor ``system``, from one status to another; merges and
        crews' rows stay) by ``rows``."""
        self._ex("DELETE FROM defect_history WHERE defect_id = ? AND actor = 'system' "
                 "AND (from_status IS NULL OR from_status <> to_status)", (int(defect_id),))
        self.add_history(rows)

    def all_history(self) -> list[dict[str, Any]]:
        rows = self._ex(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM defect_history ORDER BY history_id").fetchall()
        return [dict(zip(HISTORY_COLUMNS, r, strict=True)) for r in rows]

    # -- roughness, coverage, cells

    def add_roughness(self, cols: Mapping[str, Any]) -> None:
        names = list(ROUGHNESS_COLUMNS)
        self._insert("roughness", names, _rows(cols, names))

    def add_coverage(self, cols: Mapping[str, Any]) -> None:
        names = list(COVERAGE_COLUMNS)
        self._insert("coverage", names, _rows(cols, names), "ON CONFLICT DO NOTHING")   # key (cell, trip): (cell,
        #                                                                                 device, trip) in 7

    def add_trip_cells(self, rough: Mapping[str, Any], cover: Mapping[str, Any], centres: Columns) -> None:
        """Store the roughness windows and road-cell passes of ONE new trip (one device; cover: one row per
        cell) and add them to the aggregates of their cells: the work grows with the trip's cells, not with
        the cells' history (:meth:`refresh_cells` recomputes from every row, as after a reprocess).
        ``centres``: lat_deg, lon_deg, heading_deg by cell_key of every cell they touch (for new cells)."""
        rk, ck = np.asarray(rough["cell_key"], np.int64), np.asarray(cover["cell_key"], np.int64)
        keys = np.unique(np.concatenate([rk, ck]))
        if keys.size == 0:
            return
        device = str(np.concatenate([np.asarray(rough["device_id"]), np.asarray(cover["device_id"])])[0])
        seen = self._cells_with_device(device, keys)
        self.add_roughness(rough)
        self.add_coverage(cover)
        r, c = np.searchsorted(keys, rk), np.searchsorted(keys, ck)
        iri = np.asarray(rough["iri_m_per_km"], np.float64)
        n_read, n_pass = np.bincount(r, minlength=keys.size), np.bincount(c, minlength=keys.size)
        t_first = np.full(keys.size, np.nan)
        t_first[c] = np.asarray(cover["t_s"], np.float64)
        where = np.searchsorted(centres["cell_key"], keys)
        cols = {"cell_key": keys, "lat_deg": centres["lat_deg"][where], "lon_deg": centres["lon_deg"][where],
                "heading_deg": centres["heading_deg"][where], "n_readings": n_read,
                "iri_sum": np.bincount(r, iri, minlength=keys.size),
                "iri_sumsq": np.bincount(r, iri * iri, minlength=keys.size),
                "n_rough_devices": ((n_read > 0) & ~ids_in(keys, seen["roughness"])).astype(np.int64),
                "n_traversals": n_pass, "n_devices": ((n_pass > 0) & ~ids_in(keys, seen["coverage"])).astype(np.int64),
                "first_s": t_first, "last_s": t_first}
        names = list(CELL_COLUMNS)
        added = ", ".join(f"{n} = cells.{n} + excluded.{n}" for n in _CELL_COUNTS)
        self._insert("cells", names, _rows(cols, names),
                     f"ON CONFLICT (cell_key) DO UPDATE SET {added}, "
                     "first_s = CASE WHEN cells.first_s IS NULL OR excluded.first_s < cells.first_s "
                     "THEN excluded.first_s ELSE cells.first_s END, "
                     "last_s = CASE WHEN cells.last_s IS NULL OR excluded.last_s > cells.last_s "
                     "THEN excluded.last_s ELSE cells.last_s END")

    def _cells_with_device(self, device_id: str, cell_keys: np.ndarray) -> dict[str, list[int]]:
        """Which of the cells already hold roughness rows, and which coverage rows, from the device (by table):
        one indexed probe per cell and table, however many of its rows the device has (not a scan of them); both
        tables in one statement."""
        found: dict[str, list[int]] = {"roughness": [], "coverage": []}
        for chunk in _id_chunks(cell_keys.tolist()):
            for key, rough, cover in self._ex(
                    f"WITH k(cell_key) AS (VALUES {', '.join('(?)' for _ in chunk)}) SELECT cell_key, "
                    "EXISTS (SELECT 1 FROM roughness t WHERE t.cell_key = k.cell_key AND t.device_id = ?), "
                    "EXISTS (SELECT 1 FROM coverage t WHERE t.cell_key = k.cell_key AND t.device_id = ?) FROM k",
                    [*chunk, device_id, device_id]):
                if rough:
                    found["roughness"].append(key)
                if cover:
                    found["coverage"].append(key)
        return found

    def trips_covering(self, cell_keys: Sequence[int], *, exclude_trip: str | None = None,
                       since_s: float | None = None) -> list[str]:
        """Trips that passed any of the cells (at or after ``since_s`` when given)."""
        found: set[str] = set()
        since = -math.inf if since_s is None or not math.isfinite(since_s) else float(since_s)
        for chunk in _id_chunks(sorted({int(k) for k in cell_keys})):
            sql = (f"SELECT DISTINCT trip_id FROM coverage WHERE cell_key IN ({', '.join('?' * len(chunk))}) "
                   "AND t_s >= ?")
            found.update(r[0] for r in self._ex(sql, [*chunk, since if math.isfinite(since) else -1e300]))
        found.discard(exclude_trip)  # type: ignore[arg-type]
        return sorted(found)

    def refresh_cells(self, cell_keys: Sequence[int] | None, centres: Columns) -> None:
        """Recompute the aggregates of the cells (all when ``cell_keys`` is None) from roughness and coverage.

        ``centres`` gives each cell's lat_deg, lon_deg, heading_deg by cell_key (cells.py computes them)."""
        if cell_keys is None:
            self._ex("DELETE FROM cells")
            keys = [int(k) for k in centres["cell_key"]]
        else:
            keys = sorted({int(k) for k in cell_keys})
            for chunk in _chunks(keys):
                self._ex(f"DELETE FROM cells WHERE cell_key IN ({', '.join('?' * len(chunk))})", chunk)
        where = {int(k): i for i, k in enumerate(centres["cell_key"])}
        for chunk in _chunks(keys):
            marks = ", ".join("?" * len(chunk))
            rough = {r[0]: r[1:] for r in self._ex(
                "SELECT cell_key, COUNT(*), SUM(iri_m_per_km), SUM(iri_m_per_km * iri_m_per_km), "
                f"COUNT(DISTINCT device_id) FROM roughness WHERE cell_key IN ({marks}) GROUP BY cell_key", chunk)}
            cover = {r[0]: r[1:] for r in self._ex(
                "SELECT cell_key, COUNT(*), COUNT(DISTINCT device_id), MIN(t_s), MAX(t_s) FROM coverage "
                f"WHERE cell_key IN ({marks}) GROUP BY cell_key", chunk)}
            rows = []
            for k in chunk:
                if k not in rough and k not in cover:
                    continue
                n, s, ss, nd = rough.get(k, (0, 0.0, 0.0, 0))
                nt, ndev, t0, t1 = cover.get(k, (0, 0, None, None))
                i = where[k]
                rows.append((k, float(centres["lat_deg"][i]), float(centres["lon_deg"][i]),
                             float(centres["heading_deg"][i]), n, s, ss, nd, nt, ndev, t0, t1))
            names = list(CELL_COLUMNS)
            self._exmany(f"INSERT INTO cells ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)

    def roughness_cell_keys(self) -> np.ndarray:
        rows = self._ex("SELECT DISTINCT cell_key FROM roughness UNION SELECT DISTINCT cell_key FROM coverage")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def list_cells(self, *, bbox: tuple[float, float, float, float] | None = None, min_readings: int = 0
                   ) -> Columns:
        names = list(CELL_COLUMNS)
        where, params = ["n_readings >= ?"], [int(min_readings)]
        if bbox is not None:
            w, s, e, n = (float(v) for v in bbox)
            where.append("lat_deg BETWEEN ? AND ? AND lon_deg BETWEEN ? AND ?")
            params += [s, n, w, e]
        sql = f"SELECT {', '.join(names)} FROM cells WHERE {' AND '.join(where)} ORDER BY cell_key"
        return _columns(self._ex(sql, params).fetchall(), names, CELL_COLUMNS)

    def coverage_between(self, since_s: float | None = None, until_s: float | None = None) -> Columns:
        """Per cell: passes, distinct devices, first and last pass within [since_s, until_s)."""
        clause, params = _time_window(since_s, until_s)
        names = ["cell_key", "n_traversals", "n_devices", "first_s", "last_s"]
        rows = self._ex("SELECT cell_key, COUNT(*), COUNT(DISTINCT device_id), MIN(t_s), MAX(t_s) FROM coverage "
                        f"{clause} GROUP BY cell_key ORDER BY cell_key", params).fetchall()
        return _columns(rows, names, {"cell_key": "i8", "n_traversals": "i8", "n_devices": "i8", "first_s": "f8",
                                      "last_s": "f8"})

    def roughness_windows(self, *, bbox: tuple[float, float, float, float] | None = None) -> Columns:
        """Every stored roughness window (in ``bbox`` when given: W, S, E, N [deg]), ordered by cell."""
        names = list(ROUGHNESS_COLUMNS)
        where, params = "", []
        if bbox is not None:
            w, s, e, n = (float(v) for v in bbox)
            where, params = "WHERE lat_deg BETWEEN ? AND ? AND lon_deg BETWEEN ? AND ?", [s, n, w, e]
        sql = f"SELECT {', '.join(names)} FROM roughness {where} ORDER BY cell_key"
        return _columns(self._ex(sql, params).fetchall(), names, ROUGHNESS_COLUMNS)

    def coverage_rows(self, since_s: float | None = None, until_s: float | None = None) -> Columns:
        """Every (cell, trip) pass with its device and time, within [since_s, until_s) when given."""
        clause, params = _time_window(since_s, until_s)
        names = list(COVERAGE_COLUMNS)
        sql = f"SELECT {', '.join(names)} FROM coverage {clause} ORDER BY cell_key, trip_id"
        return _columns(self._ex(sql, params).fetchall(), names, COVERAGE_COLUMNS)

    # -- API tokens (the secret itself is never stored: only its sha256 and a short prefix naming it)

    def add_token(self, *, prefix: str, token_sha256: str, role: str, device_id: str | None, label: str | None,
                  created_at_s: float) -> int:
        """Store a token's hash; returns its id."""
        with self.transaction():
            token_id = int(self._next_ids("tokens", "token_id", 1)[0])
            self._ex("INSERT INTO tokens (token_id, prefix, token_sha256, role, device_id, label, created_at_s) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", (token_id, prefix, token_sha256, role, device_id, label,
                                                      float(created_at_s)))
        return token_id

    def tokens_with_prefix(self, prefix: str) -> list[dict[str, Any]]:
        """Tokens (revoked ones too) whose prefix is ``prefix``."""
        rows = self._ex(f"SELECT {', '.join(TOKEN_COLUMNS)} FROM tokens WHERE prefix = ? ORDER BY token_id",
                        (prefix,)).fetchall()
        return [dict(zip(TOKEN_COLUMNS, r, strict=True)) for r in rows]

    def list_tokens(self) -> list[dict[str, Any]]:
        rows = self._ex(f"SELECT {', '.join(TOKEN_COLUMNS)} FROM tokens ORDER BY token_id").fetchall()
        return [dict(zip(TOKEN_COLUMNS, r, strict=True)) for r in rows]

    def revoke_tokens(self, token_ids: Sequence[int], revoked_at_s: float) -> None:
        with self.transaction():
            self._exmany("UPDATE tokens SET revoked_at_s = ? WHERE token_id = ? AND revoked_at_s IS NULL",
                         [(float(revoked_at_s), int(i)) for i in token_ids])

    # -- reprocessing

    def clear_derived(self) -> None:
        """Delete everything computed from the raw traces (hits, defects, traversals, history, maps)."""
        for table in DERIVED_TABLES:
            self._ex(f"DELETE FROM {table}")
