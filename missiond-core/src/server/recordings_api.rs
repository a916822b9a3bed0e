//! REST for recordings: `GET /api/slots/{id}/runs`, `GET /api/slots/{id}/runs/{n}.cast`,
//! `GET /api/recordings` (docs/RECORDINGS.md). Read-only tokens may use all three.
//!
//! Runs are listed from the disk, so a removed slot's recordings can still be fetched.
//! A file is streamed, never read whole into memory.

use super::error::ApiError;
use super::AppState;
use crate::config::validate_slot_id;
use crate::protocol::codes;
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
            codes::error::NO_RECORDINGS,
            "recordings are unavailable: the recordings directory could not be opened (see the daemon's log)",
        )
    })
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::error::INTERNAL,
            e.to_string(),
        )
    })
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

/// The `.cast` file of one run, up to its last complete line, streamed: a run may be hundreds
/// of megabytes.
pub async fn cast(
    State(state): State<Arc<AppState>>,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    validate_slot_id(&id).map_err(ApiError::bad_request)?;
    let run: u64 = file
        .strip_suffix(".cast")
        .unwrap_or(&file)
        .parse()
        .map_err(|_| {
            ApiError::bad_request(format!("'{file}' is not a run: use <n>.cast, e.g. 1.cast"))
        })?;
    let store = store(&state)?;
    let path = store
        .path(&id, run)
        .ok_or_else(|| ApiError::not_found(format!("slot '{id}' has no recorded run {run}")))?;
    let unreadable = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::error::UNREADABLE,
            format!("cannot read {}: {e}", path.display()),
        )
    };
    // Two opens, not a clone: a cloned descriptor shares the read position.
    let len = complete_len(tokio::fs::File::open(&path).await.map_err(unreadable)?)
        .await
        .map_err(unreadable)?;
    let file = tokio::fs::File::open(&path).await.map_err(unreadable)?;
    let body = futures_util::stream::unfold(
        (
            tokio::io::AsyncReadExt::take(file, len),
            vec![0u8; 64 * 1024],
        ),
        |(mut reader, mut buf)| async move {
            match tokio::io::AsyncReadExt::read(&mut reader, &mut buf).await {
                Ok(0) => None,
                Ok(n) => Some((Ok(bytes::Bytes::copy_from_slice(&buf[..n])), (reader, buf))),
                Err(e) => Some((Err(e), (reader, buf))),
            }
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-asciicast"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// The length of `file` up to its last newline: a run being written may end in the middle of
/// a line. Reads only the tail (an event line is at most about 100 KiB).
async fn complete_len(mut file: tokio::fs::File) -> std::io::Result<u64> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    const TAIL: u64 = 256 * 1024;
    let len = file.metadata().await?.len();
    let start = len.saturating_sub(TAIL);
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail).await?;
    Ok(tail
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| start + i as u64 + 1))
}
