//! The Grafana dashboards and Prometheus alerts in `grafana/` against the real control plane:
//!
//! - the provisioning and dashboard files are well formed (a strict check of Grafana's model);
//! - every SQL query, with Grafana's macros expanded, runs as the read-only Grafana role on the
//!   schema the real migrations create, filled through MQTT (fleet history, then the simulator
//!   with injected faults; citizens' ideas, acted on through the API), and returns rows that say
//!   what happened; the uptime and participation figures equal the report APIs'; the role cannot
//!   read personal data;
//! - every PromQL expression (panels and alerts) parses and only uses series that a live scrape
//!   of the real binary exposes;
//! - the alert rules pass their promtool unit tests.
//!
//! Grafana itself is not installed here. PostgreSQL tests skip without
//! `BENCHFLEET_TEST_DATABASE_URL` and promtool tests without promtool, except under `CI`.

#[path = "grafana/dashboard.rs"]
mod dashboard;
#[path = "grafana/fleet.rs"]
mod fleet;
#[path = "grafana/interpolate.rs"]
mod interpolate;
#[path = "grafana/participation.rs"]
mod participation;
#[path = "grafana/promql.rs"]
mod promql;
#[path = "grafana/provisioning.rs"]
mod provisioning;
#[path = "grafana/schema.rs"]
mod schema;
#[path = "grafana/sql.rs"]
mod sql;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use control_plane::store;
use dashboard::{Dashboard, Lang, Query};
use interpolate::{Context, VarValue};
use provisioning::{Datasource, grafana_dir};
use sql::{Ran, ReaderRole, check_shape, run};
use sqlx::{Executor, PgPool};
use tests::{ControlPlane, eventually};

/// Metric names the expressions may use although the control plane does not expose them.
const NOT_SCRAPED: &[(&str, &str)] = &[
    // Prometheus synthesises `up` for every target; it is never in /metrics.
    ("up", "added by Prometheus for each scrape target"),
];

/// The dashboards `grafana/` delivers.
const DASHBOARDS: &[&str] = &[
    "benchfleet-bench",
    "benchfleet-control-plane",
    "benchfleet-fleet",
    "benchfleet-participation",
    "benchfleet-uptime",
];

fn load() -> (Vec<Datasource>, Vec<Dashboard>) {
    let dir = grafana_dir();
    let (datasources, problems) = provisioning::datasources(&dir);
    assert!(
        problems.is_empty(),
        "data source provisioning:\n{}",
        problems.join("\n")
    );
    (datasources, dashboard::load(&dir))
}

fn datasource<'d>(datasources: &'d [Datasource], kind: &str) -> &'d Datasource {
    datasources
        .iter()
        .find(|d| d.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} data source"))
}

/// The data source's `timeInterval` (Grafana's lower bound for `$__interval`).
fn time_interval(d: &Datasource) -> chrono::Duration {
    d.json_data["timeInterval"]
        .as_str()
        .and_then(dashboard::parse_duration)
        .unwrap_or_else(|| panic!("data source {} has no timeInterval", d.uid))
}

/// The range a query runs over: its panel's relative time, or the dashboard's default range.
fn range_of(d: &Dashboard, q: &Query) -> chrono::Duration {
    match &q.time_from {
        Some(t) => dashboard::parse_duration(t).expect("timeFrom"),
        None => d.json["time"]["from"]
            .as_str()
            .and_then(dashboard::parse_relative_time)
            .expect("time.from"),
    }
}

/// True when promtool can run; otherwise skips (says so) or, under CI, fails.
fn promtool_or_skip(what: &str) -> bool {
    if promql::promtool_available() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "promtool (Debian package prometheus) must be installed when CI is set"
    );
    eprintln!("skipping {what}: promtool is not installed (apt-get install prometheus)");
    false
}

#[test]
fn dashboards_and_provisioning_are_well_formed() {
    let dir = grafana_dir();
    let (datasources, dashboards) = load();
    let problems = provisioning::dashboard_providers(&dir);
    assert!(problems.is_empty(), "dashboard provisioning:\n{}", problems.join("\n"));
    let uids: Vec<&str> = dashboards.iter().map(Dashboard::uid).collect();
    assert_eq!(
        uids.iter().copied().collect::<BTreeSet<_>>(),
        DASHBOARDS.iter().copied().collect()
    );

    let problems = schema::validate(&dashboards, &datasources);
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // Every panel query is SQL or PromQL against a provisioned data source, and both are used.
    let queries = dashboard::queries(&dashboards, &datasources);
    let targets: usize = dashboards
        .iter()
        .flat_map(Dashboard::panels)
        .map(|p| p["targets"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(queries.iter().filter(|q| q.panel_id.is_some()).count(), targets);
    for lang in [Lang::Sql, Lang::PromQl] {
        assert!(queries.iter().any(|q| q.lang == lang), "no {lang:?} query");
    }

    // Operators find every variable Grafana needs in the operations guide.
    let docs = std::fs::read_to_string(dir.join("../docs/operations.md")).expect("docs/operations.md");
    for var in provisioning::env_vars(&dir) {
        assert!(docs.contains(&var), "docs/operations.md does not explain {var}");
    }
}

#[test]
fn alert_rules_and_scrape_config_pass_promtool() {
    if !promtool_or_skip("the alert rule tests") {
        return;
    }
    let dir = grafana_dir().join("prometheus");
    for args in [
        ["check", "rules", "alerts.yml"].as_slice(),
        &["check", "config", "prometheus.yml"],
        &["test", "rules", "alerts_test.yml"],
    ] {
        let (ok, out) = promql::promtool(&dir, args, None);
        assert!(ok, "promtool {}:\n{out}", args.join(" "));
    }
    // Every alert is unit-tested, firing at least once and staying quiet at least once.
    let rules = provisioning::read_yaml(&dir.join("alerts.yml"));
    let tests = provisioning::read_yaml(&dir.join("alerts_test.yml"));
    let cases: Vec<&serde_json::Value> = tests["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    for rule in rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
    {
        let name = rule["alert"].as_str().expect("alert name");
        assert!(
            rule["annotations"]["summary"].is_string() && rule["annotations"]["description"].is_string(),
            "{name} needs a summary and a description"
        );
        let of_rule = || cases.iter().filter(|c| c["alertname"] == name);
        assert!(
            of_rule().any(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty())),
            "{name} is never tested firing"
        );
        assert!(
            of_rule().any(|c| c["exp_alerts"].as_array().is_some_and(Vec::is_empty)),
            "{name} is never tested quiet"
        );
    }
}

/// Every expression of the dashboards and the alert rules, with Grafana's variables expanded.
fn promql_expressions(datasources: &[Datasource], dashboards: &[Dashboard]) -> Vec<(String, String)> {
    let prometheus = datasource(datasources, provisioning::PROMETHEUS);
    let mut out = Vec::new();
    for q in dashboard::queries(dashboards, datasources)
        .into_iter()
        .filter(|q| q.lang == Lang::PromQl)
    {
        let d = dashboards.iter().find(|d| d.file == q.file).expect("dashboard");
        let vars = d
            .variables()
            .into_iter()
            .filter_map(|v| Some((v["name"].as_str()?.to_owned(), VarValue::Single(current(v)?.into()))))
            .collect();
        let ctx = Context::new(
            Utc::now(),
            range_of(d, &q),
            time_interval(prometheus),
            time_interval(prometheus),
            vars,
        );
        let expr = interpolate::promql(&q.text, &ctx).unwrap_or_else(|e| panic!("{}: {e}", q.label()));
        out.push((q.label(), expr));
    }
    let rules = provisioning::read_yaml(&grafana_dir().join("prometheus/alerts.yml"));
    for g in rules["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            let name = r["alert"].as_str().or(r["record"].as_str()).unwrap_or_default();
            out.push((
                format!("alerts.yml {name}"),
                r["expr"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

/// A single-value variable's saved current value.
fn current(v: &serde_json::Value) -> Option<&str> {
    v["current"]["value"].as_str()
}

#[tokio::test(flavor = "multi_thread")]
async fn promql_uses_only_exposed_series_and_parses() {
    let (datasources, dashboards) = load();
    let exprs = promql_expressions(&datasources, &dashboards);

    // The real binary, with one bench's telemetry and some API traffic, so that labelled series
    // exist. Metrics do not depend on the store: SQLite will do.
    let cp = ControlPlane::start(&[]);
    let db = std::path::PathBuf::from(cp.database_url.trim_start_matches("sqlite://"));
    let _bench = fleet::one_bench(&cp).await;
    fleet::refused(&cp).await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        cp.get(path).await;
    }
    let text = eventually("per-bench series in /metrics", Duration::from_secs(20), || async {
        let text = cp.get("/metrics").await;
        text.contains("benchfleet_bench_sessions_active{").then_some(text)
    })
    .await;
    assert!(db.exists(), "the control plane should use its SQLite store");
    let scrape = promql::parse_scrape(&text).expect("the scrape parses");

    let mut problems = Vec::new();
    for (label, expr) in &exprs {
        let selectors = match promql::selectors(expr) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{label}: {e}"));
                continue;
            }
        };
        if selectors.is_empty() {
            problems.push(format!("{label}: uses no series: {expr}"));
        }
        for s in selectors
            .iter()
            .filter(|s| !NOT_SCRAPED.iter().any(|(n, _)| *n == s.metric))
        {
            problems.extend(
                promql::check_selector(s, &scrape)
                    .into_iter()
                    .map(|p| format!("{label}: {p}")),
            );
        }
    }
    for (name, why) in NOT_SCRAPED {
        assert!(
            !scrape.contains_key(*name),
            "{name} is exposed now; remove it from NOT_SCRAPED ({why})"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    if !promtool_or_skip("parsing PromQL and linting /metrics with promtool") {
        return;
    }
    let rejected = promql::parse_with_promtool(&exprs);
    assert!(rejected.is_empty(), "promtool rejects:\n{}", rejected.join("\n"));
    // prometheus-client writes counters in the OpenMetrics style (HELP on the family name, samples
    // with _total), which promtool's text linter misreads as counters without help text.
    let (_, out) = promql::promtool(&grafana_dir(), &["check", "metrics"], Some(&text));
    let lint: Vec<&str> = out
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("no help text"))
        .collect();
    assert!(lint.is_empty(), "promtool check metrics:\n{}", lint.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_panels_run_as_the_reader_role_on_the_real_schema_and_return_rows() {
    let Some(db) = store::testing::pg_database().await else {
        return;
    };
    let (datasources, dashboards) = load();
    let postgres = datasource(&datasources, provisioning::POSTGRES);
    let timescaledb = postgres.json_data["timescaledb"] == true;

    // The real binary migrates the database and fills `benches`; simulated benches fill the rest.
    let cp = ControlPlane::start_with(Some(db.url()), &[]);
    let pool = PgPool::connect(db.url()).await.expect("connect");
    let _benches = fleet::publish(&cp, &pool).await;
    let role = ReaderRole::create(&pool, db.url()).await;
    let mut conn = role.connect().await;

    // The role reads and nothing else: its transactions are read-only, and even when it asks for
    // a read-write one, it has no right to write.
    let read_only: String = sqlx::query_scalar("SHOW default_transaction_read_only")
        .fetch_one(&mut conn)
        .await
        .expect("SHOW");
    assert_eq!(read_only, "on");
    let writes = [
        "INSERT INTO benches VALUES ('x', 'x', 'x', 0, 0, 60)",
        "DELETE FROM telemetry",
        "CREATE TABLE grafana_was_here (x int)",
    ];
    for write in writes {
        let err = conn.execute(write).await.expect_err(write);
        assert!(err.to_string().contains("read-only transaction"), "{write}: {err}");
    }
    conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        .await
        .expect("read write");
    for write in writes {
        let err = conn.execute(write).await.expect_err(write);
        assert!(err.to_string().contains("permission denied"), "{write}: {err}");
    }
    conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .await
        .expect("read only");

    // No personal data: what citizens wrote and how to reach them, and who the people behind
    // organisations and actions are, stay out of Grafana's reach.
    let ideas: i64 = sqlx::query_scalar("SELECT count(*) FROM ideas")
        .fetch_one(&mut conn)
        .await
        .expect("the role counts ideas");
    assert_eq!(ideas, participation::IDEAS.len() as i64);
    for personal in [
        "SELECT text FROM ideas",
        "SELECT contact FROM ideas",
        "SELECT fingerprint FROM ideas",
        "SELECT * FROM ideas",
        "SELECT contact_email FROM organisations",
        "SELECT contact_phone FROM organisations",
        "SELECT actor FROM idea_events",
        "SELECT internal_note FROM idea_events",
        "SELECT created_by FROM routing_rule_sets",
        "SELECT count(*) FROM routing_audit",
    ] {
        let err = conn.execute(personal).await.expect_err(personal);
        assert!(err.to_string().contains("permission denied"), "{personal}: {err}");
    }

    let queries = dashboard::queries(&dashboards, &datasources);
    let mut problems = Vec::new();
    let mut results: BTreeMap<(String, String), Ran> = BTreeMap::new();
    for d in &dashboards {
        // Variables first: their queries must work, and the panels run with their values.
        let mut vars = BTreeMap::new();
        let mut options: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for q in queries.iter().filter(|q| q.file == d.file && q.panel_id.is_none()) {
            let ctx = Context::new(
                Utc::now(),
                range_of(d, q),
                time_interval(postgres),
                time_interval(postgres),
                BTreeMap::new(),
            );
            let sql = interpolate::sql(&q.text, &ctx, timescaledb).unwrap_or_else(|e| panic!("{}: {e}", q.label()));
            let ran = run(&mut conn, &sql)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}\n{sql}", q.label()));
            let key = if ran.columns.iter().any(|(n, _)| n == "__value") {
                "__value"
            } else {
                &ran.columns[0].0
            };
            let values: Vec<String> = ran.column(key).into_iter().flatten().map(str::to_owned).collect();
            assert!(!values.is_empty(), "{}: no values", q.label());
            let v = d.variable(&q.title).expect("variable");
            let value = if v["includeAll"] == true && v["current"]["value"] == serde_json::json!(["$__all"]) {
                VarValue::Multi(values.clone())
            } else {
                let cur = current(v).unwrap_or_else(|| panic!("{}: no single current value", q.label()));
                assert!(
                    values.iter().any(|x| x == cur),
                    "{}: current value {cur} is not an option",
                    q.label()
                );
                VarValue::Single(cur.to_owned())
            };
            vars.insert(q.title.clone(), value);
            options.insert(q.title.clone(), values);
        }

        let panels = dashboard::panels_by_id(d);
        let mut columns: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for q in queries
            .iter()
            .filter(|q| q.file == d.file && q.panel_id.is_some() && q.lang == Lang::Sql)
        {
            let ctx = Context::new(
                Utc::now(),
                range_of(d, q),
                time_interval(postgres),
                time_interval(postgres),
                vars.clone(),
            );
            let sql = match interpolate::sql(&q.text, &ctx, timescaledb) {
                Ok(sql) => sql,
                Err(e) => {
                    problems.push(format!("{}: {e}", q.label()));
                    continue;
                }
            };
            let ran = match run(&mut conn, &sql).await {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("{}: {e}\n{sql}", q.label()));
                    continue;
                }
            };
            if ran.rows.is_empty() {
                problems.push(format!("{}: returns no rows\n{sql}", q.label()));
                continue;
            }
            problems.extend(check_shape(q, &ran).into_iter().map(|p| format!("{}: {p}", q.label())));
            let id = q.panel_id.expect("panel query");
            columns
                .entry(id)
                .or_default()
                .extend(ran.columns.iter().map(|(n, _)| n.clone()));
            results.insert((d.file.clone(), result_key(q)), ran);

            // Every other value of a single-value variable must work too (rows optional: a
            // bench that never reported has none).
            for (name, values) in &options {
                if !matches!(vars.get(name), Some(VarValue::Single(_))) || !variable_used(&q.text, name) {
                    continue;
                }
                for value in values {
                    let mut other = ctx.clone();
                    other.vars.insert(name.clone(), VarValue::Single(value.clone()));
                    let sql = interpolate::sql(&q.text, &other, timescaledb).expect("expands");
                    match run(&mut conn, &sql).await {
                        Ok(ran) => {
                            let label = format!("{} (${name} = {value})", q.label());
                            problems.extend(check_shape(q, &ran).into_iter().map(|p| format!("{label}: {p}")));
                            results.insert((d.file.clone(), format!("{} [{value}]", q.title)), ran);
                        }
                        Err(e) => problems.push(format!("{} (${name} = {value}): {e}", q.label())),
                    }
                }
            }
        }
        for (id, cols) in &columns {
            let p = panels[id];
            problems.extend(
                dashboard::check_columns(p, cols)
                    .into_iter()
                    .map(|m| format!("{} panel {id} {}: {m}", d.file, p["title"])),
            );
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    check_values(&results);
    check_participation(&results);
    // The deadlines passed for real, and the control plane counted them.
    for (kind, why) in [
        ("confirm", "trebinje-01's offer expired"),
        ("act", "zepce-01's idea went overdue"),
    ] {
        let series = format!("benchfleet_idea_deadlines_expired_total{{status=\"{kind}\"}}");
        assert_eq!(cp.metric(&series).await, Some(1.0), "{why}");
    }
    assert_eq!(cp.metric("benchfleet_ideas_awaiting_operator").await, Some(4.0));
    same_as_the_uptime_report(&cp, &mut conn, &dashboards, &datasources).await;
    same_as_the_ideas_report(&cp, &mut conn, &dashboards, &datasources).await;
    drop(conn);
    drop(role);
}

/// A panel's first query goes by the panel's title, the others add their refId: `Title (B)`.
fn result_key(q: &Query) -> String {
    if q.ref_id == "A" {
        q.title.clone()
    } else {
        format!("{} ({})", q.title, q.ref_id)
    }
}

fn variable_used(text: &str, name: &str) -> bool {
    dashboard::variable_refs(text).iter().any(|n| n == name)
}

/// The numbers on the dashboards say what happened to the fleet.
fn check_values(results: &BTreeMap<(String, String), Ran>) {
    let get = |file: &str, title: &str| {
        results
            .get(&(file.to_owned(), title.to_owned()))
            .unwrap_or_else(|| panic!("no result for {file} {title:?}"))
    };
    let number = |v: Option<&str>| v.map(|v| v.parse::<f64>().expect("a number"));

    let map = get("fleet-overview.json", "Benches by state");
    assert_eq!(map.rows.len(), 12, "every registered bench is on the map");
    for (bench, state) in [
        (fleet::NEVER_SEEN, "never_seen"),
        (fleet::MOSTAR, "sleeping"),
        (fleet::TREBINJE, "offline"),
    ] {
        assert_eq!(map.row("bench", bench)["state"], Some(state), "{bench}");
    }
    assert_eq!(map.row("bench", fleet::ZEPCE)["municipality"], Some("Žepče"));
    assert_eq!(map.row("bench", fleet::NEVER_SEEN)["state_code"], Some("4"));

    let faults = get("fleet-overview.json", "Benches with faults");
    assert_eq!(faults.row("bench", fleet::MOSTAR)["faults"], Some("sensor_stuck"));
    assert!(
        faults.row("bench", fleet::ZEPCE)["faults"].is_some_and(|f| f.contains("battery_failure")),
        "the simulator's battery failure"
    );

    // Counters reset on reboots (mostar-01 in its history, maglaj-01 live, and where history
    // meets the simulator): rates must never go negative, for any bench.
    let mut checked = 0;
    for ((file, title), ran) in results {
        if file != "bench-detail.json" {
            continue;
        }
        let columns: &[&str] = if title.starts_with("Bandwidth") {
            &["received", "sent"]
        } else if title.starts_with("Sessions started per hour") {
            &["Wi-Fi", "USB", "kiosk"]
        } else {
            continue;
        };
        if ran.rows.is_empty() {
            continue;
        }
        for c in columns {
            assert!(
                ran.numbers(c).iter().all(|v| *v >= 0.0),
                "{title}: negative {c} after a reboot"
            );
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        2 + 2 * 11,
        "bandwidth and sessions: the default bench and each that reported"
    );
    let received = get("bench-detail.json", "Bandwidth").numbers("received");
    assert!(received.len() > 100, "{} bandwidth points", received.len());
    let wifi = get("bench-detail.json", "Sessions started per hour").numbers("Wi-Fi");
    assert!(wifi.iter().sum::<f64>() > 0.0);
    let live = get("bench-detail.json", &format!("Bandwidth [{}]", fleet::MAGLAJ));
    assert!(live.rows.len() > 100, "maglaj-01: history and live samples");

    let timeline = get("bench-detail.json", "Status timeline");
    assert_eq!(timeline.column("state"), [Some("online"), Some("sleeping")]);
    let faults = get("bench-detail.json", "Faults in range");
    assert_eq!(faults.column("fault"), [Some("sensor_stuck")]);
    assert_eq!(faults.column("samples"), [Some("31")]);

    let per_bench = get("uptime-sla.json", "Availability per bench");
    assert_eq!(per_bench.rows.len(), 12);
    let availability = |bench| number(per_bench.row("bench", bench)["availability"]);
    assert_eq!(
        availability(fleet::NEVER_SEEN),
        None,
        "never seen: no availability at all"
    );
    assert!(availability(fleet::TREBINJE).is_some_and(|a| a < 100.0));
    assert!(availability(fleet::RAVNO).is_some_and(|a| a < 100.0));
    let best = per_bench.numbers("availability").into_iter().fold(0.0, f64::max);
    assert_eq!(best, 100.0, "most benches were never down");
    // Planned sleep is not downtime.
    let mostar = per_bench.row("bench", fleet::MOSTAR);
    assert_eq!(number(mostar["availability"]), Some(100.0));
    assert!(number(mostar["planned_sleep"]).is_some_and(|s| s > 0.0));
    assert_eq!(number(mostar["downtime"]), Some(0.0));

    let periods = get("uptime-sla.json", "Down periods");
    assert!(
        periods.row("bench", fleet::RAVNO)["ended"].is_some(),
        "ravno-01 came back"
    );
    assert_eq!(
        periods.row("bench", fleet::TREBINJE)["ended"],
        None,
        "trebinje-01 is still down"
    );
    let outages = periods
        .column("kind")
        .into_iter()
        .filter(|k| *k == Some("outage"))
        .count();
    assert_eq!(
        get("uptime-sla.json", "Outages").numbers("outages"),
        [outages as f64],
        "the count and the list agree"
    );
    let fleet_availability = get("uptime-sla.json", "Fleet availability").numbers("availability");
    assert!(
        fleet_availability[0] > 50.0 && fleet_availability[0] < 100.0,
        "{fleet_availability:?}"
    );
    // One month, or two when the test runs across midnight at the turn of a month.
    assert!((1..=2).contains(&get("uptime-sla.json", "Monthly availability").rows.len()));
}

/// The Uptime & SLA dashboard and the API's uptime report agree, bench by bench, over the same
/// period (ending a little in the past, so that every status change before it is stored).
async fn same_as_the_uptime_report(
    cp: &ControlPlane,
    conn: &mut sqlx::PgConnection,
    dashboards: &[Dashboard],
    datasources: &[Datasource],
) {
    let d = dashboards
        .iter()
        .find(|d| d.uid() == "benchfleet-uptime")
        .expect("uptime dashboard");
    let postgres = datasource(datasources, provisioning::POSTGRES);
    let all: Vec<String> = sqlx::query_scalar("SELECT DISTINCT municipality FROM benches")
        .fetch_all(&mut *conn)
        .await
        .expect("municipalities");
    let vars = BTreeMap::from([("municipality".to_owned(), VarValue::Multi(all))]);
    let ctx = Context::new(
        Utc::now() - chrono::Duration::seconds(3),
        chrono::Duration::days(30),
        time_interval(postgres),
        time_interval(postgres),
        vars,
    );
    let queries = dashboard::queries(dashboards, datasources);
    let mut ran = BTreeMap::new();
    for title in ["Availability per bench", "Fleet availability", "Outages"] {
        let q = queries
            .iter()
            .find(|q| q.file == d.file && q.title == title)
            .expect("panel");
        let sql = interpolate::sql(&q.text, &ctx, false).expect("expands");
        ran.insert(title, run(conn, &sql).await.expect("runs"));
    }

    let token = cp.token("viewer", "grafana-test", &[]);
    let stamp = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let url = format!(
        "{}/api/v1/reports/uptime?from={}&to={}",
        cp.api,
        stamp(ctx.from),
        stamp(ctx.to)
    );
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET uptime report");
    assert!(response.status().is_success(), "{url}: {}", response.status());
    let report: protocol::api::UptimeReport = response.json().await.expect("uptime report JSON");
    assert_eq!(report.to, ctx.to, "the report covers the same period");

    let close = |a: Option<f64>, b: Option<f64>, tolerance: f64| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= tolerance,
        (None, None) => true,
        _ => false,
    };
    let per_bench = &ran["Availability per bench"];
    assert_eq!(per_bench.rows.len(), report.benches.len());
    for b in &report.benches {
        let row = per_bench.row("bench", &b.bench_id);
        let num = |k: &str| row[k].map(|v| v.parse::<f64>().expect("number"));
        let f = &b.figures;
        assert!(
            close(num("availability"), f.availability_pct, 0.01),
            "{}: dashboard {:?} %, report {:?} %",
            b.bench_id,
            num("availability"),
            f.availability_pct
        );
        assert!(
            close(num("downtime"), Some(f.offline_minutes * 60.0), 0.1),
            "{}: downtime",
            b.bench_id
        );
        assert!(
            close(num("planned_sleep"), Some(f.sleeping_minutes * 60.0), 0.1),
            "{}: sleep",
            b.bench_id
        );
    }
    let fleet = ran["Fleet availability"].numbers("availability").first().copied();
    assert!(
        close(fleet, report.total.availability_pct, 0.01),
        "fleet: {fleet:?} vs {:?}",
        report.total.availability_pct
    );
    assert_eq!(ran["Outages"].numbers("outages"), [f64::from(report.total.outages)]);
}

/// The participation dashboard counts what the ideas of `participation` went through.
fn check_participation(results: &BTreeMap<(String, String), Ran>) {
    let get = |title: &str| {
        results
            .get(&("participation.json".to_owned(), title.to_owned()))
            .unwrap_or_else(|| panic!("no result for participation.json {title:?}"))
    };
    let ideas = participation::IDEAS;
    assert_eq!(get("Ideas received").numbers("ideas"), [ideas.len() as f64]);
    // 3 confirmed (completed, confirmed, in action) of 8 (the duplicate and the rejected left out).
    assert_eq!(get("Confirmed").numbers("confirmed"), [37.5]);
    let median = get("Median time to confirm").numbers("median");
    assert!(median.len() == 1 && median[0] > 0.0, "{median:?}");

    // Every state of every idea lands in its municipality's and its category's bar.
    let per_municipality = get("Ideas per municipality");
    assert_eq!(per_municipality.rows.len(), 12, "every municipality, with ideas or not");
    let per_category = get("Ideas per category");
    let fleet = protocol::Fleet::link4();
    let mut by_municipality: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    let mut by_category: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for i in &ideas {
        let municipality = fleet.get(i.bench).expect("bench").municipality.as_str();
        *by_municipality.entry((municipality, i.ends)).or_default() += 1.0;
        *by_category.entry((i.category, i.ends)).or_default() += 1.0;
    }
    let count = |ran: &Ran, key: &str, value: &str, state: &str| {
        ran.row(key, value)[state]
            .map(|v| v.parse::<f64>().expect("a count"))
            .expect("a count")
    };
    for b in fleet.iter() {
        for state in protocol::IdeaState::ALL.map(protocol::IdeaState::as_str) {
            let want = by_municipality
                .get(&(b.municipality.as_str(), state))
                .copied()
                .unwrap_or(0.0);
            assert_eq!(
                count(per_municipality, "municipality", &b.municipality, state),
                want,
                "{} {state}",
                b.municipality
            );
        }
    }
    assert_eq!(
        per_category.column("category"),
        ["culture", "environment", "infrastructure", "social", "youth"].map(Some)
    );
    for ((category, state), want) in &by_category {
        assert_eq!(
            count(per_category, "category", category, state),
            *want,
            "{category} {state}"
        );
    }

    let received: f64 = get("Ideas over time").numbers("received").iter().sum();
    assert_eq!(received, ideas.len() as f64);
    let confirmed: f64 = get("Ideas over time (B)").numbers("confirmed").iter().sum();
    assert_eq!(confirmed, 3.0);

    let speed = get("Time to confirm per organisation");
    let organisations: BTreeSet<&str> = speed.column("organisation").into_iter().flatten().collect();
    assert_eq!(
        organisations,
        BTreeSet::from([participation::ZELENI, participation::DOLINA]),
        "only organisations that confirmed"
    );
    let confirmed_by = |name: &str| count(speed, "organisation", name, "confirmed");
    assert_eq!(confirmed_by(participation::ZELENI), 2.0);
    assert_eq!(confirmed_by(participation::DOLINA), 1.0);
    assert!(speed.numbers("median").iter().all(|m| *m > 0.0));

    let open = get("Open ideas per organisation");
    assert_eq!(
        open.rows.len(),
        2,
        "Trebinje's organisation let its idea escalate: nothing open"
    );
    for (org, state, want) in [
        (participation::ZELENI, "offered", 1.0),
        (participation::ZELENI, "confirmed", 1.0),
        (participation::ZELENI, "overdue", 0.0),
        (participation::DOLINA, "in_action", 1.0),
        (participation::DOLINA, "overdue", 1.0),
    ] {
        assert_eq!(count(open, "organisation", org, state), want, "{org} {state}");
    }

    let waiting = get("Waiting for operators");
    let mut states: Vec<&str> = waiting.column("state").into_iter().flatten().collect();
    states.sort_unstable();
    assert_eq!(states, ["escalated", "escalated", "unroutable", "unroutable"]);
    let year = Utc::now().format("%Y").to_string();
    for prefix in ["PRI", "RAV", "TRE", "ZAV"] {
        let code = format!("{prefix}-{year}-0001");
        assert!(
            waiting.column("code").contains(&Some(code.as_str())),
            "{code} is waiting"
        );
    }
}

/// The participation dashboard and the API's ideas report agree over the same period (ending a
/// little in the past, after every idea arrived).
async fn same_as_the_ideas_report(
    cp: &ControlPlane,
    conn: &mut sqlx::PgConnection,
    dashboards: &[Dashboard],
    datasources: &[Datasource],
) {
    let d = dashboards
        .iter()
        .find(|d| d.uid() == "benchfleet-participation")
        .expect("participation dashboard");
    let postgres = datasource(datasources, provisioning::POSTGRES);
    let all: Vec<String> = sqlx::query_scalar("SELECT DISTINCT municipality FROM benches")
        .fetch_all(&mut *conn)
        .await
        .expect("municipalities");
    let vars = BTreeMap::from([("municipality".to_owned(), VarValue::Multi(all))]);
    let ctx = Context::new(
        Utc::now() - chrono::Duration::seconds(1),
        chrono::Duration::days(30),
        time_interval(postgres),
        time_interval(postgres),
        vars,
    );
    let queries = dashboard::queries(dashboards, datasources);
    let mut ran = BTreeMap::new();
    for title in [
        "Ideas received",
        "Ideas per municipality",
        "Ideas per category",
        "Time to confirm per organisation",
    ] {
        let q = queries
            .iter()
            .find(|q| q.file == d.file && q.title == title)
            .expect("panel");
        let sql = interpolate::sql(&q.text, &ctx, false).expect("expands");
        ran.insert(title, run(conn, &sql).await.expect("runs"));
    }

    let token = cp.token("operator", "grafana-test", &[]);
    let stamp = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let url = format!(
        "{}/api/v1/reports/ideas?from={}&to={}",
        cp.api,
        stamp(ctx.from),
        stamp(ctx.to)
    );
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET ideas report");
    assert!(response.status().is_success(), "{url}: {}", response.status());
    let report: serde_json::Value = response.json().await.expect("ideas report JSON");

    assert_eq!(
        ran["Ideas received"].numbers("ideas"),
        [report["total"].as_f64().expect("total")]
    );
    // The report lists the states that occur; the dashboard has a column for each state.
    for (panel, key, section) in [
        ("Ideas per municipality", "municipality", "by_municipality"),
        ("Ideas per category", "category", "by_category"),
    ] {
        let r = &ran[panel];
        let mut from_dashboard = BTreeMap::new();
        for value in r.column(key).into_iter().flatten() {
            let row = r.row(key, value);
            for state in protocol::IdeaState::ALL.map(protocol::IdeaState::as_str) {
                let n: i64 = row[state].expect("a count").parse().expect("a number");
                if n > 0 {
                    from_dashboard.insert((value.to_owned(), state.to_owned()), n);
                }
            }
        }
        let mut from_report = BTreeMap::new();
        for (value, states) in report[section].as_object().expect(section) {
            for (state, n) in states.as_object().expect("states") {
                from_report.insert((value.clone(), state.clone()), n.as_i64().expect("count"));
            }
        }
        assert_eq!(from_dashboard, from_report, "{panel} and the report's {section}");
    }
    let speed = &ran["Time to confirm per organisation"];
    let confirmations = report["confirmations"].as_array().expect("confirmations");
    assert_eq!(speed.rows.len(), confirmations.len());
    for c in confirmations {
        let row = speed.row("org", c["org_id"].as_str().expect("org_id"));
        let num = |k: &str| row[k].map(|v| v.parse::<f64>().expect("number"));
        assert_eq!(num("confirmed"), c["confirmed"].as_f64(), "{c}");
        assert_eq!(row["organisation"], c["name"].as_str(), "{c}");
        let (dashboard, api) = (
            num("median").expect("median"),
            c["median_seconds"].as_f64().expect("median"),
        );
        // The report counts whole milliseconds.
        assert!(
            (dashboard - api).abs() < 0.002,
            "{c}: dashboard {dashboard} s, report {api} s"
        );
    }
}
