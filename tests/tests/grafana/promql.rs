//! PromQL: the series selectors an expression uses, the samples of a `/metrics` scrape, and
//! promtool (Debian's `prometheus` package) to parse expressions, lint the scrape and run the
//! alert rules' unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// `metric{label op "value", ...}` as written in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub label: String,
    pub op: String,
    pub value: String,
}

/// Keywords and operators that look like identifiers but are not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "Inf",
    "NaN",
    "group_left",
    "group_right",
];
/// Aggregation operators: never metric names, and `by`/`without` may sit between them and `(`.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Modifiers followed by a parenthesised label list.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Every series selector in `expr`, in order. Functions, aggregations, label lists, durations and
/// strings are skipped; a selector without a metric name is an error (the checks need names).
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i)?;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // Numbers and durations: 0.95, 1e3, 5m, 1h30m.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_ws(i);
            if LABEL_LISTS.contains(&word.as_str()) && chars.get(next) == Some(&'(') {
                i = chars[next..]
                    .iter()
                    .position(|&c| c == ')')
                    .map(|p| next + p + 1)
                    .ok_or("unclosed label list")?;
            } else if KEYWORDS.contains(&word.as_str())
                || AGGREGATIONS.contains(&word.as_str())
                || chars.get(next) == Some(&'(')
            {
                // An operator keyword, or a function or aggregation: its arguments follow.
            } else {
                let mut matchers = Vec::new();
                if chars.get(next) == Some(&'{') {
                    (matchers, i) = parse_matchers(&chars, next)?;
                }
                out.push(Selector { metric: word, matchers });
            }
        } else if c == '{' {
            let (matchers, end) = parse_matchers(&chars, i)?;
            let name = matchers.iter().find(|m| m.label == "__name__" && m.op == "=");
            let Some(name) = name else {
                return Err(format!("a selector without a metric name in {expr:?}"));
            };
            out.push(Selector {
                metric: name.value.clone(),
                matchers: matchers.iter().filter(|m| m.label != "__name__").cloned().collect(),
            });
            i = end;
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// The index after the string literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            return Ok(i + 1);
        }
        i += 1;
    }
    Err("unclosed string".into())
}

/// `{a="x", b=~"y|z"}` starting at the `{`; returns the matchers and the index after `}`.
fn parse_matchers(chars: &[char], open: usize) -> Result<(Vec<Matcher>, usize), String> {
    let mut out = Vec::new();
    let mut i = open + 1;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        match chars.get(i) {
            None => return Err("unclosed {".into()),
            Some('}') => return Ok((out, i + 1)),
            _ => {}
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let label: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let op_start = i;
        while i < chars.len() && ['=', '!', '~'].contains(&chars[i]) {
            i += 1;
        }
        let op: String = chars[op_start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if label.is_empty() || !["=", "!=", "=~", "!~"].contains(&op.as_str()) {
            return Err(format!(
                "bad label matcher near {:?}",
                chars[start..].iter().collect::<String>()
            ));
        }
        let end = skip_string(chars, i)?;
        let value: String = chars[i + 1..end - 1].iter().collect();
        out.push(Matcher { label, op, value });
        i = end;
    }
}

/// The samples of a text exposition: metric name -> label sets.
pub type Scrape = BTreeMap<String, Vec<BTreeMap<String, String>>>;

/// Parses the sample lines of a Prometheus or OpenMetrics text exposition.
pub fn parse_scrape(text: &str) -> Result<Scrape, String> {
    let mut out: Scrape = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let chars: Vec<char> = line.chars().collect();
        let name_end = chars
            .iter()
            .position(|&c| c == '{' || c == ' ')
            .ok_or_else(|| format!("bad sample line {line:?}"))?;
        let name: String = chars[..name_end].iter().collect();
        let mut labels = BTreeMap::new();
        if chars[name_end] == '{' {
            let (matchers, _) = parse_matchers(&chars, name_end)?;
            for m in matchers {
                labels.insert(m.label, m.value);
            }
        }
        out.entry(name).or_default().push(labels);
    }
    Ok(out)
}

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// What is wrong with `sel` against a live scrape: a metric that is not exposed, a label it
/// does not have, or a value (for `=`, and for `=~` alternatives of plain words) it never takes.
pub fn check_selector(sel: &Selector, scrape: &Scrape) -> Vec<String> {
    let Some(series) = scrape.get(&sel.metric) else {
        return vec![format!("metric {} is not in the scrape", sel.metric)];
    };
    let mut problems = Vec::new();
    for m in sel
        .matchers
        .iter()
        .filter(|m| !TARGET_LABELS.contains(&m.label.as_str()))
    {
        let values: BTreeSet<&str> = series
            .iter()
            .filter_map(|l| l.get(&m.label))
            .map(String::as_str)
            .collect();
        if values.is_empty() {
            problems.push(format!("{} has no label {}", sel.metric, m.label));
            continue;
        }
        let wanted: Vec<&str> = match m.op.as_str() {
            "=" => vec![m.value.as_str()],
            "=~" if m.value.chars().all(|c| c.is_ascii_alphanumeric() || "_-|".contains(c)) => {
                m.value.split('|').collect()
            }
            _ => Vec::new(),
        };
        for w in wanted {
            if !values.contains(w) {
                problems.push(format!(
                    "{}{{{}=\"{w}\"}} is not in the scrape (values: {values:?})",
                    sel.metric, m.label
                ));
            }
        }
    }
    problems
}

/// Whether promtool is installed; when it is not, the caller skips (or, under CI, fails).
pub fn promtool_available() -> bool {
    Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs promtool in `dir`; returns whether it succeeded and what it printed.
pub fn promtool(dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running promtool");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writing to promtool");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Parses every expression with `promtool check rules`, one recording rule each; returns the
/// expressions promtool rejected, with its message.
pub fn parse_with_promtool(exprs: &[(String, String)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut problems = Vec::new();
    // One file per expression, so a failure names its expression.
    for (i, (label, expr)) in exprs.iter().enumerate() {
        let doc = serde_json::json!({
            "groups": [{"name": "check", "rules": [{"record": format!("check:expr_{i}"), "expr": expr}]}]
        });
        // JSON is YAML: no quoting rules to get wrong.
        let file = format!("expr_{i}.yml");
        std::fs::write(dir.path().join(&file), doc.to_string()).expect("writing the rules file");
        let (ok, out) = promtool(dir.path(), &["check", "rules", &file], None);
        if !ok {
            problems.push(format!("{label}: {expr}\n{out}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        selectors(expr).unwrap().into_iter().map(|s| s.metric).collect()
    }

    #[test]
    fn selectors_skip_functions_keywords_and_label_lists() {
        assert_eq!(
            names(
                "histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route!=\"/x\"}[5m]))) \
                 / on (route) group_left (x) b + count(c > 0) or vector(0) \
                 + max_over_time(d[1h:1m]) and on (bench) (e offset 23h) unless f == bool 1 \
                 - sum(g) without (kind) + {__name__=\"h\"}"
            ),
            ["a_bucket", "b", "c", "d", "e", "f", "g", "h"]
        );
        let s = &selectors("x{a=\"1\", b=~\"p|q\" , c!~'z'}").unwrap()[0];
        assert_eq!(
            s.matchers
                .iter()
                .map(|m| (m.label.as_str(), m.op.as_str(), m.value.as_str()))
                .collect::<Vec<_>>(),
            [("a", "=", "1"), ("b", "=~", "p|q"), ("c", "!~", "z")]
        );
        assert!(selectors("{job=\"x\"}").is_err());
    }

    #[test]
    fn selectors_are_checked_against_the_scrape() {
        let scrape = parse_scrape(
            "# TYPE s gauge\ns{bench=\"a\",state=\"online\"} 1\ns{bench=\"a\",state=\"offline\"} 0\nt_total 3\n# EOF\n",
        )
        .unwrap();
        let check = |e: &str| check_selector(&selectors(e).unwrap()[0], &scrape);
        assert!(check("s{state=~\"online|offline\", job=\"benchfleet\"}").is_empty());
        assert!(check("t_total").is_empty());
        assert_eq!(check("u"), ["metric u is not in the scrape"]);
        assert_eq!(check("t_total{bench=\"a\"}"), ["t_total has no label bench"]);
        assert_eq!(check("s{state=~\"online|stale\"}").len(), 1);
    }
}
