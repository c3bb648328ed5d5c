-- OTA configuration. Times are unix milliseconds; JSON is TEXT.

-- Configuration layers: the fleet default (name ''), municipalities and benches. `content` is a
-- partial configuration (JSON object) merged over the less specific layers.
CREATE TABLE ota_layers (
    scope      TEXT    NOT NULL CHECK (scope IN ('fleet', 'municipality', 'bench')),
    name       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL,
    PRIMARY KEY (scope, name)
) STRICT;

-- Per bench: the configuration it should run (desired), the version it says it runs
-- (reported), and where delivery stands.
CREATE TABLE ota_bench_config (
    bench_id         TEXT    PRIMARY KEY,
    desired_version  INTEGER NOT NULL,
    desired          TEXT    NOT NULL,
    issued_at        INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    state_at         INTEGER NOT NULL,
    reported_version INTEGER,
    reported_at      INTEGER,
    error            TEXT,
    drift_since      INTEGER,
    rollout_id       TEXT
) STRICT;

-- Every version ever issued; the primary key makes reusing a version impossible.
CREATE TABLE ota_config_versions (
    bench_id   TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    config     TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL,
    cause      TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    rollout_id TEXT,
    PRIMARY KEY (bench_id, version)
) STRICT;

-- Rollouts: the state machine with per-bench progress is the JSON `body`; the columns are for
-- SQL consumers.
CREATE TABLE ota_rollouts (
    id         TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body       TEXT    NOT NULL
) STRICT;

-- Who changed what, when, with the diff in `detail` (JSON).
CREATE TABLE ota_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL
) STRICT;
