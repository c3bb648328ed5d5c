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
    bench_id             text NOT NULL,
    minute               timestamptz NOT NULL,
    samples              bigint NOT NULL,
    prev_ts              timestamptz,
    first_span_ms        bigint,
    solar_w_sum          double precision NOT NULL,
    solar_w_min          double precision NOT NULL,
    solar_w_max          double precision NOT NULL,
    battery_pct_sum      double precision NOT NULL,
    battery_pct_min      double precision NOT NULL,
    battery_pct_max      double precision NOT NULL,
    load_w_n             bigint NOT NULL,
    load_w_sum           double precision,
    load_w_min           double precision,
    load_w_max           double precision,
    cpu_temp_c_n         bigint NOT NULL,
    cpu_temp_c_sum       double precision,
    cpu_temp_c_min       double precision,
    cpu_temp_c_max       double precision,
    enclosure_temp_c_n   bigint NOT NULL,
    enclosure_temp_c_sum double precision,
    enclosure_temp_c_min double precision,
    enclosure_temp_c_max double precision,
    sessions_wifi_max    integer,
    sessions_usb_max     integer,
    sessions_kiosk_max   integer,
    wifi_clients_max     integer,
    rx_bytes_inc         bigint,
    rx_bytes_span_ms     bigint,
    rx_bytes_first       bigint,
    tx_bytes_inc         bigint,
    tx_bytes_span_ms     bigint,
    tx_bytes_first       bigint,
    wifi_started_inc     bigint,
    wifi_started_first   bigint,
    usb_started_inc      bigint,
    usb_started_first    bigint,
    kiosk_started_inc    bigint,
    kiosk_started_first  bigint,
    solar_wh             double precision,
    solar_wh_first       double precision,
    PRIMARY KEY (bench_id, minute)
);

CREATE TABLE telemetry_dirty_minutes (
    bench_id text        NOT NULL,
    minute   timestamptz NOT NULL,
    version  bigint      NOT NULL DEFAULT 1,
    PRIMARY KEY (bench_id, minute)
);

-- Samples stored before the rollups existed: every minute of them is out of date.
INSERT INTO telemetry_dirty_minutes (bench_id, minute)
SELECT DISTINCT bench_id, date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ 'epoch') FROM telemetry;
