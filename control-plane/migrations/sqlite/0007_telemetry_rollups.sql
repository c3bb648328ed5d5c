-- Per-bench, per-minute rollups of telemetry, kept by the control plane (store/rollup.rs), and
-- the minutes whose rollup is out of date.
--
-- A minute's row holds what history, usage and Grafana need from its samples: their count; sum
-- (with the count of non-null values), minimum and maximum of each gauge; the most sessions and
-- Wi-Fi clients; and for each since-boot counter the increases between consecutive samples, split
-- in two: `_inc` (and `_span_ms`) for pairs inside the minute, `_first` for the pair of the
-- minute's first sample and the sample before it (`prev_ts`, `first_span_ms` after it), which a
-- query counts only when that sample is in its range, as the raw queries' `lag()` does. Likewise
-- `solar_wh` (trapezoids inside the minute) and `solar_wh_first`.
--
-- Every batch that adds samples marks their minutes in `telemetry_dirty_minutes`, in the same
-- transaction (a batch of repeats marks nothing); `version` grows with each mark, so the
-- maintainer clears only the marks it has recomputed. Reads take a bench's rollups only before its
-- earliest marked minute.
CREATE TABLE telemetry_minute (
    bench_id             TEXT NOT NULL,
    minute               INTEGER NOT NULL,
    samples              INTEGER NOT NULL,
    prev_ts              INTEGER,
    first_span_ms        INTEGER,
    solar_w_sum          REAL NOT NULL,
    solar_w_min          REAL NOT NULL,
    solar_w_max          REAL NOT NULL,
    battery_pct_sum      REAL NOT NULL,
    battery_pct_min      REAL NOT NULL,
    battery_pct_max      REAL NOT NULL,
    load_w_n             INTEGER NOT NULL,
    load_w_sum           REAL,
    load_w_min           REAL,
    load_w_max           REAL,
    cpu_temp_c_n         INTEGER NOT NULL,
    cpu_temp_c_sum       REAL,
    cpu_temp_c_min       REAL,
    cpu_temp_c_max       REAL,
    enclosure_temp_c_n   INTEGER NOT NULL,
    enclosure_temp_c_sum REAL,
    enclosure_temp_c_min REAL,
    enclosure_temp_c_max REAL,
    sessions_wifi_max    INTEGER,
    sessions_usb_max     INTEGER,
    sessions_kiosk_max   INTEGER,
    wifi_clients_max     INTEGER,
    rx_bytes_inc         INTEGER,
    rx_bytes_span_ms     INTEGER,
    rx_bytes_first       INTEGER,
    tx_bytes_inc         INTEGER,
    tx_bytes_span_ms     INTEGER,
    tx_bytes_first       INTEGER,
    wifi_started_inc     INTEGER,
    wifi_started_first   INTEGER,
    usb_started_inc      INTEGER,
    usb_started_first    INTEGER,
    kiosk_started_inc    INTEGER,
    kiosk_started_first  INTEGER,
    solar_wh             REAL,
    solar_wh_first       REAL,
    PRIMARY KEY (bench_id, minute)
) STRICT, WITHOUT ROWID;

CREATE TABLE telemetry_dirty_minutes (
    bench_id TEXT    NOT NULL,
    minute   INTEGER NOT NULL,
    version  INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (bench_id, minute)
) STRICT, WITHOUT ROWID;

-- Samples stored before the rollups existed: every minute of them is out of date.
INSERT INTO telemetry_dirty_minutes (bench_id, minute)
SELECT DISTINCT bench_id, ts - (((ts % 60000) + 60000) % 60000) FROM telemetry;
