//! Ideas over HTTP on both backends: organisations joining, rule validation and explanations,
//! an organisation's inbox and actions, isolation between organisations, moderation, the public
//! page and its rate limit, the report, and the live event.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use protocol::api::Problem;
use protocol::idea::{IdeaDetail, IdeaPage, IdeaSubmission, PublicIdea};
use protocol::{BenchId, Claims, IdeaState, Role};
use serde_json::{Value, json};

use crate::api::testing::{Harness, on_both_backends, secret, token};

fn cso(org: &str) -> String {
    secret().sign(&Claims::new(Role::Cso, format!("member-of-{org}"), Duration::from_secs(600)).with_org(org))
}

async fn call(h: &Harness, method: &str, uri: &str, bearer: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let (status, _, bytes) = h.send(req).await;
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, value)
}

async fn join(h: &Harness, name: &str) -> String {
    let app = json!({"name": name, "municipalities": ["Mostar", "Žepče"], "categories": ["environment"], "contact_email": "info@example.ba"});
    let (status, receipt) = call(h, "POST", "/api/v1/organisations/applications", None, Some(app)).await;
    assert_eq!(status, StatusCode::CREATED, "{receipt}");
    assert_eq!(receipt["state"], "applied");
    let id = receipt["id"].as_str().unwrap().to_owned();
    let ops = token(Role::Operator);
    let (status, org) = call(
        h,
        "POST",
        &format!("/api/v1/organisations/{id}/approve?note=welcome"),
        Some(&ops),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(
        (org["state"].as_str(), org["decided_by"].as_str()),
        (Some("active"), Some("test-operator"))
    );
    id
}

async fn submit(h: &Harness, bench: &str, n: u32, text: &str) -> String {
    let idea = IdeaSubmission {
        v: 1,
        idea_id: format!("00000000-0000-4000-8000-{n:012}"),
        ts: chrono::Utc::now(),
        text: text.into(),
        category: "environment".into(),
        lang: "bs".into(),
        contact: None,
    };
    let bench = BenchId::parse(bench).unwrap();
    let ack = h
        .state
        .routing
        .submit(&bench, &idea.to_json(), chrono::Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert!(ack.tracking_code.is_some(), "{ack:?}");
    idea.idea_id
}

async fn ideas_over_http(h: &Harness) {
    let ops = token(Role::Operator);
    let a = join(h, "Zeleni Mostar").await;
    let b = join(h, "Eko Žepče").await;
    assert_eq!((a.as_str(), b.as_str()), ("zeleni-mostar", "eko-zepce"));

    // Invalid rule sets are refused with every bad field named.
    let bad = json!({"rules": [
        {"name": "one", "priority": 1, "targets": ["ghost"]},
        {"name": "two", "priority": 1, "targets": []}
    ]});
    let (status, problem) = call(h, "PUT", "/api/v1/routing/rules", Some(&ops), Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let problem: Problem = serde_json::from_value(problem).unwrap();
    let fields: Vec<&str> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["rules[0].targets[0]", "rules[1].priority", "rules[1].targets"]);
    let (_, current) = call(h, "GET", "/api/v1/routing/rules", Some(&ops), None).await;
    assert_eq!(current["version"], 0, "nothing of the bad set was kept");

    let rules = json!({
        "rules": [
            {"name": "zepce", "priority": 10, "match": {"municipalities": ["Zepce"]}, "targets": [b]},
            {"name": "parks", "priority": 20, "match": {"keywords": ["park"]}, "targets": [a], "sla": {"confirm_within": "2h"}}
        ],
        "max_attempts": 2
    });
    let (status, set) = call(h, "PUT", "/api/v1/routing/rules", Some(&ops), Some(rules)).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(
        (set["version"].as_i64(), set["created_by"].as_str()),
        (Some(1), Some("test-operator"))
    );
    let (_, versions) = call(
        h,
        "GET",
        "/api/v1/routing/rules/versions",
        Some(&token(Role::Viewer)),
        None,
    )
    .await;
    assert_eq!(versions.as_array().unwrap().len(), 1);

    // The rule tester explains a Cyrillic idea.
    let sample = json!({"idea": {"bench_id": "mostar-01", "municipality": "Mostar", "category": "environment", "lang": "sr-Cyrl", "text": "Више клупа у парку"}});
    let (status, decision) = call(h, "POST", "/api/v1/routing/rules/test", Some(&ops), Some(sample)).await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["route"]["outcome"], "offer");
    assert_eq!(decision["route"]["organisations"], json!([a]));
    assert_eq!(
        decision["rules"][0]["reasons"],
        json!([r#"municipality Mostar is not one of ["Zepce"]"#])
    );
    assert_eq!(decision["rules"][1]["chosen"], true);

    let mut live = h.state.routing.subscribe();
    let parks = submit(h, "mostar-01", 1, "Više klupa u parku, zovite 061 222 333").await;
    let zepce = submit(h, "zepce-01", 2, "Nova rasvjeta u centru Žepča").await;
    let nowhere = submit(h, "maglaj-01", 3, "Nova fontana u centru grada").await;
    let change = live.try_recv().unwrap();
    assert_eq!(
        (change.idea_id.as_str(), change.action.as_str(), change.to),
        (parks.as_str(), "received", IdeaState::Received)
    );
    assert_eq!(change.tracking_code, "MOS-2026-0001");

    // Each organisation's inbox holds its own ideas only, text redacted (no consent).
    let (status, inbox) = call(h, "GET", "/api/v1/ideas?state=offered", Some(&cso(&a)), None).await;
    assert_eq!(status, StatusCode::OK);
    let inbox: IdeaPage = serde_json::from_value(inbox).unwrap();
    assert_eq!(
        inbox.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [parks.as_str()]
    );
    assert_eq!(inbox.items[0].text, "Više klupa u parku, zovite [phone]");
    assert!(inbox.items[0].redacted);
    // B cannot read, list or act on A's idea.
    let (status, _) = call(h, "GET", &format!("/api/v1/ideas/{parks}"), Some(&cso(&b)), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(h, "GET", &format!("/api/v1/ideas?org={a}"), Some(&cso(&b)), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{parks}/confirm"),
        Some(&cso(&b)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(h.state.routing.idea(&parks).await.unwrap().state, IdeaState::Offered);
    // A token without an organisation sees nothing.
    let orphan = secret().sign(&Claims::new(Role::Cso, "nobody", Duration::from_secs(60)));
    let (status, _) = call(h, "GET", "/api/v1/ideas", Some(&orphan), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A confirms, reports progress with a public note, completes.
    let note = json!({"public_note": "Klupe su naručene.", "internal_note": "budžet odobren"});
    let (status, detail) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{parks}/confirm"),
        Some(&cso(&a)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let (status, detail) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{parks}/progress"),
        Some(&cso(&a)),
        Some(note),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let detail: IdeaDetail = serde_json::from_value(detail).unwrap();
    assert_eq!(detail.idea.state, IdeaState::InAction);
    let actions: Vec<&str> = detail.history.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions, ["received", "offered", "confirmed", "progress"]);
    let (status, problem) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{parks}/confirm"),
        Some(&cso(&a)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["detail"], "cannot confirm an idea that is in_action");
    let (status, _) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{parks}/complete"),
        Some(&cso(&a)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // B declines without a reason: refused; with one: the idea escalates (no one else).
    let (status, problem) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{zepce}/decline"),
        Some(&cso(&b)),
        None,
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason"))
    );
    let reason = json!({"reason": "nemamo kapaciteta"});
    let (status, detail) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{zepce}/decline"),
        Some(&cso(&b)),
        Some(reason),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["state"], "escalated");

    // The coordinators' queue: the escalated and the unroutable idea; assigning one.
    let (status, queue) = call(h, "GET", "/api/v1/moderation/queue", Some(&ops), None).await;
    assert_eq!(status, StatusCode::OK);
    let queue: IdeaPage = serde_json::from_value(queue).unwrap();
    let mut queued: Vec<(&str, IdeaState)> = queue.items.iter().map(|i| (i.id.as_str(), i.state)).collect();
    queued.sort();
    assert_eq!(
        queued,
        [
            (zepce.as_str(), IdeaState::Escalated),
            (nowhere.as_str(), IdeaState::Unroutable)
        ]
    );
    let (status, problem) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{nowhere}/assign"),
        Some(&ops),
        Some(json!({"org": "ghost"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, detail) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{nowhere}/assign"),
        Some(&ops),
        Some(json!({"org": a})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(
        (detail["state"].as_str(), detail["offered_to"].clone()),
        (Some("offered"), json!([a]))
    );
    let reject = json!({"reason": "duplikat", "public_note": "Već postoji slična ideja."});
    let (status, detail) = call(
        h,
        "POST",
        &format!("/api/v1/ideas/{zepce}/reject"),
        Some(&ops),
        Some(reject),
    )
    .await;
    assert_eq!((status, detail["state"].as_str()), (StatusCode::OK, Some("rejected")));

    // The public page, without a token.
    let (status, public) = call(h, "GET", "/api/v1/public/ideas/mos-2026-0001", None, None).await;
    assert_eq!(status, StatusCode::OK, "{public}");
    let public: PublicIdea = serde_json::from_value(public).unwrap();
    assert_eq!(public.organisation.as_deref(), Some("Zeleni Mostar"));
    assert_eq!(
        public.notes.iter().map(|n| n.note.as_str()).collect::<Vec<_>>(),
        ["Klupe su naručene."]
    );
    assert_eq!(serde_json::to_value(public.state).unwrap(), "completed");
    let (_, public) = call(h, "GET", "/api/v1/public/ideas/ZEP-2026-0001", None, None).await;
    assert_eq!(
        (public["state"].as_str(), public["organisation"].as_str()),
        (Some("rejected"), None)
    );

    // The report.
    let now = chrono::Utc::now();
    let uri = format!(
        "/api/v1/reports/ideas?from={}&to={}",
        (now - chrono::TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (now + chrono::TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let (status, report) = call(h, "GET", &uri, Some(&token(Role::Viewer)), None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["total"], 3);
    assert_eq!(report["by_state"], json!({"completed": 1, "offered": 1, "rejected": 1}));
    assert_eq!(report["confirmations"][0]["org_id"], a);

    // Organisations and the audit trail of decisions.
    let (_, orgs) = call(h, "GET", "/api/v1/organisations?state=active", Some(&cso(&a)), None).await;
    assert_eq!(orgs.as_array().unwrap().len(), 2);
    let (status, problem) = call(
        h,
        "POST",
        &format!("/api/v1/organisations/{a}/approve"),
        Some(&ops),
        None,
    )
    .await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("cannot approve an organisation that is active")
        )
    );
    let (_, audit) = call(h, "GET", "/api/v1/routing/audit", Some(&token(Role::Admin)), None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "organisation.approve",
            "organisation.apply",
            "organisation.approve",
            "organisation.apply"
        ]
    );
    let (status, member) = call(
        h,
        "POST",
        &format!("/api/v1/organisations/{a}/token"),
        Some(&token(Role::Admin)),
        Some(json!({"subject": "amra"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{member}");
    let claims = secret().verify(member["token"].as_str().unwrap()).unwrap();
    assert_eq!(
        (claims.role, claims.org.as_deref(), claims.sub.as_str()),
        (Role::Cso, Some(a.as_str()), "amra")
    );
}

on_both_backends!(ideas_over_http);

async fn applications_are_validated_and_public_routes_rate_limited(h: &Harness) {
    let bad = json!({"name": "X", "municipalities": ["Sarajevo"], "contact_email": "nope", "categories": ["Parks"]});
    let (status, problem) = call(h, "POST", "/api/v1/organisations/applications", None, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "municipalities[0]", "categories[0]", "contact_email"]);
    // 20 in a burst per address (the first request above was one of them).
    let mut limited = None;
    for n in 0..30 {
        let req = Request::get("/api/v1/public/ideas/MOS-2026-0001")
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = h.send(req).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((n, headers[header::RETRY_AFTER].to_str().unwrap().to_owned()));
            break;
        }
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // 600 per hour is one every 6 s; a slow machine may take over a second for the burst and
    // see part of the next token already refilled.
    let (n, retry_after) = limited.expect("the 21st request in a burst is limited");
    assert_eq!(n, 19, "20 in a burst");
    let retry_after: u64 = retry_after.parse().unwrap();
    assert!(
        (1..=6).contains(&retry_after),
        "Retry-After {retry_after} s: at most one token's 6 s"
    );
}

on_both_backends!(applications_are_validated_and_public_routes_rate_limited);

/// Behind a trusted proxy the client is the address the proxy appended to `X-Forwarded-For`;
/// from anyone else the header is ignored (it would let a client pick its own bucket).
#[tokio::test]
async fn the_rate_limit_keys_on_the_client_behind_a_trusted_proxy() {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;

    let mut h = Harness::sqlite().await;
    h.state.config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let lookup = |peer: &str, forwarded: &str| {
        let mut req = Request::get("/api/v1/public/ideas/MOS-2026-0001")
            .header("x-forwarded-for", forwarded)
            .body(Body::empty())
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        req
    };
    let burst = |peer: &'static str, forwarded: fn(usize) -> String| {
        let h = &h;
        async move {
            for n in 0..30 {
                let (status, _, _) = h.send(lookup(peer, &forwarded(n))).await;
                if status == StatusCode::TOO_MANY_REQUESTS {
                    return n;
                }
                assert_eq!(status, StatusCode::NOT_FOUND);
            }
            30
        }
    };
    // The proxy's own entry is the last one; what the client put before it does not count.
    assert_eq!(
        burst("127.0.0.1:40000", |n| format!("10.9.9.{n}, 198.51.100.7")).await,
        20
    );
    // Another client behind the same proxy has its own bucket.
    assert_eq!(burst("127.0.0.1:40001", |_| "198.51.100.8".into()).await, 20);
    // An untrusted peer cannot choose its bucket with the header.
    assert_eq!(burst("192.0.2.7:5000", |n| format!("203.0.113.{n}")).await, 20);
    h.stop().await;
}
