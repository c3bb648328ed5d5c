-- Telemetry samples. On TimescaleDB the store turns this table into a hypertable after the
-- migrations (see store/postgres.rs); on plain PostgreSQL it adds a BRIN index on ts instead.
--
-- The key (bench_id, ts, seq) identifies a sample (dedup), includes the time column as a
-- hypertable's unique index must, and with bench_id first and ts second is also the index for
-- per-bench time ranges and "newest sample per bench".
CREATE TABLE telemetry (
    bench_id         text             NOT NULL,
    ts               timestamptz      NOT NULL,
    seq              bigint           NOT NULL,
    received_at      timestamptz      NOT NULL,
    solar_w          double precision NOT NULL,
    battery_pct      double precision NOT NULL,
    battery_v        double precision,
    load_w           double precision,
    rx_bytes         bigint,
    tx_bytes         bigint,
    wifi_clients     integer,
    rssi_dbm         integer,
    sessions_wifi    integer,
    sessions_usb     integer,
    sessions_kiosk   integer,
    wifi_started     bigint,
    usb_started      bigint,
    kiosk_started    bigint,
    cpu_temp_c       double precision,
    enclosure_temp_c double precision,
    uptime_s         bigint,
    disk_free_mb     bigint,
    faults           jsonb            NOT NULL DEFAULT '[]',
    PRIMARY KEY (bench_id, ts, seq)
);
