//! `POST /api/daemon/upgrade`: replace the running daemon with a new binary, every slot's
//! program running on (see [`crate::supervisor::handover`]).

use super::actor::RequestActor;
use super::audit_api::record;
use super::error::ApiError;
use super::AppState;
use crate::protocol::audit::{AuditAction, AuditEntry};
use crate::protocol::codes;
use crate::supervisor::{Handover, HANDOVER_VERSION};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

type ApiResult<T> = Result<T, ApiError>;

/// The hidden subcommand a new binary answers with its handover version.
pub const HANDOVER_VERSION_SUBCOMMAND: &str = "__handover-version";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The new binary (default: the daemon's own executable, e.g. installed over it).
    #[serde(default)]
    pub binary: Option<String>,
}

/// Checks the new binary, hands the slots over and executes it. On success this process
/// becomes the new daemon and the request's connection closes without an answer (clients
/// then wait for `/health`); on failure the daemon serves on and says why.
pub async fn upgrade(
    State(state): State<Arc<AppState>>,
    RequestActor(actor): RequestActor,
    super::error::ApiJson(req): super::error::ApiJson<UpgradeRequest>,
) -> ApiResult<Response> {
    if !state.owns_process {
        return Err(failed(
            "this daemon runs inside another program, not as `missiond serve`: it cannot replace its process"
                .into(),
        ));
    }
    let binary = match req.binary {
        Some(path) => PathBuf::from(path),
        None => own_executable()
            .map_err(|e| failed(format!("cannot find the daemon's own binary: {e}")))?,
    };
    check_binary(&binary).await.map_err(failed)?;
    // Each slot's audit trail says who replaced the daemon under it, and with what.
    let now = crate::supervisor::now_millis();
    for slot in state.supervisor.list() {
        let mut entry = AuditEntry::new(now, &slot.id, AuditAction::Upgrade, actor.clone());
        entry.command = Some(vec![binary.display().to_string()]);
        record(&state, &entry)?;
    }
    // From here every other request waits for the new image ([`refuse_while_upgrading`]) and
    // viewers close with a code that tells them to reconnect, so none attaches to a paused
    // slot or hears `/health` from the image that is about to go.
    state.upgrading.send_replace(true);
    let handed = state.supervisor.hand_over(state.listener_fd).await;
    let (handover, paused) = match handed {
        Ok(handed) => handed,
        Err(e) => {
            state.upgrading.send_replace(false);
            return Err(failed(e.to_string()));
        }
    };
    let path = state
        .state_dir
        .join(format!("handover-{}.json", std::process::id()));
    let written = serde_json::to_vec(&handover)
        .map_err(std::io::Error::other)
        .and_then(|bytes| crate::registry::write_atomic(&path, &bytes));
    if let Err(e) = written {
        state.upgrading.send_replace(false);
        paused.resume();
        return Err(failed(format!(
            "cannot write the handover file {}: {e}",
            path.display()
        )));
    }
    // Viewers close with 1012 before `execve` ends their connections abruptly.
    let closing = tokio::time::timeout(Duration::from_secs(1), async {
        while state.upgrading.receiver_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let _ = closing.await;
    paused.close_recordings(
        state.supervisor.settings().recordings.as_deref(),
        Duration::from_secs(2),
    );
    tracing::info!(binary = %binary.display(), "upgrading: executing the new binary");
    let mut command = std::process::Command::new(&binary);
    command.arg("serve");
    if let Some(config) = &state.config_path {
        command.arg("--config").arg(config);
    }
    command.arg("--handover").arg(&path);
    let error = std::os::unix::process::CommandExt::exec(&mut command);
    // Only reached when execve failed: the old image serves on.
    let _ = std::fs::remove_file(&path);
    state.upgrading.send_replace(false);
    paused.resume();
    Err(failed(format!(
        "cannot execute {}: {error}",
        binary.display()
    )))
}

/// Middleware: while an upgrade hands over, every request but the upgrade itself is answered
/// 503 with `Retry-After`, `/health` included: clients retry and reach the new image.
pub async fn refuse_while_upgrading(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !*state.upgrading.borrow() {
        return next.run(req).await;
    }
    let mut refused = ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        codes::error::UPGRADING,
        "the daemon is upgrading itself: retry in a moment",
    )
    .into_response();
    refused.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    refused
}

fn failed(message: String) -> ApiError {
    tracing::warn!("upgrade refused: {message}");
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        codes::error::UPGRADE_FAILED,
        message,
    )
}

/// This process's executable; when a new one was installed over it, the new one.
fn own_executable() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

/// The new binary must run and speak the same handover format.
async fn check_binary(binary: &PathBuf) -> Result<(), String> {
    let run = tokio::process::Command::new(binary)
        .arg(HANDOVER_VERSION_SUBCOMMAND)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| format!("{} did not answer within 10 s", binary.display()))?
        .map_err(|e| format!("{} cannot be run: {e}", binary.display()))?;
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || answer != HANDOVER_VERSION.to_string() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} is not a missiond that can take over (handover version {HANDOVER_VERSION} expected; it {} and said {:?} {})",
            binary.display(),
            out.status,
            answer,
            stderr.trim()
        ));
    }
    Ok(())
}

/// Reads and removes the handover file an upgrade's previous image wrote.
pub(super) fn read_handover(path: &std::path::Path) -> Result<Handover, super::ServeError> {
    let bytes = std::fs::read(path)?;
    let _ = std::fs::remove_file(path);
    let handover: Handover = serde_json::from_slice(&bytes).map_err(|e| {
        super::ServeError::Io(std::io::Error::other(format!(
            "handover file {}: {e}",
            path.display()
        )))
    })?;
    if handover.version != HANDOVER_VERSION {
        return Err(super::ServeError::Io(std::io::Error::other(format!(
            "handover file {} has version {}",
            path.display(),
            handover.version
        ))));
    }
    Ok(handover)
}

/// The listening socket the previous image kept open across `execve`: no connection is
/// refused during an upgrade (they wait in its backlog).
pub(super) fn handed_listener(
    fd: std::os::fd::RawFd,
) -> Result<tokio::net::TcpListener, super::ServeError> {
    crate::pty::set_cloexec(fd, true)?;
    // SAFETY: the previous image kept this descriptor open for us; nothing else owns it.
    let std_listener =
        unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    std_listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(std_listener)?)
}
