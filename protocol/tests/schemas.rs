//! The published JSON Schemas in docs/schemas match the types. Run with `BLESS=1` to rewrite them.

use std::path::PathBuf;

#[test]
fn published_schemas_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas");
    let bless = std::env::var_os("BLESS").is_some();
    for (name, schema) in protocol::schema::all() {
        let path = dir.join(name);
        let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let published = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `BLESS=1 cargo test -p protocol` to create it)",
                path.display()
            )
        });
        assert_eq!(
            published,
            generated,
            "{} is out of date: run `BLESS=1 cargo test -p protocol`",
            path.display()
        );
    }
}

#[test]
fn telemetry_schema_states_required_fields_and_ranges() {
    let (_, schema) = protocol::schema::all()
        .into_iter()
        .find(|(n, _)| *n == "telemetry.schema.json")
        .unwrap();
    let text = schema.to_string();
    for required in ["\"v\"", "\"ts\"", "\"seq\"", "\"power\""] {
        assert!(
            schema["required"].to_string().contains(required),
            "{required} not required: {text}"
        );
    }
    assert!(text.contains("\"maximum\":100.0"), "battery range missing: {text}");
}
