//! HTTP and WebSocket front of the daemon: REST under `/api`, `/pty/<slot>`, `/events`,
//! `/tasks`, the static viewer at `/`, and the daemon that serves them ([`daemon::Daemon`]).

pub mod actor;
pub mod api;
pub mod assets;
pub mod audit_api;
pub mod auth;
pub mod connections;
pub mod daemon;
pub mod error;
pub mod pty_ws;
pub mod recordings_api;
pub mod signals_api;
pub mod streams;
pub mod upgrade_api;

pub use daemon::{Daemon, DaemonOptions};

use crate::config::ConfigError;
use crate::supervisor::Supervisor;
use crate::tasks::TaskHub;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Largest REST body accepted; larger ones get 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// What the HTTP handlers share.
pub struct AppState {
    pub supervisor: Supervisor,
    pub tasks: TaskHub,
    pub token: String,
    pub read_only_token: String,
    pub listen: SocketAddr,
    pub allowed_origins: Vec<String>,
    /// Every action on a slot is written here before it is carried out.
    pub audit: Arc<crate::audit::AuditLog>,
    pub notifier: crate::notify::Notifier,
    /// The listening socket, kept open across an upgrade's `execve`.
    pub listener_fd: std::os::fd::RawFd,
    /// The config file the daemon was started with, for the new image of an upgrade.
    pub config_path: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// An upgrade may replace this process (see [`DaemonOptions::owns_process`]).
    pub owns_process: bool,
    /// Set while an upgrade hands over: viewers close with `CLOSE_RESTARTING` and reconnect.
    pub upgrading: tokio::sync::watch::Sender<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("refusing to listen on {0}: it is not a loopback address and no token was chosen explicitly. Set MISSIOND_TOKEN to a long random secret (anyone who can reach the port can type into your terminals), or listen on 127.0.0.1")]
    ExposedWithoutToken(SocketAddr),
    #[error("cannot listen on {addr}: {source} (is another missiond running? choose another address with --listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch Claude Code's task files: {0}")]
    Tasks(String),
    #[error("cannot open the audit trail in {0}: {1}")]
    Audit(PathBuf, std::io::Error),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Every route, with auth where it belongs.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/slots", get(api::list).post(api::create))
        .route("/slots/{id}", get(api::get).delete(api::remove))
        .route("/slots/{id}/start", post(api::start))
        .route("/slots/{id}/kill", post(api::kill))
        .route("/slots/{id}/restart", post(api::restart))
        .route("/slots/{id}/input", post(api::input))
        .route("/slots/{id}/resize", post(api::resize))
        .route("/slots/{id}/screen", get(api::screen))
        .route("/slots/{id}/prompt", post(api::prompt))
        .route("/slots/{id}/confirm", post(api::confirm))
        .route("/slots/{id}/wait", get(api::wait))
        .route("/slots/{id}/tasks", get(slot_tasks))
        .route("/slots/{id}/diff", get(api::diff))
        .route("/tasks", get(all_tasks))
        .route("/slots/{id}/runs", get(recordings_api::runs))
        .route("/slots/{id}/runs/{file}", get(recordings_api::cast))
        .route("/recordings", get(recordings_api::usage))
        .route("/audit", get(audit_api::list))
        .route("/notify/test", post(audit_api::notify_test))
        .route("/doctor", get(signals_api::doctor))
        .route("/daemon/upgrade", post(upgrade_api::upgrade))
        .fallback(api::not_found);
    let sockets = Router::new()
        .route("/pty", get(pty_ws::invalid_url))
        .route("/pty/", get(pty_ws::invalid_url))
        .route("/pty/{*path}", get(pty_ws::attach))
        .route("/events", get(streams::events))
        .route("/tasks", get(streams::tasks))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::check_origin,
        ));
    let protected = Router::new()
        .nest("/api", api)
        .route("/metrics", get(metrics))
        .merge(sockets)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    // Claude Code's hooks present the slot's own secret, not the token (signals_api).
    let hooks = Router::new()
        .route("/hooks/{id}/{kind}", post(signals_api::hook))
        .layer(DefaultBodyLimit::max(signals_api::MAX_HOOK_BODY));
    Router::new()
        .route("/health", get(health))
        .merge(hooks)
        .merge(protected)
        .fallback(assets::static_file)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            upgrade_api::refuse_while_upgrading,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::check_host,
        ))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "version": crate::VERSION}))
}

/// `GET /metrics`: the Prometheus text format (docs/API.md lists every series).
async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl axum::response::IntoResponse {
    let body = crate::metrics::render(
        state.supervisor.counters(),
        &state.supervisor.list(),
        &state.tasks.overview(),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn all_tasks(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> Json<crate::protocol::tasks::TasksOverview> {
    Json(state.tasks.overview())
}

async fn slot_tasks(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Vec<crate::protocol::tasks::SessionTasks>>, error::ApiError> {
    crate::config::validate_slot_id(&id).map_err(error::ApiError::bad_request)?;
    state.supervisor.get(&id)?;
    Ok(Json(state.tasks.slot_lists(&id)))
}

/// The page may load nothing from anywhere but the daemon, and may not be framed. WebAssembly
/// may be compiled (`'wasm-unsafe-eval'`, not JS eval): the History view's player needs it.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
