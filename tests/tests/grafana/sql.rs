//! Running dashboard SQL the way Grafana does: PostgreSQL's text protocol as the read-only
//! Grafana role, and what a panel needs from the result to draw it.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Column, Connection, Executor, PgConnection, PgPool, Row, TypeInfo, ValueRef};

use super::dashboard::Query;
use super::provisioning::grafana_dir;

/// A query's result as PostgreSQL's text protocol returns it.
#[derive(Debug, Default)]
pub struct Ran {
    /// Name and PostgreSQL type of each column.
    pub columns: Vec<(String, String)>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Ran {
    pub fn column(&self, name: &str) -> Vec<Option<&str>> {
        let i = self
            .columns
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.columns));
        self.rows.iter().map(|r| r[i].as_deref()).collect()
    }

    pub fn numbers(&self, name: &str) -> Vec<f64> {
        self.column(name)
            .into_iter()
            .flatten()
            .map(|v| v.parse().expect("a number"))
            .collect()
    }

    /// The row whose `key` column is `value`.
    pub fn row(&self, key: &str, value: &str) -> BTreeMap<&str, Option<&str>> {
        let i = self.columns.iter().position(|(n, _)| n == key).expect("key column");
        let row = self
            .rows
            .iter()
            .find(|r| r[i].as_deref() == Some(value))
            .unwrap_or_else(|| panic!("no row with {key} = {value}"));
        self.columns
            .iter()
            .map(|(n, _)| n.as_str())
            .zip(row.iter().map(Option::as_deref))
            .collect()
    }
}

pub async fn run(conn: &mut PgConnection, sql: &str) -> Result<Ran, String> {
    let rows = sqlx::raw_sql(sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut ran = Ran::default();
    if let Some(first) = rows.first() {
        ran.columns = first
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
            .collect();
    }
    for row in &rows {
        let mut values = Vec::new();
        for i in 0..row.columns().len() {
            let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
            values.push(if raw.is_null() {
                None
            } else {
                Some(raw.as_str().map_err(|e| e.to_string())?.to_owned())
            });
        }
        ran.rows.push(values);
    }
    Ok(ran)
}

const NUMERIC: &[&str] = &["INT2", "INT4", "INT8", "FLOAT4", "FLOAT8", "NUMERIC"];

/// A time column value in seconds: epoch numbers (`$__timeGroup`) or timestamps.
fn seconds(v: &str, kind: &str) -> Option<f64> {
    if NUMERIC.contains(&kind) {
        return v.parse().ok();
    }
    DateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f%#z")
        .ok()
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

/// What Grafana needs from a result to draw it: a time column in order for time series and
/// timelines, and a numeric value.
pub fn check_shape(q: &Query, ran: &Ran) -> Vec<String> {
    let mut problems = Vec::new();
    let needs_time = q.format == "time_series" || q.panel_type == "state-timeline";
    // An empty result has no columns to check (the text protocol sends none without rows).
    if !needs_time || ran.rows.is_empty() {
        return problems;
    }
    let Some(t) = ran.columns.iter().position(|(n, _)| n == "time") else {
        return vec!["no column named time".into()];
    };
    let kind = &ran.columns[t].1;
    let times: Vec<Option<f64>> = ran
        .rows
        .iter()
        .map(|r| r[t].as_deref().and_then(|v| seconds(v, kind)))
        .collect();
    if times.iter().any(Option::is_none) {
        problems.push(format!("time column ({kind}) has values that are not times"));
    } else if times.windows(2).any(|w| w[0] > w[1]) {
        problems.push("rows are not sorted by time".into());
    }
    if q.format == "time_series"
        && !ran
            .columns
            .iter()
            .any(|(n, k)| n != "time" && NUMERIC.contains(&k.as_str()))
    {
        problems.push("a time series without a numeric column".into());
    }
    problems
}

/// The role in `grafana/postgres/grafana-reader.sql`, created under a unique name and dropped with
/// everything it owns when the test ends (roles are cluster-wide, databases are not).
pub struct ReaderRole {
    name: String,
    password: String,
    db_url: String,
}

impl ReaderRole {
    pub async fn create(pool: &PgPool, db_url: &str) -> Self {
        let suffix = unique_suffix();
        let name = format!("benchfleet_grafana_{suffix}");
        let password = format!("test-only-{suffix}");
        let sql = std::fs::read_to_string(grafana_dir().join("postgres/grafana-reader.sql")).expect("reader role SQL");
        assert!(sql.contains("benchfleet_grafana"));
        // Run twice: the script must be safe to run again.
        for _ in 0..2 {
            pool.execute(sqlx::raw_sql(&sql.replace("benchfleet_grafana", &name)))
                .await
                .expect("grafana-reader.sql runs");
        }
        // What an operator does with \password.
        pool.execute(format!("ALTER ROLE \"{name}\" PASSWORD '{password}'").as_str())
            .await
            .expect("password");
        Self {
            name,
            password,
            db_url: db_url.to_owned(),
        }
    }

    /// Logs in as the role, as Grafana does, in a time zone far from UTC (the SQL must not care).
    pub async fn connect(&self) -> PgConnection {
        let opts = PgConnectOptions::from_str(&self.db_url)
            .expect("database URL")
            .username(&self.name)
            .password(&self.password);
        let mut conn = PgConnection::connect_with(&opts)
            .await
            .expect("log in as the reader role");
        conn.execute("SET TIME ZONE 'Pacific/Auckland'")
            .await
            .expect("time zone");
        conn
    }
}

impl Drop for ReaderRole {
    fn drop(&mut self) {
        let (name, url) = (self.name.clone(), self.db_url.clone());
        // Drop cannot await: a runtime of its own, on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                conn.execute(format!("DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\"").as_str())
                    .await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop role {}: {dropped:?}", self.name);
        }
    }
}

fn unique_suffix() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}
