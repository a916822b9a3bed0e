//! A JSON Schema of the wire messages, generated from the Rust types (`schemars` reads the
//! serde attributes), committed as `docs/protocol.schema.json` for clients in other languages.
//!
//! Refresh it after changing a protocol type:
//! `MISSIOND_WRITE_SCHEMA=1 cargo test -p missiond-core --lib protocol::schema`.

use super::*;
use schemars::SchemaGenerator;

/// Where the committed schema lives, from the crate's directory.
pub const SCHEMA_PATH: &str = "../docs/protocol.schema.json";

/// The schema of every message: `$defs` holds each type, the root is one of the messages.
pub fn wire_schema() -> serde_json::Value {
    let mut generator = SchemaGenerator::default();
    let mut messages = Vec::new();
    let mut add = |schema: schemars::Schema| messages.push(schema.to_value());
    // `/pty`, `/events`, `/tasks` frames.
    add(generator.subschema_for::<PtyServerMsg>());
    add(generator.subschema_for::<PtyClientMsg>());
    add(generator.subschema_for::<SlotEvent>());
    add(generator.subschema_for::<tasks::TaskEvent>());
    add(generator.subschema_for::<tasks::TasksClientMsg>());
    // REST bodies.
    add(generator.subschema_for::<SlotSpec>());
    add(generator.subschema_for::<SlotInfo>());
    add(generator.subschema_for::<ErrorBody>());
    add(generator.subschema_for::<ScreenText>());
    add(generator.subschema_for::<InputRequest>());
    add(generator.subschema_for::<ResizeRequest>());
    add(generator.subschema_for::<PromptRequest>());
    add(generator.subschema_for::<ConfirmRequest>());
    add(generator.subschema_for::<StateReply>());
    add(generator.subschema_for::<tasks::TasksOverview>());
    add(generator.subschema_for::<tasks::SessionTasks>());
    add(generator.subschema_for::<audit::AuditEntry>());
    add(generator.subschema_for::<audit::NotifyEvent>());
    add(generator.subschema_for::<audit::NotifyTestResult>());
    add(generator.subschema_for::<recording::RunSummary>());
    add(generator.subschema_for::<recording::RecordingUsage>());
    add(generator.subschema_for::<signals::DoctorReport>());
    add(generator.subschema_for::<worktree::WorktreeInfo>());
    add(generator.subschema_for::<worktree::RemovedWorktree>());
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "missiond wire messages",
        "description": "REST bodies and WebSocket frames of missiond (docs/API.md). Generated from missiond-core/src/protocol; do not edit.",
        "oneOf": messages,
        "$defs": generator.definitions(),
    })
}

/// The schema as committed: pretty JSON with a final newline.
pub fn wire_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&wire_schema()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let fresh = wire_schema_text();
        if std::env::var_os("MISSIOND_WRITE_SCHEMA").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "docs/protocol.schema.json is stale (or missing): refresh it with \
             `MISSIOND_WRITE_SCHEMA=1 cargo test -p missiond-core --lib protocol::schema` and commit it"
        );
    }

    #[test]
    fn schema_knows_the_frames() {
        let schema = wire_schema();
        let defs = schema["$defs"].as_object().unwrap();
        for name in [
            "PtyServerMsg",
            "PtyClientMsg",
            "SlotEvent",
            "SemanticState",
            "ErrorBody",
        ] {
            assert!(defs.contains_key(name), "no {name} in the schema");
        }
        // The serde attributes are read: tags and camelCase fields appear as on the wire.
        let text = schema.to_string();
        assert!(text.contains("\"prevState\""), "camelCase field names");
        assert!(text.contains("\"data\""), "the data frame");
    }
}
