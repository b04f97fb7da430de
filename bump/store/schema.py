"""The SQL dialect and the versioned schema: every migration's DDL, applied in order by
:meth:`bump.store.Store.migrate`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """What differs between SQL engines. Only SQLite is implemented; PostgreSQL would use
    ``BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY``, ``BYTEA``, ``JSONB``, ``DOUBLE PRECISION`` and ``%s``."""

    name: str
    id_pk: str          # auto-increment integer primary key
    blob: str
    json: str
    real: str
    placeholder: str
    clustered: str = ""     # after a CREATE TABLE's ")": rows stored in primary-key order, no separate key index

    def sql(self, text: str) -> str:
        """Statement text in this dialect (placeholders written ``?``)."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def ddl(self, text: str) -> str:
        return text.format(id_pk=self.id_pk, blob=self.blob, json=self.json, real=self.real,
                           clustered=self.clustered)


SQLITE = Dialect(name="sqlite", id_pk="INTEGER PRIMARY KEY", blob="BLOB", json="TEXT", real="REAL",
                 placeholder="?", clustered=" WITHOUT ROWID")

# ---------------------------------------------------------------------------------------------------- migrations

_M1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    first_seen_s {real} NOT NULL,
    last_seen_s {real} NOT NULL,
    n_trips INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE trips (
    trip_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    t_start_s {real} NOT NULL,
    t_end_s {real} NOT NULL,
    ingested_at_s {real} NOT NULL,
    source_format TEXT NOT NULL,
    n_samples INTEGER NOT NULL,
    n_impacts INTEGER NOT NULL,
    length_m {real},
    detector {json} NOT NULL,
    quality {json} NOT NULL,
    raw {blob} NOT NULL,
    raw_sha256 TEXT NOT NULL,
    track {blob} NOT NULL
);
CREATE INDEX trips_t_start ON trips (t_start_s);
CREATE INDEX trips_device ON trips (device_id);
CREATE TABLE defects (
    defect_id {id_pk},
    status TEXT NOT NULL,
    crew_status TEXT,
    crew_at_s {real},
    kind TEXT NOT NULL,
    kind_reason TEXT NOT NULL,
    lat_deg {real} NOT NULL,
    lon_deg {real} NOT NULL,
    x_m {real} NOT NULL,
    y_m {real} NOT NULL,
    grid_key BIGINT NOT NULL,
    heading_deg {real},
    spans INTEGER NOT NULL,
    uncertainty_m {real} NOT NULL,
    severity {real},
    depth_class TEXT,
    confidence {real} NOT NULL,
    priority {real} NOT NULL,
    n_hits INTEGER NOT NULL,
    n_devices INTEGER NOT NULL,
    n_traversals INTEGER NOT NULL,
    n_traversal_hits INTEGER NOT NULL,
    hit_rate {real},
    traversals_per_day {real} NOT NULL,
    first_seen_s {real} NOT NULL,
    last_seen_s {real} NOT NULL,
    last_traversal_s {real},
    status_since_s {real} NOT NULL,
    created_at_s {real} NOT NULL,
    updated_at_s {real} NOT NULL,
    detector {json} NOT NULL
);
CREATE INDEX defects_grid ON defects (grid_key);
CREATE INDEX defects_rank ON defects (priority DESC, defect_id);
CREATE INDEX defects_lat ON defects (lat_deg);
CREATE TABLE hits (
    hit_id {id_pk},
    trip_id TEXT NOT NULL REFERENCES trips(trip_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    defect_id BIGINT REFERENCES defects(defect_id) ON DELETE SET NULL,
    t_s {real} NOT NULL,
    lat_deg {real} NOT NULL,
    lon_deg {real} NOT NULL,
    x_m {real} NOT NULL,
    y_m {real} NOT NULL,
    accuracy_m {real},
    heading_deg {real},
    kind TEXT NOT NULL,
    severity {real},
    depth_class TEXT,
    confidence {real} NOT NULL,
    speed_mps {real},
    features {json} NOT NULL,
    detector {json} NOT NULL
);
CREATE INDEX hits_defect ON hits (defect_id);
CREATE INDEX hits_trip ON hits (trip_id);
CREATE TABLE traversals (
    defect_id BIGINT NOT NULL REFERENCES defects(defect_id) ON DELETE CASCADE,
    trip_id TEXT NOT NULL REFERENCES trips(trip_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    t_s {real} NOT NULL,
    hit INTEGER NOT NULL,
    distance_m {real},
    PRIMARY KEY (defect_id, trip_id)
);
CREATE INDEX traversals_trip ON traversals (trip_id);
CREATE TABLE defect_history (
    history_id {id_pk},
    defect_id BIGINT NOT NULL REFERENCES defects(defect_id) ON DELETE CASCADE,
    t_s {real} NOT NULL,
    recorded_at_s {real} NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX history_defect ON defect_history (defect_id, history_id);
"""

_M2 = """
CREATE TABLE roughness (
    trip_id TEXT NOT NULL REFERENCES trips(trip_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    t_start_s {real} NOT NULL,
    t_end_s {real} NOT NULL,
    lat_deg {real} NOT NULL,
    lon_deg {real} NOT NULL,
    heading_deg {real},
    length_m {real},
    speed_mps {real},
    rms_mps2 {real},
    iri_m_per_km {real} NOT NULL,
    cell_key BIGINT NOT NULL
);
CREATE INDEX roughness_cell ON roughness (cell_key);
CREATE INDEX roughness_trip ON roughness (trip_id);
CREATE TABLE coverage (
    cell_key BIGINT NOT NULL,
    trip_id TEXT NOT NULL REFERENCES trips(trip_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    t_s {real} NOT NULL,
    PRIMARY KEY (cell_key, trip_id)
);
CREATE INDEX coverage_trip ON coverage (trip_id);
CREATE INDEX coverage_t ON coverage (t_s);
CREATE TABLE cells (
    cell_key BIGINT PRIMARY KEY,
    lat_deg {real} NOT NULL,
    lon_deg {real} NOT NULL,
    heading_deg {real} NOT NULL,
    n_readings INTEGER NOT NULL,
    iri_sum {real} NOT NULL,
    iri_sumsq {real} NOT NULL,
    n_rough_devices INTEGER NOT NULL,
    n_traversals INTEGER NOT NULL,
    n_devices INTEGER NOT NULL,
    first_s {real},
    last_s {real}
);
CREATE INDEX cells_lat ON cells (lat_deg);
"""

_M3 = """
CREATE TABLE tokens (
    token_id {id_pk},
    prefix TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    device_id TEXT,
    label TEXT,
    created_at_s {real} NOT NULL,
    revoked_at_s {real}
);
CREATE INDEX tokens_prefix ON tokens (prefix);
CREATE INDEX tokens_device ON tokens (device_id);
"""

_M4 = """
CREATE INDEX roughness_cell_device ON roughness (cell_key, device_id, iri_m_per_km);
DROP INDEX roughness_cell;
CREATE INDEX coverage_cell_device ON coverage (cell_key, device_id, t_s);
"""

_M5 = """
ALTER TABLE defects ADD COLUMN status_replay TEXT;
ALTER TABLE defects ADD COLUMN first_traversal_s {real};
"""

# A defect's latest hits are read on every refresh: an index in time order holding the columns summaries read
# finds them without reading the rest or each hit's row (its features and detector JSON make it ~1-2 kB).
_M6 = """
CREATE INDEX hits_defect_summary ON hits (defect_id, t_s, hit_id, trip_id, device_id, x_m, y_m, accuracy_m,
    heading_deg, kind, severity, depth_class, confidence, speed_mps);
DROP INDEX hits_defect;
CREATE INDEX traversals_defect_time ON traversals (defect_id, t_s, hit);
"""

# A trip's passes land on ~170 defects spread over the city: in a rowid table every pass wrote a random page of
# the (defect, trip) key index and of the (defect, time) index, and the table itself. Stored in key order (SQLite
# WITHOUT ROWID; PostgreSQL keeps a primary-key index) a pass writes one random page, and a defect's passes are
# read in one range (totals and replays), so the time index goes. Coverage likewise: stored by (cell, device,
# trip) it is its own (cell, device) index (a trip has one device, so (cell, trip) stays unique): a road-cell
# pass is written to three B-trees instead of five.
_M7 = """
CREATE TABLE traversals_by_defect (
    defect_id BIGINT NOT NULL REFERENCES defects(defect_id) ON DELETE CASCADE,
    trip_id TEXT NOT NULL REFERENCES trips(trip_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    t_s {real} NOT NULL,
    hit INTEGER NOT NULL,
    distance_m {real},
    PRIMARY KEY (defect_id, trip_id)
){clustered};
INSERT INTO traversals_by_defect (defect_id, trip_id, device_id, t_s, hit, distance_m)
    SELECT defect_id, trip_id, device_id, t_s, hit, distance_m FROM traversals ORDER BY defect_id, trip_id;
DROP TABLE traversals;
ALTER TABLE traversals_by_defect RENAME TO traversals;
CREATE INDEX traversals_trip ON traversals (trip_id);
CREATE TABLE coverage_by_cell (
    cell_key BIGINT NOT NULL,
    trip_id TEXT NOT NULL REFERENCES trips(trip_id) ON DELETE CASCADE,
    device_id TEXT NOT NULL,
    t_s {real} NOT NULL,
    PRIMARY KEY (cell_key, device_id, trip_id)
){clustered};
INSERT INTO coverage_by_cell (cell_key, trip_id, device_id, t_s)
    SELECT cell_key, trip_id, device_id, t_s FROM coverage ORDER BY cell_key, device_id, trip_id;
DROP TABLE coverage;
ALTER TABLE coverage_by_cell RENAME TO coverage;
CREATE INDEX coverage_trip ON coverage (trip_id);
CREATE INDEX coverage_t ON coverage (t_s);
"""

# A defect passed without a hit keeps its summary (position, kind, ...) when its hits would give the same one: they
# did not change, and the GPS latency they are corrected by did not either, which this records (bump.refresh).
_M8 = """
ALTER TABLE defects ADD COLUMN latency_s {real};
ALTER TABLE defects ADD COLUMN latency_devices INTEGER;
"""

# Whether a device hit a defect before: one seek, not a scan of the defect's hits (a busy defect has thousands)
_M9 = """
CREATE INDEX hits_defect_device ON hits (defect_id, device_id, trip_id);
"""

# A hit's position is corrected by its own trip's GPS latency when the trip told it (detect.latency: forward
# acceleration against Doppler speed); NULL: the trip did not, and the fleet's and its device's estimates correct it.
# The defects' summaries read it with their latest hits, so it joins their covering index.
_M10 = """
ALTER TABLE hits ADD COLUMN own_latency_s {real};
DROP INDEX hits_defect_summary;
CREATE INDEX hits_defect_summary ON hits (defect_id, t_s, hit_id, trip_id, device_id, x_m, y_m, accuracy_m,
    heading_deg, kind, severity, depth_class, confidence, speed_mps, own_latency_s);
"""

# A trip that comes by a defect again (a loop round the block) passes it again: a traversal is one pass, keyed by
# its number within the trip (0, 1, ... in time order; bump.traversals.find_traversals). Stored passes were one per
# (defect, trip): they become pass 0 (`bump reprocess` finds the others).
_M11 = """
CREATE TABLE traversals_by_pass (
    defect_id BIGINT NOT NULL REFERENCES defects(defect_id) ON DELETE CASCADE,
    trip_id TEXT NOT NULL REFERENCES trips(trip_id) ON DELETE CASCADE,
    pass_no INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    t_s {real} NOT NULL,
    hit INTEGER NOT NULL,
    distance_m {real},
    PRIMARY KEY (defect_id, trip_id, pass_no)
){clustered};
INSERT INTO traversals_by_pass (defect_id, trip_id, pass_no, device_id, t_s, hit, distance_m)
    SELECT defect_id, trip_id, 0, device_id, t_s, hit, distance_m FROM traversals ORDER BY defect_id, trip_id;
DROP TABLE traversals;
ALTER TABLE traversals_by_pass RENAME TO traversals;
CREATE INDEX traversals_trip ON traversals (trip_id);
"""

# A hit's spot kind (detect.classify): its kind without the rough-stretch rule, which the defect layer reads once
# hits repeat at a spot. Hits stored before it was told are taken for what their kind says (`bump reprocess` tells).
_M12 = """
ALTER TABLE hits ADD COLUMN spot_kind TEXT;
UPDATE hits SET spot_kind = kind;
DROP INDEX hits_defect_summary;
CREATE INDEX hits_defect_summary ON hits (defect_id, t_s, hit_id, trip_id, device_id, x_m, y_m, accuracy_m,
    heading_deg, kind, severity, depth_class, confidence, speed_mps, own_latency_s, spot_kind);
"""

# A hit's first motion (detect.features: +1 the wheel was lifted first, -1 dropped first, 0 unclear), which the defect
# layer's proud vote counts. Hits stored before it was kept tell it where they were read proud (a proud reading is a
# first motion up by definition); elsewhere it is unknown (NULL) until `bump reprocess`.
_M13 = """
ALTER TABLE hits ADD COLUMN first_motion {real};
UPDATE hits SET first_motion = 1 WHERE depth_class = 'proud';
DROP INDEX hits_defect_summary;
CREATE INDEX hits_defect_summary ON hits (defect_id, t_s, hit_id, trip_id, device_id, x_m, y_m, accuracy_m,
    heading_deg, kind, severity, depth_class, confidence, speed_mps, own_latency_s, spot_kind, first_motion);
"""

# version -> (name, DDL). Append only: never edit a released migration, add the next one.
MIGRATIONS: dict[int, tuple[str, str]] = {
    1: ("trips, hits, defects, traversals, history", _M1),
    2: ("roughness windows, coverage and road cells", _M2),
    3: ("API tokens (hashed)", _M3),
    4: ("road-cell indexes by device (incremental cell aggregates)", _M4),
    5: ("defects: where the status replay stands (resumed by later passes), first pass", _M5),
    6: ("covering indexes for defect summaries (latest hits, pass totals)", _M6),
    7: ("traversals by (defect, trip) and coverage by (cell, device, trip), stored in key order", _M7),
    8: ("defects: the GPS latency their summary's hits were corrected by (kept while it holds)", _M8),
    9: ("hits by (defect, device): whether a device hit a defect before, in one seek", _M9),
    10: ("hits: the GPS latency of their own trip, when it told it", _M10),
    11: ("traversals by (defect, trip, pass): a trip that comes by again passes again", _M11),
    12: ("hits: their spot kind (the kind without the rough-stretch rule)", _M12),
    13: ("hits: their first motion (up or down first), for the defects' proud vote", _M13),
}
SCHEMA_VERSION = max(MIGRATIONS)
