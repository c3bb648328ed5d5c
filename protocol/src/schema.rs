//! JSON Schemas of the payloads, generated from the types so docs and code cannot drift.
//! `docs/schemas/*.schema.json` are checked against these by a test (`BLESS=1` rewrites them).

use schemars::schema_for;

use crate::{ConfigAck, ConfigDocument, IdeaAck, IdeaSubmission, Status, Telemetry, TelemetryAck, fleet::BenchInfo};

/// `(file name, schema)` of every published payload schema.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    let v = |s: schemars::Schema| serde_json::to_value(s).unwrap_or_default();
    vec![
        ("telemetry.schema.json", v(schema_for!(Telemetry))),
        ("telemetry-ack.schema.json", v(schema_for!(TelemetryAck))),
        ("status.schema.json", v(schema_for!(Status))),
        ("fleet-bench.schema.json", v(schema_for!(BenchInfo))),
        ("config.schema.json", v(schema_for!(ConfigDocument))),
        ("config-ack.schema.json", v(schema_for!(ConfigAck))),
        ("idea.schema.json", v(schema_for!(IdeaSubmission))),
        ("idea-ack.schema.json", v(schema_for!(IdeaAck))),
    ]
}
