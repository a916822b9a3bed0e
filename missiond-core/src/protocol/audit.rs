//! Wire types of the audit trail (`audit.jsonl`, `GET /api/audit`) and of notifications sent
//! out (`[[notify]]`).
//!
//! One audit entry is one line of `audit.jsonl` and one element of `GET /api/audit`, so the
//! file and the API read the same.

use super::{Dialog, DialogOption, Meaning, SemanticState};
use serde::{Deserialize, Serialize};

/// What was done to a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Launch,
    Start,
    Kill,
    Restart,
    Remove,
    Resize,
    Prompt,
    Confirm,
    Input,
    /// `missiond upgrade`: the daemon replaced its binary under the slot (its program ran on).
    Upgrade,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        super::names::name_of(&self)
    }
}

/// Which kind of program asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// The `missiond` command line (it sends `X-Missiond-Client: cli`).
    Cli,
    /// The browser viewer (`X-Missiond-Client: viewer`, or any request with an `Origin`).
    Viewer,
    /// Anything else talking to the API: scripts, curl, a WebSocket client.
    Rest,
    /// The daemon itself: slots from the config file at start.
    Config,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        super::names::name_of(&self)
    }
}

/// Which token the request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Full,
    ReadOnly,
    /// No request at all (the daemon itself).
    None,
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub client: ClientKind,
    pub token: TokenKind,
    /// `ip:port` of the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl Actor {
    /// The daemon acting on its own config.
    pub fn config() -> Actor {
        Actor {
            client: ClientKind::Config,
            token: TokenKind::None,
            remote: None,
            user_agent: None,
        }
    }
}

/// One line of `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    pub slot: String,
    pub action: AuditAction,
    pub actor: Actor,
    /// Launch: the command and its arguments. Upgrade: the new binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Launch: the working directory asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Resize: the new size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cols: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u16>,
    /// Input: how many bytes reached the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// Prompt: its text. Input: the text when it is one line of printable characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Confirm: the option asked for, as the dialog offered it (number, label, meaning).
    /// Absent when a "no" was given by Escape (a dialog with no No option).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<DialogOption>,
    /// Confirm: the meaning asked for, when the answer was given by meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Meaning>,
    /// Confirm: the dialog that was answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog: Option<Dialog>,
}

impl AuditEntry {
    /// An entry with no details; the caller fills in what the action has.
    pub fn new(time: u64, slot: &str, action: AuditAction, actor: Actor) -> AuditEntry {
        AuditEntry {
            time,
            slot: slot.to_string(),
            action,
            actor,
            command: None,
            cwd: None,
            cols: None,
            rows: None,
            bytes: None,
            text: None,
            option: None,
            answer: None,
            dialog: None,
        }
    }
}

/// What a notification is about (the `on` list of a `[[notify]]` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A slot started waiting for an answer.
    Confirming,
    /// A slot went idle after a turn of at least `min_busy_secs`.
    Idle,
    Error,
    Exited,
    TaskCompleted,
    /// Hooks and screen disagree about a slot's state (no source emits it yet).
    Drift,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        super::names::name_of(&self)
    }
}

/// The JSON a `[[notify]]` receiver gets (as the POST body, or on a command's stdin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyEvent {
    pub event: NotifyKind,
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    pub slot: String,
    pub state: SemanticState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_state: Option<SemanticState>,
    /// While confirming: the dialog (title, question, body, options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialog: Option<Dialog>,
    /// Exited: the exit code or signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<String>,
    /// Idle: how long the turn took, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_secs: Option<u64>,
    /// Task completed: the task's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// One line for a person: "agent1 needs you: Do you want to proceed?".
    pub message: String,
    /// The viewer, opened on this slot (no token in it: the receiver may be a public service).
    pub link: String,
    /// Sent by `missiond notify test`.
    #[serde(default)]
    pub test: bool,
}

/// `POST /api/notify/test`: what each receiver said.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyTestResult {
    /// The receiver: its URL or command.
    pub target: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
