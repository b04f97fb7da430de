"""WAL checkpoints in a background thread, so that no commit waits for one.

In WAL mode a commit appends the changed pages to the ``-wal`` file (and syncs it: that is what makes the commit
durable); a checkpoint later copies them into the database file. SQLite's automatic checkpoint runs inside the
commit that crosses ``wal_autocheckpoint`` pages, on the committing thread: one trip in about ten waited for the
copy of ten trips' pages (a 10-minute trip writes ~1,000 pages; a one-off script saw ~140 ms). Here a
:class:`Checkpointer` thread per database file and process, with its own connection, runs a PASSIVE checkpoint
(it never waits for, nor blocks, readers and writers) after commits; the writers' automatic checkpoint stays on
at a larger size (:data:`BACKSTOP_PAGES`) only as a backstop, should this thread fall behind.

Durability is unchanged: a commit is durable once the WAL is synced, before the checkpoint; a checkpoint
interrupted by a crash is redone from the WAL at the next open.

A checkpoint after every commit copies no more pages than one every ten: a trip's pages (its raw trace, the rows
of the defects it passed, spread over a large database) are rarely written again by the next trips. It lets the
next writer start the WAL from its beginning again, so the ``-wal`` file stays about one trip long.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

BACKSTOP_PAGES = 40_000      # the writers' own automatic checkpoint, should the thread fall behind (~160 MiB)


class Checkpointer:
    """A daemon thread that checkpoints one database file's WAL when :meth:`notify` says a commit happened.
    Get it with :func:`acquire` (one per file and process, shared by its connections), give it back with
    :func:`release`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.checkpoints = 0          # completed PASSIVE checkpoints (diagnostics, tests)
        self.last = (0, 0)            # the last one's (frames in the WAL, of which now in the database file)
        self._users = 0
        self._changed = threading.Condition()   # guards the two below; notified when either changes
        self._pending = 0             # commits not yet followed by a checkpoint
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"bump-checkpoint {Path(path).name}", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """A transaction was committed to this file: checkpoint soon (calls coalesce)."""
        with self._changed:
            self._pending += 1
            self._changed.notify_all()

    def wait_idle(self, timeout_s: float = 10.0) -> bool:
        """Block until every commit notified so far has been followed by a checkpoint (tests, benches)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0 or self._stopping, timeout_s)

    def _stop(self) -> None:
        self._set_stopping()
        self._thread.join()

    def _set_stopping(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None       # opened at the first commit: a reader never needs it
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._pending > 0 or self._stopping)
                    if self._stopping:
                        break
                    served = self._pending
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                        conn.execute("PRAGMA synchronous = FULL")   # sync the WAL before a copy, the file after
                    busy, in_wal, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:                 # e.g. the disk is full: the backstop is still there
                    log.warning("background checkpoint of %s failed: %s", self.path, exc)
                else:                                        # busy: another process's checkpoint runs
                    if not busy:
                        self.checkpoints += 1
                        self.last = (int(in_wal), int(copied))
                with self._changed:
                    self._pending -= served
                    self._changed.notify_all()
        finally:
            if conn is not None:
                conn.close()
            self._set_stopping()                             # wait_idle returns, should the thread end early


_REGISTRY: dict[str, Checkpointer] = {}
_REGISTRY_LOCK = threading.Lock()


def acquire(path: str) -> Checkpointer:
    """The checkpointer of the database file at ``path`` (started on first use in this process)."""
    key = str(Path(path).resolve())
    with _REGISTRY_LOCK:
        cp = _REGISTRY.get(key)
        if cp is None or not cp._thread.is_alive():
            cp = _REGISTRY[key] = Checkpointer(key)
        cp._users += 1
        return cp


def release(cp: Checkpointer) -> None:
    """Give back a checkpointer from :func:`acquire`; the last user stops its thread (after its current copy)."""
    with _REGISTRY_LOCK:
        cp._users -= 1
        if cp._users > 0:
            return
        if _REGISTRY.get(cp.path) is cp:
            del _REGISTRY[cp.path]
    cp._stop()
