//! SQL for time-bucketed telemetry and usage totals, written once for every backend.
//!
//! The statements differ only in a few expressions (time buckets, time spans, casts), which
//! [`Dialect`] supplies: `time_bucket` on TimescaleDB, `date_bin` on plain PostgreSQL, integer
//! arithmetic on SQLite's millisecond times. Counter increases use the `lag()` window function
//! (SQLite 3.25+), so a reboot's counter reset is handled inside the database on all three.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::Dialect;
use super::value::Time;
use crate::telemetry::{Agg, ENERGY_MAX_GAP_MS, TelemetryBucket, UsageTotals};

/// The since-boot counters whose increases are computed.
pub(super) const COUNTERS: [&str; 5] = ["rx_bytes", "tx_bytes", "wifi_started", "usb_started", "kiosk_started"];
/// The counters whose increases are reported with the time they took (bytes per second).
pub(super) const BANDWIDTH: [&str; 2] = ["rx_bytes", "tx_bytes"];
/// The counters of sessions started.
pub(super) const STARTED: [&str; 3] = ["wifi_started", "usb_started", "kiosk_started"];
/// Gauges averaged per bucket, and whether they may be missing from a sample.
pub(super) const GAUGES: [(&str, bool); 5] = [
    ("solar_w", false),
    ("battery_pct", false),
    ("load_w", true),
    ("cpu_temp_c", true),
    ("enclosure_temp_c", true),
];
/// Gauges reported as their maximum per bucket.
pub(super) const MAXIMA: [&str; 4] = ["sessions_wifi", "sessions_usb", "sessions_kiosk", "wifi_clients"];

impl Dialect {
    /// The `n`-th bind parameter.
    pub(super) fn param(self, n: u8) -> String {
        match self {
            Self::Sqlite => format!("?{n}"),
            Self::Postgres | Self::Timescale => format!("${n}"),
        }
    }

    /// Start of the epoch-aligned bucket of time column `ts`, the width being `width` ms (a
    /// parameter or a literal).
    pub(super) fn bucket_of(self, ts: &str, width: &str) -> String {
        match self {
            // Floor, not truncation, so times before 1970 land in the right bucket too.
            Self::Sqlite => format!("({ts} - ((({ts} % {width}) + {width}) % {width}))"),
            Self::Postgres => {
                format!("date_bin({width}::int8 * INTERVAL '1 millisecond', {ts}, TIMESTAMPTZ 'epoch')")
            }
            Self::Timescale => {
                format!("time_bucket({width}::int8 * INTERVAL '1 millisecond', {ts}, TIMESTAMPTZ 'epoch')")
            }
        }
    }

    /// Milliseconds between the sample and the one before it.
    fn span_ms(self) -> &'static str {
        match self {
            Self::Sqlite => "(ts - p_ts)",
            Self::Postgres | Self::Timescale => "(extract(epoch FROM ts - p_ts) * 1000)::int8",
        }
    }

    pub(super) fn float(self, expr: &str) -> String {
        match self {
            Self::Sqlite => format!("CAST({expr} AS REAL)"),
            Self::Postgres | Self::Timescale => format!("({expr})::float8"),
        }
    }

    /// The larger of two values (NULL if either is).
    pub(super) fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Self::Sqlite => format!("max({a}, {b})"),
            Self::Postgres | Self::Timescale => format!("GREATEST({a}, {b})"),
        }
    }

    /// The smaller of two values.
    pub(super) fn least(self, a: &str, b: &str) -> String {
        match self {
            Self::Sqlite => format!("min({a}, {b})"),
            Self::Postgres | Self::Timescale => format!("LEAST({a}, {b})"),
        }
    }

    /// PostgreSQL sums `bigint` into `numeric`; bring it back.
    pub(super) fn int(self, expr: &str) -> String {
        match self {
            Self::Sqlite => expr.to_owned(),
            Self::Postgres | Self::Timescale => format!("({expr})::int8"),
        }
    }
}

/// `s`: the samples `FROM {source}` with the previous sample's time and counters (`p_…`) and
/// whether the bench rebooted in between; `i`: plus the pair's span and each counter's increase.
/// The two common table expressions, without `WITH`.
pub(super) fn increments_ctes(d: Dialect, extra_columns: &str, source: &str, partition: &str) -> String {
    let lags: String = COUNTERS
        .iter()
        .map(|c| format!(", {c}, lag({c}) OVER w AS p_{c}"))
        .collect();
    let increases: String = COUNTERS
        .iter()
        .map(|c| {
            format!(
                ", CASE WHEN {c} IS NULL OR p_{c} IS NULL THEN NULL \
                        WHEN reboot OR {c} < p_{c} THEN {c} \
                        ELSE {c} - p_{c} END AS inc_{c}"
            )
        })
        .collect();
    format!(
        "s AS ( \
             SELECT ts, {extra_columns}, lag(ts) OVER w AS p_ts, \
                    coalesce(uptime_s < lag(uptime_s) OVER w, FALSE) AS reboot{lags} \
             FROM {source} \
             WINDOW w AS ({partition} ORDER BY ts, seq) \
         ), i AS ( \
             SELECT *, {span} AS span_ms{increases} FROM s \
         ) ",
        span = d.span_ms(),
    )
}

/// Parameters: bench id, from, to (as stored), bucket width in ms.
pub(super) fn buckets_sql(d: Dialect) -> String {
    let (p1, p2, p3, p4) = (d.param(1), d.param(2), d.param(3), d.param(4));
    let cte = increments_ctes(
        d,
        &format!(
            "{bucket} AS bucket, solar_w, battery_pct, load_w, cpu_temp_c, enclosure_temp_c, \
             sessions_wifi, sessions_usb, sessions_kiosk, wifi_clients",
            bucket = d.bucket_of("ts", &p4)
        ),
        &format!("telemetry WHERE bench_id = {p1} AND ts >= {p2} AND ts < {p3}"),
        "",
    );
    let stats: String = ["solar_w", "battery_pct", "load_w", "cpu_temp_c", "enclosure_temp_c"]
        .iter()
        .map(|c| format!(", avg({c}) AS {c}_avg, min({c}) AS {c}_min, max({c}) AS {c}_max"))
        .collect();
    let maxima: String = ["sessions_wifi", "sessions_usb", "sessions_kiosk", "wifi_clients"]
        .iter()
        .map(|c| format!(", {} AS {c}_max", d.int(&format!("max({c})"))))
        .collect();
    let bandwidth: String = ["rx_bytes", "tx_bytes"]
        .iter()
        .map(|c| {
            format!(
                ", {} AS {c}_increase, {} AS {c}_span_ms",
                d.float(&format!("sum(inc_{c})")),
                d.int(&format!("sum(CASE WHEN inc_{c} IS NOT NULL THEN span_ms END)")),
            )
        })
        .collect();
    let started: String = ["wifi_started", "usb_started", "kiosk_started"]
        .iter()
        .map(|c| format!(", {} AS {c}", d.int(&format!("sum(inc_{c})"))))
        .collect();
    format!(
        "WITH {cte} SELECT bucket, count(*) AS samples{stats}{maxima}{bandwidth}{started} \
         FROM i GROUP BY bucket ORDER BY bucket"
    )
}

/// Parameters: from, to (as stored). Usage totals from raw samples only: the reads take
/// `rollup::usage_sql`, and tests check it answers as this one does.
#[cfg(test)]
pub(super) fn usage_sql(d: Dialect) -> String {
    let (p1, p2) = (d.param(1), d.param(2));
    // SQLite has no index on `ts` alone, and a fleet-wide time range would read the whole
    // table: hop from bench to bench on the primary key instead (as `latest_telemetry` does) and
    // range-scan each. PostgreSQL has its BRIN index on `ts`, TimescaleDB its chunks.
    let (prelude, benches) = match d {
        Dialect::Sqlite => (
            "RECURSIVE known(bench_id) AS ( \
                 SELECT min(bench_id) FROM telemetry \
                 UNION ALL \
                 SELECT (SELECT min(t.bench_id) FROM telemetry t WHERE t.bench_id > known.bench_id) \
                 FROM known WHERE known.bench_id IS NOT NULL \
             ), ",
            "bench_id IN (SELECT bench_id FROM known) AND ",
        ),
        Dialect::Postgres | Dialect::Timescale => ("", ""),
    };
    let cte = increments_ctes(
        d,
        "bench_id, solar_w, lag(solar_w) OVER w AS p_solar_w",
        &format!("telemetry WHERE {benches}ts >= {p1} AND ts < {p2}"),
        "PARTITION BY bench_id",
    );
    let bytes = |c: &str| format!("coalesce({}, 0.0)", d.float(&format!("sum(inc_{c})")));
    let sessions = ["wifi_started", "usb_started", "kiosk_started"]
        .iter()
        .map(|c| format!("coalesce({}, 0)", d.int(&format!("sum(inc_{c})"))))
        .collect::<Vec<_>>()
        .join(" + ");
    format!(
        "WITH {prelude}{cte} SELECT bench_id, count(*) AS samples, \
             coalesce(sum({energy}), 0.0) AS solar_wh, \
             {rx} AS rx_bytes, {tx} AS tx_bytes, {sessions} AS sessions_started \
         FROM i GROUP BY bench_id ORDER BY bench_id",
        energy = energy_sql(d),
        rx = bytes("rx_bytes"),
        tx = bytes("tx_bytes"),
    )
}

/// Solar energy (Wh) of the pair ending at this sample: a trapezoid, unless the samples are more
/// than [`ENERGY_MAX_GAP_MS`] apart (or there is no earlier sample).
pub(super) fn energy_sql(d: Dialect) -> String {
    format!(
        "CASE WHEN span_ms <= {ENERGY_MAX_GAP_MS} THEN (solar_w + p_solar_w) * {span} / 7200000 END",
        span = d.float("span_ms")
    )
}

fn agg<'r, R>(row: &'r R, column: &str) -> Result<Option<Agg>, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let get = |suffix: &str| row.try_get::<Option<f64>, _>(format!("{column}_{suffix}").as_str());
    Ok(match (get("avg")?, get("min")?, get("max")?) {
        (Some(avg), Some(min), Some(max)) => Some(Agg { avg, min, max }),
        _ => None,
    })
}

/// Decodes a row of [`buckets_sql`].
pub(super) fn bucket_from_row<'r, R>(row: &'r R) -> Result<TelemetryBucket, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
{
    let start = row.try_get::<Time, _>("bucket")?.0;
    let required =
        |column: &str| agg(row, column)?.ok_or_else(|| sqlx::Error::Decode(format!("bucket without {column}").into()));
    Ok(TelemetryBucket {
        start,
        samples: row.try_get("samples")?,
        solar_w: required("solar_w")?,
        battery_pct: required("battery_pct")?,
        load_w: agg(row, "load_w")?,
        cpu_temp_c: agg(row, "cpu_temp_c")?,
        enclosure_temp_c: agg(row, "enclosure_temp_c")?,
        sessions_wifi_max: row.try_get("sessions_wifi_max")?,
        sessions_usb_max: row.try_get("sessions_usb_max")?,
        sessions_kiosk_max: row.try_get("sessions_kiosk_max")?,
        wifi_clients_max: row.try_get("wifi_clients_max")?,
        rx_increase: row.try_get("rx_bytes_increase")?,
        rx_span_ms: row.try_get("rx_bytes_span_ms")?,
        tx_increase: row.try_get("tx_bytes_increase")?,
        tx_span_ms: row.try_get("tx_bytes_span_ms")?,
        wifi_started: row.try_get("wifi_started")?,
        usb_started: row.try_get("usb_started")?,
        kiosk_started: row.try_get("kiosk_started")?,
    })
}

/// Decodes a row of [`usage_sql`].
pub(super) fn usage_from_row<'r, R>(row: &'r R) -> Result<UsageTotals, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(UsageTotals {
        bench_id: row.try_get("bench_id")?,
        samples: row.try_get("samples")?,
        solar_wh: row.try_get("solar_wh")?,
        rx_bytes: row.try_get("rx_bytes")?,
        tx_bytes: row.try_get("tx_bytes")?,
        sessions_started: row.try_get("sessions_started")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_buckets_its_own_way() {
        assert!(buckets_sql(Dialect::Sqlite).contains("(ts - (((ts % ?4) + ?4) % ?4))"));
        assert!(buckets_sql(Dialect::Postgres).contains("date_bin($4::int8"));
        assert!(buckets_sql(Dialect::Timescale).contains("time_bucket($4::int8"));
        for d in [Dialect::Sqlite, Dialect::Postgres, Dialect::Timescale] {
            assert!(usage_sql(d).contains("PARTITION BY bench_id ORDER BY ts, seq"));
            assert!(!buckets_sql(d).contains("PARTITION BY"));
        }
    }
}
