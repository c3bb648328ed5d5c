//! Hostile and broken clients against the real binary, each bounded in count and time, and each
//! followed by the same check: another bench still connects, publishes and is stored, and the API
//! still answers.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use base64::Engine;
use protocol::token::Secret;
use protocol::{Claims, Role};
use rand::{Rng, SeedableRng};
use rumqttc::QoS;
use tests::{ControlPlane, bench_options, connect_bench, eventually, telemetry, wait_connack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// Starts on SQLite with `toml` as its configuration file.
fn start(toml: &str) -> (ControlPlane, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("abuse.toml");
    std::fs::write(&config, toml).unwrap();
    let cp = ControlPlane::start(&["--config", config.to_str().unwrap()]);
    (cp, dir)
}

/// A bench that was not part of the abuse connects, publishes one sample at QoS 1 and sees it
/// stored; a viewer reads the fleet.
async fn still_serves(cp: &ControlPlane, bench: &str) {
    let before = cp.metric("benchfleet_ingest_rows_stored_total").await.unwrap_or(0.0);
    let token = cp.token("bench", bench, &[]);
    let (client, _task) = connect_bench(cp, bench, &token).await;
    client
        .publish(
            format!("benches/{bench}/telemetry"),
            QoS::AtLeastOnce,
            false,
            telemetry(1, 80.0),
        )
        .await
        .unwrap();
    eventually("the bystander's sample is stored", WAIT, || async {
        let now = cp.metric("benchfleet_ingest_rows_stored_total").await.unwrap_or(0.0);
        (now > before).then_some(())
    })
    .await;
    let viewer = cp.token("viewer", "abuse-check", &[]);
    let r = http()
        .get(format!("{}/api/v1/benches", cp.api))
        .bearer_auth(viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the API answers after the abuse");
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// An MQTT 3.1.1 CONNECT with user name and password.
fn connect_packet(client_id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 30];
    for s in [client_id, user, password] {
        body.extend((s.len() as u16).to_be_bytes());
        body.extend(s.as_bytes());
    }
    packet(0x10, &body)
}

/// A fixed header (type and flags, remaining length) before `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        p.push(b);
        if n == 0 {
            break;
        }
    }
    p.extend(body);
    p
}

/// How a connection ended from the client's side.
#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted,
    Refused(u8),
    Closed,
}

/// Reads the server's answer to a CONNECT (or to garbage) until it refuses, accepts or closes.
async fn answer(stream: &mut TcpStream, within: Duration) -> Option<Outcome> {
    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(within, async {
        let mut got = 0;
        while got < 4 {
            match stream.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => return Outcome::Closed,
                Ok(n) => got += n,
            }
        }
        match buf {
            [0x20, 2, _, 0] => Outcome::Accepted,
            [0x20, 2, _, code] => Outcome::Refused(code),
            _ => Outcome::Closed,
        }
    });
    read.await.ok()
}

/// Waits until the server closes `stream` (reading and discarding what it sends).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn denied_total(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("benchfleet_mqtt_connections_denied_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn two_thousand_concurrent_connects_with_bad_passwords_are_all_refused() {
    let cp = ControlPlane::start(&[]);
    let addr = cp.mqtt;
    let started = Instant::now();
    let tasks: Vec<_> = (0..2000)
        .map(|i| {
            tokio::spawn(async move {
                let bench = ["mostar-01", "zepce-01", "novi-grad-01"][i % 3];
                // A full accept backlog may refuse or reset the socket: an answer too.
                let Ok(mut s) = TcpStream::connect(addr).await else {
                    return Some(Outcome::Closed);
                };
                if s.write_all(&connect_packet(bench, bench, "not-a-token")).await.is_err() {
                    return Some(Outcome::Closed);
                }
                answer(&mut s, Duration::from_secs(60)).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert!(
        !outcomes.contains(&Some(Outcome::Accepted)),
        "a bad password was accepted"
    );
    let unanswered = outcomes.iter().filter(|o| o.is_none()).count();
    assert_eq!(unanswered, 0, "{unanswered} of 2000 CONNECTs got no answer within 60 s");
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Refused(_))))
        .count();
    eprintln!(
        "2000 bad CONNECTs answered in {:?}: {refused} refused with a CONNACK, the rest closed",
        started.elapsed()
    );
    eventually("every refusal is counted", WAIT, || async {
        (denied_total(&cp.get("/metrics").await) >= refused as f64).then_some(())
    })
    .await;
    let warned = cp
        .log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("MQTT connection refused"))
        .count();
    assert!(
        (1..=3).contains(&warned),
        "refusals are logged at WARN once per reason and minute, not once each: {warned} lines"
    );
    still_serves(&cp, "prijedor-01").await;
}

#[tokio::test]
async fn half_open_connections_are_timed_out() {
    let (cp, _dir) = start("[mqtt]\nconnect_timeout_ms = 1000\n");
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(TcpStream::connect(cp.mqtt).await.unwrap());
    }
    // While they hang, a real bench gets in.
    still_serves(&cp, "prijedor-01").await;
    let started = Instant::now();
    for s in &mut silent {
        let left = Duration::from_secs(10).saturating_sub(started.elapsed());
        assert!(
            closed_within(s, left).await,
            "a silent socket was still open after 10 s"
        );
    }
    still_serves(&cp, "zepce-01").await;
}

#[tokio::test]
async fn random_bytes_instead_of_connect_are_refused_and_closed() {
    let (cp, _dir) = start("[mqtt]\nconnect_timeout_ms = 1000\n");
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let len = rng.random_range(1..512);
            let mut junk: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if i % 2 == 0 {
                // Half of them start like a CONNECT, so the decoder gets past the first byte.
                junk[0] = 0x10;
            }
            let addr = cp.mqtt;
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let _ = s.write_all(&junk).await;
                (answer(&mut s, Duration::from_secs(10)).await, junk)
            })
        })
        .collect();
    for t in tasks {
        match t.await.unwrap() {
            (Some(Outcome::Accepted), junk) => panic!("random bytes {junk:02x?} were accepted as a CONNECT"),
            (Some(_), _) => {}
            (None, junk) => panic!("random bytes {junk:02x?} left the connection open for 10 s"),
        }
    }
    still_serves(&cp, "prijedor-01").await;
}

#[tokio::test]
async fn a_one_megabyte_publish_closes_only_that_connection() {
    let cp = ControlPlane::start(&[]);
    let token = cp.token("bench", "mostar-01", &[]);
    let mut s = TcpStream::connect(cp.mqtt).await.unwrap();
    s.write_all(&connect_packet("mostar-01", "mostar-01", &token))
        .await
        .unwrap();
    assert_eq!(answer(&mut s, WAIT).await, Some(Outcome::Accepted));
    let topic = b"benches/mostar-01/telemetry";
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend(topic);
    body.extend(vec![b'x'; 1024 * 1024]);
    // The server may close while the megabyte is still being written.
    let _ = s.write_all(&packet(0x30, &body)).await;
    assert!(
        closed_within(&mut s, WAIT).await,
        "the connection stayed open after a 1 MB packet"
    );
    // The same bench comes back and is served.
    still_serves(&cp, "mostar-01").await;
}

#[tokio::test]
async fn a_flooding_bench_is_rate_limited_and_every_message_counted() {
    let (cp, _dir) = start("[mqtt]\nbench_messages_per_s = 10\nbench_message_burst = 100\n");
    let token = cp.token("bench", "mostar-01", &[]);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(bench_options(&cp, "mostar-01", &token), 1000);
    wait_connack(&mut eventloop).await.unwrap();
    let driver = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let started = Instant::now();
    const FLOOD: u64 = 10_000;
    for seq in 1..=FLOOD {
        client
            .publish(
                "benches/mostar-01/telemetry",
                QoS::AtMostOnce,
                false,
                telemetry(seq, 50.0),
            )
            .await
            .unwrap();
    }
    let received = eventually("the broker hands over the whole flood", WAIT, || async {
        let n = cp
            .metric(r#"benchfleet_mqtt_messages_received_total{kind="telemetry"}"#)
            .await?;
        (n >= FLOOD as f64).then_some(n)
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let (stored, limited) = eventually("the flood is accounted for", WAIT, || async {
        let stored = cp.metric("benchfleet_ingest_rows_stored_total").await.unwrap_or(0.0);
        let limited = cp
            .metric(r#"benchfleet_mqtt_messages_dropped_total{reason="rate_limited"}"#)
            .await
            .unwrap_or(0.0);
        (stored + limited == received).then_some((stored, limited))
    })
    .await;
    assert!(stored >= 100.0, "the burst is let through: {stored} stored");
    assert!(
        stored <= 100.0 + 10.0 * (elapsed + 2.0),
        "{stored} stored in {elapsed:.1} s is over the quota (burst 100, 10/s)"
    );
    assert!(limited > 0.0);
    let log = cp.log();
    let warnings = log.lines().filter(|l| l.contains("rate_limited")).count();
    assert!(
        (1..=5).contains(&warnings),
        "the drops are logged, not once per message: {warnings} lines"
    );
    driver.abort();
    still_serves(&cp, "zepce-01").await;
}

#[tokio::test]
async fn subscribing_to_everything_or_another_bench_is_refused() {
    let cp = ControlPlane::start(&[]);
    let token = cp.token("bench", "mostar-01", &[]);
    for filter in ["#", "benches/+/telemetry", "benches/zepce-01/config", "$SYS/#"] {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(bench_options(&cp, "mostar-01", &token), 10);
        wait_connack(&mut eventloop).await.unwrap();
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let ended = tokio::time::timeout(WAIT, async {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack))) => {
                        return ack
                            .return_codes
                            .iter()
                            .all(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                    }
                    Ok(_) => {}
                    Err(_) => return true,
                }
            }
        })
        .await;
        assert_eq!(ended, Ok(true), "subscribing to {filter} was granted");
    }
    still_serves(&cp, "zepce-01").await;
}

/// A token with `alg: none` and no signature, claiming `role`.
fn unsigned(role: Role, sub: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = serde_json::to_string(&Claims::new(role, sub, Duration::from_secs(600))).unwrap();
    format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims))
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused_on_both_doors() {
    let cp = ControlPlane::start(&[]);
    let wrong_key = Secret::new(b"not the control plane's secret".to_vec());
    let mut expired = Claims::new(Role::Admin, "root", Duration::from_secs(60));
    expired.exp = chrono::Utc::now().timestamp() - 1;
    let own = std::fs::read(cp.data_dir().join("jwt.secret")).unwrap();
    let own = Secret::new(own.trim_ascii().to_vec());
    let http_tokens = [
        ("alg none", unsigned(Role::Admin, "root")),
        (
            "wrong key",
            wrong_key.sign(&Claims::new(Role::Admin, "root", Duration::from_secs(600))),
        ),
        ("expired", own.sign(&expired)),
    ];
    for (what, token) in &http_tokens {
        let r = http()
            .get(format!("{}/api/v1/benches", cp.api))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{what}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "application/problem+json", "{what}");
    }
    let mut expired_bench = Claims::new(Role::Bench, "mostar-01", Duration::from_secs(60));
    expired_bench.exp = chrono::Utc::now().timestamp() - 1;
    let mqtt_tokens = [
        ("alg none", unsigned(Role::Bench, "mostar-01")),
        (
            "wrong key",
            wrong_key.sign(&Claims::new(Role::Bench, "mostar-01", Duration::from_secs(600))),
        ),
        ("expired", own.sign(&expired_bench)),
    ];
    for (what, token) in &mqtt_tokens {
        let mut s = TcpStream::connect(cp.mqtt).await.unwrap();
        s.write_all(&connect_packet("mostar-01", "mostar-01", token))
            .await
            .unwrap();
        let outcome = answer(&mut s, WAIT).await;
        assert!(
            matches!(outcome, Some(Outcome::Refused(_) | Outcome::Closed)),
            "{what}: {outcome:?}"
        );
    }
    // The control plane's own token does get in: the refusals were about the tokens.
    let good = own.sign(&Claims::new(Role::Bench, "mostar-01", Duration::from_secs(600)));
    let mut s = TcpStream::connect(cp.mqtt).await.unwrap();
    s.write_all(&connect_packet("mostar-01", "mostar-01", &good))
        .await
        .unwrap();
    assert_eq!(answer(&mut s, WAIT).await, Some(Outcome::Accepted));
    drop(s);
    still_serves(&cp, "zepce-01").await;
}

#[tokio::test]
async fn huge_and_deeply_nested_json_bodies_get_problem_details() {
    let cp = ControlPlane::start(&[]);
    let admin = cp.token("admin", "root", &[]);
    let url = format!("{}/api/v1/routing/rules", cp.api);
    let huge = format!(r#"{{"rules":"{}"}}"#, "x".repeat(10 * 1024 * 1024));
    // Deep enough to overflow a recursive decoder's stack, small enough for the body limit.
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    for (what, body, status) in [("10 MB", huge, 413), ("nested 20 000 deep", deep, 400)] {
        let r = http()
            .put(&url)
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let Ok(r) = r else {
            // The server may answer 413 and close before the 10 MB are written.
            assert_eq!(what, "10 MB", "{what}: {r:?}");
            continue;
        };
        assert_eq!(r.status(), status, "{what}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "application/problem+json", "{what}");
    }
    still_serves(&cp, "zepce-01").await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn five_hundred_sse_clients_that_never_read_do_not_grow_memory() {
    let cp = ControlPlane::start(&[]);
    let viewer = cp.token("viewer", "crowd", &[]);
    let host = cp.api.trim_start_matches("http://").to_owned();
    let mut crowd = Vec::new();
    for _ in 0..500 {
        let mut s = TcpStream::connect(&host).await.unwrap();
        let req = format!(
            "GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {viewer}\r\nAccept: text/event-stream\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        crowd.push(s);
    }
    // Every stream is open (one reads its answer), then nobody reads.
    let mut head = [0u8; 12];
    crowd[0].read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(cp.pid());
    // Far more events than a socket buffer holds, per client: 1 500 samples (under the burst).
    let token = cp.token("bench", "mostar-01", &[]);
    let (client, _task) = connect_bench(&cp, "mostar-01", &token).await;
    for seq in 1..=1500 {
        client
            .publish(
                "benches/mostar-01/telemetry",
                QoS::AtLeastOnce,
                false,
                telemetry(seq, 60.0),
            )
            .await
            .unwrap();
    }
    eventually("the samples are stored", WAIT, || async {
        let n = cp.metric("benchfleet_ingest_rows_stored_total").await.unwrap_or(0.0);
        (n >= 1500.0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(cp.pid());
    eprintln!("RSS with 500 stalled SSE clients: {before} KiB before the samples, {after} KiB after");
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "memory grew by {} KiB: stalled clients are being buffered for",
        after - before
    );
    still_serves(&cp, "zepce-01").await;
    drop(crowd);
}
