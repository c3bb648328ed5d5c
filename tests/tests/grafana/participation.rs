//! Citizens' ideas for the participation dashboard, through the real control plane: three
//! organisations apply and are approved over the HTTP API, an operator sets the routing rules,
//! the benches' kiosks send ideas over MQTT, and the organisations and an operator act on them
//! over the API. Deadlines pass for real (SLAs of one second), so every state the dashboard
//! counts is reached by the control plane's own lifecycle.
//!
//! | bench         | idea                      | what happens                              | ends       |
//! | ------------- | ------------------------- | ----------------------------------------- | ---------- |
//! | mostar-01     | benches in the park       | confirmed, in action, completed           | completed  |
//! | mostar-01     | lights on the promenade   | confirmed                                 | confirmed  |
//! | mostar-01     | benches in the park again | same text: linked to the first            | duplicate  |
//! | jablanica-01  | a space for young people  | offered, nobody answers yet               | offered    |
//! | zepce-01      | clean the river bank      | confirmed, in action, act deadline passes | in_action  |
//! | maglaj-01     | open-air cinema           | rejected by an operator                   | rejected   |
//! | zavidovici-01 | a playground              | declined, nobody else can take it         | escalated  |
//! | trebinje-01   | benches at the bus stop   | confirm deadline (1 s) passes             | escalated  |
//! | prijedor-01   | a cycle path              | no rule, no default organisation          | unroutable |
//! | ravno-01      | bins on the square        | no rule, no default organisation          | unroutable |

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use rumqttc::{AsyncClient, QoS};
use serde_json::{Value, json};
use sqlx::PgPool;
use tests::{ControlPlane, eventually};

const WAIT: Duration = Duration::from_secs(60);

/// One idea of the story: the bench whose kiosk sends it, its category and text, and where it ends.
pub struct Idea {
    pub bench: &'static str,
    pub category: &'static str,
    pub text: &'static str,
    /// The state the story leaves it in.
    pub ends: &'static str,
}

/// Sent twice: the second is a duplicate of the first.
const PARK: &str = "Više klupa i hlada u gradskom parku";

pub const IDEAS: [Idea; 10] = [
    idea("mostar-01", "environment", PARK, "completed"),
    idea(
        "mostar-01",
        "infrastructure",
        "Popraviti rasvjetu na šetalištu uz Neretvu",
        "confirmed",
    ),
    idea("mostar-01", "environment", PARK, "duplicate"),
    idea("jablanica-01", "youth", "Prostor za mlade u centru grada", "offered"),
    idea("zepce-01", "environment", "Čišćenje obale rijeke Bosne", "in_action"),
    idea("maglaj-01", "culture", "Ljetno kino na otvorenom", "rejected"),
    idea("zavidovici-01", "youth", "Igralište iza stare škole", "escalated"),
    idea(
        "trebinje-01",
        "social",
        "Klupe i nadstrešnica uz autobusku stanicu",
        "escalated",
    ),
    idea(
        "prijedor-01",
        "infrastructure",
        "Biciklistička staza do škole",
        "unroutable",
    ),
    idea("ravno-01", "environment", "Kante za otpad na trgu", "unroutable"),
];

const fn idea(bench: &'static str, category: &'static str, text: &'static str, ends: &'static str) -> Idea {
    Idea {
        bench,
        category,
        text,
        ends,
    }
}

/// The id the kiosk chose for the `n`th idea of [`IDEAS`].
pub fn idea_id(n: usize) -> String {
    format!("6f1c1a52-9d0e-4b7a-8c3f-{n:012}")
}

/// The organisations, by the id the control plane gave them.
pub struct Network {
    /// Serves Mostar and Jablanica.
    pub zeleni: String,
    /// Serves Žepče, Maglaj and Zavidovići.
    pub dolina: String,
    /// Serves Trebinje, and never confirms in time.
    pub omladina: String,
}

/// The names the organisations applied with (the dashboard shows names, not contacts).
pub const ZELENI: &str = "Zeleni Mostar";
pub const DOLINA: &str = "Udruženje Dolina Bosne";

/// Organisations apply and are approved; the operator sets the rules.
pub async fn organise(cp: &ControlPlane) -> Network {
    let operator = cp.token("operator", "grafana-ops", &[]);
    let apply = |name: &'static str, municipalities: &'static [&'static str]| {
        let operator = operator.clone();
        async move {
            let application = json!({
                "name": name, "municipalities": municipalities,
                "contact_email": "kontakt@example.org", "contact_phone": "+387 61 000 000",
            });
            let receipt = call(
                cp,
                Method::POST,
                "/api/v1/organisations/applications",
                None,
                Some(application),
                201,
            )
            .await;
            let id = receipt["id"].as_str().expect("organisation id").to_owned();
            let path = format!("/api/v1/organisations/{id}/approve");
            let org = call(cp, Method::POST, &path, Some(&operator), None, 200).await;
            assert_eq!(org["state"], "active", "{org}");
            id
        }
    };
    let network = Network {
        zeleni: apply(ZELENI, &["Mostar", "Jablanica"]).await,
        dolina: apply(DOLINA, &["Žepče", "Maglaj", "Zavidovići"]).await,
        omladina: apply("Omladinski savjet Trebinje", &["Trebinje"]).await,
    };
    let rules = json!({"rules": [
        {"name": "mostar-jablanica", "priority": 1,
         "match": {"municipalities": ["Mostar", "Jablanica"]}, "targets": [network.zeleni]},
        {"name": "dolina-bosne", "priority": 2,
         "match": {"municipalities": ["Žepče", "Maglaj", "Zavidovići"]}, "targets": [network.dolina],
         "sla": {"confirm_within": "72h", "act_within": "1s"}},
        {"name": "trebinje", "priority": 3,
         "match": {"municipalities": ["Trebinje"]}, "targets": [network.omladina],
         "sla": {"confirm_within": "1s", "act_within": "30days"}},
    ]});
    call(
        cp,
        Method::PUT,
        "/api/v1/routing/rules",
        Some(&operator),
        Some(rules),
        200,
    )
    .await;
    network
}

/// The kiosks send [`IDEAS`] (QoS 1, over the benches' own connections); returns once the store
/// holds them all.
pub async fn submit(db: &PgPool, benches: &[(&str, &AsyncClient)]) {
    for (n, i) in IDEAS.iter().enumerate() {
        let (_, client) = benches
            .iter()
            .find(|(b, _)| *b == i.bench)
            .unwrap_or_else(|| panic!("{} is not connected", i.bench));
        let payload = json!({
            "v": 1, "idea_id": idea_id(n), "ts": Utc::now(), "text": i.text,
            "category": i.category, "lang": "bs",
            "contact": {"email": "gradjanin@example.org", "consent": true},
        });
        client
            .publish(
                format!("benches/{}/ideas", i.bench),
                QoS::AtLeastOnce,
                false,
                payload.to_string(),
            )
            .await
            .expect("idea");
        // In order: the duplicate must come after its original.
        eventually(&format!("idea {n} stored"), WAIT, || async {
            let stored: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ideas WHERE id = $1)")
                .bind(idea_id(n))
                .fetch_one(db)
                .await
                .ok()?;
            stored.then_some(())
        })
        .await;
    }
}

/// The organisations and an operator act; waits until every idea is in the state the story
/// leaves it in, and both kinds of deadline have passed.
pub async fn act(cp: &ControlPlane, db: &PgPool, network: &Network) {
    let member = |org: &str| {
        let admin = cp.token("admin", "grafana-admin", &[]);
        let org = org.to_owned();
        async move {
            let path = format!("/api/v1/organisations/{org}/token");
            let t = call(
                cp,
                Method::POST,
                &path,
                Some(&admin),
                Some(json!({"subject": "clan"})),
                200,
            )
            .await;
            t["token"].as_str().expect("member token").to_owned()
        }
    };
    let zeleni = member(&network.zeleni).await;
    let dolina = member(&network.dolina).await;
    let operator = cp.token("operator", "grafana-ops", &[]);
    let step = |n: usize, action: &'static str, token: String, body: Option<Value>| async move {
        let path = format!("/api/v1/ideas/{}/{action}", idea_id(n));
        call(cp, Method::POST, &path, Some(&token), body, 200).await
    };
    let reason = |r: &str| Some(json!({"reason": r}));

    step(0, "confirm", zeleni.clone(), None).await;
    step(0, "progress", zeleni.clone(), None).await;
    let done = step(0, "complete", zeleni.clone(), None).await;
    assert_eq!(done["state"], "completed", "{done}");
    step(1, "confirm", zeleni.clone(), None).await;
    step(4, "confirm", dolina.clone(), None).await;
    step(4, "progress", dolina.clone(), None).await;
    step(5, "reject", operator, reason("Nije prijedlog za mrežu")).await;
    step(6, "decline", dolina, reason("Nemamo kapaciteta")).await;

    eventually("every idea in the state the story leaves it in", WAIT, || async {
        let states: Vec<(String, String)> = sqlx::query_as("SELECT id, state FROM ideas").fetch_all(db).await.ok()?;
        let settled = IDEAS
            .iter()
            .enumerate()
            .all(|(n, i)| states.iter().any(|(id, state)| *id == idea_id(n) && state == i.ends));
        settled.then_some(())
    })
    .await;
    eventually("zepce-01's idea overdue (its act deadline passed)", WAIT, || async {
        let overdue: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM idea_events WHERE idea_id = $1 AND action = 'act_overdue')",
        )
        .bind(idea_id(4))
        .fetch_one(db)
        .await
        .ok()?;
        overdue.then_some(())
    })
    .await;
}

/// An API call that must answer `expected`; returns the JSON body.
async fn call(
    cp: &ControlPlane,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    expected: u16,
) -> Value {
    let mut req = reqwest::Client::new().request(method.clone(), format!("{}{path}", cp.api));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, expected, "{method} {path}: {body}");
    body
}
