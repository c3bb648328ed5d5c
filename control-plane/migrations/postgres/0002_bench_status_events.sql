-- Presence changes, kept forever.
CREATE TABLE bench_status_events (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bench_id       text        NOT NULL,
    at             timestamptz NOT NULL,
    state          text        NOT NULL,
    cause          text        NOT NULL,
    fw             text,
    config_version bigint,
    until          timestamptz
);

CREATE INDEX bench_status_events_bench_at ON bench_status_events (bench_id, at);
