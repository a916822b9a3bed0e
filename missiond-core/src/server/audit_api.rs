//! The audit trail on the server: recording an action before it is carried out, and
//! `GET /api/audit?slot=&since=&limit=`.

use super::error::{ApiError, ApiQuery};
use super::AppState;
use crate::audit::AuditFilter;
use crate::protocol::audit::{Actor, AuditAction, AuditEntry, NotifyTestResult};
use crate::protocol::codes;
use crate::protocol::{Answer, Meaning, SemanticState, SlotSpec};
use crate::supervisor::{now_millis, Slot};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

/// Entries `GET /api/audit` returns when no `limit` is given, and the most it ever returns.
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;

/// Appends `entry`; an action whose record cannot be written is refused (503), never done
/// unrecorded.
pub fn record(state: &AppState, entry: &AuditEntry) -> Result<(), ApiError> {
    state.audit.append(entry).map_err(|e| {
        tracing::error!("audit: cannot write {}: {e}", state.audit.path().display());
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::error::AUDIT_FAILED,
            format!("not done: the audit trail cannot be written ({e})"),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[serde(default)]
    slot: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    since: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    if let Some(slot) = &q.slot {
        crate::config::validate_slot_id(slot).map_err(ApiError::bad_request)?;
    }
    let filter = AuditFilter {
        slot: q.slot,
        since: q.since,
        limit: q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let audit = state.audit.clone();
    let entries = tokio::task::spawn_blocking(move || audit.read(&filter))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::error::INTERNAL,
                e.to_string(),
            )
        })?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::error::AUDIT_UNREADABLE,
                format!("cannot read the audit trail: {e}"),
            )
        })?;
    Ok(Json(entries))
}

/// The record of a launch: the command line and directory asked for.
pub fn launch_entry(spec: &SlotSpec, actor: Actor) -> AuditEntry {
    let mut entry = AuditEntry::new(now_millis(), &spec.id, AuditAction::Launch, actor);
    let mut command = vec![spec.command.clone()];
    command.extend(spec.args.iter().cloned());
    entry.command = Some(command);
    entry.cwd = spec.cwd.clone();
    entry
}

/// The record of input reaching a program: its size, and its text when that is one line of
/// printable characters (optionally ended by Enter), or a lone Enter.
pub fn input_entry(slot: &str, data: &[u8], actor: Actor) -> AuditEntry {
    let mut entry = AuditEntry::new(now_millis(), slot, AuditAction::Input, actor);
    entry.bytes = Some(data.len());
    let line = data
        .strip_suffix(b"\r\n")
        .or_else(|| data.strip_suffix(b"\r"))
        .or_else(|| data.strip_suffix(b"\n"))
        .unwrap_or(data);
    // A lone Enter is kept too: it is what submits a prompt or a dialog's selection.
    if line.is_empty() || crate::audit::printable_line(line).is_some() {
        entry.text = Some(String::from_utf8_lossy(data).into_owned());
    }
    entry
}

/// The record of an answer: which option of which dialog (none for a "no" given by Escape).
/// `None` when the slot shows no dialog that can give the answer (then it is refused before
/// any key is sent).
pub fn confirm_entry(slot: &Slot, answer: Answer, actor: Actor) -> Option<AuditEntry> {
    let view = slot.state();
    let dialog = view
        .detail
        .dialog
        .filter(|_| view.state == SemanticState::Confirming)?;
    let (option, meaning) = match answer {
        Answer::Option(n) => (
            Some(dialog.options.iter().find(|o| o.n == n)?.clone()),
            None,
        ),
        Answer::Meaning(m) => match dialog.option_meaning(m) {
            Some(o) => (Some(o.clone()), Some(m)),
            None if m == Meaning::No && dialog.cancellable => (None, Some(m)),
            None => return None,
        },
    };
    let mut entry = AuditEntry::new(now_millis(), slot.id(), AuditAction::Confirm, actor);
    entry.option = option;
    entry.answer = meaning;
    entry.dialog = Some(dialog);
    Some(entry)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyTestRequest {
    #[serde(default)]
    slot: Option<String>,
}

/// `POST /api/notify/test`: a sample event to every receiver, and what each one said.
pub async fn notify_test(
    State(state): State<Arc<AppState>>,
    body: bytes::Bytes,
) -> Result<Json<Vec<NotifyTestResult>>, ApiError> {
    // The body is optional: no body means the sample slot `example`.
    let request: NotifyTestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        NotifyTestRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::error::BAD_JSON,
                e.to_string(),
            )
        })?
    };
    let slot = request.slot.unwrap_or_else(|| "example".to_string());
    crate::config::validate_slot_id(&slot).map_err(ApiError::bad_request)?;
    Ok(Json(state.notifier.test(&slot).await))
}
