//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay test
//! (`tests/fuzz_corpus.rs`): each takes raw bytes from outside — a bench payload, a rule set
//! body, the bytes of an MQTT connection — through the same decoding and checks the server runs,
//! and then through the pure steps that consume the result, without a store or a socket.
//!
//! Each returns `Ok` or a clean refusal; anything else (a panic, an allocation without bound) is
//! a bug. The clock is fixed, so a corpus file always takes the same path.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use protocol::config::{BenchConfig, ConfigAck};
use protocol::idea::IdeaSubmission;
use protocol::token::Secret;
use protocol::{BenchId, Claims, Fleet, IdeaState, Role, Status, Telemetry};
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{self as mqtt, ConnAck, ConnectReturnCode, LastWill, Login, Packet, Protocol, QoS};
use tokio::sync::{Notify, mpsc};

use crate::broker::Authenticator;
use crate::broker::gate::{Gate, GateShared};
use crate::metrics::Metrics;
use crate::ota::BenchConfigRecord;
use crate::presence::{Input, Presence, PresenceSettings};
use crate::routing::lifecycle::{self, Actor, IdeaAction, Notes};
use crate::routing::records::{OrgState, Organisation};
use crate::routing::{IdeaFacts, IdeaRecord, Route, RuleSet, text};
use crate::telemetry::TelemetryRow;

/// The bench every payload comes from.
const BENCH: &str = "mostar-01";

/// The server clock of every run.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

fn bench() -> BenchId {
    BenchId::parse(BENCH).unwrap_or_else(|_| unreachable!("a valid bench id"))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
static FLEET: LazyLock<Arc<Fleet>> = LazyLock::new(|| Arc::new(Fleet::link4()));

/// A `benches/{id}/telemetry` payload: decoded and validated, flattened into a store row and
/// counted in the bench's metrics.
pub fn telemetry(payload: &[u8]) -> Result<(), String> {
    let t = Telemetry::decode(payload, now()).map_err(|e| e.to_string())?;
    let row = TelemetryRow::from_payload(BENCH, &t, now());
    let _ = row.footprint();
    METRICS.observe(BENCH, &t, now());
    Ok(())
}

/// A `benches/{id}/status` payload: decoded, then applied to presence (a live connection) and
/// to the bench's configuration record as its reported version.
pub fn status(payload: &[u8]) -> Result<(), String> {
    let status = Status::decode(payload).map_err(|e| e.to_string())?;
    let mut presence = Presence::new(&FLEET, &PresenceSettings::default());
    presence.apply(BENCH, Input::Connected { conn: 1 }, now());
    if let Some(version) = status.config_version {
        BenchConfigRecord::first(bench(), BenchConfig::default(), now()).on_reported(version, now());
    }
    presence.apply(BENCH, Input::Status(status), now());
    Ok(())
}

/// A `benches/{id}/config/ack` payload: decoded, then applied to the bench's configuration
/// record.
pub fn config_ack(payload: &[u8]) -> Result<(), String> {
    let ack = ConfigAck::decode(payload).map_err(|e| e.to_string())?;
    let mut record = BenchConfigRecord::first(bench(), BenchConfig::default(), now());
    record.on_ack(&ack, now());
    let _ = record.drift(now());
    Ok(())
}

/// A `benches/{id}/ideas` payload: decoded (on failure, the `idea_id` for the refusal is looked
/// for), fingerprinted, redacted, matched against a blocklist word and routed by the demo rules.
pub fn idea(payload: &[u8]) -> Result<(), String> {
    let idea = match IdeaSubmission::decode(payload) {
        Ok(idea) => idea,
        Err(rejection) => {
            let _ = crate::routing::idea_id_of(payload);
            return Err(rejection.to_string());
        }
    };
    let folded = text::fold(&idea.text);
    let _ = text::has_keyword(&folded, "spam");
    let _ = (text::fingerprint(&idea.text), text::has_personal_data(&idea.text));
    let facts = IdeaFacts {
        bench_id: BENCH.to_owned(),
        municipality: "Mostar".to_owned(),
        category: idea.category.clone(),
        lang: idea.lang.clone(),
        text: idea.text.clone(),
    };
    route(&demo_rules(), &facts);
    Ok(())
}

/// A `PUT /api/v1/routing/rules` body: parsed as the API parses it, validated against a small
/// network and the LINK 4 fleet and, when valid, kept (as JSON, read back the same) and used to
/// route a few ideas to their deadlines.
pub fn rules(body: &[u8]) -> Result<(), String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let rules: RuleSet = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    let errors = rules.validate(&ORGANISATIONS, &FLEET);
    if !errors.is_empty() {
        return Err(format!("{} invalid fields", errors.len()));
    }
    let stored = serde_json::to_value(&rules).map_err(|e| e.to_string())?;
    let back: RuleSet = serde_json::from_value(stored).map_err(|e| e.to_string())?;
    assert_eq!(back, rules, "a stored rule set reads back as it was");
    for (municipality, category, lang, text) in [
        ("Mostar", "environment", "bs", "Više drveća u parku"),
        ("Žepče", "youth", "sr-Cyrl", "Расвјета на стази"),
        ("Ravno", "other", "en", "A bus stop, please"),
    ] {
        let facts = IdeaFacts {
            bench_id: BENCH.to_owned(),
            municipality: municipality.to_owned(),
            category: category.to_owned(),
            lang: lang.to_owned(),
            text: text.to_owned(),
        };
        route(&rules, &facts);
    }
    Ok(())
}

static ORGANISATIONS: LazyLock<BTreeMap<String, Organisation>> = LazyLock::new(|| {
    ["lda-mostar", "zeleni-grad", "omladinski-centar", "suspended-org"]
        .into_iter()
        .map(|id| {
            let org = Organisation {
                id: id.to_owned(),
                name: id.to_owned(),
                municipalities: vec!["Mostar".to_owned()],
                categories: Vec::new(),
                contact_email: "org@benchfleet.invalid".to_owned(),
                contact_phone: None,
                website: None,
                description: None,
                state: if id == "suspended-org" {
                    OrgState::Suspended
                } else {
                    OrgState::Active
                },
                created_at: now(),
                updated_at: now(),
                decided_by: None,
                note: None,
            };
            (id.to_owned(), org)
        })
        .collect()
});

fn demo_rules() -> RuleSet {
    let body = br#"{"rules":[
        {"name":"environment","priority":10,"match":{"categories":["environment"]},"targets":["zeleni-grad"]},
        {"name":"streets","priority":30,"match":{"keywords":["rasvjet","staz","autobus"]},
         "targets":["lda-mostar","zeleni-grad"],"strategy":"least_loaded"}],
        "defaults":{"Mostar":"lda-mostar"}}"#;
    serde_json::from_slice(body).unwrap_or_default()
}

/// Routes an idea, offers it and, when offered, confirms it: every deadline the rules set is
/// computed.
fn route(rules: &RuleSet, facts: &IdeaFacts) {
    let (cursors, loads) = (BTreeMap::new(), BTreeMap::new());
    let situation = crate::routing::rules::Situation {
        organisations: &ORGANISATIONS,
        excluded: &[],
        cursors: &cursors,
        loads: &loads,
    };
    let decision = rules.route(facts, &situation);
    let mut idea = idea_record(facts);
    lifecycle::apply_route(&mut idea, &decision, 1, rules.max_attempts, "system", now());
    if let Route::Offer { organisations, .. } = &decision.route
        && let Some(org) = organisations.first()
        && idea.state == IdeaState::Offered
    {
        let actor = Actor {
            subject: "member".to_owned(),
            org: Some(org.clone()),
        };
        let confirmed = lifecycle::act(&mut idea, &IdeaAction::Confirm, &actor, &Notes::default(), now());
        assert!(confirmed.is_ok(), "an offered organisation may confirm: {confirmed:?}");
    }
}

fn idea_record(facts: &IdeaFacts) -> IdeaRecord {
    IdeaRecord {
        id: "00000000-0000-4000-8000-000000000000".to_owned(),
        tracking_code: "MOS-2026-0001".to_owned(),
        bench_id: facts.bench_id.clone(),
        municipality: facts.municipality.clone(),
        submitted_at: now(),
        received_at: now(),
        text: facts.text.clone(),
        category: facts.category.clone(),
        lang: facts.lang.clone(),
        contact: None,
        consent: false,
        fingerprint: text::fingerprint(&facts.text),
        duplicate_of: None,
        state: IdeaState::Received,
        org_id: None,
        offered_to: Vec::new(),
        excluded: Vec::new(),
        attempts: 0,
        rule: None,
        rule_version: None,
        confirm_within_s: None,
        act_within_s: None,
        deadline: None,
        flag: None,
        updated_at: now(),
        confirmed_at: None,
        completed_at: None,
    }
}

/// What an MQTT connection's bytes did at the gate: packets let through, and the refusal that
/// ended it, if one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRun {
    pub passed: usize,
    pub refused: Option<String>,
}

static SECRET: LazyLock<Secret> = LazyLock::new(|| Secret::new(b"fuzzing secret, at least 32 bytes".to_vec()));
static TOKEN: LazyLock<String> =
    LazyLock::new(|| SECRET.sign(&Claims::new(Role::Bench, BENCH, Duration::from_secs(10 * 365 * 86_400))));

/// The bytes of one MQTT connection through the gate, as rumqttd feeds them: the CONNECT
/// checks, then the ACL on every PUBLISH and SUBSCRIBE, then the connection's end (Last Will,
/// events). The first byte says how the connection begins:
///
/// - `0 mod 3`: the rest is the whole byte stream (the fuzzer writes the CONNECT; its token
///   cannot be valid, so this reaches every refusal before the signature check);
/// - `1 mod 3`: a valid CONNECT of `mostar-01` with its Last Will comes first and is
///   acknowledged, the rest follows (the PUBLISH and SUBSCRIBE checks);
/// - `2 mod 3`: a CONNECT with a valid token whose keep-alive, client id, user name and will
///   come from the input (`keep_alive:u16`, `flags:u8`, then length-prefixed fields), then the
///   rest of the stream.
pub fn gate(input: &[u8]) -> GateRun {
    let (events, _events_rx) = mpsc::unbounded_channel();
    let (outbound, _wills) = mpsc::channel(16);
    let shared = Arc::new(GateShared {
        auth: Authenticator::new(FLEET.clone(), SECRET.clone()),
        events,
        stats: Arc::default(),
        max_connections: 4,
        serials: AtomicU64::new(0),
        heal: Arc::new(Notify::new()),
        outbound,
        live: Mutex::default(),
    });
    let mut gate = Gate::template(shared).clone();
    let (mode, rest) = input.split_first().map_or((0, input), |(m, rest)| (m % 3, rest));
    let mut stream = BytesMut::new();
    let rest = match mode {
        1 => {
            let will = LastWill {
                topic: Bytes::from(format!("benches/{BENCH}/status")),
                message: Bytes::from(Status::last_will().to_json()),
                qos: QoS::AtLeastOnce,
                retain: true,
            };
            write_connect(&mut stream, BENCH, 30, BENCH, Some(will));
            rest
        }
        2 => {
            let mut fields = Fields(rest);
            let keep_alive = u16::from_be_bytes([fields.byte(), fields.byte()]);
            let flags = fields.byte();
            let client_id = if flags & 1 == 0 {
                BENCH.to_owned()
            } else {
                fields.text()
            };
            let username = if flags & 2 == 0 {
                client_id.clone()
            } else {
                fields.text()
            };
            let will = (flags & 4 != 0).then(|| LastWill {
                topic: Bytes::copy_from_slice(fields.bytes()),
                message: Bytes::copy_from_slice(fields.bytes()),
                qos: QoS::AtLeastOnce,
                retain: flags & 8 != 0,
            });
            write_connect(&mut stream, &client_id, keep_alive, &username, will);
            fields.0
        }
        _ => rest,
    };
    stream.extend_from_slice(rest);
    let mut run = GateRun {
        passed: 0,
        refused: None,
    };
    let mut out = BytesMut::new();
    // Every packet takes at least two bytes, so this bounds the loop.
    for _ in 0..=stream.len() {
        match gate.read_mut(&mut stream, crate::broker::MAX_PACKET_BYTES) {
            Ok(packet) => {
                run.passed += 1;
                if matches!(packet, Packet::Connect(..)) {
                    let ack = ConnAck {
                        session_present: false,
                        code: ConnectReturnCode::Success,
                    };
                    let _ = gate.write(Packet::ConnAck(ack, None), &mut out);
                }
            }
            Err(mqtt::Error::InsufficientBytes(_)) => break,
            Err(e) => {
                run.refused = Some(e.to_string());
                break;
            }
        }
    }
    drop(gate);
    run
}

fn write_connect(out: &mut BytesMut, client_id: &str, keep_alive: u16, username: &str, will: Option<LastWill>) {
    let connect = mqtt::Connect {
        keep_alive,
        client_id: client_id.to_owned(),
        clean_session: true,
    };
    let login = Login {
        username: username.to_owned(),
        password: TOKEN.clone(),
    };
    // Writing into a buffer fails only for fields longer than MQTT allows; the CONNECT is then
    // left out and the stream starts with whatever follows.
    let _ = V4.write(Packet::Connect(connect, None, will, None, Some(login)), out);
}

/// Length-prefixed fields at the front of a fuzz input.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(b, rest)| (*b, rest));
        self.0 = rest;
        first
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.0.len());
        let (field, rest) = self.0.split_at(n);
        self.0 = rest;
        field
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}
