//! What Grafana does to a query before the database or Prometheus sees it: template variables,
//! interval variables, and (for SQL) the PostgreSQL data source's macros, expanded the way
//! Grafana 11 expands them (`pkg/tsdb/grafana-postgresql-datasource/macros.go` and sqleng's
//! `Interpolate`), so the tests run the SQL that Grafana would run.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};

use super::dashboard::parse_duration;

/// The value a template variable has for one run.
#[derive(Debug, Clone, PartialEq)]
pub enum VarValue {
    /// A single-value variable.
    Single(String),
    /// A multi-value or include-all variable: Grafana quotes each value for SQL.
    Multi(Vec<String>),
}

/// Everything a query is expanded with.
#[derive(Debug, Clone)]
pub struct Context {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `$__interval`.
    pub interval: Duration,
    /// The Prometheus data source's scrape interval, for `$__rate_interval`.
    pub scrape_interval: Duration,
    pub vars: BTreeMap<String, VarValue>,
}

impl Context {
    /// A context for a range ending now, with `$__interval` as Grafana picks it for a panel about
    /// 1000 pixels wide, never below `min_interval` (the data source's `timeInterval`).
    pub fn new(
        now: DateTime<Utc>,
        back: Duration,
        min_interval: Duration,
        scrape_interval: Duration,
        vars: BTreeMap<String, VarValue>,
    ) -> Self {
        let raw = back / 1000;
        // Grafana's times are JavaScript dates: milliseconds.
        let now = now.trunc_subsecs(3);
        Self {
            from: now - back,
            to: now,
            interval: round_interval(raw).max(min_interval),
            scrape_interval,
            vars,
        }
    }
}

/// Grafana's `roundInterval`: a computed interval snaps to a nice one (limits in seconds).
fn round_interval(d: Duration) -> Duration {
    const STEPS: &[(f64, i64)] = &[
        (1.5, 1),
        (3.5, 2),
        (7.5, 5),
        (12.5, 10),
        (17.5, 15),
        (25.0, 20),
        (45.0, 30),
        (90.0, 60),
        (210.0, 120),
        (450.0, 300),
        (750.0, 600),
        (1050.0, 900),
        (1500.0, 1200),
        (2700.0, 1800),
        (5400.0, 3600),
        (9000.0, 7200),
        (12_600.0, 10_800),
        (32_400.0, 21_600),
        (86_400.0, 43_200),
        (604_800.0, 86_400),
        (1_814_400.0, 604_800),
    ];
    let secs = d.num_milliseconds() as f64 / 1000.0;
    let step = STEPS
        .iter()
        .find(|(limit, _)| secs <= *limit)
        .map_or(2_592_000, |(_, s)| *s);
    Duration::seconds(step)
}

/// Grafana's `gtime.FormatInterval`: the largest whole unit, e.g. `2m`, `1h`, `7d`.
pub fn format_interval(d: Duration) -> String {
    let ms = d.num_milliseconds();
    let units = [
        (365 * 86_400_000, "y"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
        (1, "ms"),
    ];
    units
        .iter()
        .find(|(u, _)| ms >= *u)
        .map_or_else(|| "1ms".to_owned(), |(u, name)| format!("{}{name}", ms / u))
}

/// Replaces variables: `builtin` gives the value of a `$__name` it knows (None leaves it, for
/// the SQL macros), `format` renders a template variable's value.
fn expand(
    text: &str,
    ctx: &Context,
    builtin: impl Fn(&str) -> Option<String>,
    format: impl Fn(&VarValue) -> String,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let at = &rest[i..];
        let (name, len) = if let Some(inner) = at.strip_prefix("${") {
            let end = inner.find('}').ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            if inner[..end].contains([':', '.']) {
                return Err(format!(
                    "variable formats are not expanded by this test: {}",
                    &inner[..end]
                ));
            }
            (&inner[..end], end + 3)
        } else if let Some(inner) = at.strip_prefix("[[") {
            let end = inner.find("]]").ok_or_else(|| format!("unclosed [[ in {text:?}"))?;
            (&inner[..end], end + 4)
        } else if let Some(inner) = at.strip_prefix('$') {
            let end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            (&inner[..end], end + 1)
        } else {
            out.push('[');
            rest = &at[1..];
            continue;
        };
        if name.is_empty() {
            out.push_str(&at[..len]);
        } else if name.starts_with("__") {
            match builtin(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&at[..len]),
            }
        } else {
            let value = ctx.vars.get(name).ok_or_else(|| format!("no value for ${name}"))?;
            out.push_str(&format(value));
        }
        rest = &at[len..];
    }
    out.push_str(rest);
    Ok(out)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A SQL query as Grafana sends it to PostgreSQL. `timescaledb` is the data source's
/// `jsonData.timescaledb` (it changes `$__timeGroup`).
pub fn sql(text: &str, ctx: &Context, timescaledb: bool) -> Result<String, String> {
    // Frontend: template variables. Grafana doubles quotes in a single value and quotes each value
    // of a multi-value variable (SqlDatasource.interpolateVariable).
    let quoted = |v: &str| format!("'{}'", v.replace('\'', "''"));
    // Backend, sqleng.Interpolate: the interval variables.
    let builtin = |name: &str| match name {
        "__interval_ms" => Some(ctx.interval.num_milliseconds().to_string()),
        "__interval" => Some(format_interval(ctx.interval)),
        _ => None,
    };
    let sql = expand(text, ctx, builtin, |v| match v {
        VarValue::Single(s) => s.replace('\'', "''"),
        VarValue::Multi(vs) => vs.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(","),
    })?;
    // Backend, the macro engine: `\$([_a-zA-Z0-9]+)\(([^\)]*)\)`.
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let Some(args_and_rest) = after[name_len..].strip_prefix('(') else {
            return Err(format!("unexpanded ${name} in {sql:?}"));
        };
        let close = args_and_rest
            .find(')')
            .ok_or_else(|| format!("unclosed macro ${name}"))?;
        let args: Vec<&str> = args_and_rest[..close].split(',').map(str::trim).collect();
        let tail = &args_and_rest[close + 1..];
        // Grafana < 5.3 compatibility, kept by Grafana: `$__timeGroup(...),` means the alias form.
        let name = if name == "__timeGroup" && tail.starts_with(',') {
            "__timeGroupAlias"
        } else {
            name
        };
        out.push_str(&macro_sql(name, &args, ctx, timescaledb)?);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

fn macro_sql(name: &str, args: &[&str], ctx: &Context, timescaledb: bool) -> Result<String, String> {
    let column = || {
        args.first()
            .filter(|a| !a.is_empty())
            .copied()
            .ok_or_else(|| format!("missing time column argument for macro {name}"))
    };
    let (from, to) = (rfc3339(ctx.from), rfc3339(ctx.to));
    Ok(match name {
        "__time" => format!("{} AS \"time\"", column()?),
        "__timeEpoch" => format!("extract(epoch from {}) as \"time\"", column()?),
        "__timeFilter" => format!("{} BETWEEN '{from}' AND '{to}'", column()?),
        "__timeFrom" => format!("'{from}'"),
        "__timeTo" => format!("'{to}'"),
        "__timeGroup" | "__timeGroupAlias" => {
            if args.len() < 2 {
                return Err(format!("macro {name} needs time column and interval"));
            }
            let interval = args[1].trim_matches('\'');
            let secs = parse_duration(interval)
                .ok_or_else(|| format!("error parsing interval {}", args[1]))?
                .num_seconds() as f64;
            if args.len() > 3 {
                return Err(format!("macro {name}: too many arguments"));
            }
            let group = if timescaledb {
                format!("time_bucket('{secs:.3}s',{})", args[0])
            } else {
                format!("floor(extract(epoch from {})/{secs})*{secs}", args[0])
            };
            if name == "__timeGroupAlias" {
                format!("{group} AS \"time\"")
            } else {
                group
            }
        }
        "__unixEpochFrom" => ctx.from.timestamp().to_string(),
        "__unixEpochTo" => ctx.to.timestamp().to_string(),
        "__unixEpochFilter" => {
            let c = column()?;
            format!("{c} >= {} AND {c} <= {}", ctx.from.timestamp(), ctx.to.timestamp())
        }
        other => return Err(format!("unknown macro ${other}")),
    })
}

/// A PromQL expression as Grafana sends it to Prometheus.
pub fn promql(text: &str, ctx: &Context) -> Result<String, String> {
    let scrape = ctx.scrape_interval;
    let rate_interval = (ctx.interval + scrape).max(scrape * 4);
    let range_s = (ctx.to - ctx.from).num_seconds();
    let builtin = |name: &str| match name {
        "__rate_interval_ms" => Some(rate_interval.num_milliseconds().to_string()),
        "__rate_interval" => Some(format_interval(rate_interval)),
        "__interval_ms" => Some(ctx.interval.num_milliseconds().to_string()),
        "__interval" => Some(format_interval(ctx.interval)),
        "__range_ms" => Some((range_s * 1000).to_string()),
        "__range_s" => Some(range_s.to_string()),
        "__range" => Some(format!("{range_s}s")),
        _ => None,
    };
    let expr = expand(text, ctx, builtin, |v| match v {
        VarValue::Single(s) => s.clone(),
        VarValue::Multi(vs) => format!("({})", vs.join("|")),
    })?;
    if let Some(i) = expr.find('$') {
        return Err(format!("unexpanded variable at {:?}", &expr[i..]));
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn ctx() -> Context {
        let to = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        Context {
            from: to - Duration::hours(6),
            to,
            interval: Duration::minutes(5),
            scrape_interval: Duration::seconds(15),
            vars: BTreeMap::from([
                ("bench".into(), VarValue::Single("o'brien-01".into())),
                (
                    "municipality".into(),
                    VarValue::Multi(vec!["Žepče".into(), "Mostar".into()]),
                ),
            ]),
        }
    }

    #[test]
    fn sql_macros_expand_as_in_grafana() {
        let q = "SELECT $__timeGroupAlias(ts, $__interval), avg(x) FROM t \
                 WHERE bench_id = '$bench' AND m IN ($municipality) AND $__timeFilter(ts) \
                 AND ts > $__timeFrom()::timestamptz - interval '1 hour' AND ts < $__timeTo() \
                 GROUP BY $__timeGroup(ts, 1h) LIMIT $__interval_ms";
        assert_eq!(
            sql(q, &ctx(), false).unwrap(),
            "SELECT floor(extract(epoch from ts)/300)*300 AS \"time\", avg(x) FROM t \
             WHERE bench_id = 'o''brien-01' AND m IN ('Žepče','Mostar') \
             AND ts BETWEEN '2026-11-26T06:00:00Z' AND '2026-11-26T12:00:00Z' \
             AND ts > '2026-11-26T06:00:00Z'::timestamptz - interval '1 hour' AND ts < '2026-11-26T12:00:00Z' \
             GROUP BY floor(extract(epoch from ts)/3600)*3600 LIMIT 300000"
        );
        assert_eq!(
            sql("SELECT $__timeGroupAlias(ts, 1h)", &ctx(), true).unwrap(),
            "SELECT time_bucket('3600.000s',ts) AS \"time\""
        );
    }

    #[test]
    fn unknown_macros_and_variables_fail() {
        assert!(sql("SELECT $__timefilter(ts)", &ctx(), false).is_err());
        assert!(sql("SELECT '$nobench'", &ctx(), false).is_err());
        assert!(promql("x{bench=\"$nobench\"}", &ctx()).is_err());
        assert!(promql("rate(x[$__rate_intervall])", &ctx()).is_err());
        assert!(sql("SELECT $__timeGroupAlias(ts, $__intervall)", &ctx(), false).is_err());
    }

    #[test]
    fn promql_interval_variables() {
        assert_eq!(
            promql(
                "sum(rate(x{bench=\"$bench\"}[$__rate_interval])) + increase(y[$__range])",
                &ctx()
            )
            .unwrap(),
            "sum(rate(x{bench=\"o'brien-01\"}[5m])) + increase(y[21600s])"
        );
    }

    #[test]
    fn intervals_round_and_format_like_grafana() {
        assert_eq!(format_interval(Duration::seconds(90)), "1m");
        assert_eq!(format_interval(Duration::days(400)), "1y");
        assert_eq!(round_interval(Duration::seconds(86)), Duration::minutes(1));
        assert_eq!(round_interval(Duration::seconds(130)), Duration::minutes(2));
        assert_eq!(round_interval(Duration::seconds(95)), Duration::minutes(2));
        let c = Context::new(
            Utc::now(),
            Duration::days(365),
            Duration::minutes(1),
            Duration::seconds(15),
            BTreeMap::new(),
        );
        assert_eq!(c.interval, Duration::hours(6));
    }
}
