-- The bench registry, rewritten from the fleet file (or the built-in fleet) at every start, so
-- SQL consumers can join names, municipalities and positions.
CREATE TABLE benches (
    id                   TEXT    PRIMARY KEY,
    name                 TEXT    NOT NULL,
    municipality         TEXT    NOT NULL,
    lat                  REAL    NOT NULL,
    lon                  REAL    NOT NULL,
    telemetry_interval_s INTEGER NOT NULL
) STRICT;
