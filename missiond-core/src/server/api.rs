//! REST under `/api`: everything the CLI does, JSON in and out.

use super::actor::RequestActor;
use super::audit_api::{self, record};
use super::error::{ApiError, ApiJson, ApiQuery, Choice};
use super::AppState;
use crate::config::validate_slot_id;
use crate::protocol::audit::{AuditAction, AuditEntry};
use crate::protocol::codes;
use crate::protocol::worktree::WorktreeRemoval;
use crate::protocol::{
    ConfirmRequest, InputRequest, PromptRequest, ResizeRequest, ScreenText, SemanticState,
    SlotInfo, SlotSpec, StateReply,
};
use crate::supervisor::now_millis;
use crate::supervisor::{Slot, SupervisorError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

type ApiResult<T> = Result<T, ApiError>;

/// Looks a slot up by an id from the URL, refusing malformed ids with 400.
fn slot(state: &AppState, id: &str) -> ApiResult<Arc<Slot>> {
    validate_slot_id(id).map_err(ApiError::bad_request)?;
    Ok(state.supervisor.get(id)?)
}

pub async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<SlotInfo>> {
    Json(state.supervisor.list())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    ApiJson(spec): ApiJson<SlotSpec>,
) -> ApiResult<Response> {
    crate::config::validate_spec(&spec).map_err(ApiError::bad_request)?;
    record(&state, &audit_api::launch_entry(&spec, actor))?;
    // A worktree slot runs git (worktree add, copies): off the async workers.
    let supervisor = state.supervisor.clone();
    let info = tokio::task::spawn_blocking(move || supervisor.create(spec))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::error::INTERNAL,
                e.to_string(),
            )
        })??;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<SlotInfo>> {
    Ok(Json(slot(&state, &id)?.info()))
}

#[derive(Debug, Deserialize)]
pub struct RemoveQuery {
    /// `keep` or `discard` for a worktree slot holding unsaved work (default: refuse).
    #[serde(default)]
    worktree: WorktreeRemoval,
}

/// 204 for a plain slot; for a worktree slot, 200 with what became of its worktree.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RemoveQuery>,
) -> ApiResult<Response> {
    // A recorded slot that could not be restored has no live slot: `rm` is how it is forgotten.
    if !state.supervisor.holds_unrestored(&id) {
        slot(&state, &id)?;
    }
    record(
        &state,
        &AuditEntry::new(now_millis(), &id, AuditAction::Remove, actor),
    )?;
    let removed = state.supervisor.remove(&id, q.worktree).await?;
    Ok(match removed.worktree {
        Some(_) => Json(removed).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// The slot's work as a patch against its worktree's base, untracked files included.
pub async fn diff(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let slot = slot(&state, &id)?;
    let checkout = slot
        .worktree()
        .map(|t| t.checkout().clone())
        .ok_or_else(|| {
            SupervisorError::NotAWorktree(format!(
                "slot '{id}' does not run in a worktree of its own (launch it with --worktree)"
            ))
        })?;
    let text = tokio::task::spawn_blocking(move || crate::worktree::diff(&checkout))
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
                StatusCode::CONFLICT,
                codes::error::GIT_FAILED,
                e.to_string(),
            )
        })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/x-diff; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
) -> ApiResult<Json<SlotInfo>> {
    slot(&state, &id)?;
    record(
        &state,
        &AuditEntry::new(now_millis(), &id, AuditAction::Start, actor),
    )?;
    Ok(Json(state.supervisor.start(&id)?))
}

pub async fn kill(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
) -> ApiResult<Json<SlotInfo>> {
    slot(&state, &id)?;
    record(
        &state,
        &AuditEntry::new(now_millis(), &id, AuditAction::Kill, actor),
    )?;
    Ok(Json(state.supervisor.kill(&id).await?))
}

pub async fn restart(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
) -> ApiResult<Json<SlotInfo>> {
    slot(&state, &id)?;
    record(
        &state,
        &AuditEntry::new(now_millis(), &id, AuditAction::Restart, actor),
    )?;
    Ok(Json(state.supervisor.restart(&id).await?))
}

pub async fn input(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<InputRequest>,
) -> ApiResult<StatusCode> {
    let slot = slot(&state, &id)?;
    let run = slot.live_run()?;
    record(
        &state,
        &audit_api::input_entry(&id, req.data.as_bytes(), actor),
    )?;
    run.write(Bytes::from(req.data.into_bytes())).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::error::INPUT_FAILED,
            e.to_string(),
        )
    })?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn resize(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ResizeRequest>,
) -> ApiResult<Json<SlotInfo>> {
    let slot = slot(&state, &id)?;
    let mut entry = AuditEntry::new(now_millis(), &id, AuditAction::Resize, actor);
    (entry.cols, entry.rows) = (Some(req.cols), Some(req.rows));
    record(&state, &entry)?;
    slot.resize(req.cols, req.rows).await?;
    Ok(Json(slot.info()))
}

#[derive(Debug, Deserialize)]
pub struct ScreenQuery {
    #[serde(default)]
    format: Option<Choice<ScreenFormat>>,
    /// Put the scrollback before the screen.
    #[serde(default)]
    scrollback: bool,
}

/// `format=`: the screen as plain text (the default) or with its colours as ANSI escapes.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScreenFormat {
    Text,
    Ansi,
}

pub async fn screen(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ScreenQuery>,
) -> ApiResult<Response> {
    let slot = slot(&state, &id)?;
    let run = slot.run().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            codes::error::NOT_STARTED,
            format!("slot '{id}' has not started yet"),
        )
    })?;
    let ansi = match q.format {
        None | Some(Choice::Known(ScreenFormat::Text)) => false,
        Some(Choice::Known(ScreenFormat::Ansi)) => true,
        Some(Choice::Unknown(other)) => {
            return Err(ApiError::bad_request(format!(
                "unknown format '{other}': use text or ansi"
            )))
        }
    };
    let gone = || {
        ApiError::new(
            StatusCode::GONE,
            codes::error::GONE,
            "the slot's screen is gone",
        )
    };
    let text: ScreenText = run
        .inspect(move |screen, _| {
            let history = match (q.scrollback, ansi) {
                (false, _) => String::new(),
                (true, false) => screen.history_text(),
                (true, true) => String::from_utf8_lossy(&screen.history_ansi()).into_owned(),
            };
            let mut text = screen.text();
            if ansi {
                text.text = String::from_utf8_lossy(&screen.ansi()).into_owned();
            }
            text.text.insert_str(0, &history);
            text
        })
        .await
        .ok_or_else(gone)?;
    Ok(Json(text).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitQuery {
    state: Choice<SemanticState>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// Blocks until the slot is in the asked state (or, for `idle`, any state but busy/starting).
pub async fn wait(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<Json<StateReply>> {
    let slot = slot(&state, &id)?;
    let target = match q.state {
        Choice::Known(state) => state,
        Choice::Unknown(other) => {
            return Err(ApiError::bad_request(format!("unknown state '{other}'")))
        }
    };
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(300_000).min(3_600_000));
    let view = slot.wait_for(timeout, |s| s == target).await?;
    Ok(Json(StateReply {
        state: view.state,
        state_detail: view.detail,
    }))
}

pub async fn prompt(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PromptRequest>,
) -> ApiResult<Json<StateReply>> {
    let slot = slot(&state, &id)?;
    // A slot that takes no prompt (not idle, not after a failed turn) refuses it before any
    // key is sent: nothing to record.
    if matches!(
        slot.state().state,
        SemanticState::Idle | SemanticState::Error
    ) {
        let mut entry = AuditEntry::new(now_millis(), &id, AuditAction::Prompt, actor);
        entry.text = Some(req.text.clone());
        record(&state, &entry)?;
        slot.record_marker(crate::recording::prompt_label(&req.text));
    }
    let view = slot.prompt(&req).await?;
    crate::metrics::add(&state.supervisor.counters().prompts_submitted, 1);
    Ok(Json(StateReply {
        state: view.state,
        state_detail: view.detail,
    }))
}

pub async fn confirm(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> ApiResult<Json<StateReply>> {
    let answer = req.answer().map_err(ApiError::bad_request)?;
    let slot = slot(&state, &id)?;
    // Without an option (or Escape) that gives the answer no key is sent (confirm refuses):
    // nothing to record.
    if let Some(entry) = audit_api::confirm_entry(&slot, answer, actor) {
        record(&state, &entry)?;
        slot.record_marker(crate::recording::answer_label(&entry));
    }
    let view = slot.confirm(answer).await?;
    crate::metrics::add(&state.supervisor.counters().dialogs_answered, 1);
    Ok(Json(StateReply {
        state: view.state,
        state_detail: view.detail,
    }))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API route: see docs/API.md")
}
