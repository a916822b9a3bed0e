//! REST for recordings: `GET /api/slots/{id}/runs`, `GET /api/slots/{id}/runs/{n}.cast`,
//! `GET /api/recordings` (docs/RECORDINGS.md). Read-only tokens may use all three.
//!
//! Runs are listed from the disk, so a removed slot's recordings can still be fetched.

use super::error::ApiError;
use super::AppState;
use crate::config::validate_slot_id;
use crate::protocol::recording::{RecordingUsage, RunSummary};
use crate::recording::Recordings;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

fn store(state: &AppState) -> Result<Arc<Recordings>, ApiError> {
    state.supervisor.settings().recordings.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_recordings",
            "recordings are unavailable: the recordings directory could not be opened (see the daemon's log)",
        )
    })
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

pub async fn usage(State(state): State<Arc<AppState>>) -> Result<Json<RecordingUsage>, ApiError> {
    let store = store(&state)?;
    Ok(Json(blocking(move || store.usage()).await?))
}

pub async fn runs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    validate_slot_id(&id).map_err(ApiError::bad_request)?;
    let store = store(&state)?;
    Ok(Json(blocking(move || store.runs(&id)).await?))
}

/// The `.cast` file of one run, up to its last complete line.
pub async fn cast(
    State(state): State<Arc<AppState>>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    validate_slot_id(&id).map_err(ApiError::bad_request)?;
    let run: u64 = file
        .strip_suffix(".cast")
        .unwrap_or(&file)
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{file}' is not a run: use <n>.cast, e.g. 1.cast")))?;
    let store = store(&state)?;
    let path = store
        .path(&id, run)
        .ok_or_else(|| ApiError::not_found(format!("slot '{id}' has no recorded run {run}")))?;
    let mut bytes = tokio::fs::read(&path).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unreadable",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    // A run being written may end in the middle of a line.
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(complete);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-asciicast"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}
