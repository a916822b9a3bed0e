//! The daemon as a value: built from a config and options, served on its listener until asked
//! to stop, then every slot ended. What belongs to a process (token files, the lines printed
//! for the user, signals, logging) is `missiond serve`'s; tests run this in-process.

use super::{audit_api, connections, router, upgrade_api, AppState, ServeError};
use crate::config::{Config, TokenSource};
use crate::semantic::RuleBook;
use crate::supervisor::{OrphanGuard, Settings, SignalSettings, Supervisor};
use crate::tasks::TaskHub;
use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What the daemon needs besides its config.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The access token, and where it came from: a daemon listening beyond loopback needs one
    /// chosen by the operator ([`TokenSource::Env`]).
    pub token: String,
    pub token_source: TokenSource,
    /// May watch slots, never type into them (see `server::auth`).
    pub read_only_token: String,
    /// Where the slot registry, recordings, the audit trail and the token files live.
    pub state_dir: PathBuf,
    /// The missiond executable, started as the orphan guard (see `supervisor::guard`).
    pub guard_exe: Option<PathBuf>,
    /// The missiond executable Claude Code runs as its hooks and status line (`missiond hook`).
    pub hook_exe: Option<PathBuf>,
    /// Started by an upgrade: the handover file of the image before (see
    /// `supervisor::handover`).
    pub handover: Option<PathBuf>,
    /// The daemon is its process's whole job (`missiond serve`), so an upgrade may replace the
    /// process with a new image. Inside another program (a test) upgrades are refused.
    pub owns_process: bool,
}

impl DaemonOptions {
    /// Options with this token (also the read-only one's stand-in) and state directory, and no
    /// guard, hooks or handover: what an in-process test starts with.
    pub fn new(token: impl Into<String>, state_dir: impl Into<PathBuf>) -> DaemonOptions {
        let token = token.into();
        DaemonOptions {
            read_only_token: format!("{token}-read-only"),
            token,
            token_source: TokenSource::Env,
            state_dir: state_dir.into(),
            guard_exe: None,
            hook_exe: None,
            handover: None,
            owns_process: false,
        }
    }
}

/// A daemon bound to its address, its slots created, not yet serving.
pub struct Daemon {
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    fd_limit: u64,
    notices: Vec<String>,
}

impl Daemon {
    /// Builds the daemon: rules, orphan guard, supervisor, task watcher, audit trail and
    /// notifier; binds the config's address (or takes the listener an upgrade handed over);
    /// creates the config's slots and starts bringing back the registry's.
    pub async fn start(config: Config, options: DaemonOptions) -> Result<Daemon, ServeError> {
        let listen = config.server.listen;
        if !listen.ip().is_loopback() && options.token_source != TokenSource::Env {
            return Err(ServeError::ExposedWithoutToken(listen));
        }
        let mut notices = Vec::new();
        let (rules, warnings) = RuleBook::load(config.semantic.rules_dir.as_deref());
        for warning in warnings {
            tracing::warn!("{warning}");
            notices.push(format!("{warning} (using the built-in rules instead)"));
        }
        let handover = match &options.handover {
            Some(path) => Some(upgrade_api::read_handover(path)?),
            None => None,
        };
        let guard = orphan_guard(&options, handover.as_ref());
        let state_dir = options.state_dir.clone();
        let recordings = match crate::recording::Recordings::open(
            &crate::recording::Recordings::default_dir(&state_dir),
            config.record.clone(),
        ) {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::warn!("runs are not recorded: cannot open the recordings directory: {e}");
                notices.push(format!(
                    "runs are not recorded: cannot open the recordings directory in {}: {e}",
                    state_dir.display()
                ));
                None
            }
        };
        let settings = Settings {
            kill_grace: config.server.kill_grace(),
            max_viewers: config.server.max_viewers,
            stuck_viewer: config.server.stuck_viewer(),
            worktree_root: config.server.worktree_root(),
            signals: SignalSettings {
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
        let handed_ids: BTreeSet<String> = handed_slots.iter().map(|s| s.spec.id.clone()).collect();
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
            token: options.token,
            read_only_token: options.read_only_token,
            listen: local,
            allowed_origins: config.server.allowed_origins.clone(),
            audit: Arc::new(audit),
            notifier,
            listener_fd,
            config_path: config.source.clone(),
            state_dir,
            owns_process: options.owns_process,
            upgrading: tokio::sync::watch::Sender::new(false),
        });
        for spec in config.slots.clone() {
            let id = spec.id.clone();
            if handed_ids.contains(&id) {
                continue;
            }
            let entry = audit_api::launch_entry(&spec, crate::protocol::audit::Actor::config());
            if let Err(e) = state.audit.append(&entry) {
                notices.push(format!(
                    "slot '{id}' not started: the audit trail cannot be written ({e})"
                ));
                continue;
            }
            if let Err(e) = supervisor.create_unrecorded(spec) {
                let origin = config
                    .source
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                notices.push(format!("slot '{id}' from {origin}: {e}"));
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
                    notices.push(format!(
                        "slot '{}' not restored: the audit trail cannot be written ({e})",
                        record.spec.id
                    ));
                }
                written.is_ok()
            })
            .collect();
        supervisor.restore_in_background(recorded);
        Ok(Daemon {
            state,
            listener,
            fd_limit,
            notices,
        })
    }

    /// The address it listens on (the kernel's choice when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.state.listen
    }

    /// The access token in force.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// What went wrong at start without stopping it, for the user to read: rule files that
    /// did not load, config slots that did not start, recordings that are off.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.state.supervisor
    }

    /// Every route, as [`Daemon::serve`] serves them (for a test that drives them directly).
    pub fn router(&self) -> axum::Router {
        router(self.state.clone())
    }

    /// Serves until `stop` resolves, then keeps each recorded slot's screen for the next
    /// daemon, lets requests in flight finish, ends every slot and closes the recordings.
    pub async fn serve(self, stop: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let supervisor = self.state.supervisor.clone();
        let app = router(self.state);
        let max_unauthenticated = connections::max_unauthenticated(self.fd_limit);
        let stopping = {
            let supervisor = supervisor.clone();
            async move {
                stop.await;
                supervisor.keep_for_restart().await;
            }
        };
        connections::serve(self.listener, app, max_unauthenticated, stopping).await;
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
}

/// The guard an upgrade handed over, else a new one (or none: slots may then outlive a daemon
/// killed with SIGKILL, which is worth a warning, not a refusal to start).
fn orphan_guard(
    options: &DaemonOptions,
    handover: Option<&crate::supervisor::Handover>,
) -> Option<OrphanGuard> {
    match (&options.guard_exe, handover.and_then(|h| h.guard.as_ref())) {
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower_service::Service;

    /// A daemon in this test's runtime, its directories in `dir`, on a port the kernel chose.
    async fn daemon_in(dir: &std::path::Path) -> Daemon {
        let config_path = dir.join("missiond.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[claude]\nconfig_dir = {:?}\n",
            dir.join("claude").display().to_string()
        );
        std::fs::create_dir_all(dir.join("claude")).expect("claude dir");
        let config = Config::parse(&text, &config_path).expect("config");
        Daemon::start(config, DaemonOptions::new("secret", dir.join("state")))
            .await
            .expect("daemon starts")
    }

    async fn get(app: &mut axum::Router, path: &str) -> (StatusCode, Option<String>, String) {
        let request = Request::get(path)
            .header("authorization", "Bearer secret")
            .body(Body::empty())
            .expect("request");
        let response = match app.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, retry, String::from_utf8_lossy(&body).into_owned())
    }

    /// While an upgrade hands over, every route answers 503 `upgrading` with Retry-After:
    /// `/health` too (a client waiting for the new image must not hear the old one), the
    /// viewer's files and the WebSocket routes (none may attach to a paused slot).
    #[tokio::test]
    async fn every_request_waits_while_an_upgrade_hands_over() {
        let dir = tempfile::tempdir().expect("temp dir");
        let daemon = daemon_in(dir.path()).await;
        let mut app = daemon.router();
        assert_eq!(get(&mut app, "/health").await.0, StatusCode::OK);
        daemon.state.upgrading.send_replace(true);
        for path in [
            "/health",
            "/api/slots",
            "/pty/any",
            "/events",
            "/",
            "/metrics",
        ] {
            let (status, retry, body) = get(&mut app, path).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
            assert_eq!(retry.as_deref(), Some("1"), "{path}");
            let body: serde_json::Value = serde_json::from_str(&body).expect("json error");
            assert_eq!(
                body["error"]["code"],
                crate::protocol::codes::error::UPGRADING,
                "{path}"
            );
        }
        daemon.state.upgrading.send_replace(false);
        assert_eq!(get(&mut app, "/health").await.0, StatusCode::OK);
        assert_eq!(get(&mut app, "/api/slots").await.0, StatusCode::OK);
    }

    /// A daemon inside another program refuses to replace the process with a new image.
    #[tokio::test]
    async fn an_embedded_daemon_refuses_to_upgrade() {
        let dir = tempfile::tempdir().expect("temp dir");
        let daemon = daemon_in(dir.path()).await;
        let mut app = daemon.router();
        let request = Request::post("/api/daemon/upgrade")
            .header("authorization", "Bearer secret")
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .expect("request");
        let response = match app.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!*daemon.state.upgrading.borrow(), "no hand-over began");
        assert_eq!(get(&mut app, "/health").await.0, StatusCode::OK);
    }
}
