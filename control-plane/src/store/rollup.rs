//! Per-bench, per-minute rollups of telemetry (`telemetry_minute`, migration 0007), kept by the
//! control plane on every backend, and the reads that use them wherever they can.
//!
//! - Every telemetry batch marks the (bench, minute)s it really added samples to in
//!   `telemetry_dirty_minutes`, in the batch's own transaction (`sqlite/telemetry.rs`,
//!   `postgres/telemetry.rs`); a repeated sample adds nothing and marks nothing.
//! - [`Backend::refresh_rollups`] recomputes marked minutes from the raw samples, together with the
//!   sample before each minute (counter increases) and the next minute with samples (a late sample
//!   may have become the sample before it), then clears the marks it saw, each only if no batch
//!   marked it again meanwhile.
//! - Reads ([`buckets_sql`], [`usage_sql`]) take, per bench, the rollups of the whole minutes of
//!   the range that lie before the bench's earliest marked minute, and raw samples for the rest
//!   (the partial first and last minutes, and everything from that mark on), in one statement. So
//!   the answer is the raw queries' (`store::series`) at every moment, up to the rounding of
//!   floating-point sums, whether or not the maintainer has caught up.
//!
//! A minute's `_first` columns hold the increase from the sample before it, which a read counts
//! only when that sample is in its range: exactly when `lag()` over the range would see it.

use std::sync::LazyLock;

use chrono::{DateTime, TimeDelta, Utc};

use super::series::{BANDWIDTH, COUNTERS, GAUGES, MAXIMA, STARTED, energy_sql, increments_ctes};
use super::value::Time;
use super::{Backend, Dialect, Result, on_pool};

/// One minute in milliseconds: the rollups' width.
pub(crate) const MINUTE_MS: i64 = 60_000;

/// Marked minutes of one bench at most this far apart are recomputed in one statement (the clean
/// minutes between them again too).
const MERGE_GAP_MS: i64 = 10 * MINUTE_MS;

/// The query bounds of a rollup read, as stored times (see [`RollupBounds::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RollupBounds {
    pub from: Time,
    pub to: Time,
    /// Start of the first whole minute at or after `from`.
    pub lo: Time,
    /// End of the last whole minute before `to` (at least `lo`).
    pub hi: Time,
    /// Start of the minute `from` is in.
    pub floor: Time,
}

impl RollupBounds {
    /// The bounds for `from <= ts < to`, given as query bounds (whole milliseconds).
    pub fn new(from: Time, to: Time) -> Self {
        let at = |ms: i64| Time(chrono::DateTime::from_timestamp_millis(ms).unwrap_or(from.0));
        let (f, t) = (from.0.timestamp_millis(), to.0.timestamp_millis());
        let floor = f.div_euclid(MINUTE_MS) * MINUTE_MS;
        let lo = if floor == f { f } else { floor.saturating_add(MINUTE_MS) };
        let hi = (t.div_euclid(MINUTE_MS) * MINUTE_MS).max(lo);
        Self {
            from,
            to,
            lo: at(lo),
            hi: at(hi),
            floor: at(floor),
        }
    }
}

/// The start of the minute of stored time `ms`.
pub(crate) fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// `a + b` where a NULL on one side is no increase, and NULL only when both are.
fn nadd(a: &str, b: &str) -> String {
    format!("CASE WHEN {a} IS NULL THEN {b} WHEN {b} IS NULL THEN {a} ELSE {a} + {b} END")
}

impl Dialect {
    fn plus_minute(self, t: &str) -> String {
        match self {
            Self::Sqlite => format!("({t} + {MINUTE_MS})"),
            Self::Postgres | Self::Timescale => format!("({t} + INTERVAL '1 minute')"),
        }
    }

    /// `SELECT {columns}` from each row of `outer` joined with the rows of `table` (`name alias`)
    /// where `cond`: a range scan of `table`'s primary key per bench. SQLite's planner loops so
    /// by itself; PostgreSQL's cannot tell how few benches and how short the ranges are and
    /// would hash-join a scan of the whole table, so the scan is a LATERAL subquery it may not
    /// pull up (`OFFSET 0`).
    fn per_bench(self, columns: &str, outer: &str, table: &str, cond: &str) -> String {
        match self {
            Self::Sqlite => format!("SELECT {columns} FROM {outer} JOIN {table} ON {cond}"),
            Self::Postgres | Self::Timescale => {
                let alias = table.rsplit(' ').next().unwrap_or(table);
                format!(
                    "SELECT {columns} FROM {outer} CROSS JOIN LATERAL \
                     (SELECT {alias}.* FROM {table} WHERE {cond} OFFSET 0) {alias}"
                )
            }
        }
    }
}

/// Parameter names of a rollup read.
struct Params {
    from: String,
    to: String,
    lo: String,
    hi: String,
    floor: String,
}

/// What a read aggregates: one bench's time buckets, or every bench's usage totals.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    Buckets,
    Usage,
}

/// `cut`, `bounds`, `raw`, `s` and `i` (without `WITH`), after `keys(bench_id)`:
/// - `bounds`: per bench, `hi` (rollups are read for minutes in `[lo, hi)`: up to the bench's
///   earliest marked minute) and `tail` (raw samples are read from there: the last sample before
///   `hi`, if it is at or after `lo`, for `lag()`);
/// - `raw`: the raw samples `[from, lo)` and `[tail, to)`, `counted` unless before `hi`;
/// - `s`, `i`: as in `series`, per bench.
fn sources(d: Dialect, p: &Params, read: Read) -> String {
    let Params {
        from,
        to,
        lo,
        hi,
        floor,
    } = p;
    let mut columns: Vec<String> = COUNTERS.iter().map(|c| format!("t.{c}")).collect();
    match read {
        Read::Buckets => {
            columns.extend(GAUGES.iter().map(|(g, _)| format!("t.{g}")));
            columns.extend(MAXIMA.iter().map(|m| format!("t.{m}")));
        }
        Read::Usage => columns.push("t.solar_w".into()),
    }
    let columns = columns.join(", ");
    let earliest_mark = format!(
        "coalesce((SELECT min(d.minute) FROM telemetry_dirty_minutes d \
                   WHERE d.bench_id = k.bench_id AND d.minute >= {floor}), {hi})"
    );
    let cut = d.greatest(lo, &d.least(hi, &earliest_mark));
    let extra = match read {
        Read::Buckets => {
            let mut extra = vec!["bench_id".to_owned(), "counted".to_owned()];
            extra.extend(GAUGES.iter().map(|(g, _)| (*g).to_owned()));
            extra.extend(MAXIMA.iter().map(|m| (*m).to_owned()));
            extra.join(", ")
        }
        Read::Usage => "bench_id, counted, solar_w, lag(solar_w) OVER w AS p_solar_w".to_owned(),
    };
    let increments = increments_ctes(d, &extra, "raw", "PARTITION BY bench_id");
    format!(
        "cut AS ( \
             SELECT k.bench_id, {cut} AS hi FROM keys k \
         ), bounds AS ( \
             SELECT c.bench_id, c.hi, \
                    coalesce((SELECT max(t.ts) FROM telemetry t \
                              WHERE t.bench_id = c.bench_id AND t.ts >= {lo} AND t.ts < c.hi), c.hi) AS tail \
             FROM cut c \
         ), raw AS ( \
             {head} \
             UNION ALL \
             {tail} \
         ), {increments}",
        head = d.per_bench(
            &format!("t.bench_id, t.ts, t.seq, t.uptime_s, {columns}, TRUE AS counted"),
            "keys k",
            "telemetry t",
            &format!("t.bench_id = k.bench_id AND t.ts >= {from} AND t.ts < {lo} AND t.ts < {to}"),
        ),
        tail = d.per_bench(
            &format!("t.bench_id, t.ts, t.seq, t.uptime_s, {columns}, t.ts >= b.hi AS counted"),
            "bounds b",
            "telemetry t",
            &format!("t.bench_id = b.bench_id AND t.ts >= b.tail AND t.ts < {to}"),
        ),
    )
}

/// The rollup rows `[lo, hi)` of each bench, with `columns`.
fn rolled(d: Dialect, columns: &str, lo: &str) -> String {
    d.per_bench(
        columns,
        "bounds b",
        "telemetry_minute r",
        &format!("r.bench_id = b.bench_id AND r.minute >= {lo} AND r.minute < b.hi"),
    )
}

/// A rollup minute's counter increase as a read sees it: the pairs inside the minute, plus the
/// pair from the sample before when that sample is in the range.
fn rolled_increase(c: &str, from: &str) -> String {
    nadd(
        &format!("r.{c}_inc"),
        &format!("CASE WHEN r.prev_ts >= {from} THEN r.{c}_first END"),
    )
}

/// Parameters: bench id, from, to, bucket width in ms (a whole number of minutes), lo, hi,
/// floor (see [`RollupBounds`]). Columns as [`super::series::buckets_sql`].
pub(super) fn buckets_sql(d: Dialect) -> String {
    let (bench, width) = (d.param(1), d.param(4));
    let p = Params {
        from: d.param(2),
        to: d.param(3),
        lo: d.param(5),
        hi: d.param(6),
        floor: d.param(7),
    };
    let sources = sources(d, &p, Read::Buckets);
    let mut raw = Vec::new();
    let mut rolled_columns = Vec::new();
    let mut fin = Vec::new();
    for (g, nullable) in GAUGES {
        raw.push(format!(
            "sum({g}) AS {g}_sum, count({g}) AS {g}_n, min({g}) AS {g}_min, max({g}) AS {g}_max"
        ));
        let n = if nullable {
            format!("r.{g}_n")
        } else {
            "r.samples".into()
        };
        rolled_columns.push(format!("r.{g}_sum, {n}, r.{g}_min, r.{g}_max"));
        fin.push(format!(
            "sum({g}_sum) / {n} AS {g}_avg, min({g}_min) AS {g}_min, max({g}_max) AS {g}_max",
            n = d.float(&format!("nullif(sum({g}_n), 0)"))
        ));
    }
    for m in MAXIMA {
        raw.push(format!("max({m}) AS {m}_max"));
        rolled_columns.push(format!("r.{m}_max"));
        fin.push(format!("{} AS {m}_max", d.int(&format!("max({m}_max)"))));
    }
    for c in BANDWIDTH {
        raw.push(format!(
            "sum(inc_{c}) AS {c}_inc, sum(CASE WHEN inc_{c} IS NOT NULL THEN span_ms END) AS {c}_span"
        ));
        rolled_columns.push(format!(
            "{}, {}",
            rolled_increase(c, &p.from),
            nadd(
                &format!("r.{c}_span_ms"),
                &format!(
                    "CASE WHEN r.prev_ts >= {from} AND r.{c}_first IS NOT NULL THEN r.first_span_ms END",
                    from = p.from
                ),
            )
        ));
        fin.push(format!(
            "{} AS {c}_increase, {} AS {c}_span_ms",
            d.float(&format!("sum({c}_inc)")),
            d.int(&format!("sum({c}_span)"))
        ));
    }
    for c in STARTED {
        raw.push(format!("sum(inc_{c}) AS {c}_inc"));
        rolled_columns.push(rolled_increase(c, &p.from));
        fin.push(format!("{} AS {c}", d.int(&format!("sum({c}_inc)"))));
    }
    format!(
        "WITH keys(bench_id) AS (SELECT {bench}), {sources}, parts AS ( \
             SELECT {raw_bucket} AS bucket, count(*) AS samples, {raw} \
             FROM i WHERE counted GROUP BY {raw_bucket} \
             UNION ALL \
             {rolled} \
         ) \
         SELECT bucket, {samples} AS samples, {fin} FROM parts GROUP BY bucket ORDER BY bucket",
        raw_bucket = d.bucket_of("ts", &width),
        raw = raw.join(", "),
        rolled = rolled(
            d,
            &format!(
                "{} AS bucket, r.samples, {}",
                d.bucket_of("r.minute", &width),
                rolled_columns.join(", ")
            ),
            &p.lo
        ),
        samples = d.int("sum(samples)"),
        fin = fin.join(", "),
    )
}

/// Every bench with raw samples or rollups: a hop from bench to bench on each primary key.
const KEYS: &str = "RECURSIVE raw_benches(bench_id) AS ( \
         SELECT min(bench_id) FROM telemetry \
         UNION ALL \
         SELECT (SELECT min(t.bench_id) FROM telemetry t WHERE t.bench_id > b.bench_id) \
         FROM raw_benches b WHERE b.bench_id IS NOT NULL \
     ), rolled_benches(bench_id) AS ( \
         SELECT min(bench_id) FROM telemetry_minute \
         UNION ALL \
         SELECT (SELECT min(r.bench_id) FROM telemetry_minute r WHERE r.bench_id > b.bench_id) \
         FROM rolled_benches b WHERE b.bench_id IS NOT NULL \
     ), keys(bench_id) AS ( \
         SELECT bench_id FROM raw_benches WHERE bench_id IS NOT NULL \
         UNION \
         SELECT bench_id FROM rolled_benches WHERE bench_id IS NOT NULL \
     )";

/// Parameters: from, to, lo, hi, floor (see [`RollupBounds`]). Columns as
/// [`super::series::usage_sql`].
pub(super) fn usage_sql(d: Dialect) -> String {
    let p = Params {
        from: d.param(1),
        to: d.param(2),
        lo: d.param(3),
        hi: d.param(4),
        floor: d.param(5),
    };
    let sources = sources(d, &p, Read::Usage);
    let counters = [BANDWIDTH.as_slice(), STARTED.as_slice()].concat();
    let raw: Vec<String> = counters.iter().map(|c| format!("sum(inc_{c}) AS {c}_inc")).collect();
    let rolled_columns: Vec<String> = counters.iter().map(|c| rolled_increase(c, &p.from)).collect();
    let bytes = |c: &str| format!("coalesce({}, 0.0)", d.float(&format!("sum({c}_inc)")));
    let sessions = STARTED
        .iter()
        .map(|c| format!("coalesce({}, 0)", d.int(&format!("sum({c}_inc)"))))
        .collect::<Vec<_>>()
        .join(" + ");
    format!(
        "WITH {KEYS}, {sources}, parts AS ( \
             SELECT bench_id, count(*) AS samples, sum({energy}) AS solar_wh, {raw} \
             FROM i WHERE counted GROUP BY bench_id \
             UNION ALL \
             {rolled} \
         ) \
         SELECT bench_id, {samples} AS samples, coalesce(sum(solar_wh), 0.0) AS solar_wh, \
                {rx} AS rx_bytes, {tx} AS tx_bytes, {sessions} AS sessions_started \
         FROM parts GROUP BY bench_id ORDER BY bench_id",
        energy = energy_sql(d),
        raw = raw.join(", "),
        rolled = rolled(
            d,
            &format!(
                "r.bench_id, r.samples, {}, {}",
                nadd(
                    "r.solar_wh",
                    &format!("CASE WHEN r.prev_ts >= {from} THEN r.solar_wh_first END", from = p.from)
                ),
                rolled_columns.join(", ")
            ),
            &p.lo
        ),
        samples = d.int("sum(samples)"),
        rx = bytes("rx_bytes"),
        tx = bytes("tx_bytes"),
    )
}

/// Parameters: bench id, start of the first minute, end of the last minute to recompute.
/// Recomputes (inserts or replaces) every minute with samples in that range and the next minute
/// with samples after it, each with the sample before it.
pub(super) fn recompute_sql(d: Dialect) -> String {
    let (bench, lo, hi) = (d.param(1), d.param(2), d.param(3));
    let minute = d.bucket_of("ts", &MINUTE_MS.to_string());
    let next_minute_end = d.plus_minute(&d.bucket_of("min(t.ts)", &MINUTE_MS.to_string()));
    let mut extra = vec![
        "bench_id".to_owned(),
        format!("{minute} AS minute"),
        "lag(solar_w) OVER w AS p_solar_w".to_owned(),
    ];
    extra.extend(GAUGES.iter().map(|(g, _)| (*g).to_owned()));
    extra.extend(MAXIMA.iter().map(|m| (*m).to_owned()));
    let source = format!(
        "telemetry WHERE bench_id = {bench} \
         AND ts >= coalesce((SELECT max(t.ts) FROM telemetry t WHERE t.bench_id = {bench} AND t.ts < {lo}), {lo}) \
         AND ts < coalesce((SELECT {next_minute_end} FROM telemetry t WHERE t.bench_id = {bench} AND t.ts >= {hi}), {hi})"
    );
    let increments = increments_ctes(d, &extra.join(", "), &source, "");
    // (column, aggregate over the minute's samples); `p_ts < minute`: the pair with the sample
    // before the minute (one per minute at most), `p_ts >= minute`: pairs inside it.
    const FIRST: &str = "p_ts < minute";
    const INNER: &str = "p_ts >= minute";
    let mut columns: Vec<(String, String)> = vec![
        ("bench_id".into(), "bench_id".into()),
        ("minute".into(), "minute".into()),
        ("samples".into(), "count(*)".into()),
        ("prev_ts".into(), format!("max(CASE WHEN {FIRST} THEN p_ts END)")),
        (
            "first_span_ms".into(),
            format!("max(CASE WHEN {FIRST} THEN span_ms END)"),
        ),
    ];
    for (g, nullable) in GAUGES {
        if nullable {
            columns.push((format!("{g}_n"), format!("count({g})")));
        }
        columns.push((format!("{g}_sum"), format!("sum({g})")));
        columns.push((format!("{g}_min"), format!("min({g})")));
        columns.push((format!("{g}_max"), format!("max({g})")));
    }
    for m in MAXIMA {
        columns.push((format!("{m}_max"), format!("max({m})")));
    }
    for c in COUNTERS {
        columns.push((format!("{c}_inc"), format!("sum(CASE WHEN {INNER} THEN inc_{c} END)")));
        if BANDWIDTH.contains(&c) {
            columns.push((
                format!("{c}_span_ms"),
                format!("sum(CASE WHEN {INNER} AND inc_{c} IS NOT NULL THEN span_ms END)"),
            ));
        }
        columns.push((format!("{c}_first"), format!("max(CASE WHEN {FIRST} THEN inc_{c} END)")));
    }
    let energy = energy_sql(d);
    columns.push(("solar_wh".into(), format!("sum(CASE WHEN {INNER} THEN {energy} END)")));
    columns.push((
        "solar_wh_first".into(),
        format!("max(CASE WHEN {FIRST} THEN {energy} END)"),
    ));

    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let values: Vec<&str> = columns.iter().map(|(_, v)| v.as_str()).collect();
    let updates: Vec<String> = names[2..].iter().map(|n| format!("{n} = excluded.{n}")).collect();
    format!(
        "WITH {increments} \
         INSERT INTO telemetry_minute ({names}) \
         SELECT {values} FROM i WHERE ts >= {lo} GROUP BY bench_id, minute \
         ON CONFLICT (bench_id, minute) DO UPDATE SET {updates}",
        names = names.join(", "),
        values = values.join(", "),
        updates = updates.join(", "),
    )
}

/// Marks of minutes that started before `$1`, the oldest first (so reads get their rollups back
/// from the oldest minute on), at most `$2`.
pub(super) const SELECT_MARKS: &str = "SELECT bench_id, minute, version FROM telemetry_dirty_minutes \
     WHERE minute < $1 ORDER BY minute, bench_id LIMIT $2";

/// Deletes `n` marks `(bench_id, minute, version)`, each only if it still has that version.
pub(super) fn clear_marks_sql(d: Dialect, n: usize) -> String {
    let tuples: Vec<String> = (0..n)
        .map(|i| {
            let k = u8::try_from(3 * i).unwrap_or(u8::MAX);
            format!("({}, {}, {})", d.param(k + 1), d.param(k + 2), d.param(k + 3))
        })
        .collect();
    format!(
        "DELETE FROM telemetry_dirty_minutes WHERE (bench_id, minute, version) IN (VALUES {})",
        tuples.join(", ")
    )
}

/// Most marks one statement clears (three parameters each).
pub(super) const MARKS_PER_CLEAR: usize = 64;

/// Marks of one bench, oldest first, joined into the ranges `[first minute, end of last minute)`
/// to recompute; marks at most [`MERGE_GAP_MS`] apart share a range.
pub(super) fn ranges(marks: &[(String, Time, i64)]) -> Vec<(String, Time, Time)> {
    let mut sorted: Vec<(&str, i64)> = marks
        .iter()
        .map(|(b, m, _)| (b.as_str(), m.0.timestamp_millis()))
        .collect();
    sorted.sort_unstable();
    let mut out: Vec<(String, i64, i64)> = Vec::new();
    for (bench, minute) in sorted {
        match out.last_mut() {
            Some((b, _, end)) if b == bench && minute <= *end + MERGE_GAP_MS => {
                *end = (*end).max(minute + MINUTE_MS);
            }
            _ => out.push((bench.to_owned(), minute, minute + MINUTE_MS)),
        }
    }
    let at = |ms: i64| Time(chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default());
    out.into_iter().map(|(b, lo, hi)| (b, at(lo), at(hi))).collect()
}

impl Backend {
    /// One pass of the rollup maintainer: recomputes the oldest `limit` marked minutes that ended
    /// by `now` (and
    /// their neighbours, see the module doc) and clears their marks unless marked again meanwhile.
    /// Returns how many marks it took.
    pub(super) async fn refresh_rollup_marks(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        let ended_before = Time::stored(now - TimeDelta::milliseconds(MINUTE_MS));
        let marks: Vec<(String, Time, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(SELECT_MARKS)
                .bind(ended_before)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        let recompute: &str = match self.dialect() {
            Dialect::Sqlite => &RECOMPUTE_SQLITE,
            Dialect::Postgres | Dialect::Timescale => &RECOMPUTE_POSTGRES,
        };
        for (bench, lo, hi) in ranges(&marks) {
            on_pool!(self, |pool| {
                sqlx::query(recompute)
                    .bind(&bench)
                    .bind(lo)
                    .bind(hi)
                    .execute(pool)
                    .await?;
            });
        }
        for chunk in marks.chunks(MARKS_PER_CLEAR) {
            let sql = clear_marks_sql(self.dialect(), chunk.len());
            on_pool!(self, |pool| {
                let mut q = sqlx::query(&sql);
                for (bench, minute, version) in chunk {
                    q = q.bind(bench).bind(*minute).bind(*version);
                }
                q.execute(pool).await?;
            });
        }
        Ok(u64::try_from(marks.len()).unwrap_or(u64::MAX))
    }
}

pub(super) static BUCKETS_SQLITE: LazyLock<String> = LazyLock::new(|| buckets_sql(Dialect::Sqlite));
pub(super) static BUCKETS_POSTGRES: LazyLock<String> = LazyLock::new(|| buckets_sql(Dialect::Postgres));
pub(super) static BUCKETS_TIMESCALE: LazyLock<String> = LazyLock::new(|| buckets_sql(Dialect::Timescale));
pub(super) static USAGE_SQLITE: LazyLock<String> = LazyLock::new(|| usage_sql(Dialect::Sqlite));
pub(super) static USAGE_POSTGRES: LazyLock<String> = LazyLock::new(|| usage_sql(Dialect::Postgres));
pub(super) static RECOMPUTE_SQLITE: LazyLock<String> = LazyLock::new(|| recompute_sql(Dialect::Sqlite));
pub(super) static RECOMPUTE_POSTGRES: LazyLock<String> = LazyLock::new(|| recompute_sql(Dialect::Postgres));

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse::<DateTime<Utc>>().unwrap())
    }

    #[test]
    fn bounds_round_inwards_to_whole_minutes() {
        let b = RollupBounds::new(t("2026-11-26T10:00:20Z"), t("2026-11-26T10:05:10Z"));
        assert_eq!(
            (b.floor, b.lo, b.hi),
            (
                t("2026-11-26T10:00:00Z"),
                t("2026-11-26T10:01:00Z"),
                t("2026-11-26T10:05:00Z")
            )
        );
        let b = RollupBounds::new(t("2026-11-26T10:00:00Z"), t("2026-11-26T11:00:00Z"));
        assert_eq!((b.floor, b.lo, b.hi), (b.from, b.from, b.to));
        // Within one minute: no whole minute, `hi` is not before `lo`.
        let b = RollupBounds::new(t("2026-11-26T10:00:20Z"), t("2026-11-26T10:00:40Z"));
        assert_eq!((b.lo, b.hi), (t("2026-11-26T10:01:00Z"), t("2026-11-26T10:01:00Z")));
        // Before 1970 too.
        let b = RollupBounds::new(t("1969-12-31T23:59:30Z"), t("1970-01-01T00:01:00Z"));
        assert_eq!((b.floor, b.lo), (t("1969-12-31T23:59:00Z"), t("1970-01-01T00:00:00Z")));
    }

    #[test]
    fn marks_join_into_ranges_per_bench() {
        let m = |b: &str, s: &str| (b.to_owned(), t(s), 1);
        let got = ranges(&[
            m("b", "2026-11-26T10:00:00Z"),
            m("a", "2026-11-26T10:05:00Z"),
            m("a", "2026-11-26T10:00:00Z"),
            m("a", "2026-11-26T10:16:00Z"),
            m("a", "2026-11-26T10:30:00Z"),
        ]);
        assert_eq!(
            got,
            [
                ("a".into(), t("2026-11-26T10:00:00Z"), t("2026-11-26T10:17:00Z")),
                ("a".into(), t("2026-11-26T10:30:00Z"), t("2026-11-26T10:31:00Z")),
                ("b".into(), t("2026-11-26T10:00:00Z"), t("2026-11-26T10:01:00Z")),
            ]
        );
    }

    #[test]
    fn marks_are_cleared_by_version() {
        assert_eq!(
            clear_marks_sql(Dialect::Sqlite, 2),
            "DELETE FROM telemetry_dirty_minutes WHERE (bench_id, minute, version) IN (VALUES (?1, ?2, ?3), (?4, ?5, ?6))"
        );
    }
}
