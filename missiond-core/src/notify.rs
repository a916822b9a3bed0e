//! Notifications out: `[[notify]]` receivers (an HTTP POST or a command) told when a slot needs
//! someone, finished a long turn, failed, exited or completed a task.
//!
//! Nothing here can slow the daemon: the watcher reads the same broadcasts `/events` and
//! `/tasks` use and only pushes onto each receiver's bounded queue; one worker per receiver
//! delivers with a timeout and retries with backoff. An event about a slot replaces a queued,
//! not yet delivered event of the same kind about that slot; a full queue drops its oldest.
//! A receiver's failure is logged once, then not again until it works again.

use crate::protocol::audit::{NotifyEvent, NotifyKind, NotifyTestResult};
use crate::protocol::tasks::TaskEvent;
use crate::protocol::{Dialog, DialogKind, DialogOption, Meaning, SemanticState, SlotEvent};
use crate::supervisor::now_millis;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

/// Events a receiver's queue holds before it drops the oldest.
const QUEUE: usize = 64;
/// First pause before a retry; doubled each time.
const BACKOFF: Duration = Duration::from_secs(1);

/// How the POST body is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// The event JSON as is.
    #[default]
    Json,
    /// ntfy (a topic URL): the message as the body, title, priority and click link as headers.
    Ntfy,
    /// Slack-compatible incoming webhook: `{"text": ...}`.
    Slack,
}

/// One `[[notify]]` entry of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// POST the event here (`http://` only: the daemon has no TLS; use `command` with curl
    /// for an `https://` service).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub format: NotifyFormat,
    /// Run with `sh -c`, the event JSON on stdin (and `MISSIOND_EVENT`, `MISSIOND_SLOT` set).
    #[serde(default)]
    pub command: Option<String>,
    /// Which events to send.
    #[serde(default = "default_on")]
    pub on: Vec<NotifyKind>,
    /// Only these slots (empty: every slot).
    #[serde(default)]
    pub slots: Vec<String>,
    /// `idle` only after a turn that was busy at least this long.
    #[serde(default = "default_min_busy")]
    pub min_busy_secs: f64,
    /// How long one delivery may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Attempts after the first one fails.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Base of the viewer link in events (default: the daemon's own address).
    #[serde(default)]
    pub viewer_url: Option<String>,
}

fn default_on() -> Vec<NotifyKind> {
    vec![
        NotifyKind::Confirming,
        NotifyKind::Idle,
        NotifyKind::Error,
        NotifyKind::Exited,
    ]
}
fn default_min_busy() -> f64 {
    30.0
}
fn default_timeout() -> f64 {
    5.0
}
fn default_retries() -> u32 {
    3
}

impl NotifyConfig {
    /// What a config check can find wrong with the entry.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.url, &self.command) {
            (Some(_), Some(_)) => return Err("give url or command, not both".into()),
            (None, None) => return Err("give a url or a command".into()),
            (Some(url), None) if !url.starts_with("http://") => {
                return Err(format!(
                    "url {url:?} must start with http:// (for https, use command = \"curl ...\")"
                ))
            }
            (None, Some(cmd)) if cmd.trim().is_empty() => {
                return Err("command is empty".into());
            }
            _ => {}
        }
        for (name, v) in [
            ("min_busy_secs", self.min_busy_secs),
            ("timeout_secs", self.timeout_secs),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a number of seconds >= 0"));
            }
        }
        if self.retries > 10 {
            return Err("retries must be at most 10".into());
        }
        for slot in &self.slots {
            crate::config::validate_slot_id(slot)?;
        }
        Ok(())
    }

    fn target(&self) -> String {
        match (&self.url, &self.command) {
            (Some(url), _) => url.clone(),
            (_, Some(cmd)) => format!("command {cmd:?}"),
            _ => String::new(),
        }
    }

    fn wants(&self, event: &NotifyEvent) -> bool {
        self.on.contains(&event.event)
            && (self.slots.is_empty() || self.slots.contains(&event.slot))
            && (event.event != NotifyKind::Idle
                || event.busy_secs.unwrap_or(0) as f64 >= self.min_busy_secs)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs.clamp(0.1, 600.0))
    }
}

/// Every receiver, and the workers delivering to them.
#[derive(Clone)]
pub struct Notifier {
    receivers: Arc<Vec<Arc<Receiver>>>,
    default_link: String,
}

struct Receiver {
    config: NotifyConfig,
    link_base: String,
    queue: Mutex<VecDeque<NotifyEvent>>,
    wake: tokio::sync::Notify,
    /// Set after a failure was logged; cleared (and logged) at the next success.
    failing: AtomicBool,
    dropped: AtomicU64,
    http: reqwest::Client,
}

impl Notifier {
    /// Starts one worker per receiver and the watcher of `slots` and `tasks`. `listen` is the
    /// daemon's address, for viewer links.
    pub fn start(
        configs: Vec<NotifyConfig>,
        listen: std::net::SocketAddr,
        slots: broadcast::Receiver<SlotEvent>,
        tasks: broadcast::Receiver<TaskEvent>,
        state_of: impl Fn(&str) -> Option<SemanticState> + Send + 'static,
    ) -> Notifier {
        let default_link = format!("http://{listen}/");
        let receivers: Vec<Arc<Receiver>> = configs
            .into_iter()
            .map(|config| {
                let link_base = config
                    .viewer_url
                    .clone()
                    .unwrap_or_else(|| default_link.clone());
                Arc::new(Receiver {
                    http: reqwest::Client::builder()
                        .timeout(config.timeout())
                        .build()
                        .unwrap_or_default(),
                    config,
                    link_base,
                    queue: Mutex::new(VecDeque::new()),
                    wake: tokio::sync::Notify::new(),
                    failing: AtomicBool::new(false),
                    dropped: AtomicU64::new(0),
                })
            })
            .collect();
        let notifier = Notifier {
            receivers: Arc::new(receivers),
            default_link,
        };
        if !notifier.receivers.is_empty() {
            for receiver in notifier.receivers.iter() {
                tokio::spawn(receiver.clone().work());
            }
            tokio::spawn(notifier.clone().watch(slots, tasks, state_of));
        }
        notifier
    }

    /// Sends a sample `confirming` event to every receiver now, bypassing filters and queues.
    pub async fn test(&self, slot: &str) -> Vec<NotifyTestResult> {
        let checks = self.receivers.iter().map(|r| async move {
            let mut event = sample_event(slot, &r.link_base);
            event.link = link(&r.link_base, slot);
            let result = r.deliver(&event).await;
            NotifyTestResult {
                target: r.config.target(),
                ok: result.is_ok(),
                error: result.err(),
            }
        });
        futures_util::future::join_all(checks).await
    }

    fn dispatch(&self, event: NotifyEvent) {
        for receiver in self.receivers.iter() {
            if receiver.config.wants(&event) {
                let mut event = event.clone();
                event.link = link(&receiver.link_base, &event.slot);
                receiver.push(event);
            }
        }
    }

    async fn watch(
        self,
        mut slots: broadcast::Receiver<SlotEvent>,
        mut tasks: broadcast::Receiver<TaskEvent>,
        state_of: impl Fn(&str) -> Option<SemanticState>,
    ) {
        let mut watcher = Watcher::default();
        let mut tasks_open = true;
        loop {
            tokio::select! {
                event = slots.recv() => match event {
                    Ok(event) => {
                        for n in watcher.slot_event(event, &self.default_link) {
                            self.dispatch(n);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("notify: fell {n} slot events behind; some notifications were skipped");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                event = tasks.recv(), if tasks_open => match event {
                    Ok(TaskEvent::CcTaskCompleted(t)) => {
                        let Some(slot) = t.slot_id else { continue };
                        let state = state_of(&slot).unwrap_or(SemanticState::Idle);
                        let mut event = base_event(NotifyKind::TaskCompleted, &slot, state, &self.default_link);
                        event.message = format!("{slot} completed a task: {}", t.task.subject);
                        event.task = Some(t.task.subject);
                        self.dispatch(event);
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => tasks_open = false,
                },
            }
        }
    }
}

/// Turns slot events into notification events: remembers when each slot's turn began and
/// which dialog was last announced.
#[derive(Default)]
struct Watcher {
    busy_since: HashMap<String, u64>,
    last_dialog: HashMap<String, Dialog>,
}

impl Watcher {
    fn slot_event(&mut self, event: SlotEvent, link_base: &str) -> Vec<NotifyEvent> {
        let now = now_millis();
        match event {
            SlotEvent::SlotState {
                slot_id,
                state,
                prev_state,
                detail,
            } => {
                if state.is_busy() {
                    self.busy_since.entry(slot_id.clone()).or_insert(now);
                }
                if state != SemanticState::Confirming {
                    self.last_dialog.remove(&slot_id);
                }
                let mut event = base_event(NotifyKind::Confirming, &slot_id, state, link_base);
                event.prev_state = prev_state;
                match state {
                    SemanticState::Confirming => {
                        let dialog = detail.dialog;
                        let repeated = match (&dialog, self.last_dialog.get(&slot_id)) {
                            (Some(new), Some(old)) => crate::semantic::same_dialog(new, old),
                            (None, _) => prev_state == Some(SemanticState::Confirming),
                            _ => false,
                        };
                        if let Some(d) = &dialog {
                            self.last_dialog.insert(slot_id.clone(), d.clone());
                        }
                        if repeated {
                            return Vec::new();
                        }
                        let what = dialog
                            .as_ref()
                            .map(|d| {
                                if d.title.is_empty() {
                                    d.question.clone()
                                } else {
                                    d.title.clone()
                                }
                            })
                            .unwrap_or_default();
                        event.message = format!("{slot_id} needs you: {what}");
                        event.dialog = dialog;
                    }
                    SemanticState::Idle => {
                        let Some(start) = self.busy_since.remove(&slot_id) else {
                            return Vec::new();
                        };
                        let secs = now.saturating_sub(start) / 1000;
                        event.event = NotifyKind::Idle;
                        event.busy_secs = Some(secs);
                        event.message = format!("{slot_id} is idle after a {secs} s turn");
                    }
                    SemanticState::Error => {
                        event.event = NotifyKind::Error;
                        event.message = format!("{slot_id} shows an error");
                    }
                    _ => return Vec::new(),
                }
                vec![event]
            }
            SlotEvent::SlotExited {
                slot_id,
                code,
                signal,
            } => {
                self.busy_since.remove(&slot_id);
                self.last_dialog.remove(&slot_id);
                let mut event = base_event(
                    NotifyKind::Exited,
                    &slot_id,
                    SemanticState::Exited,
                    link_base,
                );
                event.message = match (&signal, code) {
                    (Some(sig), _) => format!("{slot_id} exited ({sig})"),
                    (None, Some(c)) => format!("{slot_id} exited (code {c})"),
                    _ => format!("{slot_id} exited"),
                };
                event.exit_code = code;
                event.exit_signal = signal;
                vec![event]
            }
            SlotEvent::SlotRemoved { slot_id } => {
                self.busy_since.remove(&slot_id);
                self.last_dialog.remove(&slot_id);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

fn base_event(kind: NotifyKind, slot: &str, state: SemanticState, link_base: &str) -> NotifyEvent {
    NotifyEvent {
        event: kind,
        time: now_millis(),
        slot: slot.to_string(),
        state,
        prev_state: None,
        dialog: None,
        exit_code: None,
        exit_signal: None,
        busy_secs: None,
        task: None,
        message: String::new(),
        link: link(link_base, slot),
        test: false,
    }
}

/// The viewer, opened on `slot`.
fn link(base: &str, slot: &str) -> String {
    let base = base.trim_end_matches('/');
    format!("{base}/#slot={slot}")
}

fn sample_event(slot: &str, link_base: &str) -> NotifyEvent {
    let mut event = base_event(
        NotifyKind::Confirming,
        slot,
        SemanticState::Confirming,
        link_base,
    );
    event.prev_state = Some(SemanticState::ToolRunning);
    event.test = true;
    event.message = format!("{slot} needs you: Bash command (a test from `missiond notify test`)");
    event.dialog = Some(Dialog {
        kind: DialogKind::Permission,
        title: "Bash command".into(),
        question: "Do you want to proceed?".into(),
        body: "echo hello from missiond".into(),
        cancellable: true,
        options: ["Yes", "Yes, and don't ask again", "No"]
            .iter()
            .enumerate()
            .map(|(i, label)| DialogOption {
                n: i as u32 + 1,
                label: label.to_string(),
                selected: i == 0,
                meaning: Some([Meaning::Yes, Meaning::Always, Meaning::No][i]),
            })
            .collect(),
    });
    event
}

impl Receiver {
    /// Queues `event`, replacing a queued one of the same kind about the same slot.
    fn push(&self, event: NotifyEvent) {
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        if let Some(old) = queue
            .iter_mut()
            .find(|e| e.slot == event.slot && e.event == event.event)
        {
            *old = event;
        } else {
            if queue.len() >= QUEUE {
                queue.pop_front();
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        "notify {}: queue full, dropping the oldest events",
                        self.config.target()
                    );
                }
            }
            queue.push_back(event);
        }
        drop(queue);
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<NotifyEvent> {
        self.queue.lock().ok()?.pop_front()
    }

    async fn work(self: Arc<Self>) {
        loop {
            let Some(event) = self.pop() else {
                self.wake.notified().await;
                continue;
            };
            let mut attempt = 0;
            loop {
                match self.deliver(&event).await {
                    Ok(()) => {
                        if self.failing.swap(false, Ordering::Relaxed) {
                            tracing::info!("notify {}: delivering again", self.config.target());
                        }
                        break;
                    }
                    Err(e) if attempt >= self.config.retries => {
                        if !self.failing.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                "notify {}: {e} (gave up on a {} event for {}; further failures are not logged until a delivery works)",
                                self.config.target(),
                                event.event.as_str(),
                                event.slot
                            );
                        }
                        break;
                    }
                    Err(_) => {
                        tokio::time::sleep(BACKOFF * 2u32.pow(attempt.min(6))).await;
                        attempt += 1;
                    }
                }
            }
        }
    }

    /// One attempt, within the timeout.
    async fn deliver(&self, event: &NotifyEvent) -> Result<(), String> {
        let timeout = self.config.timeout();
        let attempt = async {
            match (&self.config.url, &self.config.command) {
                (Some(url), _) => self.post(url, event).await,
                (_, Some(command)) => run_command(command, event, timeout).await,
                _ => Err("neither url nor command".into()),
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:.1} s", timeout.as_secs_f64())),
        }
    }

    async fn post(&self, url: &str, event: &NotifyEvent) -> Result<(), String> {
        let request = self.http.post(url);
        let request = match self.config.format {
            NotifyFormat::Json => request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(event).map_err(|e| e.to_string())?),
            NotifyFormat::Slack => {
                let text = format!("{}\n<{}|Open in the viewer>", long_text(event), event.link);
                request
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "text": text }).to_string())
            }
            NotifyFormat::Ntfy => {
                let priority = match event.event {
                    NotifyKind::Confirming | NotifyKind::Error => "high",
                    _ => "default",
                };
                request
                    .header(
                        "Title",
                        format!("missiond: {} {}", event.slot, event.event.as_str()),
                    )
                    .header("Priority", priority)
                    .header("Tags", event.event.as_str())
                    .header("Click", event.link.as_str())
                    .body(long_text(event))
            }
        };
        let response = request.send().await.map_err(|e| root_cause(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// The message plus, for a dialog, its body and options: what a person needs to decide.
fn long_text(event: &NotifyEvent) -> String {
    let mut text = event.message.clone();
    if let Some(d) = &event.dialog {
        if !d.body.is_empty() {
            text.push_str(&format!("\n{}", d.body));
        }
        if !d.question.is_empty() {
            text.push_str(&format!("\n{}", d.question));
        }
        for o in &d.options {
            text.push_str(&format!("\n{}. {}", o.n, o.label));
        }
    }
    text
}

/// Runs `sh -c command` in its own process group with the event on stdin; the whole group is
/// killed when it overruns `timeout`.
async fn run_command(command: &str, event: &NotifyEvent, timeout: Duration) -> Result<(), String> {
    let json = serde_json::to_vec(event).map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("MISSIOND_EVENT", event.event.as_str())
        .env("MISSIOND_SLOT", &event.slot)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let pgid = child.id();
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its stdin is fine.
            let _ = stdin.write_all(&json).await;
        }
        child.wait_with_output().await
    };
    let output = match tokio::time::timeout(timeout, run).await {
        Ok(output) => output.map_err(|e| e.to_string())?,
        Err(_) => {
            if let Some(pgid) = pgid {
                // SAFETY: signalling the process group this function created.
                unsafe {
                    libc::kill(-(pgid as i32), libc::SIGKILL);
                }
            }
            return Err(format!(
                "did not finish within {:.1} s",
                timeout.as_secs_f64()
            ));
        }
    };
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").trim();
        Err(format!("exited with {}: {last}", output.status))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::StateDetail;

    fn state(slot: &str, state: SemanticState, prev: SemanticState) -> SlotEvent {
        SlotEvent::SlotState {
            slot_id: slot.into(),
            state,
            prev_state: Some(prev),
            detail: StateDetail::default(),
        }
    }

    #[test]
    fn idle_only_after_a_turn_and_only_as_long_as_asked() {
        let mut w = Watcher::default();
        use SemanticState::*;
        assert!(w
            .slot_event(state("a", Idle, Starting), "http://x/")
            .is_empty());
        assert!(w
            .slot_event(state("a", Thinking, Idle), "http://x/")
            .is_empty());
        let events = w.slot_event(state("a", Idle, Thinking), "http://x/");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, NotifyKind::Idle);
        assert_eq!(events[0].busy_secs, Some(0));
        assert_eq!(events[0].link, "http://x/#slot=a");
        let mut config: NotifyConfig =
            toml::from_str("url = \"http://127.0.0.1:1/\"\non = [\"idle\"]").unwrap();
        assert!(!config.wants(&events[0]), "min_busy_secs defaults to 30");
        config.min_busy_secs = 0.0;
        assert!(config.wants(&events[0]));
        config.slots = vec!["b".into()];
        assert!(!config.wants(&events[0]));
    }

    #[test]
    fn queued_events_about_one_slot_coalesce_and_the_queue_is_bounded() {
        let config: NotifyConfig = toml::from_str("url = \"http://127.0.0.1:1/\"").unwrap();
        let receiver = Receiver {
            config,
            link_base: "http://x/".into(),
            queue: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            failing: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            http: reqwest::Client::new(),
        };
        let event = |slot: &str, kind: NotifyKind, message: &str| {
            let mut e = base_event(kind, slot, SemanticState::Idle, "http://x/");
            e.message = message.into();
            e
        };
        receiver.push(event("a", NotifyKind::Exited, "first"));
        receiver.push(event("a", NotifyKind::Confirming, "dialog"));
        receiver.push(event("a", NotifyKind::Exited, "second"));
        let queued: Vec<String> = receiver
            .queue
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.message.clone())
            .collect();
        assert_eq!(queued, vec!["second", "dialog"]);
        for i in 0..QUEUE * 2 {
            receiver.push(event(&format!("s{i}"), NotifyKind::Exited, "x"));
        }
        assert_eq!(receiver.queue.lock().unwrap().len(), QUEUE);
        assert_eq!(receiver.dropped.load(Ordering::Relaxed), (QUEUE + 2) as u64);
    }

    #[test]
    fn config_is_checked() {
        let bad = |text: &str| toml::from_str::<NotifyConfig>(text).unwrap().validate();
        assert!(bad("url = \"https://ntfy.sh/x\"")
            .unwrap_err()
            .contains("http://"));
        assert!(bad("command = \"x\"\nurl = \"http://a/\"").is_err());
        assert!(bad("on = [\"idle\"]").is_err());
        assert!(bad("command = \"cat\"\non = [\"drift\", \"task_completed\"]").is_ok());
        assert!(toml::from_str::<NotifyConfig>("command = \"x\"\non = [\"bogus\"]").is_err());
    }
}
