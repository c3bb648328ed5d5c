-- OTA configuration.

-- Configuration layers: the fleet default (name ''), municipalities and benches. `content` is a
-- partial configuration (JSON object) merged over the less specific layers.
CREATE TABLE ota_layers (
    scope      text        NOT NULL CHECK (scope IN ('fleet', 'municipality', 'bench')),
    name       text        NOT NULL,
    content    jsonb       NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text        NOT NULL,
    PRIMARY KEY (scope, name)
);

-- Per bench: the configuration it should run (desired), the version it says it runs
-- (reported), and where delivery stands.
CREATE TABLE ota_bench_config (
    bench_id         text        PRIMARY KEY,
    desired_version  bigint      NOT NULL,
    desired          jsonb       NOT NULL,
    issued_at        timestamptz NOT NULL,
    state            text        NOT NULL,
    state_at         timestamptz NOT NULL,
    reported_version bigint,
    reported_at      timestamptz,
    error            text,
    drift_since      timestamptz,
    rollout_id       text
);

-- Every version ever issued; the primary key makes reusing a version impossible.
CREATE TABLE ota_config_versions (
    bench_id   text        NOT NULL,
    version    bigint      NOT NULL,
    config     jsonb       NOT NULL,
    issued_at  timestamptz NOT NULL,
    cause      text        NOT NULL,
    actor      text        NOT NULL,
    rollout_id text,
    PRIMARY KEY (bench_id, version)
);

-- Rollouts: the state machine with per-bench progress is the JSON `body`; the columns are for
-- SQL consumers.
CREATE TABLE ota_rollouts (
    id         text        PRIMARY KEY,
    state      text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    body       jsonb       NOT NULL
);

-- Who changed what, when, with the diff in `detail`.
CREATE TABLE ota_audit (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    subject text        NOT NULL,
    detail  jsonb       NOT NULL
);
