-- Telemetry samples. Times are UTC unix milliseconds; `faults` is a JSON array of strings.
--
-- The key (bench_id, ts, seq) identifies a sample (dedup) and, with bench_id first and ts second,
-- is also the index for per-bench time ranges and "newest sample per bench".
CREATE TABLE telemetry (
    bench_id         TEXT    NOT NULL,
    ts               INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    solar_w          REAL    NOT NULL,
    battery_pct      REAL    NOT NULL,
    battery_v        REAL,
    load_w           REAL,
    rx_bytes         INTEGER,
    tx_bytes         INTEGER,
    wifi_clients     INTEGER,
    rssi_dbm         INTEGER,
    sessions_wifi    INTEGER,
    sessions_usb     INTEGER,
    sessions_kiosk   INTEGER,
    wifi_started     INTEGER,
    usb_started      INTEGER,
    kiosk_started    INTEGER,
    cpu_temp_c       REAL,
    enclosure_temp_c REAL,
    uptime_s         INTEGER,
    disk_free_mb     INTEGER,
    faults           TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (bench_id, ts, seq)
) STRICT;
