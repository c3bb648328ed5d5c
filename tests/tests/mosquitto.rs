//! Debian's real `mosquitto_pub` against the embedded broker: a bench token works, a wrong one fails.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use control_plane::store;
use tests::{ControlPlane, eventually, telemetry};

fn mosquitto_pub() -> Option<&'static str> {
    let found = Command::new("mosquitto_pub").arg("--help").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "mosquitto_pub (Debian: mosquitto-clients) is required in CI"
        );
        eprintln!("skipping: mosquitto_pub not installed (apt-get install mosquitto-clients)");
        return None;
    }
    Some("mosquitto_pub")
}

#[tokio::test(flavor = "multi_thread")]
async fn mosquitto_pub_with_a_bench_token() {
    let Some(bin) = mosquitto_pub() else { return };
    let cp = ControlPlane::start(&[]);
    let token = cp.token("bench", "zepce-01", &[]);
    let publish = |password: &str, seq: u64| {
        Command::new(bin)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &cp.mqtt.port().to_string(),
                "-V",
                "mqttv311",
                "-q",
                "1",
            ])
            .args([
                "-i",
                "zepce-01",
                "-u",
                "zepce-01",
                "-P",
                password,
                "-t",
                "benches/zepce-01/telemetry",
            ])
            .args(["-m", &telemetry(seq, 33.0)])
            .output()
            .expect("running mosquitto_pub")
    };
    let ok = publish(&token, 1);
    assert!(
        ok.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = publish("wrong", 2);
    assert!(!refused.status.success(), "a wrong password was accepted");

    let store = store::connect(&cp.database_url, &Default::default()).await.unwrap();
    let rows = eventually("the row from mosquitto_pub", Duration::from_secs(20), || async {
        let now = Utc::now();
        let r = store
            .telemetry(
                "zepce-01",
                now - chrono::Duration::hours(1),
                now + chrono::Duration::hours(1),
            )
            .await
            .ok()?;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].seq, rows[0].battery_pct), (1, 33.0));
}
