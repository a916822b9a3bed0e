//! Every message that crosses a wire: REST bodies, `/pty`, `/events` and `/tasks` frames.
//!
//! Server and clients (the CLI, tests, examples) share these types so the two ends cannot drift.
//! Field names are camelCase on the wire; enum values are snake_case.

pub mod audit;
pub mod codes;
pub mod framing;
mod names;
pub mod recording;
pub mod schema;
pub mod signals;
pub mod tasks;
pub mod worktree;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a slot's screen is read into states: by the Claude Code rules or the generic shell rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    ClaudeCode,
    Shell,
}

impl Profile {
    /// `claude-code` when the command's file name is `claude`, else `shell`.
    pub fn for_command(command: &str) -> Profile {
        let name = std::path::Path::new(command)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(command);
        if name == "claude" {
            Profile::ClaudeCode
        } else {
            Profile::Shell
        }
    }

    pub fn as_str(self) -> &'static str {
        names::name_of(&self)
    }
}

/// When a slot whose program ended is started again.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    Never,
    OnFailure,
    Always,
}

impl RestartPolicy {
    /// The policy named `s` (`never`, `on-failure`, `always`), by its serde name.
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        names::parse_name(s)
    }
}

/// What a client asks for when it creates a slot (REST body, CLI `launch`, config `[[slots]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotSpec {
    pub id: String,
    #[serde(default = "default_command")]
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(default = "default_true")]
    pub autostart: bool,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrollback: Option<usize>,
    /// Run in a git worktree of its own (see [`worktree::WorktreeSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<worktree::WorktreeSpec>,
    /// Claude Code's hooks and status line as a second witness (docs/CLAUDE-INTEGRATION.md);
    /// `None` follows the daemon's `[claude] hooks` (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<bool>,
    /// `false`: this slot's runs are not recorded (docs/RECORDINGS.md). Absent: the daemon's
    /// `[record] enabled` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
}

fn default_command() -> String {
    "claude".to_string()
}

fn default_true() -> bool {
    true
}

impl SlotSpec {
    /// A spec with every optional field at its default.
    pub fn new(id: impl Into<String>, command: impl Into<String>) -> SlotSpec {
        SlotSpec {
            id: id.into(),
            command: command.into(),
            args: Vec::new(),
            cwd: None,
            env: BTreeMap::new(),
            cols: None,
            rows: None,
            profile: None,
            autostart: true,
            restart: RestartPolicy::Never,
            scrollback: None,
            worktree: None,
            hooks: None,
            record: None,
        }
    }
}

/// The process lifecycle of a slot (as opposed to its semantic state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotStatus {
    Starting,
    Running,
    Exited,
}

/// What the program in a slot is doing, read from its screen, title, session file and exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SemanticState {
    Starting,
    Idle,
    Thinking,
    ToolRunning,
    Responding,
    Confirming,
    Error,
    Exited,
}

impl SemanticState {
    /// `thinking`, `tool_running` and `responding`: the program is working, not waiting.
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            SemanticState::Thinking | SemanticState::ToolRunning | SemanticState::Responding
        )
    }

    pub fn as_str(self) -> &'static str {
        names::name_of(&self)
    }

    pub fn parse(s: &str) -> Option<SemanticState> {
        names::parse_name(s)
    }
}

/// Which kind of question a `confirming` slot is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DialogKind {
    Permission,
    Trust,
    Question,
    ApiKey,
    Other,
}

/// What answering with an option does, so scripts can answer by meaning across releases that
/// renumber or rename options. Read from the profile's rule file (`[[meaning]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Meaning {
    /// Allow this once.
    Yes,
    /// Allow, and stop asking for this kind of action.
    Always,
    /// Refuse.
    No,
}

impl Meaning {
    /// The meaning named `s` (`yes`, `always`, `no`), by its serde name.
    pub fn parse(s: &str) -> Option<Meaning> {
        names::parse_name(s)
    }

    pub fn as_str(self) -> &'static str {
        names::name_of(&self)
    }
}

/// One numbered choice of a dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DialogOption {
    pub n: u32,
    pub label: String,
    pub selected: bool,
    /// `null` for anything that is not plainly yes, always or no (e.g. "switch to auto mode").
    #[serde(default)]
    pub meaning: Option<Meaning>,
}

/// A dialog parsed from the screen, so a client can answer it by option number or by meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Dialog {
    pub kind: DialogKind,
    pub title: String,
    pub question: String,
    pub body: String,
    pub options: Vec<DialogOption>,
    /// The dialog says Escape cancels it (its footer reads "Esc to cancel"): answering "no" on a
    /// dialog without a "no" option presses Escape.
    #[serde(default)]
    pub cancellable: bool,
}

impl Dialog {
    /// The option answering with `meaning`: the first one that carries it.
    pub fn option_meaning(&self, meaning: Meaning) -> Option<&DialogOption> {
        self.options.iter().find(|o| o.meaning == Some(meaning))
    }
}

/// Why a slot is in the `error` state, with what the screen says about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// `api_retry` (an API call failed and is being retried) or `api_error` (the turn ended in
    /// an API error), or the rule file's own name for it.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// With `api_retry`: the attempt under way and how many there will be at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_secs: Option<u32>,
}

/// Extra facts about the current state: the dialog while `confirming`, the rule that matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog: Option<Dialog>,
    /// While `error`: what went wrong, as far as the screen tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// Name of the rule (or signal) that decided the state, for people debugging rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// While `tool_running`: the tool Claude Code's PreToolUse hook named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Box<signals::ToolDetail>>,
    /// The screen and Claude Code's hooks disagree: the rules may be wrong for this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Box<signals::Drift>>,
}

/// A slot as clients see it (REST, `/events`, CLI `ls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlotInfo {
    pub id: String,
    pub command: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub cols: u16,
    pub rows: u16,
    pub profile: Profile,
    pub restart: RestartPolicy,
    pub pid: Option<u32>,
    pub status: SlotStatus,
    pub state: SemanticState,
    #[serde(default)]
    pub state_detail: StateDetail,
    /// Milliseconds since the Unix epoch when the state last changed.
    pub state_since: u64,
    /// Milliseconds since the Unix epoch when the current (or last) process started.
    pub started_at: Option<u64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    pub restarts: u32,
    pub viewers: usize,
    /// The Claude Code release a `claude-code` slot runs (`2.1.330`), from `<command> --version`;
    /// `null` for other programs or when it could not be told.
    #[serde(default)]
    pub claude_version: Option<String>,
    /// The slot's own git worktree and how its work differs from the base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<worktree::WorktreeInfo>,
    /// The Claude Code session of the current (or last) run: the `--session-id` missiond gave
    /// it, or the one its hooks reported; `null` when unknown.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Model, cost and context figures from Claude Code's status line; `null` until it ran.
    #[serde(default)]
    pub usage: Option<signals::Usage>,
    /// Set on a slot a restarted daemon brought back from its registry: whether its program
    /// carried on its conversation or started afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<Restored>,
}

/// How a slot restored from the registry came back (`restored` in slot info).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Restored {
    /// Claude Code resumed its conversation (`--resume <sessionId>`).
    Resumed,
    /// The program was started again afresh with its command, cwd and env.
    Restarted,
}

/// Error body of every failed REST call: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

/// `GET /api/slots/{id}/screen`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScreenText {
    pub cols: u16,
    pub rows: u16,
    /// `[row, col]`, zero-based.
    pub cursor: [u16; 2],
    pub text: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InputRequest {
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResizeRequest {
    pub cols: u16,
    pub rows: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptRequest {
    pub text: String,
    #[serde(default)]
    pub wait: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `POST /api/slots/{id}/confirm`: `{"option": n}` or `{"answer": "yes" | "always" | "no"}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Meaning>,
}

/// What a confirm asks for: one option by number, or the option (or key) with a meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Option(u32),
    Meaning(Meaning),
}

impl ConfirmRequest {
    /// Exactly one of `option` and `answer`.
    pub fn answer(&self) -> Result<Answer, &'static str> {
        match (self.option, self.answer) {
            (Some(n), None) => Ok(Answer::Option(n)),
            (None, Some(m)) => Ok(Answer::Meaning(m)),
            (Some(_), Some(_)) => Err("give either \"option\" or \"answer\", not both"),
            (None, None) => {
                Err("give \"option\": <number> or \"answer\": \"yes\" | \"always\" | \"no\"")
            }
        }
    }
}

/// Answer of `prompt`, `confirm` and `wait`: the state the slot is in when the call returns.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateReply {
    pub state: SemanticState,
    #[serde(default)]
    pub state_detail: StateDetail,
}

/// Frames the server sends on `/pty/<slot>`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PtyServerMsg {
    /// The whole current screen as ANSI; always the first frame, and again after a viewer lagged.
    Screen {
        data: String,
        cols: u16,
        rows: u16,
    },
    Data {
        data: String,
    },
    #[serde(rename_all = "camelCase")]
    State {
        state: SemanticState,
        prev_state: Option<SemanticState>,
        #[serde(flatten)]
        detail: StateDetail,
    },
    Resize {
        cols: u16,
        rows: u16,
    },
    Exit {
        code: Option<i32>,
        signal: Option<String>,
    },
    Error {
        message: String,
    },
}

/// Frames a client sends on `/pty/<slot>` (a non-JSON text or binary frame is raw input).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PtyClientMsg {
    Input {
        data: String,
    },
    /// A viewer's size. Applied when this is the slot's only viewer, or with `force` (an
    /// explicit "fit to this window"); otherwise the viewer is told the slot's real size.
    Resize {
        cols: u16,
        rows: u16,
        #[serde(default)]
        force: bool,
    },
    /// Whether anyone looks at this viewer (`hidden`: a browser tab in the background). A busy
    /// slot whose viewers are all hidden is read once a second, as one nobody watches; the
    /// viewer still gets every byte, gathered.
    Visibility {
        hidden: bool,
    },
}

/// Frames of the `/events` stream: every slot's lifecycle and state.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SlotEvent {
    Slots {
        slots: Vec<SlotInfo>,
    },
    SlotCreated {
        slot: SlotInfo,
    },
    #[serde(rename_all = "camelCase")]
    SlotState {
        slot_id: String,
        state: SemanticState,
        prev_state: Option<SemanticState>,
        detail: StateDetail,
    },
    #[serde(rename_all = "camelCase")]
    SlotExited {
        slot_id: String,
        code: Option<i32>,
        signal: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    SlotStarted {
        slot_id: String,
        pid: Option<u32>,
    },
    #[serde(rename_all = "camelCase")]
    SlotRemoved {
        slot_id: String,
    },
    /// Something in the slot's info changed other than its state (e.g. its worktree stats).
    SlotUpdated {
        slot: SlotInfo,
    },
    /// New cost and context figures of a slot (at most one a second per slot).
    #[serde(rename_all = "camelCase")]
    Usage {
        slot_id: String,
        usage: signals::Usage,
    },
}
