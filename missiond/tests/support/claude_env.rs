//! Everything needed to launch the real Claude Code CLI in a test: the pinned binary, a fresh
//! HOME and claude dir, and the environment that points it at the stand-in Messages API.
//!
//! The result is plain data (command, args, env, cwd) so it can go to portable-pty directly or
//! into a missiond `SlotSpec`. Facts behind the settings are in docs/TESTING-WITH-CLAUDE.md.
#![allow(dead_code)] // each test binary uses a different part of this helper

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

/// The version the fixtures were recorded with and `scripts/install-e2e-tools.sh` installs.
pub const CLAUDE_CODE_VERSION: &str = "2.1.330";

/// The releases the end-to-end tests run on (docs/TESTING-WITH-CLAUDE.md, "Releases verified"):
/// the pinned one, the newest published when the matrix was last extended, and 2.1.200 (July
/// 2026), which users still run. `scripts/install-e2e-tools.sh` installs each into
/// `.e2e-tools/claude-<version>/`; keep the two lists equal.
pub const RELEASES: &[&str] = &[CLAUDE_CODE_VERSION, "2.1.332", "2.1.200"];

/// The API key the tests use. Claude Code remembers approved keys by their last 20 characters.
pub const TEST_API_KEY: &str = "sk-ant-api03-missiond-test-key-0123456789abcdef";

/// Variables from the developer's environment that would send Claude Code elsewhere or change
/// its behaviour; a launcher that inherits the environment should remove them.
pub const VARS_TO_CLEAR: &[&str] = &[
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_TASK_LIST_ID",
    "CLAUDE_CODE_ENTRYPOINT",
    "CLAUDECODE",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
];

/// Path of the Claude Code binary: `$MISSIOND_CLAUDE_BIN`, else `<repo>/.e2e-tools/...`.
/// Panics (failing the test, never skipping it) with the command that installs it.
pub fn claude_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MISSIOND_CLAUDE_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "MISSIOND_CLAUDE_BIN={} does not exist; unset it or run scripts/install-e2e-tools.sh",
            p.display()
        );
        return p;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")));
    let bin = repo.join(".e2e-tools/node_modules/.bin/claude");
    assert!(
        bin.is_file(),
        "Claude Code {CLAUDE_CODE_VERSION} is not installed at {}.\n\
         Run `scripts/install-e2e-tools.sh` from the repository root (needs npm), \
         or set MISSIOND_CLAUDE_BIN to a claude binary.",
        bin.display()
    );
    bin
}

/// Path of the Claude Code binary of `release`: the pinned one is [`claude_bin`]; every other
/// release of [`RELEASES`] lives in `<repo>/.e2e-tools/claude-<release>/` (or
/// `$MISSIOND_CLAUDE_RELEASES_DIR/claude-<release>/`). Panics (failing the test, never skipping
/// it) with the command that installs it.
pub fn claude_bin_for(release: &str) -> PathBuf {
    if release == CLAUDE_CODE_VERSION {
        return claude_bin();
    }
    let dir = match std::env::var_os("MISSIOND_CLAUDE_RELEASES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")))
            .join(".e2e-tools"),
    };
    let bin = dir.join(format!("claude-{release}/node_modules/.bin/claude"));
    assert!(
        bin.is_file(),
        "Claude Code {release} is not installed at {}.\n\
         Run `scripts/install-e2e-tools.sh` from the repository root (needs npm).",
        bin.display()
    );
    bin
}

/// Builds a [`ClaudeEnv`]. By default both start-up dialogs (trust, API key) are pre-answered so
/// Claude Code starts straight at the prompt.
#[derive(Debug, Clone)]
pub struct ClaudeEnvBuilder {
    base_url: String,
    api_key: String,
    trust_dialog: bool,
    api_key_dialog: bool,
    permission_mode: Option<String>,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    claude_dir: Option<PathBuf>,
    release: Option<String>,
}

impl ClaudeEnvBuilder {
    /// `base_url` is the stand-in's, e.g. `stand_in.base_url()`.
    pub fn new(base_url: impl Into<String>) -> Self {
        ClaudeEnvBuilder {
            base_url: base_url.into(),
            api_key: TEST_API_KEY.to_string(),
            trust_dialog: false,
            api_key_dialog: false,
            permission_mode: Some("default".to_string()),
            env: BTreeMap::new(),
            args: Vec::new(),
            claude_dir: None,
            release: None,
        }
    }

    /// Use this existing directory as the claude dir (`CLAUDE_CONFIG_DIR`) instead of a fresh
    /// `<home>/.claude`: e.g. a test daemon's `[claude] config_dir`, so the daemon watches the
    /// session and task files this Claude Code writes. `.claude.json` is written into it.
    pub fn claude_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.claude_dir = Some(dir.into());
        self
    }

    /// Keep the "Quick safety check: ... trust?" dialog at start (default: pre-accepted).
    pub fn show_trust_dialog(mut self, show: bool) -> Self {
        self.trust_dialog = show;
        self
    }

    /// Keep the "Detected a custom API key ... Do you want to use this API key?" dialog at start
    /// (default: the key is pre-approved). Note its default choice is "No (recommended)".
    pub fn show_api_key_dialog(mut self, show: bool) -> Self {
        self.api_key_dialog = show;
        self
    }

    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// `--permission-mode` (default `default`, which asks before Bash and Write); `None` omits
    /// the flag.
    pub fn permission_mode(mut self, mode: Option<&str>) -> Self {
        self.permission_mode = mode.map(str::to_string);
        self
    }

    /// Adds or overrides an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Run this release of [`RELEASES`] (default: the pinned one, or `$MISSIOND_CLAUDE_BIN`).
    pub fn release(mut self, release: &str) -> Self {
        self.release = Some(release.to_string());
        self
    }

    /// Appends a command-line argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Creates the temp HOME, claude dir and project dir and writes `.claude.json`.
    pub fn build(self) -> ClaudeEnv {
        let command = match &self.release {
            Some(release) => claude_bin_for(release),
            None => claude_bin(),
        };
        let root = tempfile::Builder::new()
            .prefix("missiond-claude-")
            .tempdir()
            .expect("create temp dir for Claude Code");
        // Claude Code keys `projects` by the real path of its cwd.
        let root_path = std::fs::canonicalize(root.path()).expect("canonical temp dir");
        let home = root_path.join("home");
        let claude_dir = match &self.claude_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).expect("create the given claude dir");
                std::fs::canonicalize(dir).expect("canonical claude dir")
            }
            None => home.join(".claude"),
        };
        let project_dir = root_path.join("project");
        for dir in [&home, &claude_dir, &project_dir] {
            std::fs::create_dir_all(dir).expect("create Claude Code test dir");
        }

        let project_key = project_dir.to_string_lossy().into_owned();
        let mut config = json!({
            "hasCompletedOnboarding": true,
            "numStartups": 1,
            "projects": {
                project_key: {
                    "hasTrustDialogAccepted": !self.trust_dialog,
                    "allowedTools": [],
                },
            },
        });
        if !self.api_key_dialog {
            config["customApiKeyResponses"] = json!({
                "approved": [key_suffix(&self.api_key)],
                "rejected": [],
            });
        }
        let config_text = serde_json::to_string_pretty(&config).expect("serialize .claude.json");
        // With CLAUDE_CONFIG_DIR set (we set it), Claude Code reads `<config dir>/.claude.json`
        // and ignores `~/.claude.json`; write both so running without it behaves the same.
        std::fs::write(claude_dir.join(".claude.json"), &config_text).expect("write .claude.json");
        std::fs::write(home.join(".claude.json"), &config_text).expect("write ~/.claude.json");

        let mut env = BTreeMap::new();
        let path = |p: &Path| p.to_string_lossy().into_owned();
        env.insert("HOME".to_string(), path(&home));
        env.insert("CLAUDE_CONFIG_DIR".to_string(), path(&claude_dir));
        env.insert("ANTHROPIC_BASE_URL".to_string(), self.base_url.clone());
        env.insert("ANTHROPIC_API_KEY".to_string(), self.api_key.clone());
        env.insert(
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".to_string(),
            "1".to_string(),
        );
        env.insert("CLAUDE_CODE_ENABLE_TODO_TOOLS".to_string(), "1".to_string());
        env.insert("TERM".to_string(), "xterm-256color".to_string());
        env.insert("COLORTERM".to_string(), "truecolor".to_string());
        env.insert("LANG".to_string(), "C.UTF-8".to_string());
        // Keep PATH so Bash tool calls find the usual tools.
        if let Some(p) = std::env::var_os("PATH") {
            env.insert("PATH".to_string(), p.to_string_lossy().into_owned());
        }
        env.extend(self.env);

        let mut args = Vec::new();
        if let Some(mode) = self.permission_mode {
            args.push("--permission-mode".to_string());
            args.push(mode);
        }
        args.extend(self.args);

        ClaudeEnv {
            command,
            args,
            env,
            cwd: project_dir.clone(),
            home,
            claude_dir,
            project_dir,
            _root: root,
        }
    }
}

/// The part of the key Claude Code stores in `customApiKeyResponses.approved`.
pub fn key_suffix(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(20)..].iter().collect()
}

/// A ready-to-launch Claude Code. The directories live as long as this value.
#[derive(Debug)]
pub struct ClaudeEnv {
    /// Absolute path of the claude binary.
    pub command: PathBuf,
    pub args: Vec<String>,
    /// The complete environment to set (inherit the rest minus [`VARS_TO_CLEAR`]).
    pub env: BTreeMap<String, String>,
    /// The project directory Claude Code runs in (= `project_dir`).
    pub cwd: PathBuf,
    pub home: PathBuf,
    /// `$CLAUDE_CONFIG_DIR` (`<home>/.claude` unless [`ClaudeEnvBuilder::claude_dir`] named
    /// another): `sessions/`, `tasks/`, `projects/` appear here.
    pub claude_dir: PathBuf,
    pub project_dir: PathBuf,
    _root: tempfile::TempDir,
}

impl ClaudeEnv {
    /// `(command, args, env, cwd)` as strings, the shape of a missiond `SlotSpec`.
    pub fn launch(&self) -> (String, Vec<String>, BTreeMap<String, String>, String) {
        (
            self.command.to_string_lossy().into_owned(),
            self.args.clone(),
            self.env.clone(),
            self.cwd.to_string_lossy().into_owned(),
        )
    }

    /// `<claude dir>/sessions`: `<pid>.json` per live interactive process.
    pub fn sessions_dir(&self) -> PathBuf {
        self.claude_dir.join("sessions")
    }

    /// `<claude dir>/tasks`: one folder per task list (the session id).
    pub fn tasks_dir(&self) -> PathBuf {
        self.claude_dir.join("tasks")
    }

    /// `<claude dir>/sessions/<pid>.json` of a process, parsed, if it exists and is complete.
    pub fn session_file(&self, pid: u32) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.sessions_dir().join(format!("{pid}.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }
}
