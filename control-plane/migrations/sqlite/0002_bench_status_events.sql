-- Presence changes, kept forever. Times are UTC unix milliseconds.
CREATE TABLE bench_status_events (
    id             INTEGER PRIMARY KEY,
    bench_id       TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    cause          TEXT    NOT NULL,
    fw             TEXT,
    config_version INTEGER,
    until          INTEGER
) STRICT;

CREATE INDEX bench_status_events_bench_at ON bench_status_events (bench_id, at);
