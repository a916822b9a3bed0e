//! Slot and server settings: the TOML config file, the state directory and the access token.

use crate::protocol::SlotSpec;
use serde::Deserialize;
use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where clients look for the daemon when neither `--url` nor `MISSIOND_URL` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9120";
pub const DEFAULT_COLS: u16 = 120;
pub const DEFAULT_ROWS: u16 = 40;
pub const DEFAULT_SCROLLBACK: usize = 2000;
/// Largest terminal a slot may have; anything larger is a typo, not a terminal.
pub const MAX_DIMENSION: u16 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The toml error text already names the line, column and key.
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("token file {path}: {source}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find a home directory: set HOME")]
    NoHome,
}

/// Everything `missiond serve` needs to run.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub claude: ClaudeConfig,
    pub semantic: SemanticConfig,
    pub slots: Vec<SlotSpec>,
    pub audit: crate::audit::AuditConfig,
    /// `[record]`: recordings of runs and their disk limits (docs/RECORDINGS.md).
    pub record: crate::recording::RecordConfig,
    /// `[[notify]]`: where notifications go.
    pub notify: Vec<crate::notify::NotifyConfig>,
    /// The file this came from, if any (for messages).
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; loopback unless a token was given explicitly.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Extra `Origin`s allowed to open WebSockets (the daemon's own origin always is).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Viewers per slot; the next one is refused.
    #[serde(default = "default_max_viewers")]
    pub max_viewers: usize,
    /// Seconds between SIGTERM and SIGKILL when a slot is killed.
    #[serde(default = "default_kill_grace")]
    pub kill_grace_secs: f64,
    /// Seconds a viewer may go without taking a frame before it is closed (1008).
    #[serde(default = "default_stuck_viewer")]
    pub stuck_viewer_secs: f64,
    /// Where worktree slots' worktrees go (default `$XDG_DATA_HOME/missiond/worktrees`).
    #[serde(default)]
    pub worktree_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaudeConfig {
    /// Claude Code's directory (`tasks/`, `todos/`, `sessions/`).
    #[serde(default = "default_claude_dir")]
    pub config_dir: PathBuf,
    /// Add hooks and a status-line command to `claude-code` slots (docs/CLAUDE-INTEGRATION.md);
    /// a slot's own `hooks` wins.
    #[serde(default = "default_hooks")]
    pub hooks: bool,
}

fn default_hooks() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticConfig {
    /// A directory whose `claude-code.toml` / `shell.toml` replace the embedded rules.
    #[serde(default)]
    pub rules_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: Option<ServerConfig>,
    claude: Option<ClaudeConfig>,
    semantic: Option<SemanticConfig>,
    #[serde(default)]
    slots: Vec<SlotSpec>,
    audit: Option<crate::audit::AuditConfig>,
    record: Option<crate::recording::RecordConfig>,
    #[serde(default)]
    notify: Vec<crate::notify::NotifyConfig>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9120))
}
fn default_max_viewers() -> usize {
    32
}
fn default_kill_grace() -> f64 {
    5.0
}
fn default_stuck_viewer() -> f64 {
    30.0
}
fn default_claude_dir() -> PathBuf {
    claude_dir_from_env()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            allowed_origins: Vec::new(),
            max_viewers: default_max_viewers(),
            kill_grace_secs: default_kill_grace(),
            stuck_viewer_secs: default_stuck_viewer(),
            worktree_root: None,
        }
    }
}

impl Default for ClaudeConfig {
    fn default() -> Self {
        ClaudeConfig {
            hooks: true,
            config_dir: default_claude_dir(),
        }
    }
}

impl ServerConfig {
    pub fn kill_grace(&self) -> Duration {
        Duration::from_secs_f64(self.kill_grace_secs.clamp(0.0, 3600.0))
    }

    pub fn worktree_root(&self) -> PathBuf {
        match &self.worktree_root {
            Some(dir) => expand_tilde(&dir.to_string_lossy()),
            None => crate::worktree::default_root(),
        }
    }

    pub fn stuck_viewer(&self) -> Duration {
        Duration::from_secs_f64(self.stuck_viewer_secs.clamp(0.1, 86_400.0))
    }
}

impl Config {
    /// Reads `path`, or `~/.config/missiond/config.toml` when `path` is `None` and that file
    /// exists, else returns the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => match default_config_path() {
                Some(p) if p.exists() => p,
                _ => return Ok(Config::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        Config::parse(&text, &path)
    }

    /// Parses config text; `path` is only used in messages and to resolve relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut seen = HashSet::new();
        for slot in &file.slots {
            validate_spec(slot).map_err(|m| invalid(format!("slot '{}': {m}", slot.id)))?;
            if !seen.insert(slot.id.clone()) {
                return Err(invalid(format!("slot '{}' is defined twice", slot.id)));
            }
        }
        for (i, notify) in file.notify.iter().enumerate() {
            notify
                .validate()
                .map_err(|m| invalid(format!("notify entry {}: {m}", i + 1)))?;
        }
        let mut claude = file.claude.unwrap_or_default();
        claude.config_dir = expand_tilde(&claude.config_dir.to_string_lossy());
        let mut semantic = file.semantic.unwrap_or_default();
        semantic.rules_dir = semantic
            .rules_dir
            .map(|d| expand_tilde(&d.to_string_lossy()));
        let server = file.server.unwrap_or_default();
        if !server.kill_grace_secs.is_finite() || server.kill_grace_secs < 0.0 {
            return Err(invalid(
                "server.kill_grace_secs must be a number of seconds >= 0".into(),
            ));
        }
        if !server.stuck_viewer_secs.is_finite() || server.stuck_viewer_secs <= 0.0 {
            return Err(invalid(
                "server.stuck_viewer_secs must be a number of seconds > 0".into(),
            ));
        }
        let record = file.record.unwrap_or_default();
        record.validate().map_err(invalid)?;
        Ok(Config {
            server,
            claude,
            semantic,
            slots: file.slots,
            audit: file.audit.unwrap_or_default(),
            record,
            notify: file.notify,
            source: Some(path.to_path_buf()),
        })
    }
}

/// Checks what can be checked without touching the file system.
pub fn validate_spec(spec: &SlotSpec) -> Result<(), String> {
    validate_slot_id(&spec.id)?;
    if spec.command.trim().is_empty() {
        return Err("command is empty".into());
    }
    for (name, value) in [("cols", spec.cols), ("rows", spec.rows)] {
        if let Some(v) = value {
            if !(2..=MAX_DIMENSION).contains(&v) {
                return Err(format!(
                    "{name} must be between 2 and {MAX_DIMENSION}, not {v}"
                ));
            }
        }
    }
    if let Some(worktree) = &spec.worktree {
        crate::worktree::validate_spec(worktree)?;
    }
    for (key, value) in &spec.env {
        if key.is_empty() || key.contains(['=', '\0']) {
            return Err(format!(
                "invalid env key {key:?}: a name must be non-empty, without '=' or NUL"
            ));
        }
        if value.contains('\0') {
            return Err(format!("env {key}: the value contains a NUL byte"));
        }
    }
    if let Some(lines) = spec.scrollback {
        if lines > 1_000_000 {
            return Err(format!(
                "scrollback must be at most 1000000 lines, not {lines}"
            ));
        }
    }
    Ok(())
}

/// Slot ids are `[A-Za-z0-9_-]{1,64}`: safe in URLs, file names and shells.
pub fn validate_slot_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid slot id {id:?}: use 1 to 64 letters, digits, '_' or '-'"
        ))
    }
}

/// `~` and `~/...` become the home directory; anything else is returned as is.
pub fn expand_tilde(path: &str) -> PathBuf {
    match (path, home_dir()) {
        ("~", Some(home)) => home,
        (p, Some(home)) if p.starts_with("~/") => home.join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
pub fn claude_dir_from_env() -> PathBuf {
    match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home_dir()
            .unwrap_or_else(|| PathBuf::from("/"))
            .join(".claude"),
    }
}

/// `~/.config/missiond/config.toml` (honouring `$XDG_CONFIG_HOME`).
pub fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home_dir().map(|h| h.join(".config")))?;
    Some(base.join("missiond").join("config.toml"))
}

/// `$XDG_STATE_HOME/missiond`, else `~/.local/state/missiond`.
pub fn state_dir() -> Result<PathBuf, ConfigError> {
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home_dir()
            .ok_or(ConfigError::NoHome)?
            .join(".local")
            .join("state"),
    };
    Ok(base.join("missiond"))
}

pub fn token_path() -> Result<PathBuf, ConfigError> {
    Ok(state_dir()?.join("token"))
}

/// Where the token in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `MISSIOND_TOKEN`: chosen by the operator.
    Env,
    /// The token file, created on first run.
    File,
}

/// The token in force: `MISSIOND_TOKEN`, else the token file, created (mode 0600) if missing.
pub fn load_or_create_token() -> Result<(String, TokenSource), ConfigError> {
    if let Some(token) = env_token() {
        return Ok((token, TokenSource::Env));
    }
    Ok((read_or_create(&token_path()?)?, TokenSource::File))
}

/// The read-only token (file `token-ro` beside the token, or `MISSIOND_READONLY_TOKEN`): it may
/// watch slots but never type into them or change them.
pub fn load_or_create_read_only_token() -> Result<String, ConfigError> {
    if let Some(token) = std::env::var("MISSIOND_READONLY_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(token.trim().to_string());
    }
    let path = state_dir()?.join("token-ro");
    read_or_create(&path)
}

fn read_or_create(path: &Path) -> Result<String, ConfigError> {
    let err = |source| ConfigError::Token {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
        // The state directory holds the tokens: keep it private.
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let token = random_token().map_err(err)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    file.write_all(format!("{token}\n").as_bytes())
        .map_err(err)?;
    Ok(token)
}

/// The token a client should send: `MISSIOND_TOKEN`, else the token file if it exists.
pub fn load_token() -> Result<Option<String>, ConfigError> {
    if let Some(token) = env_token() {
        return Ok(Some(token));
    }
    let path = token_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Token { path, source }),
    }
}

fn env_token() -> Option<String> {
    std::env::var("MISSIOND_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// 32 random bytes as 64 hex digits.
fn random_token() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `http://127.0.0.1:9120`: where clients look for the daemon by default.
pub fn default_url() -> String {
    format!("http://{DEFAULT_LISTEN}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n",
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("x.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn hooks_are_on_unless_the_daemon_or_a_slot_says_otherwise() {
        let cfg = Config::parse("[[slots]]\nid = \"a\"\n", Path::new("c.toml")).unwrap();
        assert!(cfg.claude.hooks);
        assert_eq!(cfg.slots[0].hooks, None);
        let cfg = Config::parse(
            "[claude]\nhooks = false\n\n[[slots]]\nid = \"a\"\nhooks = true\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert!(!cfg.claude.hooks);
        assert_eq!(cfg.slots[0].hooks, Some(true));
    }

    #[test]
    fn slots_parse_and_bad_ids_are_refused() {
        let cfg = Config::parse(
            "[[slots]]\nid = \"a\"\ncommand = \"bash\"\nrestart = \"on-failure\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(cfg.slots[0].command, "bash");
        let err = Config::parse("[[slots]]\nid = \"a b\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.to_string().contains("invalid slot id"), "{err}");
        let err = Config::parse(
            "[[slots]]\nid = \"a\"\nrestart = \"sometimes\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn a_slot_may_ask_for_a_worktree_and_typos_in_it_are_refused() {
        let cfg = Config::parse(
            "[[slots]]\nid = \"a\"\nworktree = { base = \"main\", setup = \"npm ci\" }\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let wt = cfg.slots[0].worktree.as_ref().unwrap();
        assert_eq!(wt.base.as_deref(), Some("main"));
        assert_eq!(wt.setup.as_deref(), Some("npm ci"));
        let err = Config::parse(
            "[[slots]]\nid = \"a\"\nworktree = { bsae = \"main\" }\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("bsae"), "{err}");
        let err = Config::parse(
            "[[slots]]\nid = \"a\"\nworktree = { copy = [\"[\"] }\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("copy glob"), "{err}");
    }

    #[test]
    fn shipped_example_parses() {
        let cfg = Config::parse(
            include_str!("../../examples/missiond.toml"),
            Path::new("examples/missiond.toml"),
        )
        .unwrap();
        assert_eq!(cfg.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cfg.slots.len(), 1);
        assert_eq!(cfg.slots[0].id, "shell");
    }

    #[test]
    fn slot_ids() {
        assert!(validate_slot_id("agent_1-x").is_ok());
        for bad in ["", "a/b", "a b", "ü", &"x".repeat(65)] {
            assert!(validate_slot_id(bad).is_err(), "{bad}");
        }
    }
}
