-- The bench registry, rewritten from the fleet file (or the built-in fleet) at every start, so
-- SQL consumers (Grafana, reports) can join names, municipalities and positions.
CREATE TABLE benches (
    id                   text             PRIMARY KEY,
    name                 text             NOT NULL,
    municipality         text             NOT NULL,
    lat                  double precision NOT NULL,
    lon                  double precision NOT NULL,
    telemetry_interval_s integer          NOT NULL
);
