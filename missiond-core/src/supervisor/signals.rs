//! Claude Code's own signals for a slot: what its command line gets (`--session-id`,
//! `--settings` with hooks and a status line), the per-slot secret the hooks present, and
//! what they reported (session id, hook counts, usage, drift) for slot info and `doctor`.

use super::run::lock;
use crate::claude_args;
use crate::protocol::signals::{Drift, Usage};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most one `usage` event per slot in this time.
const USAGE_EVERY: Duration = Duration::from_secs(1);

/// Daemon-wide settings of the integration.
#[derive(Debug, Clone)]
pub struct SignalSettings {
    /// The missiond executable, which Claude Code runs as `missiond hook` / `missiond statusline`;
    /// `None` turns hooks off (nothing to run).
    pub exe: Option<PathBuf>,
    /// Hooks and status line for `claude-code` slots unless a slot says otherwise.
    pub hooks: bool,
    /// Claude Code's directory when a slot's environment does not name one.
    pub claude_dir: PathBuf,
}

impl Default for SignalSettings {
    fn default() -> SignalSettings {
        SignalSettings {
            exe: None,
            hooks: true,
            claude_dir: crate::config::claude_dir_from_env(),
        }
    }
}

/// The settings plus the address the daemon listens on (known once it is bound).
#[derive(Debug, Default)]
pub struct Signals {
    pub settings: SignalSettings,
    addr: OnceLock<SocketAddr>,
}

impl Signals {
    pub fn new(settings: SignalSettings) -> Signals {
        Signals {
            settings,
            addr: OnceLock::new(),
        }
    }

    /// Where hooks reach the daemon: its listening port on loopback.
    pub fn set_addr(&self, listen: SocketAddr) {
        let ip = if listen.ip().is_unspecified() || !listen.ip().is_loopback() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            listen.ip()
        };
        let _ = self.addr.set(SocketAddr::new(ip, listen.port()));
    }

    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }
}

/// A start's command line and environment with the signals added.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub session_id: Option<String>,
    pub hooks: bool,
}

/// Adds `--session-id` (a program named `claude`, or any `claude-code` slot with hooks asked
/// for explicitly) and, with hooks on, `--settings` plus the environment the hooks read.
pub fn launch(config: &super::SlotConfig, signals: &Signals, secret: &str) -> Launch {
    launch_with_args(config, &config.args, signals, secret)
}

/// [`launch`] with other arguments than the configured ones (a restored slot's `--resume`).
pub fn launch_with_args(
    config: &super::SlotConfig,
    args: &[String],
    signals: &Signals,
    secret: &str,
) -> Launch {
    let (slot_id, command, env, cwd, hooks_wanted) = (
        config.id.as_str(),
        config.command.as_str(),
        &config.env,
        &config.cwd,
        config.hooks,
    );
    let is_claude = crate::protocol::Profile::for_command(command)
        == crate::protocol::Profile::ClaudeCode
        || hooks_wanted == Some(true);
    if !is_claude {
        return Launch {
            args: args.to_vec(),
            env: env.clone(),
            session_id: None,
            hooks: false,
        };
    }
    let (mut args, session_id) = claude_args::with_session_id(args);
    let mut env = env.clone();
    let hooks = hooks_wanted.unwrap_or(signals.settings.hooks);
    let (exe, addr) = (signals.settings.exe.as_ref(), signals.addr());
    let hooks = match (hooks, exe, addr) {
        (true, Some(exe), Some(addr)) => {
            args = claude_args::with_settings(&args, claude_args::settings_json(exe));
            env.insert(claude_args::ENV_HOOK_ADDR.into(), addr.to_string());
            env.insert(claude_args::ENV_HOOK_SLOT.into(), slot_id.to_string());
            env.insert(claude_args::ENV_HOOK_SECRET.into(), secret.to_string());
            let claude_dir = env
                .get("CLAUDE_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| signals.settings.claude_dir.clone());
            match claude_args::user_statusline(&claude_dir, cwd) {
                Some(user) => env.insert(claude_args::ENV_USER_STATUSLINE.into(), user),
                None => env.remove(claude_args::ENV_USER_STATUSLINE),
            };
            true
        }
        _ => false,
    };
    Launch {
        args,
        env,
        session_id,
        hooks,
    }
}

/// What the hooks and the status line of a slot have reported.
#[derive(Debug, Default)]
struct Heard {
    session_id: Option<String>,
    hooks_on: bool,
    hook_count: u64,
    last_hook: Option<(u64, String)>,
    statusline_count: u64,
    last_statusline: Option<u64>,
    usage: Option<Usage>,
    usage_sent: Option<Instant>,
    /// A change arrived within a second of the last event: it goes out when the second is over.
    usage_pending: bool,
    drift_seen: Option<Drift>,
    /// Releases already warned about in the log (once per slot and release).
    drift_warned: Vec<String>,
}

/// A slot's side of the integration.
#[derive(Debug)]
pub struct SlotSignals {
    /// Handed over by an upgrade (the running programs keep the old one in their environment).
    secret: Mutex<String>,
    heard: Mutex<Heard>,
}

/// When to send a `usage` event for new status-line figures.
#[derive(Debug, Clone, PartialEq)]
pub enum UsageEvent {
    Now(Usage),
    /// Then send what [`SlotSignals::take_due_usage`] gives.
    After(Duration),
    None,
}

/// What `doctor` reports of a slot's signals.
#[derive(Debug, Clone, Default)]
pub struct SignalStats {
    pub hooks_on: bool,
    pub hook_count: u64,
    /// Milliseconds since the Unix epoch, and the event's name.
    pub last_hook: Option<(u64, String)>,
    pub statusline_count: u64,
    pub last_statusline: Option<u64>,
    pub drift_seen: Option<Drift>,
}

impl SlotSignals {
    pub fn new() -> SlotSignals {
        let secret = crate::claude_args::new_uuid_v4().replace('-', "")
            + &crate::claude_args::new_uuid_v4().replace('-', "");
        SlotSignals {
            secret: Mutex::new(secret),
            heard: Mutex::new(Heard::default()),
        }
    }

    pub fn secret(&self) -> String {
        lock(&self.secret).clone()
    }

    /// Whether `presented` is this slot's secret (constant time).
    pub fn accepts(&self, presented: &str) -> bool {
        crate::server::auth::constant_time_eq(presented.as_bytes(), lock(&self.secret).as_bytes())
    }

    /// What a running program was started with, from the image before an upgrade: its hooks
    /// present that secret, and whether they are on does not change.
    pub fn adopt(&self, secret: String, hooks_on: bool, usage: Option<Usage>) {
        *lock(&self.secret) = secret;
        let mut heard = lock(&self.heard);
        heard.hooks_on = hooks_on;
        heard.usage = usage;
    }

    /// A new run: its session id and whether hooks are on; what the last run reported goes.
    /// A run that resumes or continues a conversation keeps the session id known before it
    /// (the registry's, for a restored slot) until its hooks name the one it uses.
    pub fn started(&self, launch: &Launch) {
        let mut heard = lock(&self.heard);
        if launch.session_id.is_some() {
            heard.session_id = launch.session_id.clone();
        }
        heard.hooks_on = launch.hooks;
        heard.usage = None;
        heard.usage_sent = None;
        heard.usage_pending = false;
    }

    pub fn session_id(&self) -> Option<String> {
        lock(&self.heard).session_id.clone()
    }

    /// The session id learnt from elsewhere than a hook; true when it changed.
    pub fn set_session_id(&self, session_id: Option<String>) -> bool {
        let mut heard = lock(&self.heard);
        let changed = heard.session_id != session_id;
        heard.session_id = session_id;
        changed
    }

    pub fn usage(&self) -> Option<Usage> {
        lock(&self.heard).usage.clone()
    }

    /// A hook ran: counts it and learns the session id it names (a resumed session's, or a
    /// new one after `/clear`).
    pub fn hook_heard(&self, event: &str, session_id: Option<&str>) {
        let mut heard = lock(&self.heard);
        heard.hook_count += 1;
        heard.last_hook = Some((super::now_millis(), event.to_string()));
        if let Some(id) = session_id.filter(|s| !s.is_empty()) {
            heard.session_id = Some(id.to_string());
        }
    }

    /// New figures from the status line. Says when to send a `usage` event: now, later (a
    /// change within a second of the last event is sent when the second is over, see
    /// [`SlotSignals::take_due_usage`]), or not at all (nothing changed).
    pub fn usage_heard(&self, usage: Usage) -> UsageEvent {
        let mut heard = lock(&self.heard);
        heard.statusline_count += 1;
        heard.last_statusline = Some(usage.updated_at);
        let changed = heard.usage.as_ref().is_none_or(|u| {
            u.model != usage.model
                || u.cost_usd != usage.cost_usd
                || u.input_tokens != usage.input_tokens
                || u.output_tokens != usage.output_tokens
                || u.context_used_percent != usage.context_used_percent
        });
        heard.usage = Some(usage.clone());
        if !changed {
            return UsageEvent::None;
        }
        let wait = heard
            .usage_sent
            .map(|t| USAGE_EVERY.saturating_sub(t.elapsed()))
            .unwrap_or_default();
        if wait.is_zero() {
            heard.usage_sent = Some(Instant::now());
            heard.usage_pending = false;
            return UsageEvent::Now(usage);
        }
        if heard.usage_pending {
            return UsageEvent::None;
        }
        heard.usage_pending = true;
        UsageEvent::After(wait)
    }

    /// The latest figures, when a change is still waiting for its event.
    pub fn take_due_usage(&self) -> Option<Usage> {
        let mut heard = lock(&self.heard);
        if !heard.usage_pending {
            return None;
        }
        heard.usage_pending = false;
        heard.usage_sent = Some(Instant::now());
        heard.usage.clone()
    }

    /// Drift was reported; true the first time for this release (to warn in the log once).
    pub fn drift_seen(&self, drift: &Drift) -> bool {
        let mut heard = lock(&self.heard);
        heard.drift_seen = Some(drift.clone());
        let release = drift.claude_version.clone().unwrap_or_default();
        if heard.drift_warned.contains(&release) {
            return false;
        }
        heard.drift_warned.push(release);
        true
    }

    pub fn stats(&self) -> SignalStats {
        let heard = lock(&self.heard);
        SignalStats {
            hooks_on: heard.hooks_on,
            hook_count: heard.hook_count,
            last_hook: heard.last_hook.clone(),
            statusline_count: heard.statusline_count,
            last_statusline: heard.last_statusline,
            drift_seen: heard.drift_seen.clone(),
        }
    }
}

impl Default for SlotSignals {
    fn default() -> Self {
        SlotSignals::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(exe: Option<&str>) -> Signals {
        let s = Signals::new(SignalSettings {
            exe: exe.map(PathBuf::from),
            hooks: true,
            claude_dir: PathBuf::from("/nonexistent"),
        });
        s.set_addr("0.0.0.0:9120".parse().unwrap());
        s
    }

    #[test]
    fn claude_gets_a_session_id_and_hooks_a_shell_nothing() {
        let config = |command: &str, hooks: Option<bool>| super::super::SlotConfig {
            id: "a".into(),
            command: command.into(),
            args: Vec::new(),
            cwd: PathBuf::from("/"),
            env: BTreeMap::new(),
            profile: crate::protocol::Profile::ClaudeCode,
            restart: crate::protocol::RestartPolicy::Never,
            scrollback: 0,
            worktree: None,
            hooks,
            recordings: None,
        };
        let s = signals(Some("/bin/missiond"));
        let l = launch(&config("/x/claude", None), &s, "sec");
        assert!(l.hooks);
        assert_eq!(l.args[0], "--settings");
        assert_eq!(l.args[2], "--session-id");
        assert_eq!(l.args.get(3), l.session_id.as_ref());
        assert_eq!(l.env[claude_args::ENV_HOOK_ADDR], "127.0.0.1:9120");
        assert_eq!(l.env[claude_args::ENV_HOOK_SECRET], "sec");
        let off = launch(&config("claude", Some(false)), &s, "sec");
        assert!(!off.hooks && off.session_id.is_some() && off.args.len() == 2);
        let shell = launch(&config("bash", None), &s, "sec");
        assert_eq!(
            (shell.args.len(), shell.session_id, shell.hooks),
            (0, None, false)
        );
        let no_exe = launch(&config("claude", None), &signals(None), "sec");
        assert!(!no_exe.hooks);
    }

    #[test]
    fn usage_events_are_rate_limited_and_only_for_changes() {
        let s = SlotSignals::new();
        assert!(s.accepts(&s.secret()) && !s.accepts("nope"));
        let u = |cost: f64| Usage {
            cost_usd: Some(cost),
            updated_at: 1,
            ..Usage::default()
        };
        assert_eq!(s.usage_heard(u(0.1)), UsageEvent::Now(u(0.1)));
        assert_eq!(s.usage_heard(u(0.1)), UsageEvent::None, "no change");
        assert!(matches!(s.usage_heard(u(0.2)), UsageEvent::After(d) if d <= USAGE_EVERY));
        assert_eq!(s.usage_heard(u(0.3)), UsageEvent::None, "already pending");
        assert_eq!(s.take_due_usage().and_then(|u| u.cost_usd), Some(0.3));
        assert_eq!(s.take_due_usage(), None);
        assert_eq!(s.stats().statusline_count, 4);
    }
}

/// Usage figures from Claude Code's status-line input: `model.id`, `cost.total_cost_usd`,
/// `context_window.{total_input_tokens, total_output_tokens, used_percentage}` (fields vary by
/// release; missing ones are filled from the session's transcript where it has them).
pub fn usage_from_statusline(input: &serde_json::Value) -> Usage {
    use serde_json::Value;
    let num = |path: &[&str]| -> Option<f64> {
        path.iter()
            .try_fold(input, |v, k| v.get(*k))
            .and_then(Value::as_f64)
    };
    let model = input
        .get("model")
        .and_then(|m| m.get("id").or_else(|| m.get("display_name")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut usage = Usage {
        model,
        cost_usd: num(&["cost", "total_cost_usd"]),
        input_tokens: num(&["context_window", "total_input_tokens"]).map(|n| n as u64),
        output_tokens: num(&["context_window", "total_output_tokens"]).map(|n| n as u64),
        context_used_percent: num(&["context_window", "used_percentage"]),
        updated_at: super::now_millis(),
    };
    if usage.input_tokens.is_none() || usage.output_tokens.is_none() || usage.model.is_none() {
        if let Some(path) = input.get("transcript_path").and_then(Value::as_str) {
            fill_from_transcript(&mut usage, std::path::Path::new(path));
        }
    }
    usage
}

/// Sums the token usage of the assistant messages of a transcript (JSONL), for releases whose
/// status line gives no token figures. Claude Code writes an entry per content block, each
/// with its message's whole usage: a message counts once, by its id.
fn fill_from_transcript(usage: &mut Usage, path: &std::path::Path) {
    /// Transcripts grow long; the figures are a fallback, not worth reading megabytes for.
    const MAX_TRANSCRIPT: u64 = 16 * 1024 * 1024;
    if std::fs::metadata(path).map_or(true, |m| m.len() > MAX_TRANSCRIPT) {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let (mut input, mut output, mut model) = (0u64, 0u64, None);
    let mut counted = std::collections::HashSet::new();
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(message) = entry
            .get("message")
            .filter(|_| entry["type"] == "assistant")
        else {
            continue;
        };
        if let Some(id) = message["id"].as_str() {
            if !counted.insert(id.to_string()) {
                continue;
            }
        }
        let tokens = |k: &str| message["usage"][k].as_u64().unwrap_or(0);
        input += tokens("input_tokens")
            + tokens("cache_creation_input_tokens")
            + tokens("cache_read_input_tokens");
        output += tokens("output_tokens");
        if let Some(m) = message["model"].as_str() {
            model = Some(m.to_string());
        }
    }
    usage.input_tokens = usage.input_tokens.or(Some(input));
    usage.output_tokens = usage.output_tokens.or(Some(output));
    usage.model = usage.model.take().or(model);
}

#[cfg(test)]
mod usage_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_status_line_input_gives_the_figures() {
        let u = usage_from_statusline(&json!({
            "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet"},
            "cost": {"total_cost_usd": 0.0123},
            "context_window": {"total_input_tokens": 1200, "total_output_tokens": 40,
                "used_percentage": 0.6},
        }));
        assert_eq!(u.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(u.cost_usd, Some(0.0123));
        assert_eq!((u.input_tokens, u.output_tokens), (Some(1200), Some(40)));
        assert_eq!(u.context_used_percent, Some(0.6));
    }

    #[test]
    fn the_transcript_fills_in_missing_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let line = |id: &str, i: u64, o: u64| {
            json!({"type": "assistant", "message": {"id": id, "model": "m1",
                "usage": {"input_tokens": i, "output_tokens": o}}})
            .to_string()
        };
        // Message a in two entries (a text and a tool call block): counted once.
        std::fs::write(
            &path,
            format!(
                "{}\n{}\nnot json\n{}\n",
                line("a", 100, 20),
                line("a", 100, 20),
                line("b", 5, 1)
            ),
        )
        .unwrap();
        let u = usage_from_statusline(&json!({"transcript_path": path, "cost": {}}));
        assert_eq!((u.input_tokens, u.output_tokens), (Some(105), Some(21)));
        assert_eq!(u.model.as_deref(), Some("m1"));
        assert_eq!(u.cost_usd, None);
    }
}
