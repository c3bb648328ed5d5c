//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the inputs of crashes fuzzing found
//! (`fuzz/regressions/<target>/`) through the same entry points the fuzz targets call
//! (`control_plane::fuzzing`), on stable Rust in the normal suite: every input must end in `Ok`
//! or a clean refusal, never a panic. The corpora must cover both outcomes, so a decoder that
//! started refusing (or accepting) everything fails here too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use control_plane::fuzzing;

/// Most files a corpus may hold: a minimized corpus is small (`cargo fuzz cmin`).
const MAX_CORPUS_FILES: usize = 200;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every input of a target: its corpus (which must exist and not be empty) and its regressions.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let corpus = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", corpus.display()))
        .map(|e| e.unwrap().path())
        .collect();
    let corpus_files = files.len();
    assert!(
        (5..=MAX_CORPUS_FILES).contains(&corpus_files),
        "{}: {corpus_files} files; keep 5-{MAX_CORPUS_FILES} (cargo fuzz cmin)",
        corpus.display()
    );
    if let Ok(regressions) = std::fs::read_dir(fuzz_dir().join("regressions").join(target)) {
        files.extend(regressions.map(|e| e.unwrap().path()));
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// Runs `decode` over every input of `target`; returns (accepted, refused).
fn replay<T, E>(target: &str, mut decode: impl FnMut(&[u8]) -> Result<T, E>) -> (usize, usize) {
    let (mut ok, mut refused) = (0, 0);
    for (path, bytes) in inputs(target) {
        match catch_unwind(AssertUnwindSafe(|| decode(&bytes))) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(_)) => refused += 1,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!("{target}: {} panicked: {message}", path.display());
            }
        }
    }
    (ok, refused)
}

fn replay_payloads(target: &str, decode: fn(&[u8]) -> Result<(), String>) {
    let (ok, refused) = replay(target, decode);
    assert!(
        ok > 0 && refused > 0,
        "{target}: the corpus should hold accepted and refused inputs ({ok} accepted, {refused} refused)"
    );
}

#[test]
fn telemetry_corpus() {
    replay_payloads("telemetry", fuzzing::telemetry);
}

#[test]
fn status_corpus() {
    replay_payloads("status", fuzzing::status);
}

#[test]
fn config_ack_corpus() {
    replay_payloads("config_ack", fuzzing::config_ack);
}

#[test]
fn idea_corpus() {
    replay_payloads("idea", fuzzing::idea);
}

#[test]
fn rules_corpus() {
    replay_payloads("rules", fuzzing::rules);
}

#[test]
fn gate_corpus() {
    let mut admitted = 0;
    let (ended, refused) = replay("gate", |bytes| {
        let run = fuzzing::gate(bytes);
        // A CONNECT that passed, then at least one more packet: the ACL was reached.
        if run.passed > 1 {
            admitted += 1;
        }
        run.refused.map_or(Ok(()), Err)
    });
    assert!(
        admitted > 0 && ended > 0 && refused > 0,
        "gate: the corpus should reach the ACL ({admitted}), end cleanly ({ended}) and be refused ({refused})"
    );
}
