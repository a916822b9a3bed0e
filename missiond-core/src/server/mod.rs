//! HTTP and WebSocket front of the daemon: REST under `/api`, `/pty/<slot>`, `/events`,
//! `/tasks`, the static viewer at `/`, and `missiond serve` itself.

pub mod actor;
pub mod api;
pub mod assets;
pub mod audit_api;
pub mod auth;
pub mod connections;
pub mod error;
pub mod pty_ws;
pub mod recordings_api;
pub mod signals_api;
pub mod streams;
pub mod upgrade_api;

use crate::config::{Config, ConfigError, TokenSource};
use crate::semantic::RuleBook;
use crate::supervisor::{OrphanGuard, Settings, Supervisor};
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

/// How the binary runs the daemon.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The missiond executable, started as the orphan guard (see `supervisor::guard`).
    pub guard_exe: Option<PathBuf>,
    /// The missiond executable Claude Code runs as its hooks and status line (`missiond hook`).
    pub hook_exe: Option<PathBuf>,
    /// Started by an upgrade: the handover file of the image before (see
    /// `supervisor::handover`).
    pub handover: Option<PathBuf>,
}

/// Runs the daemon until SIGINT or SIGTERM, then ends every slot.
pub async fn serve(config: Config, options: ServeOptions) -> Result<(), ServeError> {
    let (token, source) = crate::config::load_or_create_token()?;
    let listen = config.server.listen;
    if !listen.ip().is_loopback() && source != TokenSource::Env {
        return Err(ServeError::ExposedWithoutToken(listen));
    }
    let read_only_token = crate::config::load_or_create_read_only_token()?;
    let (rules, warnings) = RuleBook::load(config.semantic.rules_dir.as_deref());
    for warning in warnings {
        tracing::warn!("{warning}");
        eprintln!("missiond: {warning} (using the built-in rules instead)");
    }
    let handover = match &options.handover {
        Some(path) => Some(upgrade_api::read_handover(path)?),
        None => None,
    };
    let handed_guard = handover.as_ref().and_then(|h| h.guard.as_ref());
    let guard = match (&options.guard_exe, handed_guard) {
        // SAFETY: the previous image kept the guard's pipe open across execve for us.
        (_, Some(g)) => Some(OrphanGuard::adopt(
            unsafe { std::os::fd::FromRawFd::from_raw_fd(g.fd) },
            g.pid,
        )),
        (Some(exe), None) => match OrphanGuard::spawn(exe) {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!(
                    "no orphan guard ({e}): slots may outlive a daemon killed with SIGKILL"
                );
                None
            }
        },
        (None, None) => None,
    };
    let state_dir = crate::config::state_dir()?;
    let recordings = match crate::recording::Recordings::open(
        &crate::recording::Recordings::default_dir(&state_dir),
        config.record.clone(),
    ) {
        Ok(store) => Some(store),
        Err(e) => {
            tracing::warn!("runs are not recorded: cannot open the recordings directory: {e}");
            eprintln!(
                "missiond: runs are not recorded: cannot open the recordings directory in {}: {e}",
                state_dir.display()
            );
            None
        }
    };
    let settings = Settings {
        kill_grace: config.server.kill_grace(),
        max_viewers: config.server.max_viewers,
        stuck_viewer: config.server.stuck_viewer(),
        worktree_root: config.server.worktree_root(),
        signals: crate::supervisor::SignalSettings {
            exe: options.hook_exe.clone(),
            hooks: config.claude.hooks,
            claude_dir: config.claude.config_dir.clone(),
        },
        recordings,
    };
    let supervisor = Supervisor::new(settings, rules, guard);
    let tasks = TaskHub::start(
        config.claude.config_dir.clone(),
        Arc::new(supervisor.clone()),
    )
    .map_err(|e| ServeError::Tasks(e.to_string()))?;
    spawn_session_status_bridge(&tasks, &supervisor);
    spawn_task_marker_bridge(&tasks, &supervisor);

    let fd_limit = connections::raise_fd_limit();
    let listener = match &handover {
        Some(h) => upgrade_api::handed_listener(h.listener_fd)?,
        None => tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: listen,
                source,
            })?,
    };
    let listener_fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let local = listener.local_addr()?;
    supervisor.set_listen_addr(local);
    let config_ids = config.slots.iter().map(|s| s.id.clone()).collect();
    let mut recorded = supervisor.open_registry(&state_dir, &config_ids);
    let handed_slots = handover.map(|h| h.slots).unwrap_or_default();
    let handed_ids: std::collections::BTreeSet<String> =
        handed_slots.iter().map(|s| s.spec.id.clone()).collect();
    recorded.retain(|r| !handed_ids.contains(&r.spec.id));
    if !handed_slots.is_empty() {
        // Before any request is served: the slots are there when the first answer comes.
        let taking = supervisor.clone();
        tokio::task::spawn_blocking(move || taking.take_over(handed_slots))
            .await
            .map_err(|e| ServeError::Io(std::io::Error::other(e.to_string())))?;
    }
    let audit = crate::audit::AuditLog::open(&state_dir, config.audit.clone())
        .map_err(|e| ServeError::Audit(state_dir.clone(), e))?;
    let notifier = {
        let lookup = supervisor.clone();
        crate::notify::Notifier::start(
            config.notify.clone(),
            local,
            supervisor.subscribe(),
            tasks.subscribe(),
            move |id| lookup.get(id).ok().map(|s| s.state().state),
        )
    };
    let state = Arc::new(AppState {
        supervisor: supervisor.clone(),
        tasks,
        token: token.clone(),
        read_only_token,
        listen: local,
        allowed_origins: config.server.allowed_origins.clone(),
        audit: Arc::new(audit),
        notifier,
        listener_fd,
        config_path: config.source.clone(),
        state_dir: state_dir.clone(),
        upgrading: tokio::sync::watch::Sender::new(false),
    });
    for spec in config.slots.clone() {
        let id = spec.id.clone();
        if handed_ids.contains(&id) {
            continue;
        }
        let entry = audit_api::launch_entry(&spec, crate::protocol::audit::Actor::config());
        if let Err(e) = state.audit.append(&entry) {
            eprintln!("missiond: slot '{id}' not started: the audit trail cannot be written ({e})");
            continue;
        }
        if let Err(e) = supervisor.create_unrecorded(spec) {
            let origin = config
                .source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            eprintln!("missiond: slot '{id}' from {origin}: {e}");
        }
    }
    // Slots of the registry come back while the daemon already answers. Starting a program
    // is an action on a slot: in the audit trail first, by the daemon itself.
    let recorded = recorded
        .into_iter()
        .filter(|record| {
            if !record.running {
                return true;
            }
            let entry =
                audit_api::launch_entry(&record.spec, crate::protocol::audit::Actor::config());
            let written = state.audit.append(&entry);
            if let Err(e) = &written {
                let id = &record.spec.id;
                eprintln!(
                    "missiond: slot '{id}' not restored: the audit trail cannot be written ({e})"
                );
            }
            written.is_ok()
        })
        .collect();
    supervisor.restore_in_background(recorded);
    println!("missiond listening on http://{local}");
    println!("viewer: http://{local}/#token={token}");
    println!("stop with Ctrl-C; `missiond --help` lists what the CLI can do");
    let app = router(state);
    let max_unauthenticated = connections::max_unauthenticated(fd_limit);
    let stopping = {
        let supervisor = supervisor.clone();
        async move {
            shutdown_signal().await;
            supervisor.keep_for_restart().await;
        }
    };
    connections::serve(listener, app, max_unauthenticated, stopping).await;
    eprintln!("missiond: stopping every slot");
    supervisor.shutdown().await;
    if let Some(recordings) = supervisor.settings().recordings.clone() {
        let closed = tokio::task::spawn_blocking(move || {
            recordings.wait_closed(std::time::Duration::from_secs(5))
        })
        .await
        .unwrap_or(false);
        if !closed {
            tracing::warn!("some recordings were still being written at exit");
        }
    }
    Ok(())
}

/// Claude Code's session files say busy/idle; that is a signal for the slot's classifier.
fn spawn_session_status_bridge(tasks: &TaskHub, supervisor: &Supervisor) {
    let mut rx = tasks.subscribe_session_status();
    let supervisor = supervisor.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(status) => {
                    supervisor.note_session(status.pid, &status.session_id);
                    supervisor.session_status(status.pid, status.busy);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
}

/// Task starts and completions become markers in the recording of the slot that runs them.
fn spawn_task_marker_bridge(tasks: &TaskHub, supervisor: &Supervisor) {
    use crate::protocol::tasks::TaskEvent;
    let mut rx = tasks.subscribe();
    let supervisor = supervisor.clone();
    tokio::spawn(async move {
        loop {
            let (t, what) = match rx.recv().await {
                Ok(TaskEvent::CcTaskStarted(t)) => (t, "started"),
                Ok(TaskEvent::CcTaskCompleted(t)) => (t, "completed"),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            if let Some(slot) = t.slot_id.as_deref().and_then(|id| supervisor.get(id).ok()) {
                slot.record_marker(format!("task:{what} {}", t.task.subject));
            }
        }
    });
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
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
    let body = crate::metrics::render(&state.supervisor.list(), &state.tasks.overview());
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
